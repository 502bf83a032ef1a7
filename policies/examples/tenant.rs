//! Tenant routing: the value of `config.header` (default `x-tenant`) names a
//! cluster in the policy's `clusters`; unknown or missing tenants continue to
//! the route's own cluster.
#![no_std]

use hook_sdk::{cluster_index, config_get, header, Decision};

fn decide() -> Decision {
    let mut name = [0u8; 64];
    let mut tenant = [0u8; 128];
    let name: &[u8] = match config_get("header", &mut name) {
        Ok(Some(n)) => n,
        _ => b"x-tenant",
    };
    let name = core::str::from_utf8(name).unwrap_or("x-tenant");
    match header(name, &mut tenant) {
        Ok(Some(t)) => match cluster_index(t) {
            Some(i) => Decision::Route(i),
            None => Decision::Continue,
        },
        _ => Decision::Continue,
    }
}

hook_sdk::export!(decide);
