//! Header-based canary routing: requests with `config.header` equal to
//! `config.value` (default `x-canary: 1`) go to the policy's first cluster.
#![no_std]

use hook_sdk::{config_get, header, Decision};

fn decide() -> Decision {
    let mut name = [0u8; 64];
    let mut want = [0u8; 64];
    let mut got = [0u8; 256];
    let name: &[u8] = match config_get("header", &mut name) {
        Ok(Some(n)) => n,
        _ => b"x-canary",
    };
    let want: &[u8] = match config_get("value", &mut want) {
        Ok(Some(v)) => v,
        _ => b"1",
    };
    let name = core::str::from_utf8(name).unwrap_or("x-canary");
    match header(name, &mut got) {
        Ok(Some(v)) if &v[..] == want => Decision::Route(0),
        _ => Decision::Continue,
    }
}

hook_sdk::export!(decide);
