//! WebSocket upgrades (SPEC §14) in the codec: which requests are opening
//! handshakes, what is forwarded, and which `101` answers are accepted.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use bytes::BytesMut;
use http::{Method, Version};
use http1::{Answering, Filter, Forward, Parsed, ParsedResponse, encode_request, parse, parse_response};

fn head(raw: &str) -> http1::RequestHead {
    let mut buf = BytesMut::from(raw);
    match parse(&mut buf, 16_384, 100) {
        Parsed::Complete(h) => h,
        other => panic!("{raw:?}: {other:?}"),
    }
}

const WS: &str = "Connection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: x\r\n";

#[test]
fn only_an_http11_get_without_a_body_asking_for_websocket_is_an_upgrade() {
    assert!(head(&format!("GET /ws HTTP/1.1\r\nHost: h\r\n{WS}\r\n")).websocket);
    assert!(head(&format!("GET /ws HTTP/1.1\r\nHost: h\r\n{WS}Content-Length: 0\r\n\r\n")).websocket);
    for raw in [
        format!("POST /ws HTTP/1.1\r\nHost: h\r\n{WS}Content-Length: 3\r\n\r\nabc"),
        format!("GET /ws HTTP/1.0\r\nHost: h\r\n{WS}\r\n"),
        "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n".to_owned(),
        "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n".to_owned(),
        "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n\r\n".to_owned(),
    ] {
        assert!(!head(&raw).websocket, "{raw:?}");
    }
}

fn forwarded(raw: &str) -> String {
    let h = head(raw);
    let mut out = BytesMut::new();
    encode_request(
        &mut out,
        &Forward {
            method: &h.method,
            target: [b"/ws", b"", b"", b""],
            headers: &h.headers,
            host: &h.host,
            forwarded_host: &h.host,
            client_ip: b"127.0.0.1",
            proto: b"http",
            body: h.body,
            filter: Filter::none(),
            websocket: h.websocket,
        },
    );
    String::from_utf8(out.to_vec()).unwrap().to_ascii_lowercase()
}

#[test]
fn the_upgrade_is_forwarded_as_the_gateway_writes_it_and_others_are_dropped() {
    let out = forwarded(&format!("GET /ws HTTP/1.1\r\nHost: h\r\n{WS}\r\n"));
    assert!(
        out.contains("\r\nconnection: upgrade\r\nupgrade: websocket\r\n"),
        "{out}"
    );
    assert!(out.contains("sec-websocket-key: x"), "{out}");
    assert_eq!(out.matches("upgrade:").count(), 1, "{out}");
    let out = forwarded(
        "GET /x HTTP/1.1\r\nHost: h\r\nConnection: upgrade, http2-settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AA\r\n\r\n",
    );
    assert!(!out.contains("upgrade") && !out.contains("http2-settings"), "{out}");
}

fn answer(raw: &str, websocket: bool) -> (ParsedResponse, String) {
    let mut out = BytesMut::new();
    let answering = Answering {
        method: &Method::GET,
        client_version: Version::HTTP_11,
        keep_alive: true,
        filter: Filter::none(),
        websocket,
        date: b"",
    };
    let parsed = parse_response(raw.as_bytes(), &answering, &mut out);
    (parsed, String::from_utf8(out.to_vec()).unwrap())
}

#[test]
fn a_101_is_accepted_only_when_asked_for_and_to_websocket() {
    let ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\nContent-Length: 5\r\n\r\n";
    let (parsed, out) = answer(ok, true);
    let ParsedResponse::Complete(h) = parsed else {
        panic!("{parsed:?}")
    };
    assert_eq!(h.status, 101);
    assert!(!h.keep_alive && !h.reusable);
    assert_eq!(
        out,
        "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: abc\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n"
    );
    assert_eq!(answer(ok, false).0, ParsedResponse::Invalid);
    let other = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    assert_eq!(answer(other, true).0, ParsedResponse::Invalid);
    // A refusal is an ordinary response.
    let (parsed, _) = answer("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", true);
    assert!(matches!(parsed, ParsedResponse::Complete(h) if h.status == 403 && h.keep_alive));
}
