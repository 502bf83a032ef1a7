//! Adds `config.name: config.value` to every forwarded request.
#![no_std]

use hook_sdk::{config_get, set_header, Decision};

fn decide() -> Decision {
    let mut name = [0u8; 128];
    let mut value = [0u8; 1024];
    if let (Ok(Some(n)), Ok(Some(v))) = (config_get("name", &mut name), config_get("value", &mut value)) {
        set_header(n, v);
    }
    Decision::Continue
}

hook_sdk::export!(decide);
