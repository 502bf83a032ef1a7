//! Request heads and bodies as a client sends them: never panic, and for any
//! head and body the gateway accepts, the bytes it forwards parse (httparse +
//! the same decoder) to exactly one request with the same body, with exactly
//! one framing header and nothing after it (SPEC §6, "Framing is the
//! gateway's own"). The check itself is `http1::check::forwarded_once`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&limits, input)) = data.split_first() else { return };
    let max_bytes = 256 + (limits as usize % 16) * 1024;
    let max_headers = 1 + (limits as usize % 150);
    if let Err(broken) = http1::check::forwarded_once(input, max_bytes, max_headers) {
        panic!("{broken}");
    }
});
