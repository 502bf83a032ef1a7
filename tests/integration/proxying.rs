//! SPEC §6 through real requests: headers, bodies, keep-alive, connection reuse.

use gateway_tests::{Behavior, Client, Gateway, Upstream};

use crate::{cluster, config};

fn one_route(up: &Upstream) -> Gateway {
    Gateway::start(&config(
        "  - { name: r, pathPrefix: /, cluster: c }\n",
        &[cluster("c", &[(up, 1)])],
    ))
}

#[test]
fn hop_by_hop_headers_are_dropped_and_forwarding_headers_set() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = one_route(&up);
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(
        b"GET /h HTTP/1.1\r\nHost: Front.Example:8080\r\nConnection: keep-alive, X-Secret\r\nX-Secret: 1\r\n\
Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: websocket\r\n\
X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nX-Kept: yes\r\n\r\n",
    )
    .expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    let seen = up.requests().pop().expect("upstream saw the request");
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
    ] {
        assert_eq!(seen.header(gone), None, "{gone} was forwarded");
    }
    assert_eq!(
        seen.header("host"),
        Some("Front.Example:8080"),
        "Host passes through unchanged"
    );
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.7, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("Front.Example:8080"));
    assert_eq!(seen.header("x-kept"), Some("yes"));
}

#[test]
fn an_absolute_form_target_is_forwarded_in_origin_form_with_its_authority() {
    // Regression (issue 11, item 3): routing used the target's authority but
    // the client's different `Host` was forwarded. RFC 9112 §3.2.2: the
    // authority replaces `Host`.
    let up = Upstream::start("u", Behavior::Echo);
    let gw = one_route(&up);
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"GET http://api.example.com/v1/x?q=1 HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
        .expect("send");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    c.send(b"GET http://api.example.com/v1/y HTTP/1.1\r\nHost: front.example\r\n\r\n")
        .expect("send");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    c.send(b"GET HTTP://API.example.com:8080 HTTP/1.1\r\nHost: front.example\r\n\r\n")
        .expect("send");
    assert_eq!(c.read_response(false).expect("response").status, 200);
    let seen = up.requests();
    let hosts: Vec<_> = seen
        .iter()
        .map(|s| (s.uri.as_str(), s.header("host"), s.header("x-forwarded-host")))
        .collect();
    assert_eq!(
        hosts,
        [
            ("/v1/x?q=1", Some("api.example.com"), Some("api.example.com")),
            ("/v1/y", Some("api.example.com"), Some("api.example.com")),
            ("/", Some("API.example.com:8080"), Some("API.example.com:8080")),
        ]
    );
}

#[test]
fn head_204_and_304_have_no_body() {
    let up = Upstream::start("u", Behavior::Echo);
    let s204 = Upstream::start("s204", Behavior::Status(204));
    let s304 = Upstream::start("s304", Behavior::Status(304));
    let routes = "  - { name: a, pathPrefix: /, cluster: u }\n  - { name: b, pathPrefix: /204, cluster: s204 }\n  - { name: c, pathPrefix: /304, cluster: s304 }\n";
    let gw = Gateway::start(&config(
        routes,
        &[
            cluster("u", &[(&up, 1)]),
            cluster("s204", &[(&s204, 1)]),
            cluster("s304", &[(&s304, 1)]),
        ],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
    let head = c.read_response(true).expect("HEAD response");
    assert_eq!(head.status, 200);
    assert!(
        head.header("content-length").is_some(),
        "HEAD keeps the upstream's length"
    );
    for (path, status) in [("/204", 204), ("/304", 304)] {
        let r = c.get("h", path).expect("response");
        assert_eq!(r.status, status);
        assert!(r.body.is_empty());
    }
    // Had any body bytes followed those responses, this exchange would be garbled.
    let r = c.get("h", "/after").expect("response");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("u GET /after"), "{}", r.text());
}

#[test]
fn request_bodies_pass_with_length_and_chunked() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = one_route(&up);
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"POST /len HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world")
        .expect("send");
    let r = c.read_response(false).expect("response");
    assert!(r.text().contains("bytes=11"), "{}", r.text());
    c.send(b"POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        .expect("send");
    let r = c.read_response(false).expect("response");
    assert!(r.text().contains("bytes=11"), "{}", r.text());
    let seen = up.requests();
    assert_eq!(seen[0].body_sum, seen[1].body_sum, "same bytes either way");
    c.send(b"POST /continue HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .expect("send");
    let interim = c.read_response(false).expect("100 Continue");
    assert_eq!(interim.status, 100);
    c.send(b"abc").expect("send");
    let r = c.read_response(false).expect("response");
    assert!(r.text().contains("bytes=3"), "{}", r.text());
    // An HTTP/1.0 client knows no interim response: it would read a `100`
    // as the answer to its request.
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"POST /continue HTTP/1.0\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabc")
        .expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("bytes=3"), "{}", r.text());
}

#[test]
fn keep_alive_carries_many_requests_and_upstream_connections_are_reused() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = one_route(&up);
    let mut c = Client::connect(gw.addr).expect("connect");
    for i in 0..100 {
        let r = c.get("h", &format!("/{i}")).expect("response");
        assert_eq!(r.status, 200);
        assert!(r.text().starts_with(&format!("u GET /{i} ")), "{}", r.text());
    }
    assert!(
        !c.is_closed(std::time::Duration::from_millis(50)),
        "keep-alive connection was closed"
    );
    let opened = up.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(opened <= 2, "100 requests opened {opened} upstream connections");
}

#[test]
fn http10_and_connection_close_end_the_connection() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = one_route(&up);
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.is_closed(std::time::Duration::from_secs(2)));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"GET /b HTTP/1.0\r\nHost: h\r\n\r\n").expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("u GET /b"), "{}", r.text());
}

#[test]
fn pooled_connections_closed_by_the_upstream_are_replaced_without_failing_requests() {
    let up = Upstream::start("u", Behavior::IdleClose(std::time::Duration::from_millis(30)));
    let gw = one_route(&up);
    let mut c = Client::connect(gw.addr).expect("connect");
    for i in 0..21 {
        // Wait past the upstream's idle timeout, so the pooled connection is dead.
        std::thread::sleep(std::time::Duration::from_millis(60));
        // A body cannot be sent twice, and a POST is not retried after being
        // sent: the dead connection must be seen before anything is written.
        let request = match i % 3 {
            0 => format!("GET /{i} HTTP/1.1\r\nHost: h\r\n\r\n"),
            1 => format!("POST /{i} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"),
            _ => format!("POST /{i} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
        };
        c.send(request.as_bytes()).expect("send");
        let r = c.read_response(false).expect("response");
        assert_eq!(r.status, 200, "request {i}: {}", r.text());
    }
    assert_eq!(up.hits(), 21);
}

/// A route to an upstream answering every request head with `response`.
fn raw_upstream(response: &'static str, close: bool) -> (Upstream, Gateway) {
    let up = Upstream::start("u", Behavior::Raw { response, close });
    let gw = one_route(&up);
    (up, gw)
}

fn opened(up: &Upstream) -> usize {
    up.connections.load(std::sync::atomic::Ordering::SeqCst)
}

#[test]
fn interim_responses_are_skipped_and_the_final_one_forwarded() {
    let (up, gw) = raw_upstream(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
                       HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        false,
    );
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..3 {
        let r = c.get("h", "/").expect("response");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        // The upstream sent no `Date`: a proxy with a clock adds one
        // (RFC 9110 §6.6.1), an IMF-fixdate.
        let date = r.header("date").unwrap_or_default();
        assert!(date.len() == 29 && date.ends_with(" GMT"), "date {date:?}");
    }
    assert_eq!(opened(&up), 1, "the upstream connection was not reused");
    c.send(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n").expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 400);
    assert!(
        r.header("date").is_some_and(|d| d.len() == 29),
        "the gateway's own answers are dated"
    );
}

#[test]
fn a_close_delimited_response_is_forwarded_chunked_and_its_connection_not_reused() {
    let (up, gw) = raw_upstream(
        "HTTP/1.1 200 OK\r\nx-kind: eof\r\n\r\nthe body runs until the upstream closes",
        true,
    );
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..2 {
        let r = c.get("h", "/").expect("response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.text(), "the body runs until the upstream closes");
    }
    assert_eq!(opened(&up), 2);
}

#[test]
fn an_upstream_saying_connection_close_is_not_reused() {
    let (up, gw) = raw_upstream(
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        false,
    );
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..3 {
        let r = c.get("h", "/").expect("response");
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert_eq!(r.header("connection"), None, "the upstream's close is hop-by-hop");
    }
    assert_eq!(opened(&up), 3);
}

#[test]
fn invalid_upstream_responses_get_502_bad_response() {
    for response in [
        "SSH-2.0-OpenSSH_9.2\r\n\r\n",
        "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let (_up, gw) = raw_upstream(response, true);
        let r = Client::connect(gw.addr)
            .expect("connect")
            .get("h", "/")
            .expect("response");
        assert_eq!(r.status, 502, "{response:?}");
        assert_eq!(r.header("x-gateway-error"), Some("bad_response"), "{response:?}");
    }
}

#[test]
fn an_upstream_answering_before_reading_the_body_is_forwarded_and_the_client_closed() {
    let (_up, gw) = raw_upstream(
        "HTTP/1.1 413 Payload Too Large\r\ncontent-length: 4\r\nconnection: close\r\n\r\nbig!",
        true,
    );
    let mut c = Client::connect(gw.addr).expect("connect");
    let body_len = 32 * 1024 * 1024;
    c.send(format!("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {body_len}\r\n\r\n").as_bytes())
        .expect("send head");
    let sending = c.send_body_in_background(body_len).expect("clone");
    let r = c.read_response(false).expect("response");
    assert_eq!((r.status, r.text().as_str()), (413, "big!"));
    assert!(
        c.is_closed(std::time::Duration::from_secs(5)),
        "the unread body's connection stayed open"
    );
    let sent = sending.join().expect("sender");
    assert!(sent < body_len, "the whole body was read although nobody wanted it");
}

#[test]
fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let slow = Upstream::start("slow", Behavior::Delay(std::time::Duration::from_millis(800)));
    let mut gw = Gateway::start(&format!(
        "drainMs: 5000\n{}",
        config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&slow, 1)])]
        )
    ));
    let addr = gw.addr;
    let in_flight = std::thread::spawn(move || Client::connect(addr).and_then(|mut c| c.get("h", "/slow")));
    std::thread::sleep(std::time::Duration::from_millis(200));
    gw.signal(15);
    // A service manager may repeat SIGTERM: still a drain.
    std::thread::sleep(std::time::Duration::from_millis(100));
    gw.signal(15);
    let r = in_flight
        .join()
        .expect("client thread")
        .expect("in-flight request answered");
    assert_eq!(r.status, 200);
    let status = gw
        .wait_exit(std::time::Duration::from_secs(5))
        .expect("exited after draining");
    assert_eq!(status.code(), Some(0));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

/// Ctrl-C drains like SIGTERM; pressed again, it stops at once (exit 130).
#[test]
fn a_second_interrupt_stops_without_waiting_for_the_drain() {
    let slow = Upstream::start("slow", Behavior::Delay(std::time::Duration::from_secs(20)));
    let mut gw = Gateway::start(&format!(
        "drainMs: 30000\n{}",
        config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&slow, 1)])]
        )
    ));
    let addr = gw.addr;
    let _in_flight = std::thread::spawn(move || Client::connect(addr).and_then(|mut c| c.get("h", "/slow")));
    std::thread::sleep(std::time::Duration::from_millis(200));
    gw.signal(2);
    assert!(
        gw.wait_exit(std::time::Duration::from_millis(500)).is_none(),
        "the first interrupt drains"
    );
    gw.signal(2);
    let status = gw
        .wait_exit(std::time::Duration::from_secs(3))
        .expect("the second interrupt stops at once");
    assert_eq!(status.code(), Some(130));
    assert!(
        gw.stderr_text().contains("interrupted while draining"),
        "{}",
        gw.stderr_text()
    );
}
