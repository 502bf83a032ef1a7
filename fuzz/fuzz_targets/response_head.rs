//! Upstream response heads (an upstream is not trusted): never panic, and
//! whatever is accepted is re-encoded as a head a client can parse, with the
//! same status, a status within 100–599, exactly one body framing of the
//! gateway's own, and no hop-by-hop header.
#![no_main]

use bytes::BytesMut;
use http1::{Answering, Decoder, Framing, ParsedResponse, parse_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, input)) = data.split_first() else { return };
    // Half the inputs go through a route's response filter.
    let filter = if mode & 8 == 0 {
        http1::Filter::NONE
    } else {
        http1::Filter::new(["x-a", "content-type"], [("x-added", "1"), ("cache-control", "no-store")])
    };
    let method = if mode & 1 == 0 { http::Method::GET } else { http::Method::HEAD };
    let answering = Answering {
        method: &method,
        client_version: if mode & 2 == 0 { http::Version::HTTP_11 } else { http::Version::HTTP_10 },
        keep_alive: mode & 4 == 0,
        filter: &filter,
        // Some inputs answer a WebSocket upgrade (a 101 is then accepted).
        websocket: mode & 16 != 0,
        date: b"",
    };
    let mut out = BytesMut::new();
    let head = match parse_response(input, &answering, &mut out) {
        ParsedResponse::Complete(head) => head,
        ParsedResponse::Interim(len) => {
            assert!(len <= input.len());
            return;
        }
        ParsedResponse::Incomplete | ParsedResponse::Invalid => return,
    };
    assert!(head.len <= input.len());
    if head.status == 101 {
        // Only a requested switch to WebSocket, and never a reused connection.
        assert!(answering.websocket && !head.reusable && !head.keep_alive);
    } else {
        assert!((200..=599).contains(&head.status.as_u16()));
    }
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
    assert!(lengths <= 1 && chunked <= 1 && lengths + chunked <= 1, "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(chunked == 1, head.framing == Framing::Chunked);
    if head.framing == Framing::Length {
        assert_eq!(lengths, 1);
    }
    if head.status == http::StatusCode::NO_CONTENT {
        assert_eq!(lengths, 0, "a 204 with a length");
    }
    if head.status == 101 {
        // The gateway's own upgrade headers, no framing.
        assert_eq!(lengths + chunked, 0);
        assert_eq!(count("upgrade"), 1);
        return;
    }
    for hop in ["connection", "keep-alive", "upgrade", "te", "trailer", "proxy-connection"] {
        if hop == "connection" {
            // Only the gateway's own `close` / `keep-alive`.
            assert!(res.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(hop)).all(|h| h.value == b"close" || h.value == b"keep-alive"));
        } else {
            assert_eq!(count(hop), 0, "{hop} forwarded");
        }
    }
    // The body that follows decodes to an end or asks for more.
    let mut rest = BytesMut::from(&input[head.len..]);
    let mut decoder = head.body;
    let mut guard = 0;
    while let Ok(Some(data)) = decoder.decode(&mut rest) {
        assert!(!data.is_empty());
        guard += 1;
        assert!(guard < 1_000_000);
    }
    let _: Decoder = decoder;
});
