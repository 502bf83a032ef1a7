//! Helpers shared by the in-process allocation tests (`request_alloc.rs`,
//! `conn_memory.rs`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::io::{Read, Write};
use std::net::SocketAddr;

/// A keep-alive upstream answering every request `200` with `hello`, on its
/// own threads, which the counting allocator leaves out.
pub fn upstream() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        alloc_counter::exclude_this_thread();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                alloc_counter::exclude_this_thread();
                let mut buf = vec![0u8; 16 * 1024];
                let mut have = Vec::new();
                loop {
                    while !have.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => have.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = have.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                    have.drain(..end);
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}
