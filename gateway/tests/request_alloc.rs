//! Allocations of one complete proxied request through the real server and
//! client stack, in-process: a counting allocator counts what the gateway's
//! threads allocate (the upstream's and the client's threads are excluded).
//!
//! Budget, per request on a keep-alive connection: 0 (measured). Lookup,
//! normalization, WRR pick and log formatting are proven allocation-free by
//! `plan/tests/alloc.rs` and `tests/alloc.rs`; the request head is parsed into
//! the connection's reused field list (`http1/tests/alloc.rs`), any header
//! names included. The upstream side (pool, request head encoding, response head parsing, body
//! copy) is our own HTTP/1 codec over reused per-connection buffers and
//! allocates nothing. A regression fails this test.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::net::TcpStream;

mod common;

use common::{exchange, gateway, upstream};

/// Allocations per proxied request the gateway may make (see the module doc).
const BUDGET: usize = 0;

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

fn per_request(log: bool) -> f64 {
    alloc_counter::exclude_this_thread();
    let up = upstream();
    let log_line = if log {
        "accessLog: { path: access.log }"
    } else {
        "accessLog: { enabled: false }"
    };
    let running = gateway(
        &format!("alloc-{log}"),
        &format!(
            "{log_line}\nroutes:\n  - {{ name: api, host: api.example.com, pathPrefix: /v1, cluster: c }}\n  - {{ name: d, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"http://{up}\" }}], healthCheck: {{ path: /healthz }} }}\n"
        ),
    );
    let mut client = TcpStream::connect(running.addr).expect("connect");
    let request =
        b"GET /v1/users?id=7 HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: alloc-test\r\nAccept: */*\r\n\r\n";
    for _ in 0..200 {
        exchange(&mut client, request);
    }
    let n = 2000;
    let before = alloc_counter::process_allocations();
    for _ in 0..n {
        exchange(&mut client, request);
    }
    let total = alloc_counter::process_allocations() - before;
    drop(client);
    running.stop();
    total as f64 / n as f64
}

#[test]
fn one_proxied_request_stays_within_its_allocation_budget() {
    let off = per_request(false);
    let on = per_request(true);
    println!("allocations per proxied request: {off:.4} (access log off), {on:.4} (on)");
    // Amortized growth (a log batch swapped, a timer slab grown) is allowed
    // once in a hundred requests; anything per request fails.
    let slack = 0.01;
    assert!(
        off <= BUDGET as f64 + slack,
        "{off} allocations per request, budget {BUDGET}"
    );
    assert!(on <= off + slack, "the access log allocates per request: {on} vs {off}");
}
