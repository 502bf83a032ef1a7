//! Heap memory an idle client connection holds, through the real server
//! in-process: a counting allocator sums the bytes the gateway's threads hold
//! (the client's and the upstream's threads are excluded), before and after
//! `N` connections open and go idle.
//!
//! What an idle connection holds is mostly its task: the future of
//! `conn::serve` (HTTP/1.1) or `h2conn::serve` (HTTP/2), whose size is the
//! largest state it can be in. Awaiting a future by value after binding it
//! (`let f = ...; f.await`), or passing it by value to a wrapper that pins
//! it, stores it twice in the enclosing future; that once made an idle
//! HTTP/2 connection's task 22 KiB and an HTTP/1.1 one's 7.5 KiB
//! (`lifecycle::until_cut` takes a pinned reference for this reason). The
//! budgets below fail such a regression. RSS per connection, which also
//! counts the kernel's and the allocator's share, is measured by
//! `bench/tls_idle.py` and in `bench/FINDINGS.md`.
//!
//! A client that pipelines requests and never reads the answers must not
//! grow the heap either: what it sends waits in the kernel's buffers, not
//! in ours.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

mod common;

use common::{exchange, gateway, upstream};
use gateway::server::Running;

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

/// Held by each test: live bytes are counted process-wide, so the tests
/// measure one at a time.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Connections opened per measurement.
const N: usize = 200;
/// Heap bytes an idle HTTP/1.1 keep-alive connection may hold, one request
/// served. Measured in the test profile (`cargo test`, where futures are
/// larger than in a release build): 9,485 bytes; 12,701 with the futures
/// stored twice.
const BUDGET_HTTP1: usize = 10 * 1024;
/// Heap bytes an idle HTTP/2 connection (h2c prior knowledge) may hold,
/// SETTINGS exchanged. Measured as above: 39,465 bytes, most of it the `h2`
/// crate's codec buffers (16 KiB to write, 8 KiB to read, 4 KiB for HPACK);
/// 51,905 with the futures stored twice and a read buffer of ours.
const BUDGET_HTTP2: usize = 42 * 1024;
/// Heap bytes a connection may come to hold while its client pipelines
/// requests without reading a byte of the answers: its read buffer and an
/// exchange's state. It was once 100 MiB after a 5 s flood: the watch for
/// the client's close read ahead a buffer's worth per exchange.
const BUDGET_PIPELINED: usize = 256 * 1024;

/// An HTTP/1.1 connection that was served one request and is kept alive.
fn http1(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).expect("connect");
    exchange(&mut c, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    c
}

/// An HTTP/2 connection (prior knowledge) whose SETTINGS were exchanged.
fn http2(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).expect("connect");
    // The preface, an empty SETTINGS, and the ACK of the server's.
    c.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0\0\0\0\x04\x01\0\0\0\0")
        .expect("send");
    c.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut head = [0u8; 9];
    c.read_exact(&mut head).expect("the server's SETTINGS");
    assert_eq!(head[3], 4, "a SETTINGS frame first");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    c.read_exact(&mut payload).expect("SETTINGS payload");
    c
}

/// Heap bytes per connection that `open` leaves held, once they are idle.
fn held_per_connection(running: &Running, open: fn(SocketAddr) -> TcpStream) -> f64 {
    // Warm-up: slabs, the timer wheel and the pool grow once.
    let warm: Vec<TcpStream> = (0..N).map(|_| open(running.addr)).collect();
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let before = alloc_counter::process_live_bytes();
    let conns: Vec<TcpStream> = (0..N).map(|_| open(running.addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let after = alloc_counter::process_live_bytes();
    drop(conns);
    (after - before) as f64 / N as f64
}

#[test]
fn an_idle_connection_holds_little_heap() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    alloc_counter::exclude_this_thread();
    let up = upstream();
    let running = gateway(
        "conn-memory",
        &format!(
            "accessLog: {{ enabled: false }}\nhttp2: {{ cleartext: true }}\nroutes:\n  - {{ name: d, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"http://{up}\" }}] }}\n"
        ),
    );
    let h1 = held_per_connection(&running, http1);
    let h2 = held_per_connection(&running, http2);
    running.stop();
    println!("heap held per idle connection: HTTP/1.1 {h1:.0} bytes, HTTP/2 {h2:.0} bytes");
    assert!(
        h1 <= BUDGET_HTTP1 as f64,
        "HTTP/1.1: {h1:.0} bytes, budget {BUDGET_HTTP1}"
    );
    assert!(
        h2 <= BUDGET_HTTP2 as f64,
        "HTTP/2: {h2:.0} bytes, budget {BUDGET_HTTP2}"
    );
}

#[test]
fn a_client_that_pipelines_without_reading_holds_bounded_heap() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    alloc_counter::exclude_this_thread();
    let up = upstream();
    let running = gateway(
        "pipelined-memory",
        &format!(
            "accessLog: {{ enabled: false }}\nroutes:\n  - {{ name: d, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"http://{up}\" }}] }}\n"
        ),
    );
    // Warm-up, as above.
    let mut warm = TcpStream::connect(running.addr).expect("connect");
    exchange(&mut warm, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    drop(warm);
    std::thread::sleep(Duration::from_millis(300));
    let before = alloc_counter::process_live_bytes();

    let mut c = TcpStream::connect(running.addr).expect("connect");
    c.set_write_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let burst = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n".repeat(1000);
    let started = std::time::Instant::now();
    let mut sent = 0usize;
    let mut peak = 0isize;
    // Until the gateway stops taking requests (the answers it cannot send
    // fill the kernel's buffers), at most 5 s.
    while started.elapsed() < Duration::from_secs(5) {
        match c.write(&burst) {
            Ok(n) => sent += n,
            Err(_) => break,
        }
        peak = peak.max(alloc_counter::process_live_bytes().saturating_sub(before));
    }
    std::thread::sleep(Duration::from_millis(300));
    peak = peak.max(alloc_counter::process_live_bytes().saturating_sub(before));
    drop(c);
    running.stop();
    println!("pipelined {sent} bytes unread: heap grew by at most {peak} bytes");
    assert!(sent > 1 << 20, "the flood was too small to show anything: {sent} bytes");
    assert!(
        peak <= BUDGET_PIPELINED as isize,
        "{peak} bytes held, budget {BUDGET_PIPELINED}"
    );
}
