//! A counting global allocator proves that parsing a request head into a
//! reused header map allocates nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

#[test]
fn head_parsing_allocates_only_the_header_map() {
    use http1::{Parsed, parse};
    // Standard header names only: the `http` crate copies each non-standard
    // name (`X-Request-Id`, ...) into an allocation of its own.
    let raw = b"GET /v1/users?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.0\r\nAccept: */*\r\n\r\n";
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    // Promote the buffer to shared storage once, as the first request does.
    buf.extend_from_slice(raw);
    drop(parse(&mut buf, 16_384, 100));
    let n = 1000;
    let mut heads = Vec::with_capacity(n);
    let before = alloc_counter::thread_allocations();
    for _ in 0..n {
        buf.extend_from_slice(raw);
        heads.push(parse(&mut buf, 16_384, 100));
    }
    let per_head = (alloc_counter::thread_allocations() - before) as f64 / n as f64;
    assert!(heads.iter().all(|h| matches!(h, Parsed::Complete(_))));
    // The HeaderMap's index and entry arrays; nothing else.
    assert!(per_head <= 2.0, "{per_head} allocations per parsed head");
}

#[test]
fn head_parsing_into_a_reused_map_allocates_nothing() {
    use http1::{Parsed, parse_into};
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
    let before = alloc_counter::thread_allocations();
    for _ in 0..n {
        buf.extend_from_slice(raw);
        match parse_into(&mut buf, 16_384, 100, map) {
            Parsed::Complete(head) => map = head.headers,
            _ => panic!("head refused"),
        }
    }
    let allocations = alloc_counter::thread_allocations() - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {n} heads into a reused map"
    );
}
