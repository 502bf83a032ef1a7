//! Deny by path prefix or client IP with 403: `config.pathPrefixes` and
//! `config.clientIPs` are comma-separated lists.
#![no_std]

use hook_sdk::{config_get, field, list_contains, respond, respond_header, trim, Decision, Field};

fn denied_prefix(path: &[u8], prefixes: &[u8]) -> bool {
    prefixes.split(|&b| b == b',').map(trim).any(|p| {
        !p.is_empty()
            && path.starts_with(p)
            && (path.len() == p.len() || path[p.len()] == b'/' || p.ends_with(b"/"))
    })
}

fn decide() -> Decision {
    let mut list = [0u8; 1024];
    let mut value = [0u8; 2048];
    if let Ok(Some(prefixes)) = config_get("pathPrefixes", &mut list) {
        if let Ok(Some(path)) = field(Field::Path, &mut value) {
            if denied_prefix(path, prefixes) {
                return deny();
            }
        }
    }
    if let Ok(Some(ips)) = config_get("clientIPs", &mut list) {
        if let Ok(Some(ip)) = field(Field::ClientIp, &mut value) {
            if list_contains(ips, ip) {
                return deny();
            }
        }
    }
    Decision::Continue
}

fn deny() -> Decision {
    respond_header(b"content-type", b"text/plain");
    respond(403, b"forbidden by policy\n");
    Decision::Respond
}

hook_sdk::export!(decide);
