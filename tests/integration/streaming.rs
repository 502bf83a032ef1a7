//! SPEC §6: bodies stream both ways; the gateway's memory stays flat.
//!
//! Bound checked here: 128 MiB down and 128 MiB up through the gateway keep
//! its peak RSS (VmHWM) under 64 MiB.

use std::io::{Read, Write};
use std::net::TcpStream;

use gateway_tests::upstream::pattern_byte;
use gateway_tests::{Behavior, Client, Gateway, Upstream};

use crate::{cluster, config};

const MIB: usize = 1024 * 1024;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn large_bodies_stream_both_ways_with_flat_memory() {
    let down = Upstream::start(
        "down",
        Behavior::Stream {
            chunks: 2048,
            size: 64 * 1024,
        },
    );
    let up = Upstream::start("up", Behavior::Echo);
    let routes =
        "  - { name: down, pathPrefix: /down, cluster: down }\n  - { name: up, pathPrefix: /up, cluster: up }\n";
    let gw = Gateway::start(&config(
        routes,
        &[cluster("down", &[(&down, 1)]), cluster("up", &[(&up, 1)])],
    ));

    // Download: a 128 MiB chunked response, checked byte by byte.
    let mut c = Client::connect(gw.addr).expect("connect");
    let r = c.get("h", "/down").expect("response");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), 128 * MIB);
    assert!(
        r.body.iter().enumerate().all(|(i, &b)| b == pattern_byte(i)),
        "download corrupted"
    );

    // Upload: 128 MiB with Content-Length, streamed from a generator.
    let total = 128 * MIB;
    let mut s = TcpStream::connect(gw.addr).expect("connect");
    write!(s, "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: {total}\r\n\r\n").expect("head");
    let mut sum = 0u64;
    let mut block = vec![0u8; MIB];
    for k in 0..128 {
        for (j, b) in block.iter_mut().enumerate() {
            *b = pattern_byte(k * MIB + j);
        }
        sum = block
            .iter()
            .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
        s.write_all(&block).expect("upload");
    }
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&reply).contains("sum=") || !reply.ends_with(sum.to_string().as_bytes()) {
        let n = s.read(&mut buf).expect("read reply");
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.contains(&format!("bytes={total} sum={sum}")),
        "upload corrupted: {text}"
    );

    let peak = peak_rss_kib(gw.child.id());
    assert!(peak > 0 && peak < 64 * 1024, "gateway peak RSS {peak} KiB");
}

#[test]
fn chunked_upload_streams() {
    let up = Upstream::start("up", Behavior::Echo);
    let gw = Gateway::start(&config(
        "  - { name: up, pathPrefix: /, cluster: up }\n",
        &[cluster("up", &[(&up, 1)])],
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"PUT /chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("head");
    let mut expected = Vec::new();
    for i in 0..64 {
        let data: Vec<u8> = (0..(1000 + i * 37)).map(|j| (j * 7 + i) as u8).collect();
        expected.extend_from_slice(&data);
        c.send(format!("{:x}\r\n", data.len()).as_bytes()).expect("size");
        c.send(&data).expect("data");
        c.send(b"\r\n").expect("crlf");
    }
    c.send(b"0\r\n\r\n").expect("end");
    let r = c.read_response(false).expect("response");
    let sum = expected
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
    assert!(
        r.text().ends_with(&format!("bytes={} sum={sum}", expected.len())),
        "{}",
        r.text()
    );
}
