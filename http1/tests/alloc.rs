//! A counting global allocator proves that parsing a request head into
//! reused fields allocates nothing, whatever its header names.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use http1::{Fields, Parsed, parse, parse_into};

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

const RAW: &[u8] = b"GET /v1/users?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: curl/8.0\r\n\
Accept: */*\r\nX-Request-Id: 7f3c\r\nX-Custom-Header: non-standard names cost nothing either\r\n\r\n";

#[test]
fn head_parsing_allocates_only_the_field_list() {
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    // Promote the buffer to shared storage once, as the first request does.
    buf.extend_from_slice(RAW);
    drop(parse(&mut buf, 16_384, 100));
    let n = 1000;
    let mut heads = Vec::with_capacity(n);
    let before = alloc_counter::thread_allocations();
    for _ in 0..n {
        buf.extend_from_slice(RAW);
        heads.push(parse(&mut buf, 16_384, 100));
    }
    let per_head = (alloc_counter::thread_allocations() - before) as f64 / n as f64;
    assert!(heads.iter().all(|h| matches!(h, Parsed::Complete(_))));
    // The fields' span list; nothing else.
    assert!(per_head <= 1.0, "{per_head} allocations per parsed head");
}

#[test]
fn head_parsing_into_reused_fields_allocates_nothing() {
    let mut buf = bytes::BytesMut::with_capacity(1 << 20);
    let mut fields = Fields::default();
    // The first head sizes the fields (and promotes the buffer to shared storage).
    buf.extend_from_slice(RAW);
    if let Parsed::Complete(head) = parse_into(&mut buf, 16_384, 100, fields) {
        fields = head.headers;
    } else {
        panic!("first head refused");
    }
    let n = 1000;
    let before = alloc_counter::thread_allocations();
    for _ in 0..n {
        buf.extend_from_slice(RAW);
        match parse_into(&mut buf, 16_384, 100, fields) {
            Parsed::Complete(head) => fields = head.headers,
            _ => panic!("head refused"),
        }
    }
    let allocations = alloc_counter::thread_allocations() - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {n} heads into reused fields"
    );
}
