//! SPEC §6: malformed requests get their 4xx, never reach an upstream, and the
//! gateway goes on serving.

use gateway_tests::{Behavior, Client, Gateway, Upstream, raw_exchange};

use crate::{cluster, config};

#[test]
fn malformed_requests_are_refused_before_any_upstream() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = format!(
        "limits: {{ maxHeaderBytes: 2048, maxHeaders: 20 }}\n{}",
        config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&up, 1)])]
        )
    );
    let gw = Gateway::start(&yaml);
    let many_headers: String = (0..25).map(|i| format!("X-H{i}: v\r\n")).collect();
    let cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
        ("CL + TE".into(), b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), 400, "bad_request"),
        ("TE + CL".into(), b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(), 400, "bad_request"),
        ("differing Content-Length".into(), b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec(), 400, "bad_request"),
        ("bad chunk size".into(), b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec(), 400, "bad_request"),
        ("bad request line".into(), b"GET /a b c HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), 400, "bad_request"),
        ("garbage".into(), b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n".to_vec(), 400, "bad_request"),
        ("missing Host".into(), b"GET / HTTP/1.1\r\n\r\n".to_vec(), 400, "bad_host"),
        ("encoded slash".into(), b"GET /a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), 400, "bad_path"),
        ("encoded NUL".into(), b"GET /a%00 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), 400, "bad_path"),
        ("header section too large".into(), format!("GET / HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "a".repeat(4096)).into_bytes(), 431, "headers_too_large"),
        ("too many headers".into(), format!("GET / HTTP/1.1\r\nHost: h\r\n{many_headers}\r\n").into_bytes(), 431, "headers_too_large"),
    ];
    for (what, bytes, status, kind) in cases {
        let r = raw_exchange(gw.addr, &bytes).unwrap_or_else(|e| panic!("{what}: no response: {e}"));
        assert_eq!(r.status, status, "{what}");
        assert_eq!(r.header("x-gateway-error"), Some(kind), "{what}");
        assert_eq!(up.hits(), 0, "{what} reached the upstream");
        let mut next = Client::connect(gw.addr).expect("connect");
        assert_eq!(
            next.get("h", "/still-serving").expect("response").status,
            200,
            "after {what}"
        );
        up.seen.lock().expect("lock").clear();
    }
}

#[test]
fn a_refused_request_closes_its_connection() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"GET / HTTP/1.1\r\n\r\n").expect("send");
    assert_eq!(c.read_response(false).expect("response").status, 400);
    assert!(c.is_closed(std::time::Duration::from_secs(2)));
}
