//! A counting global allocator proves that formatting an access-log line into a
//! reused buffer allocates nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::error::ErrorKind;
use gateway::observe::accesslog::{LineContext, format_line};
use gateway::observe::exchange::Exchange;
use http::Method;
use http1::RequestTarget;
use plan::LogField;

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

#[test]
fn formatting_a_log_line_allocates_nothing() {
    let mut ex = Exchange::new(Instant::now(), std::time::SystemTime::now());
    ex.method = Some(Method::POST);
    ex.target = Some(RequestTarget::parse(Bytes::from_static(b"/v1/users/../items?id=7&q=\"x\"")).expect("target"));
    ex.host = Some(Bytes::from_static(b"api.example.com:8080"));
    ex.user_agent = Some(Bytes::from_static(b"curl/8.0 \"quoted\"\t"));
    ex.request_id = Some(Bytes::from_static(b"req-1"));
    ex.status = 502;
    ex.route = Some(0);
    ex.upstream_status = Some(200);
    ex.error = Some(ErrorKind::UpstreamReset);
    ex.bytes_sent = 12_345;
    let ctx = LineContext {
        client_ip: b"127.0.0.1",
        route: Some("api"),
        cluster: Some("api"),
        upstream_url: Some("http://127.0.0.1:9001"),
        plan: "0123456789ab",
        duration: Duration::from_micros(1_734),
        tls: Some("TLSv1.3"),
        sni: Some("api.example.com"),
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let before = alloc_counter::thread_allocations();
    for _ in 0..100 {
        format_line(&mut buf, &LogField::ALL, &ex, &ctx);
    }
    let allocations = alloc_counter::thread_allocations() - before;
    assert_eq!(allocations, 0, "formatting allocated {allocations} times");
    let first = std::str::from_utf8(&buf[..buf.iter().position(|&b| b == b'\n').unwrap_or(0)]).expect("utf8");
    assert!(first.starts_with("{\"timestamp\":\""), "{first}");
    assert!(first.contains("\"durationMs\":1.734,"), "{first}");
    assert!(
        first.contains("\"userAgent\":\"curl/8.0 \\\"quoted\\\"\\t\""),
        "{first}"
    );
    assert!(
        first.contains("\"path\":\"/v1/users/../items\",\"status\":502,"),
        "{first}"
    );
}
