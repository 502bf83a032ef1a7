//! SPEC §14 HTTP/2 on the client side, through the real binary: curl over
//! TLS (ALPN `h2`) and with h2c prior knowledge, and the `h2` crate as a
//! client for what curl cannot do on purpose: many streams at once, bodies
//! streamed without a length, cancelled streams, rapid resets, a reader that
//! stops reading, a CONTINUATION flood, and a drain with streams in flight.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gateway_tests::certs::self_signed;
use gateway_tests::{Behavior, Gateway, Upstream, scratch_dir};
use h2::client::SendRequest;
use http::{HeaderMap, Method, Request, StatusCode};

const LOG_FIELDS: &str = "[method, path, status, error, protocol, tls]";

/// h2c (`cleartext: true`) in front of `up`, with small limits, a redirect
/// route and an access log of the fields above.
fn h2c_config(up: &Upstream, extra: &str) -> String {
    format!(
        "http2: {{ maxConcurrentStreams: 32, cleartext: true }}\nlimits: {{ maxHeaderBytes: 4096, maxHeaders: 50, maxRequestBodyBytes: 100000 }}\n{extra}accessLog:\n  json:\n    fields: {LOG_FIELDS}\nroutes:\n  - {{ name: moved, path: /moved, redirect: {{ host: elsewhere.test, status: 301 }} }}\n  - {{ name: all, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"{}\" }}] }}\n",
        up.url()
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An HTTP/2 connection with prior knowledge; its driver runs on a task
/// whose result says how the connection ended.
async fn connect(addr: SocketAddr) -> (SendRequest<Bytes>, tokio::task::JoinHandle<Result<(), h2::Error>>) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (send, conn) = h2::client::handshake(tcp).await.expect("HTTP/2 handshake");
    (send, tokio::spawn(conn))
}

fn request(method: Method, path: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri(format!("http://h2.test{path}"))
        .body(())
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `req` with `body` (in pieces of `piece` bytes, no length declared
/// unless `req` has one) and reads the whole answer.
async fn exchange(send: &SendRequest<Bytes>, req: Request<()>, body: &[u8], piece: usize) -> Answer {
    let mut send = send.clone().ready().await.expect("stream slot");
    let (response, mut stream) = send.send_request(req, body.is_empty()).expect("send request");
    for (i, chunk) in body.chunks(piece).enumerate() {
        let last = (i + 1) * piece >= body.len();
        stream.reserve_capacity(chunk.len());
        let _ = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await;
        if stream.send_data(Bytes::copy_from_slice(chunk), last).is_err() {
            break; // answered (and reset) before the body ended
        }
    }
    let (parts, mut recv) = response.await.expect("response").into_parts();
    let mut data = BytesMut::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.expect("body");
        let _ = recv.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: data.freeze(),
    }
}

async fn get(send: &SendRequest<Bytes>, path: &str) -> Answer {
    exchange(send, request(Method::GET, path), &[], 1).await
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap()
}

#[test]
fn streams_of_one_connection_are_exchanges_each_logged_as_http2() {
    let up = Upstream::start("up", Behavior::Delay(Duration::from_millis(300)));
    let gw = Gateway::start_with(&h2c_config(&up, ""), &["--admin", "127.0.0.1:0"]);
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        // 30 streams at once on one connection: each its own exchange.
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..30 {
            let send = send.clone();
            calls.spawn(async move { (i, get(&send, &format!("/s/{i}")).await) });
        }
        while let Some(done) = calls.join_next().await {
            let (i, answer) = done.unwrap();
            assert_eq!(answer.status, 200);
            assert!(
                answer.text().starts_with(&format!("up GET /s/{i} ")),
                "{}",
                answer.text()
            );
            assert_eq!(answer.headers["x-upstream"], "up");
        }
        // Concurrent, not one after another: the upstream was asked on many
        // connections at once, now idle in the pool (one after another
        // would have reused one).
        let idle = gw.wait_metric(
            &format!(
                "gateway_upstream_connections{{cluster=\"c\",upstream=\"{}\",state=\"idle\"}}",
                up.url()
            ),
            10.0,
        );
        assert!(
            idle >= 10.0,
            "{idle} idle upstream connections after 30 concurrent streams"
        );

        // A body without a length goes upstream chunked; one with a length
        // keeps it.
        let body: Vec<u8> = (0..30_000u32).map(|i| i as u8).collect();
        let answer = exchange(&send, request(Method::POST, "/unsized"), &body, 7_000).await;
        assert!(answer.text().contains("bytes=30000"), "{}", answer.text());
        let mut sized = request(Method::POST, "/sized");
        sized.headers_mut().insert("content-length", "5".parse().unwrap());
        let answer = exchange(&send, sized, b"hello", 5).await;
        assert!(answer.text().contains("bytes=5"), "{}", answer.text());
        let seen = up.requests();
        let streamed = seen.iter().find(|s| s.uri == "/unsized").unwrap();
        assert_eq!(streamed.header("transfer-encoding"), Some("chunked"));
        assert_eq!(streamed.body_len, 30_000);
        let sized = seen.iter().find(|s| s.uri == "/sized").unwrap();
        assert_eq!(sized.header("content-length"), Some("5"));
        assert_eq!(sized.header("host"), Some("h2.test"));
        assert_eq!(sized.header("x-forwarded-proto"), Some("http"));

        // The gateway's own answers: a redirect, a HEAD without a body, a
        // refused method.
        let moved = get(&send, "/moved").await;
        assert_eq!(moved.status, 301);
        assert_eq!(moved.headers["location"], "http://elsewhere.test/moved");
        let head = exchange(&send, request(Method::HEAD, "/h"), &[], 1).await;
        assert_eq!((head.status, head.body.len()), (StatusCode::OK, 0));
        let trace = exchange(&send, request(Method::TRACE, "/t"), &[], 1).await;
        assert_eq!(trace.status, 405);
        assert_eq!(trace.headers["x-gateway-error"], "method_not_allowed");
        assert!(trace.headers.get("connection").is_none());
    });
    let lines = gw.wait_log_lines(35, Duration::from_secs(5));
    assert_eq!(lines.len(), 35, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains(r#""protocol":"HTTP/2","tls":null"#)),
        "{lines:#?}"
    );
    assert!(lines.contains(
        &r#"{"method":"TRACE","path":"/t","status":405,"error":"method_not_allowed","protocol":"HTTP/2","tls":null}"#
            .to_owned()
    ));
}

#[test]
fn limits_apply_to_header_lists_bodies_and_streams() {
    let up = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&h2c_config(&up, ""));
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        assert_eq!(get(&send, "/first").await.status, 200);
        // SETTINGS_MAX_CONCURRENT_STREAMS is `http2.maxConcurrentStreams`.
        assert_eq!(send.current_max_send_streams(), 32);

        // Over `maxHeaderBytes` (4096): 431, as for an HTTP/1.1 head.
        let mut big = request(Method::GET, "/big-head");
        big.headers_mut().insert("x-big", "a".repeat(5_000).parse().unwrap());
        let answer = exchange(&send, big, &[], 1).await;
        assert_eq!(answer.status, 431);
        assert_eq!(answer.headers["x-gateway-error"], "headers_too_large");
        // More fields than `maxHeaders` (50).
        let mut many = request(Method::GET, "/many");
        for i in 0..60 {
            many.headers_mut().insert(
                http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                "v".parse().unwrap(),
            );
        }
        assert_eq!(exchange(&send, many, &[], 1).await.status, 431);

        // A declared body over `maxRequestBodyBytes`: 413 before any upstream.
        let mut declared = request(Method::POST, "/declared");
        declared
            .headers_mut()
            .insert("content-length", "200000".parse().unwrap());
        let mut ready = send.clone().ready().await.unwrap();
        let (response, _body) = ready.send_request(declared, false).unwrap();
        assert_eq!(response.await.unwrap().status(), 413);
        // An unsized one that grows past it.
        let answer = exchange(&send, request(Method::POST, "/grows"), &vec![7u8; 200_000], 16_000).await;
        assert_eq!(answer.status, 413);
        assert_eq!(answer.headers["x-gateway-error"], "body_too_large");
        // Two `Host` fields, even equal to `:authority`: 400 as on HTTP/1.1.
        let mut hosts = request(Method::GET, "/two-hosts");
        let authority = hosts.uri().authority().map(|a| a.to_string()).unwrap_or_default();
        hosts.headers_mut().append("host", authority.parse().unwrap());
        hosts.headers_mut().append("host", authority.parse().unwrap());
        let answer = exchange(&send, hosts, &[], 1).await;
        assert_eq!(answer.status, 400);
        assert_eq!(answer.headers["x-gateway-error"], "bad_host");
        // A value with whitespace at an end is malformed (RFC 9113 §8.2.1).
        let mut spaced = request(Method::GET, "/spaced");
        spaced.headers_mut().insert("x-a", " padded".parse().unwrap());
        let answer = exchange(&send, spaced, &[], 1).await;
        assert_eq!(answer.status, 400);
        assert_eq!(answer.headers["x-gateway-error"], "bad_request");
        // The connection still serves.
        assert_eq!(get(&send, "/after").await.status, 200);
    });
    let paths: Vec<String> = up.requests().into_iter().map(|s| s.uri).collect();
    assert!(
        !paths.iter().any(|p| p == "/declared"
            || p == "/big-head"
            || p == "/many"
            || p == "/two-hosts"
            || p == "/spaced"),
        "{paths:?}"
    );
}

#[test]
fn a_cancelled_stream_is_logged_and_rapid_resets_close_the_connection() {
    let up = Upstream::start("up", Behavior::Delay(Duration::from_secs(2)));
    let gw = Gateway::start(&h2c_config(&up, ""));
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        let mut ready = send.clone().ready().await.unwrap();
        let (_response, mut stream) = ready.send_request(request(Method::GET, "/cancelled"), true).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.send_reset(h2::Reason::CANCEL);

        // Rapid reset (CVE-2023-44487): streams opened and cancelled at once.
        let (send, driver) = connect(gw.addr).await;
        let mut opened = 0;
        for i in 0..2_000 {
            let Ok(mut ready) = send.clone().ready().await else {
                break;
            };
            let Ok((_, mut stream)) = ready.send_request(request(Method::GET, &format!("/r/{i}")), false) else {
                break;
            };
            stream.send_reset(h2::Reason::CANCEL);
            opened += 1;
            // Let the connection task write what was queued.
            tokio::task::yield_now().await;
        }
        let ended = tokio::time::timeout(Duration::from_secs(10), driver)
            .await
            .expect("the gateway closes an abusive connection")
            .unwrap();
        let error = ended.expect_err("closed with an error");
        assert_eq!(
            error.reason(),
            Some(h2::Reason::ENHANCE_YOUR_CALM),
            "after {opened} streams: {error:?}"
        );
        assert!(opened < 2_000, "the connection was closed before the burst ended");
        // Cancelled before they were forwarded: the upstream saw (almost)
        // none of them, only the first test's stream.
        assert!(
            up.hits() < 1 + opened / 2,
            "{} of {opened} reached the upstream",
            up.hits()
        );

        // Others are served.
        let (send, _driver) = connect(gw.addr).await;
        let _ = send;
    });
    // Each worker flushes its own lines: wait for this one, not for any.
    let cancelled = r#""path":"/cancelled","status":499,"error":"client_closed""#;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !gw.log_lines().iter().any(|l| l.contains(cancelled)) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let lines = gw.log_lines();
    assert!(lines.iter().any(|l| l.contains(cancelled)), "{lines:#?}");
}

#[test]
fn a_client_that_stops_reading_holds_back_the_upstream_not_memory() {
    let up = Upstream::start(
        "up",
        Behavior::Stream {
            chunks: 1_024,
            size: 32 * 1024,
        },
    );
    let gw = Gateway::start_with(&h2c_config(&up, ""), &["--threads", "1"]);
    let pid = gw.child.id();
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        assert_eq!(get(&send, "/warm").await.body.len(), 32 << 20);
        let before = rss_kib(pid);
        let mut ready = send.clone().ready().await.unwrap();
        let (response, _) = ready.send_request(request(Method::GET, "/slow"), true).unwrap();
        let (parts, mut body) = response.await.unwrap().into_parts();
        assert_eq!(parts.status, 200);
        // The client reads nothing for a while: its window closes, the
        // gateway's send buffer fills, and the upstream is held back.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let held = rss_kib(pid);
        assert!(
            held < before + 8 * 1024,
            "RSS grew from {before} KiB to {held} KiB while the client did not read"
        );
        let mut total = 0;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            total += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        assert_eq!(total, 32 << 20);
    });
}

#[test]
fn a_continuation_flood_is_cut_and_other_connections_are_served() {
    use std::io::Write as _;
    let up = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&h2c_config(&up, ""));
    let mut tcp = std::net::TcpStream::connect(gw.addr).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    // Preface, empty SETTINGS, HEADERS on stream 1 without END_HEADERS, then
    // empty CONTINUATION frames that never end the block.
    let frame = |kind: u8, flags: u8, stream: u32, payload: &[u8]| {
        let mut f = Vec::with_capacity(9 + payload.len());
        f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        f.extend_from_slice(&[kind, flags]);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    };
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(frame(0x4, 0, 0, &[]));
    out.extend(frame(0x1, 0, 1, &[0x82])); // :method GET, no END_HEADERS
    tcp.write_all(&out).unwrap();
    let continuation = frame(0x9, 0, 1, &[]).repeat(1024);
    // What the gateway says meanwhile: its GOAWAY ends the flood (after it
    // the connection lingers a moment, reading and discarding, so that the
    // GOAWAY is not lost to a reset).
    tcp.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut said = Vec::new();
    // The error code of a whole GOAWAY among the frames `said` holds.
    let goaway = |said: &[u8]| {
        let mut at = 0;
        while said.len() >= at + 9 {
            let len = usize::from(said[at]) << 16 | usize::from(said[at + 1]) << 8 | usize::from(said[at + 2]);
            if said[at + 3] == 0x7 && said.len() >= at + 17 {
                return Some(u32::from_be_bytes([
                    said[at + 13],
                    said[at + 14],
                    said[at + 15],
                    said[at + 16],
                ]));
            }
            at += 9 + len;
        }
        None
    };
    let mut sent = 0usize;
    let cut = loop {
        if tcp.write_all(&continuation).is_err() {
            break true;
        }
        sent += 1024;
        let mut buf = [0u8; 4096];
        match std::io::Read::read(&mut tcp, &mut buf) {
            Ok(0) => break true,
            Ok(n) => said.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if goaway(&said).is_some() {
            break true;
        }
        if sent >= 1_000_000 {
            break false;
        }
    };
    assert!(cut, "the gateway read {sent} CONTINUATION frames without a GOAWAY");
    // ENHANCE_YOUR_CALM ("too_many_continuations"), once the frame count
    // passes what the header-list limit could need.
    assert_eq!(goaway(&said), Some(0xb), "after {sent} frames: {said:?}");
    let out = Command::new("curl")
        .args(["-sS", "--http2-prior-knowledge", &gw.url("/after")])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("up GET /after"));
}

#[test]
fn after_sigterm_a_connection_says_goaway_after_its_next_stream() {
    let up = Upstream::start("up", Behavior::Echo);
    let mut gw = Gateway::start(&h2c_config(&up, "shutdownDelayMs: 3000\n"));
    runtime().block_on(async {
        let (send, driver) = connect(gw.addr).await;
        assert_eq!(get(&send, "/before").await.status, 200);
        gw.signal(15);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Still served (the listeners accept during shutdownDelayMs), then
        // GOAWAY: the connection ends cleanly, well before the delay is over.
        assert_eq!(get(&send, "/stopping").await.status, 200);
        let ended = tokio::time::timeout(Duration::from_secs(2), driver).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    });
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
}

#[test]
fn a_stream_cut_at_the_drain_deadline_is_answered_and_logged() {
    let up = Upstream::start("up", Behavior::Delay(Duration::from_secs(5)));
    let mut gw = Gateway::start(&h2c_config(&up, "drainMs: 300\n"));
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        let slow = tokio::spawn({
            let send = send.clone();
            async move { get(&send, "/slow").await }
        });
        while up.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        gw.signal(15);
        let answer = slow.await.unwrap();
        assert_eq!(answer.status, 503);
        assert_eq!(answer.headers["x-gateway-error"], "shutdown");
    });
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let lines = gw.log_lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""path":"/slow","status":503,"error":"shutdown","protocol":"HTTP/2""#)),
        "{lines:#?}"
    );
}

#[test]
fn a_drain_says_goaway_and_finishes_the_streams_in_flight() {
    let up = Upstream::start("up", Behavior::Delay(Duration::from_millis(800)));
    let mut gw = Gateway::start(&h2c_config(&up, "drainMs: 5000\n"));
    runtime().block_on(async {
        let (send, driver) = connect(gw.addr).await;
        let in_flight = tokio::spawn({
            let send = send.clone();
            async move { get(&send, "/in-flight").await }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        gw.signal(15);
        let answer = in_flight.await.unwrap();
        assert_eq!(answer.status, 200);
        assert!(answer.text().starts_with("up GET /in-flight"));
        // GOAWAY: the connection ends cleanly once its stream is done.
        let ended = tokio::time::timeout(Duration::from_secs(5), driver).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "{ended:?}");
    });
    assert!(gw.wait_exit(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let lines = gw.log_lines();
    assert!(
        lines.iter().any(|l| l.contains(r#""path":"/in-flight","status":200"#)),
        "{lines:#?}"
    );
}

/// curl (nghttp2 inside) over TLS with ALPN, with prior knowledge on the
/// plain listener, and refused prior knowledge where `cleartext` is off.
#[test]
fn curl_speaks_http2_over_tls_and_h2c() {
    let dir = scratch_dir("h2");
    let site = self_signed(&dir, "site", &["site.test"], 90);
    let up = Upstream::start("up", Behavior::Echo);
    let tls = format!(
        "tls:\n  listen: 127.0.0.1:0\n  certificates:\n    - {{ cert: {}, key: {} }}\n",
        site.cert, site.key
    );
    let gw = Gateway::start_in(dir.clone(), &h2c_config(&up, &tls), &[]);
    let port = gw.tls.unwrap().port();
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "-w", "\n%{http_code} %{http_version}"])
            .args(args)
            .output()
            .expect("curl is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let https = format!("https://site.test:{port}/tls");
    let resolve = format!("site.test:{port}:127.0.0.1");
    let ca = dir.join("site.pem");
    let ca = ca.to_str().unwrap();
    let over_tls = curl(&["--http2", "--cacert", ca, "--resolve", &resolve, &https]);
    assert!(
        over_tls.starts_with("up GET /tls") && over_tls.ends_with("200 2"),
        "{over_tls}"
    );
    let h1 = curl(&["--http1.1", "--cacert", ca, "--resolve", &resolve, &https]);
    assert!(h1.ends_with("200 1.1"), "{h1}");
    let h2c = curl(&["--http2-prior-knowledge", &gw.url("/h2c")]);
    assert!(h2c.starts_with("up GET /h2c") && h2c.ends_with("200 2"), "{h2c}");
    let lines = gw.wait_log_lines(3, Duration::from_secs(5));
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""path":"/tls","status":200,"error":null,"protocol":"HTTP/2","tls":"TLSv1.3""#)),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#""path":"/tls","status":200,"error":null,"protocol":"HTTP/1.1""#)),
        "{lines:#?}"
    );

    // Without `cleartext`, the preface is not an HTTP/1.1 request: 400.
    let up2 = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&h2c_config(&up2, "").replace("cleartext: true", "cleartext: false"));
    let refused = curl(&["--http2-prior-knowledge", &gw.url("/h2c")]);
    assert!(!refused.contains("200 2"), "{refused}");
    assert_eq!(up2.hits(), 0);
}

/// `readMs` bounds a request head on HTTP/2 as on HTTP/1.1: a client that
/// starts a header block (HEADERS without END_HEADERS) and stalls, which
/// freezes its whole connection (RFC 9113 §6.10), is cut after `readMs`, not
/// kept until `idleMs` (a minute here).
#[test]
fn a_header_block_that_stalls_is_cut_after_read_ms() {
    use std::io::{Read as _, Write as _};
    let up = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&h2c_config(
        &up,
        "defaults:\n  timeouts: { readMs: 500, idleMs: 60000 }\n",
    ));
    let mut client = std::net::TcpStream::connect(gw.addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut wire = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    wire.extend([0, 0, 0, 0x4, 0, 0, 0, 0, 0]); // SETTINGS, empty
    // HEADERS on stream 1 without END_HEADERS: `:method GET` (HPACK index
    // 2), and the rest of the block never comes.
    wire.extend([0, 0, 1, 0x1, 0, 0, 0, 0, 1, 0x82]);
    client.write_all(&wire).unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match client.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("still open after {:?}: {e}", started.elapsed()),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(15), "{:?}", started.elapsed());
    // A client that completes its blocks is served as before.
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        assert_eq!(get(&send, "/after").await.status, 200);
    });
}

/// An answer sent before the request body is all in (a redirect, a 413)
/// ends with `RST_STREAM(NO_ERROR)` if the client is still sending, which
/// RFC 9113 §8.1 allows; curl 7.88 then fails the transfer ("Stream error in
/// the HTTP/2 framing layer", exit 92) and drops the answer it read. The
/// gateway reads the rest of the body first (bounded), so curl gets its
/// answer every time. Without that, most of these runs fail.
#[test]
fn an_answer_before_the_body_lets_curl_finish_its_upload() {
    let up = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&h2c_config(&up, "").replace("maxRequestBodyBytes: 100000", "maxRequestBodyBytes: 10"));
    let curl = |path: &str| {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--http2-prior-knowledge",
            ])
            .args(["-d", "a body longer than ten bytes", &gw.url(path)])
            .output()
            .expect("curl is installed (.ci/run installs it)");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    for i in 0..15 {
        assert_eq!(curl("/moved"), "301", "redirect, run {i}");
        assert_eq!(curl("/too-large"), "413", "413, run {i}");
    }
    assert_eq!(up.hits(), 0);
    // The body the gateway discards is bounded: a client that keeps sending
    // gets the reset after the answer, and the connection serves on.
    runtime().block_on(async {
        let (send, _driver) = connect(gw.addr).await;
        let mut ready = send.clone().ready().await.unwrap();
        let (response, mut body) = ready.send_request(request(Method::POST, "/moved"), false).unwrap();
        let response = response.await.unwrap();
        assert_eq!(response.status(), 301);
        let chunk = Bytes::from(vec![b'x'; 16_384]);
        let mut sent = 0usize;
        let reset = loop {
            body.reserve_capacity(chunk.len());
            match std::future::poll_fn(|cx| body.poll_capacity(cx)).await {
                Some(Ok(n)) if n > 0 => {
                    if body.send_data(chunk.slice(..n), false).is_err() {
                        break true;
                    }
                    sent += n;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break true,
            }
            assert!(sent < 64 << 20, "the gateway took {sent} bytes nobody needs");
        };
        assert!(reset);
        assert_eq!(get(&send, "/after").await.status, 200);
    });
}

/// RFC 9113 conformance cases in the manner of h2spec (not installable from
/// the registries this project uses), with raw frames and Python's `hpack`
/// (`.ci/run` installs the `h2` package): `tests/h2_conformance.py`.
#[test]
fn h2spec_style_conformance_cases_pass() {
    let up = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&h2c_config(&up, ""));
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("h2_conformance.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(gw.addr.to_string())
        .output()
        .expect("python3 is installed (.ci/run installs it)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}{}", String::from_utf8_lossy(&out.stderr));
    assert!(report.contains("27/27 cases passed"), "{report}");
}

/// `gateway demo` serves TLS with a certificate it generates when the config
/// has none: HTTP/2 (and HTTP/1.1) to the demo's echo upstreams.
#[test]
fn the_demo_serves_http2_over_tls_with_a_generated_certificate() {
    let dir = scratch_dir("demo-tls");
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo = free.local_addr().unwrap();
    drop(free);
    std::fs::write(
        dir.join("gateway.yaml"),
        format!(
            "routes:\n  - {{ name: all, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"http://{echo}\" }}] }}\n"
        ),
    )
    .unwrap();
    let gw = Gateway::spawn(
        &[
            "demo",
            "--listen",
            "127.0.0.1:0",
            "--tls-listen",
            "127.0.0.1:0",
            "--threads",
            "1",
        ],
        dir,
    )
    .unwrap();
    let port = gw.tls.expect("the demo's TLS listener").port();
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new("curl")
            .args(["-sk", flag, "-w", "\n%{http_code} %{http_version}"])
            .args(["--resolve", &format!("demo.test:{port}:127.0.0.1")])
            .arg(format!("https://demo.test:{port}/hello"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("\"upstream\":\"{echo}\"")), "{text}");
        assert!(text.contains("\"x-forwarded-proto\":\"https\""), "{text}");
        assert!(text.ends_with(&format!("200 {version}")), "{text}");
    }
    assert!(gw.stderr_text().contains("--http2 --resolve"), "{}", gw.stderr_text());
}
