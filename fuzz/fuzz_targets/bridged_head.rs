//! HTTP/2 requests as the `h2` crate hands them over (valid `http` method,
//! header names and values; arbitrary `:path` and `:authority` bytes)
//! through the bridge that renders them as a head for the one request
//! parser: never panic, and whatever is accepted is forwarded as exactly one
//! HTTP/1.1 request with the same method, `Host` = the authority, and no
//! field the client did not send (`http1::check::bridged_once`).
//!
//! Input: parts separated by 0x00: method, target, authority (empty: none),
//! then name, value pairs; the first byte's low bit asks for a body of
//! unknown length.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut parts = rest.split(|&b| b == 0);
    let (Some(method), Some(target), Some(authority)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let Ok(method) = http::Method::from_bytes(method) else { return };
    let mut fields = http::HeaderMap::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            fields.append(name, value);
        }
    }
    let authority = (!authority.is_empty()).then_some(authority);
    if let Err(broken) = http1::check::bridged_once(&method, target, authority, &fields, flags & 1 == 1) {
        panic!("{broken}");
    }
});
