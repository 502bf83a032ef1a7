//! The gateway's own request-head parsing and body framing: never panic, and a
//! parsed head is consistent (never both Content-Length and chunked, never a
//! missing Host on HTTP/1.1 origin-form, a decoder that ends or asks for more).
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

// Included by path (as the crate's top-level modules, so `chunked`'s
// `super::head` resolves): the target builds without the rest of the gateway.
#[allow(dead_code)]
#[path = "../../gateway/src/http1/chunked.rs"]
mod chunked;
#[allow(dead_code)]
#[path = "../../gateway/src/http1/head.rs"]
mod head;

use chunked::Decoder;
use head::{BodyKind, Parsed, parse};

fuzz_target!(|data: &[u8]| {
    let Some((&limits, input)) = data.split_first() else { return };
    let max_bytes = 256 + (limits as usize % 16) * 1024;
    let max_headers = 1 + (limits as usize % 150);
    let mut buf = BytesMut::from(input);
    match parse(&mut buf, max_bytes, max_headers) {
        Parsed::Complete(head) => {
            let has_cl = head.headers.contains_key(http::header::CONTENT_LENGTH);
            let has_te = head.headers.contains_key(http::header::TRANSFER_ENCODING);
            assert!(!(has_cl && has_te), "accepted both Content-Length and Transfer-Encoding");
            if head.version == http::Version::HTTP_11 && !head.target.starts_with(b"http") {
                assert!(head.headers.contains_key(http::header::HOST), "accepted HTTP/1.1 without Host");
            }
            let _ = (head.path(), head.query(), head.host(), head.path_and_query());
            if head.body == BodyKind::Chunked {
                assert!(has_te);
            }
            let mut decoder = Decoder::new(head.body);
            let mut guard = 0;
            while let Ok(Some(data)) = decoder.decode(&mut buf) {
                assert!(!data.is_empty());
                guard += 1;
                assert!(guard < 1_000_000);
            }
        }
        Parsed::Incomplete | Parsed::Refused(..) => {}
    }
});
