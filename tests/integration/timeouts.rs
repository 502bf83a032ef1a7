//! SPEC §7: timeouts and upstream failures, with loose upper bounds only.

use std::time::{Duration, Instant};

use gateway_tests::{Behavior, Client, Gateway, Upstream};

use crate::{cluster, config};

#[test]
fn slow_upstream_gets_504_within_its_bound_and_route_override_wins() {
    let slow = Upstream::start("slow", Behavior::Delay(Duration::from_secs(5)));
    let routes = "  - { name: dflt, pathPrefix: /, cluster: slow }\n  - { name: fast, pathPrefix: /fast, cluster: slow, timeouts: { upstreamMs: 200 } }\n";
    let yaml = format!(
        "defaults: {{ timeouts: {{ upstreamMs: 800 }} }}\n{}",
        config(routes, &[cluster("slow", &[(&slow, 1)])])
    );
    let gw = Gateway::start(&yaml);
    let mut c = Client::connect(gw.addr).expect("connect");
    for (path, timeout) in [("/fast", 200u64), ("/default", 800)] {
        let t = Instant::now();
        let r = c.get("h", path).expect("response");
        let took = t.elapsed();
        assert_eq!(r.status, 504, "{path}");
        assert_eq!(r.header("x-gateway-error"), Some("upstream_timeout"));
        assert!(took >= Duration::from_millis(timeout), "{path}: 504 after {took:?}");
        assert!(
            took < Duration::from_millis(timeout + 1000),
            "{path}: 504 after {took:?}"
        );
    }
}

#[test]
fn an_upstream_that_stops_reading_the_body_gets_504_after_upstream_ms() {
    let stalled = Upstream::start("stalled", Behavior::Stall);
    let yaml = format!(
        "defaults: {{ timeouts: {{ upstreamMs: 500 }} }}\n{}",
        config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&stalled, 1)])]
        )
    );
    let gw = Gateway::start(&yaml);
    let mut c = Client::connect(gw.addr).expect("connect");
    let body_len = 64 * 1024 * 1024;
    c.send(format!("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {body_len}\r\n\r\n").as_bytes())
        .expect("send head");
    let _sending = c.send_body_in_background(body_len).expect("clone");
    let t = Instant::now();
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 504);
    assert_eq!(r.header("x-gateway-error"), Some("upstream_timeout"));
    // Buffers fill within a second or so; then one write waits upstreamMs.
    assert!(t.elapsed() < Duration::from_secs(10), "504 after {:?}", t.elapsed());
}

#[test]
fn refused_and_reset_upstreams_get_502() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let reset = Upstream::start("reset", Behavior::Reset);
    let cut = Upstream::start("cut", Behavior::CutBody);
    let routes = "  - { name: a, pathPrefix: /closed, cluster: closed }\n  - { name: b, pathPrefix: /reset, cluster: reset }\n  - { name: c, pathPrefix: /cut, cluster: cut }\n";
    let clusters = [
        format!("  - name: closed\n    upstreams:\n      - {{ url: \"{closed_url}\" }}\n"),
        cluster("reset", &[(&reset, 1)]),
        cluster("cut", &[(&cut, 1)]),
    ];
    let gw = Gateway::start(&config(routes, &clusters));
    let mut c = Client::connect(gw.addr).expect("connect");
    let r = c.get("h", "/closed").expect("response");
    assert_eq!((r.status, r.header("x-gateway-error")), (502, Some("connect_failed")));
    let r = c.get("h", "/reset").expect("response");
    assert_eq!((r.status, r.header("x-gateway-error")), (502, Some("upstream_reset")));
    // A body cut short after the head: the client sees the head, then the
    // connection closes before the declared length.
    let mut c2 = Client::connect(gw.addr).expect("connect");
    assert!(c2.get("h", "/cut").is_err(), "a truncated body must not look complete");
    // Still serving.
    assert_eq!(c.get("h", "/closed").expect("response").status, 502);
}

#[test]
fn connect_timeout_gets_504() {
    // A listener whose accept queue is full: further SYNs are dropped, so
    // connecting hangs until the gateway's connectMs.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket
        .bind(&"127.0.0.1:0".parse::<std::net::SocketAddr>().expect("addr").into())
        .expect("bind");
    socket.listen(0).expect("listen");
    let addr = socket.local_addr().expect("addr").as_socket().expect("inet");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            fillers.push(s);
        }
    }
    let routes = "  - { name: a, pathPrefix: /, cluster: full, timeouts: { connectMs: 300 } }\n";
    let clusters = [format!(
        "  - name: full\n    upstreams:\n      - {{ url: \"http://{addr}\" }}\n"
    )];
    let gw = Gateway::start(&config(routes, &clusters));
    let mut c = Client::connect(gw.addr).expect("connect");
    let t = Instant::now();
    let r = c.get("h", "/").expect("response");
    let took = t.elapsed();
    assert_eq!((r.status, r.header("x-gateway-error")), (504, Some("connect_timeout")));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
        "{took:?}"
    );
}

#[test]
fn client_stalling_mid_head_gets_408() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = format!(
        "defaults: {{ timeouts: {{ readMs: 300 }} }}\n{}",
        config(
            "  - { name: r, pathPrefix: /, cluster: c }\n",
            &[cluster("c", &[(&up, 1)])]
        )
    );
    let gw = Gateway::start(&yaml);
    let mut c = Client::connect(gw.addr).expect("connect");
    let t = Instant::now();
    c.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ").expect("send");
    let r = c.read_response(false).expect("408");
    let took = t.elapsed();
    assert_eq!((r.status, r.header("x-gateway-error")), (408, Some("request_timeout")));
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
        "{took:?}"
    );
    assert!(c.is_closed(Duration::from_secs(2)));
    assert_eq!(up.hits(), 0);
}

#[test]
fn a_client_that_stops_reading_is_cut_after_write_ms_and_logged() {
    let big = Upstream::start(
        "big",
        Behavior::Stream {
            chunks: 4096,
            size: 64 * 1024,
        },
    );
    let yaml = config(
        "  - { name: r, pathPrefix: /, cluster: c, timeouts: { writeMs: 300 } }\n",
        &[cluster("c", &[(&big, 1)])],
    )
    .replace(
        "accessLog: { enabled: false }\n",
        "accessLog: { json: { fields: [status, error] } }\n",
    );
    let gw = Gateway::start(&yaml);
    let mut c = Client::connect(gw.addr).expect("connect");
    // Ask for 256 MiB and never read: once the socket buffers are full, each
    // write waits, and writeMs ends the exchange.
    c.send(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n").expect("send");
    let lines = gw.wait_log_lines(1, Duration::from_secs(10));
    assert_eq!(
        lines,
        [r#"{"status":200,"error":"write_timeout"}"#],
        "the cut exchange is logged with the status sent"
    );
}
