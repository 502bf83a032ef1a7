//! The framing rule of SPEC §6 as a property: for any request head and body
//! the gateway accepts, the bytes it forwards parse (httparse + the same
//! decoder) to exactly one request, with the same body and nothing after it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use std::sync::atomic::{AtomicUsize, Ordering};

use http1::{BodyKind, ChunkSize, Decoder, Forward, Framing, Parsed, encode_request, parse};
use proptest::prelude::*;

/// Header lines that try to confuse framing: `Connection` naming framing
/// headers in any case and list position, hop-by-hop names, odd values.
fn noise_line() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("Connection"),
        Just("connection"),
        Just("Keep-Alive"),
        Just("TE"),
        Just("Trailer"),
        Just("Upgrade"),
        Just("X-Forwarded-For"),
        Just("X-Other"),
        Just("Expect"),
        Just("Content-Length"),
        Just("Transfer-Encoding"),
    ];
    let values = prop_oneof![
        4 => Just("keep-alive, Content-Length".to_owned()),
        4 => Just("Content-Length".to_owned()),
        4 => Just("CONTENT-LENGTH, x-other".to_owned()),
        4 => Just("transfer-encoding, host".to_owned()),
        2 => Just("close".to_owned()),
        2 => Just("upgrade".to_owned()),
        1 => Just("100-continue".to_owned()),
        1 => Just("5".to_owned()),
        1 => Just("chunked".to_owned()),
        2 => "[a-z0-9,. -]{0,12}",
    ];
    (names, values).prop_map(|(n, v)| format!("{n}: {v}\r\n"))
}

/// How the generated request frames its body.
#[derive(Debug, Clone, Copy)]
enum Framed {
    Nothing,
    Length,
    LengthTwice,
    LengthList,
    Chunked,
}

fn request() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("HEAD")];
    let version = prop_oneof![4 => Just("HTTP/1.1"), 1 => Just("HTTP/1.0")];
    let target = prop_oneof![Just("/a"), Just("/a?q=1"), Just("http://h.example/x")];
    let host = prop_oneof![8 => Just("Host: a.example\r\n".to_owned()), 1 => Just(String::new())];
    let framed = prop_oneof![
        Just(Framed::Nothing),
        Just(Framed::Length),
        Just(Framed::LengthTwice),
        Just(Framed::LengthList),
        Just(Framed::Chunked),
    ];
    let chunks = proptest::collection::vec(
        (
            proptest::collection::vec(any::<u8>(), 1..20),
            prop_oneof![Just(""), Just(";a=b"), Just(" ;x"), Just(";q=\"v w\"")],
        ),
        0..4,
    );
    let trailer = prop_oneof![Just(""), Just("X-T: 1\r\n")];
    (
        method,
        version,
        target,
        host,
        proptest::collection::vec(noise_line(), 0..4),
        framed,
        proptest::collection::vec(any::<u8>(), 0..40),
        chunks,
        trailer,
        any::<bool>(),
    )
        .prop_map(|(m, v, t, host, noise, framed, raw, chunks, trailer, framing_first)| {
            let (framing, body) = match framed {
                Framed::Chunked => {
                    let mut body = Vec::new();
                    for (data, ext) in &chunks {
                        body.extend_from_slice(format!("{:x}{ext}\r\n", data.len()).as_bytes());
                        body.extend_from_slice(data);
                        body.extend_from_slice(b"\r\n");
                    }
                    body.extend_from_slice(format!("0\r\n{trailer}\r\n").as_bytes());
                    ("Transfer-Encoding: chunked\r\n".to_owned(), body)
                }
                Framed::Length => (format!("Content-Length: {}\r\n", raw.len()), raw),
                Framed::LengthTwice => (
                    format!("content-length: {0}\r\nCONTENT-LENGTH: {0}\r\n", raw.len()),
                    raw,
                ),
                Framed::LengthList => (format!("Content-Length: {0}, {0}\r\n", raw.len()), raw),
                Framed::Nothing => (String::new(), raw),
            };
            let noise: String = noise.concat();
            let lines = if framing_first {
                framing + &noise
            } else {
                noise + &framing
            };
            let mut bytes = format!("{m} {t} {v}\r\n{host}{lines}\r\n").into_bytes();
            bytes.extend_from_slice(&body);
            (bytes, body)
        })
}

/// Decodes one whole body from the front of `buf`; `None` if it is incomplete
/// or malformed.
fn decode_body(decoder: &mut Decoder, buf: &mut BytesMut) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(data)) => out.extend_from_slice(&data),
            Ok(None) if decoder.is_done() => return Some(out),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// Re-frames `body` as the gateway's pump does: one `frame` write per piece.
fn reframe(framing: Framing, head: &[u8], pieces: &[&[u8]]) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut head = head;
    let count = pieces.len().max(1);
    for i in 0..count {
        let data = pieces.get(i).copied().unwrap_or(&[]);
        let size = ChunkSize::new(data.len());
        let end = i + 1 == count;
        for s in framing.frame(head, &size, data, end) {
            wire.extend_from_slice(&s);
        }
        head = &[];
    }
    wire
}

/// Accepted requests that carried a body: the property is not vacuous.
static WITH_BODY: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn forwarded_bytes_are_exactly_one_request_with_the_same_body((bytes, _) in request()) {
        let mut buf = BytesMut::from(&bytes[..]);
        let Parsed::Complete(head) = parse(&mut buf, 16 * 1024, 100) else { return Ok(()) };
        let mut decoder = match head.body {
            BodyKind::None => Decoder::Done,
            BodyKind::Length(n) => Decoder::length(n),
            BodyKind::Chunked => Decoder::chunked(),
        };
        let Some(body) = decode_body(&mut decoder, &mut buf) else { return Ok(()) };

        let mut forwarded = BytesMut::new();
        let path = head.target.path().to_owned();
        encode_request(&mut forwarded, &Forward {
            method: &head.method,
            target: [path.as_bytes(), b"", b"", b""],
            headers: &head.headers,
            host: &head.host,
            forwarded_host: &head.host,
            client_ip: b"127.0.0.1",
            proto: b"http",
            body: head.body,
        });
        let (a, b) = body.split_at(body.len() / 2);
        let wire = reframe(Framing::from(head.body), &forwarded, &[a, b]);

        // What the upstream sees: one head...
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        let Ok(httparse::Status::Complete(len)) = req.parse(&wire) else {
            panic!("forwarded head does not parse: {:?}", String::from_utf8_lossy(&wire));
        };
        let count = |name: &str| req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count();
        let (lengths, chunked) = (count("content-length"), count("transfer-encoding"));
        prop_assert!(lengths + chunked <= 1, "two framings: {:?}", String::from_utf8_lossy(&wire));
        prop_assert_eq!(count("host"), 1);
        prop_assert_eq!(req.method, Some(head.method.as_str()));
        // ...framing the body it is followed by...
        let mut upstream_decoder = if chunked == 1 {
            Decoder::chunked()
        } else if let Some(h) = req.headers.iter().find(|h| h.name.eq_ignore_ascii_case("content-length")) {
            Decoder::length(std::str::from_utf8(h.value).unwrap().parse().unwrap())
        } else {
            Decoder::Done
        };
        let mut rest = BytesMut::from(&wire[len..]);
        let seen = decode_body(&mut upstream_decoder, &mut rest);
        prop_assert_eq!(seen.as_deref(), Some(&body[..]), "{:?}", String::from_utf8_lossy(&wire));
        // ...and nothing after it that could be read as a second request.
        prop_assert!(rest.is_empty(), "left over: {:?}", String::from_utf8_lossy(&rest));
        if !body.is_empty() {
            WITH_BODY.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[test]
fn the_property_sees_accepted_bodies() {
    // Runs the property on its own and checks it was not vacuous.
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(2000));
    runner
        .run(&request(), |(bytes, _)| {
            let mut buf = BytesMut::from(&bytes[..]);
            if let Parsed::Complete(head) = parse(&mut buf, 16 * 1024, 100)
                && head.body.has_body()
            {
                WITH_BODY.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
        .expect("runs");
    assert!(
        WITH_BODY.load(Ordering::Relaxed) > 100,
        "too few accepted bodies to mean anything"
    );
}
