//! Helpers shared by the in-process allocation tests (`request_alloc.rs`,
//! `conn_memory.rs`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use gateway::load::Source;
use gateway::server::{RunOptions, Running, start};

/// A one-worker gateway on `config` (YAML), written to a scratch directory
/// named after `name`, listening on a port of the OS's choice.
pub fn gateway(name: &str, config: &str) -> Running {
    let dir = std::env::temp_dir().join(format!("gateway-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("gateway.yaml");
    std::fs::write(&path, config).expect("write");
    start(&RunOptions {
        source: Source::Config(path),
        listen: Some("127.0.0.1:0".parse().expect("addr")),
        admin: None,
        threads: Some(1),
    })
    .expect("gateway starts")
}

/// Sends `request` and reads the gateway's answer, which must be the
/// upstream's `200` with `hello`.
pub fn exchange(client: &mut TcpStream, request: &[u8]) {
    client.write_all(request).expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.ends_with(b"hello") {
        let n = client.read(&mut buf).expect("read");
        assert!(n > 0, "gateway closed the connection");
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&got)
    );
}

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
