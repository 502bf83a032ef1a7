//! A counting global allocator proves that formatting an access-log line into a
//! reused buffer allocates nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gateway::accesslog::{LineContext, format_line};
use gateway::error::ErrorKind;
use gateway::exchange::Exchange;
use http::{HeaderValue, Method};
use plan::LogField;

struct Counting;

thread_local! {
    // Per thread: the test harness allocates on its own threads meanwhile.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn head_parsing_allocates_only_the_header_map() {
    use gateway::http1::head::{Parsed, parse};
    // Standard header names only: the `http` crate copies each non-standard
    // name (`X-Request-Id`, ...) into an allocation of its own.
    let raw = b"GET /v1/users?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    // Promote the buffer to shared storage once, as the first request does.
    buf.extend_from_slice(raw);
    drop(parse(&mut buf, 16_384, 100));
    let n = 1000;
    let mut heads = Vec::with_capacity(n);
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..n {
        buf.extend_from_slice(raw);
        heads.push(parse(&mut buf, 16_384, 100));
    }
    let per_head = (ALLOCATIONS.with(Cell::get) - before) as f64 / n as f64;
    assert!(heads.iter().all(|h| matches!(h, Parsed::Complete(_))));
    // The HeaderMap's index and entry arrays; nothing else.
    assert!(per_head <= 2.0, "{per_head} allocations per parsed head");
}

#[test]
fn head_parsing_into_a_reused_map_allocates_nothing() {
    use gateway::http1::head::{Parsed, parse_into};
    let raw = b"GET /v1/users?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    let mut map = http::HeaderMap::new();
    // The first head sizes the map (and promotes the buffer to shared storage).
    buf.extend_from_slice(raw);
    if let Parsed::Complete(head) = parse_into(&mut buf, 16_384, 100, map) {
        map = head.headers;
    } else {
        panic!("first head refused");
    }
    let n = 1000;
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..n {
        buf.extend_from_slice(raw);
        match parse_into(&mut buf, 16_384, 100, map) {
            Parsed::Complete(head) => map = head.headers,
            _ => panic!("head refused"),
        }
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {n} heads into a reused map"
    );
}

#[test]
fn formatting_a_log_line_allocates_nothing() {
    let mut ex = Exchange::new(Instant::now());
    ex.method = Some(Method::POST);
    ex.target = Some(Bytes::from_static(b"/v1/users/../items?id=7&q=\"x\""));
    ex.host = Some(HeaderValue::from_static("api.example.com:8080"));
    ex.user_agent = Some(HeaderValue::from_static("curl/8.0 \"quoted\"\t"));
    ex.request_id = Some(HeaderValue::from_static("req-1"));
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
    };
    let mut buf = Vec::with_capacity(64 * 1024);
    let before = ALLOCATIONS.with(Cell::get);
    for _ in 0..100 {
        format_line(&mut buf, &LogField::ALL, &ex, &ctx);
    }
    let allocations = ALLOCATIONS.with(Cell::get) - before;
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
