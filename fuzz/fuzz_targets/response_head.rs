//! The gateway's parsing of upstream response heads (an upstream is not
//! trusted): never panic, and whatever it accepts is re-encoded as a head a
//! client can parse, with the same status and exactly one body framing.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

// Included by path as top-level modules (so `super::head`, `super::write` and
// `crate::error` resolve): the target builds without the rest of the gateway.
#[allow(dead_code)]
#[path = "../../gateway/src/http1/chunked.rs"]
mod chunked;
#[allow(dead_code)]
#[path = "../../gateway/src/error.rs"]
mod error;
#[allow(dead_code)]
#[path = "../../gateway/src/http1/head.rs"]
mod head;
#[allow(dead_code)]
#[path = "../../gateway/src/http1/upstream.rs"]
mod upstream;
#[allow(dead_code)]
#[path = "../../gateway/src/http1/write.rs"]
mod write;

use chunked::Decoder;
use head::BodyKind;
use upstream::{Answering, ParsedResponse, UpstreamBody, response_head};
use write::Framing;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    let method = if mode & 1 == 0 { http::Method::GET } else { http::Method::HEAD };
    let answering = Answering {
        method: &method,
        client_version: if mode & 2 == 0 { http::Version::HTTP_11 } else { http::Version::HTTP_10 },
        keep_alive: mode & 4 == 0,
    };
    let mut out = BytesMut::new();
    let ParsedResponse::Complete(head) = response_head(input, &answering, &mut out) else {
        if let ParsedResponse::Interim(len) = response_head(input, &answering, &mut out) {
            assert!(len <= input.len());
        }
        return;
    };
    assert!(head.len <= input.len());
    // The client's head parses, with the same status and one framing.
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut res = httparse::Response::new(&mut headers);
    let parsed = res.parse(&out);
    assert!(
        matches!(parsed, Ok(httparse::Status::Complete(n)) if n == out.len()),
        "re-encoded head does not parse: {parsed:?} {:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(res.code, Some(head.status.as_u16()));
    let count = |name: &str| res.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count();
    let (lengths, chunked) = (count("content-length"), count("transfer-encoding"));
    assert!(lengths <= 1 && chunked <= 1 && !(lengths == 1 && chunked == 1), "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(chunked == 1, head.framing == Framing::Chunked);
    if head.framing == Framing::Length {
        assert_eq!(lengths, 1);
    }
    for hop in ["keep-alive", "upgrade", "te", "trailer", "proxy-connection"] {
        assert_eq!(count(hop), 0, "{hop} forwarded");
    }
    // The body that follows decodes to an end or asks for more.
    let mut rest = BytesMut::from(&input[head.len..]);
    let mut decoder = match head.body {
        UpstreamBody::Chunked => Decoder::new(BodyKind::Chunked),
        UpstreamBody::Length(n) => Decoder::new(BodyKind::Length(n)),
        UpstreamBody::None | UpstreamBody::Close => return,
    };
    let mut guard = 0;
    while let Ok(Some(data)) = decoder.decode(&mut rest) {
        assert!(!data.is_empty());
        guard += 1;
        assert!(guard < 1_000_000);
    }
});
