//! SPEC §14 clusters with `protocol: h2`, through the real binary against
//! the `h2` crate's server: one multiplexed connection per upstream per
//! worker, the forwarded request as HTTP/2 fields, bodies both ways, the
//! pool's settings, health checks over HTTP/2, trailers; and every way an
//! upstream can lie or fail (lengths, resets, refused streams, stalls, heads
//! too large, no `h2` in ALPN) contained and logged.

use std::io::Read as _;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gateway_tests::certs::self_signed;
use gateway_tests::{Client, Gateway, H2Upstream};
use serde_json::Value;

const LOG: &str = "accessLog:\n  json:\n    fields: [method, path, status, upstreamStatus, error, protocol]\n";

fn config(up: &H2Upstream, cluster_extra: &str, top_extra: &str) -> String {
    format!(
        "{top_extra}{LOG}routes:\n  - {{ name: slow, pathPrefix: /stall, cluster: c, timeouts: {{ upstreamMs: 500 }} }}\n  - {{ name: all, pathPrefix: /, cluster: c }}\nclusters:\n  - name: c\n    protocol: h2\n    upstreams: [{{ url: \"{}\" }}]\n    outlier: {{ consecutiveFailures: 0 }}\n{cluster_extra}",
        up.url()
    )
}

fn start(yaml: &str) -> Gateway {
    Gateway::start_with(yaml, &["--admin", "127.0.0.1:0", "--threads", "1"])
}

fn log(gw: &Gateway, n: usize) -> Vec<Value> {
    gw.wait_log_lines(n, Duration::from_secs(5))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Everything the gateway sends on a fresh connection for `request`, until
/// it closes (or 3 s pass).
fn raw(gw: &Gateway, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(gw.addr).unwrap();
    // The gateway may answer (and close) before it has read all of it.
    let _ = std::io::Write::write_all(&mut s, request.as_bytes());
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn http1_clients_reach_an_h2_upstream_over_one_multiplexed_connection() {
    let up = H2Upstream::start();
    let gw = start(&config(&up, "", ""));
    let mut c = Client::connect(gw.addr).unwrap();
    for i in 0..10 {
        let r = c.get("site.test", &format!("/ok/{i}?q=1")).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
        assert_eq!(r.header("x-seen-te"), Some("-"), "no TE asked, none sent");
    }
    // 24 clients at once: streams of the same connection.
    let clients: Vec<_> = (0..24)
        .map(|i| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).unwrap();
                let r = c.get("site.test", &format!("/many/{i}")).unwrap();
                (r.status, r.text())
            })
        })
        .collect();
    for t in clients {
        assert_eq!(t.join().unwrap(), (200, "hello".to_owned()));
    }
    assert_eq!(up.connections(), 1, "one connection carried every stream");

    let seen = up.seen();
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].uri, "http://site.test/ok/0?q=1", "Host became :authority");
    assert_eq!(seen[0].headers.get("x-forwarded-for").unwrap(), "127.0.0.1");
    assert!(seen[0].headers.get("host").is_none());
    assert!(seen[0].headers.get("connection").is_none());

    // `TE: trailers` (what gRPC sends) is the one TE that crosses; a body
    // with a length arrives whole; a chunked one is echoed back chunked.
    c.send(b"POST /ok HTTP/1.1\r\nHost: site.test\r\nTE: trailers\r\nConnection: TE\r\nContent-Length: 11\r\n\r\nhello world")
        .unwrap();
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.header("x-seen-te")), (200, Some("trailers")));
    let post = up.seen().into_iter().find(|s| s.method == "POST").unwrap();
    assert_eq!(post.body, b"hello world");
    assert_eq!(post.headers.get("content-length").unwrap(), "11");
    c.send(b"POST /echo HTTP/1.1\r\nHost: site.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n3\r\nfgh\r\n0\r\n\r\n")
        .unwrap();
    let r = c
        .read_response(false)
        .unwrap_or_else(|e| panic!("{e}: {:?} {}", gw.log_lines(), gw.stderr_text()));
    assert_eq!((r.status, r.text().as_str()), (200, "abcdefgh"));
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // HEAD: the length is kept, no body follows.
    c.send(b"HEAD /ok HTTP/1.1\r\nHost: site.test\r\n\r\n").unwrap();
    let r = c
        .read_response(true)
        .unwrap_or_else(|e| panic!("{e}: {:?} {}", gw.log_lines(), gw.stderr_text()));
    assert_eq!((r.status, r.header("content-length")), (200, Some("5")));
    let r = c.get("site.test", "/after-head").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert_eq!(up.connections(), 1);
    let lines = log(&gw, 38);
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == 200 && l["protocol"] == "HTTP/1.1" && l["error"].is_null()),
        "{lines:?}"
    );
}

#[test]
fn lying_and_failing_h2_upstreams_are_contained_and_logged() {
    let up = H2Upstream::start();
    let gw = start(&config(&up, "", ""));
    let get = |path: &str| {
        raw(
            &gw,
            &format!("GET {path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n"),
        )
    };

    // A body longer or shorter than its length, a reset, a head over the
    // limit: the lie is seen before the head goes, and the client gets a 502.
    for path in ["/long", "/short"] {
        let got = get(path);
        assert!(got.starts_with("HTTP/1.1 502"), "{path}: {got}");
        assert!(!got.contains("012"), "{path}: {got}");
    }
    assert!(get("/reset").starts_with("HTTP/1.1 502"));
    assert!(get("/huge-head").starts_with("HTTP/1.1 502"));
    // A stream refused unprocessed is sent again on a fresh stream.
    let refused = get("/refuse-once");
    assert!(refused.starts_with("HTTP/1.1 200"), "{refused}");
    assert!(refused.ends_with("hello"), "{refused}");
    assert_eq!(up.seen().iter().filter(|s| s.uri.ends_with("/refuse-once")).count(), 2);
    // A body that stalls past upstreamMs: the head and what came, then the
    // connection closes.
    let stalled = get("/stall");
    assert!(stalled.starts_with("HTTP/1.1 200"), "{stalled}");
    assert!(stalled.ends_with("2\r\nab\r\n"), "{stalled:?}");

    // An upstream that never opens its window to a request body: each wait
    // for window is bounded by upstreamMs, and nothing was answered (504).
    let body = "x".repeat(300_000);
    let stalled_read = raw(
        &gw,
        &format!(
            "POST /stall/read HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(
        stalled_read.starts_with("HTTP/1.1 504"),
        "{stalled_read}: {:?} {}",
        gw.log_lines(),
        gw.stderr_text()
    );

    let lines = log(&gw, 7);
    let by_path = |p: &str| lines.iter().find(|l| l["path"] == p).cloned().unwrap();
    for path in ["/long", "/short", "/reset", "/huge-head"] {
        let line = by_path(path);
        assert!(
            line["error"] == "upstream_reset" || line["error"] == "bad_response",
            "{line}"
        );
    }
    assert_eq!(by_path("/reset")["status"], 502);
    assert_eq!(by_path("/refuse-once")["status"], 200);
    assert_eq!(by_path("/stall")["error"], "upstream_timeout");
    assert_eq!(by_path("/stall/read")["error"], "upstream_timeout");
    // The connection outlived every failed stream.
    let mut c = Client::connect(gw.addr).unwrap();
    assert_eq!(c.get("site.test", "/ok").unwrap().status, 200);
    assert_eq!(up.connections(), 1);
}

#[test]
fn trailers_reach_an_http2_client_and_grpc_status_is_the_upstream_status() {
    let up = H2Upstream::start();
    let gw = start(&config(&up, "", "http2: { cleartext: true }\n"));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
            let (send, conn) = h2::client::handshake(tcp).await.unwrap();
            tokio::spawn(conn);
            let mut send = send.ready().await.unwrap();
            let req = http::Request::get("http://site.test/trailers").body(()).unwrap();
            let (response, _) = send.send_request(req, true).unwrap();
            let (parts, mut body) = response.await.unwrap().into_parts();
            assert_eq!(parts.status, 200);
            assert_eq!(parts.headers.get("content-type").unwrap(), "application/grpc");
            let mut data = BytesMut::new();
            while let Some(chunk) = body.data().await {
                data.extend_from_slice(&chunk.unwrap());
            }
            assert_eq!(data.freeze(), Bytes::from_static(b"payload"));
            let trailers = body.trailers().await.unwrap().expect("trailers");
            assert_eq!(trailers.get("grpc-status").unwrap(), "7");
            assert_eq!(trailers.get("grpc-message").unwrap(), "denied");
        });
    // An HTTP/1.1 client gets the body, whole, without the trailers.
    let mut c = Client::connect(gw.addr).unwrap();
    let r = c.get("site.test", "/trailers").unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "payload"));
    let lines = log(&gw, 2);
    assert_eq!(lines[0]["protocol"], "HTTP/2");
    assert_eq!(lines[1]["protocol"], "HTTP/1.1");
    for line in &lines {
        assert_eq!(
            (line["status"].as_u64(), line["upstreamStatus"].as_u64()),
            (Some(200), Some(7))
        );
    }
}

#[test]
fn h2_connections_follow_the_pool_settings() {
    let up = H2Upstream::start();
    let gw = start(&config(
        &up,
        "    pool: { maxRequestsPerConnection: 5, idleMs: 200 }\n",
        "",
    ));
    let mut c = Client::connect(gw.addr).unwrap();
    for i in 0..12 {
        assert_eq!(c.get("site.test", &format!("/n/{i}")).unwrap().status, 200);
    }
    assert_eq!(up.connections(), 3, "5 streams per connection");
    // Let go after idleMs (swept each second), the connection closes.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up.open() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(up.open(), 0, "idle connections closed");
    assert_eq!(c.get("site.test", "/again").unwrap().status, 200);
    assert_eq!(up.connections(), 4);
}

#[test]
fn health_checks_of_an_h2_cluster_speak_http2() {
    let up = H2Upstream::start();
    let gw = start(&config(
        &up,
        "    healthCheck: { path: /healthz, intervalMs: 100, timeoutMs: 90, healthyThreshold: 1 }\n",
        "",
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !up.seen().iter().any(|s| s.uri.ends_with("/healthz")) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let check = up
        .seen()
        .into_iter()
        .find(|s| s.uri.ends_with("/healthz"))
        .expect("a check over HTTP/2");
    assert_eq!(check.method, "GET");
    assert_eq!(check.uri, format!("{}/healthz", up.url()));
    assert_eq!(check.headers.get("user-agent").unwrap(), "gateway-health-check");
    std::thread::sleep(Duration::from_millis(300));
    let (_, body) = gw.admin_get("/upstreams");
    let upstreams: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(upstreams[0]["healthy"], true, "{upstreams}");
    assert!(
        upstreams[0]["counters"]["checksOk"].as_u64().unwrap() >= 1,
        "{upstreams}"
    );
    assert_eq!(upstreams[0]["counters"]["checksFailed"], 0, "{upstreams}");
    // Each check's connection ends with it: none piles up.
    assert!(up.connections() >= 3, "{} checks", up.connections());
    assert!(up.open() <= 1, "{} check connections still open", up.open());
}

#[test]
fn an_upstream_that_does_not_select_h2_in_alpn_is_a_connect_failure() {
    let dir = gateway_tests::scratch_dir("h2alpn");
    self_signed(&dir, "up", &["localhost"], 30);
    // An HTTPS server that speaks HTTP/1.1 only.
    let up = gateway_tests::PythonServer::https(&dir, "up.pem", "up.key");
    let port = up.port;
    let gw = Gateway::start_in(
        dir,
        &format!(
            "{LOG}routes:\n  - {{ name: r, pathPrefix: /, cluster: c }}\nclusters:\n  - name: c\n    protocol: h2\n    tls: {{ ca: up.pem }}\n    upstreams: [{{ url: \"https://localhost:{port}\" }}]\n"
        ),
        &["--threads", "1"],
    );
    let mut c = Client::connect(gw.addr).unwrap();
    assert_eq!(c.get("site.test", "/").unwrap().status, 502);
    let lines = log(&gw, 1);
    assert_eq!(lines[0]["error"], "connect_failed");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while !gw.stderr_text().contains("did not select h2") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gw.stderr_text().contains("did not select h2"), "{}", gw.stderr_text());
}

#[test]
fn the_upstreams_stream_limit_is_waited_for_within_connect_ms() {
    // One stream at a time: a second exchange waits for the first's slot up
    // to connectMs, then gets 503 upstream_overloaded.
    let up = H2Upstream::start_with(Some(1));
    let gw = start(&config(&up, "", "defaults:\n  timeouts: { connectMs: 300 }\n"));
    let first = {
        let addr = gw.addr;
        std::thread::spawn(move || Client::connect(addr).unwrap().get("site.test", "/slow").unwrap().status)
    };
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Client::connect(gw.addr).unwrap();
    let r = c.get("site.test", "/slow").unwrap();
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("x-gateway-error"), Some("upstream_overloaded"));
    assert_eq!(first.join().unwrap(), 200);
    // Once the slot is free, the next exchange takes it.
    assert_eq!(c.get("site.test", "/ok").unwrap().status, 200);
    assert_eq!(up.connections(), 1, "waiting did not open a second connection");
}

#[test]
fn an_upstream_that_says_goaway_is_replaced_without_a_failed_request() {
    let up = H2Upstream::start();
    let gw = start(&config(&up, "", ""));
    let mut c = Client::connect(gw.addr).unwrap();
    assert_eq!(c.get("site.test", "/goaway").unwrap().status, 200);
    // The connection said GOAWAY: every next request succeeds, on a new one.
    for i in 0..5 {
        let r = c.get("site.test", &format!("/after/{i}")).unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    }
    assert_eq!(up.connections(), 2);
    let lines = log(&gw, 6);
    assert!(lines.iter().all(|l| l["error"].is_null()), "{lines:?}");
}
