//! The framing rule of SPEC §6 as a property: for any request head and body
//! the gateway accepts, the bytes it forwards parse (httparse + the same
//! decoder) to exactly one request, with the same body and nothing after it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::BytesMut;
use std::sync::atomic::{AtomicUsize, Ordering};

use http1::{Parsed, parse};
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

/// Accepted requests that carried a body: the property is not vacuous.
static WITH_BODY: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn forwarded_bytes_are_exactly_one_request_with_the_same_body((bytes, _) in request()) {
        match http1::check::forwarded_once(&bytes, 16 * 1024, 100) {
            Err(broken) => prop_assert!(false, "{}", broken),
            Ok(Some(body)) if !body.is_empty() => {
                WITH_BODY.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
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
