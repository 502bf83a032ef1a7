//! Request heads and bodies as a client sends them: never panic, and for any
//! head and body the gateway accepts, the bytes it forwards parse (httparse +
//! the same decoder) to exactly one request with the same body, with exactly
//! one framing header and nothing after it (SPEC §6, "Framing is the
//! gateway's own").
#![no_main]

use bytes::BytesMut;
use http1::{BodyKind, ChunkSize, Decoder, Forward, Framing, Parsed, encode_request, parse};
use libfuzzer_sys::fuzz_target;

fn decode_body(decoder: &mut Decoder, buf: &mut BytesMut) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(data)) => {
                assert!(!data.is_empty());
                out.extend_from_slice(&data);
            }
            Ok(None) if decoder.is_done() => return Some(out),
            Ok(None) | Err(_) => return None,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&limits, input)) = data.split_first() else { return };
    let max_bytes = 256 + (limits as usize % 16) * 1024;
    let max_headers = 1 + (limits as usize % 150);
    let mut buf = BytesMut::from(input);
    let Parsed::Complete(head) = parse(&mut buf, max_bytes, max_headers) else { return };
    let _ = (head.target.path(), head.target.query(), head.target.authority(), head.host_str());
    let mut decoder = match head.body {
        BodyKind::None => Decoder::Done,
        BodyKind::Length(n) => Decoder::length(n),
        BodyKind::Chunked => Decoder::chunked(),
    };
    let Some(body) = decode_body(&mut decoder, &mut buf) else { return };

    let mut forwarded = BytesMut::new();
    let path = head.target.path().to_owned();
    encode_request(
        &mut forwarded,
        &Forward {
            method: &head.method,
            target: [path.as_bytes(), b"", b"", b""],
            headers: &head.headers,
            host: &head.host,
            forwarded_host: &head.host,
            client_ip: b"127.0.0.1",
            proto: b"http",
            body: head.body,
        },
    );
    // Re-framed in two writes, as the pump does it.
    let framing = Framing::from(head.body);
    let (a, b) = body.split_at(body.len() / 2);
    let mut wire = Vec::new();
    let pieces: [&[u8]; 2] = [a, b];
    for (i, piece) in pieces.iter().enumerate() {
        let size = ChunkSize::new(piece.len());
        let head_bytes: &[u8] = if i == 0 { &forwarded } else { &[] };
        for s in framing.frame(head_bytes, &size, piece, i == 1) {
            wire.extend_from_slice(&s);
        }
    }

    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = req.parse(&wire) else {
        panic!("forwarded head does not parse: {:?}", String::from_utf8_lossy(&wire));
    };
    let count = |name: &str| req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count();
    let (lengths, chunked) = (count("content-length"), count("transfer-encoding"));
    assert!(lengths + chunked <= 1, "two framings: {:?}", String::from_utf8_lossy(&wire));
    assert_eq!(count("host"), 1);
    let mut upstream = if chunked == 1 {
        Decoder::chunked()
    } else if let Some(h) = req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length")) {
        Decoder::length(std::str::from_utf8(h.value).expect("digits").parse().expect("a number"))
    } else {
        Decoder::Done
    };
    let mut rest = BytesMut::from(&wire[len..]);
    let seen = decode_body(&mut upstream, &mut rest);
    assert_eq!(seen.as_deref(), Some(&body[..]), "the upstream reads another body");
    assert!(rest.is_empty(), "bytes after the request: {:?}", String::from_utf8_lossy(&rest));
});
