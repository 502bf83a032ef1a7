//! SPEC §12 and the reliability issue: hot reload under load, refused reloads,
//! connection and body limits, slow clients, idle connections, flapping
//! upstreams and a short soak. Every load loop is bounded in time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway_tests::{Behavior, Client, Gateway, Upstream};

use crate::{cluster, config};

fn one_route(up: &Upstream, extra: &str) -> String {
    format!(
        "{extra}routes:\n  - {{ name: r, pathPrefix: /, cluster: c }}\nclusters:\n{}",
        cluster("c", &[(up, 1)])
    )
}

fn admin_post(gw: &Gateway, path: &str) -> (u16, String) {
    let addr = gw.admin.expect("admin listener");
    let mut c = Client::connect(addr).expect("connect admin");
    c.send(format!("POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n").as_bytes())
        .expect("send");
    let r = c.read_response(false).expect("response");
    (r.status, r.text())
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One request as a client saw it.
struct Seen {
    start: Instant,
    end: Instant,
    upstream: String,
}

fn load(
    addr: std::net::SocketAddr,
    clients: usize,
    stop: Arc<AtomicBool>,
    failures: Arc<Mutex<Vec<String>>>,
) -> Vec<std::thread::JoinHandle<Vec<Seen>>> {
    (0..clients)
        .map(|t| {
            let (stop, failures) = (stop.clone(), failures.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let mut c = Client::connect(addr).expect("connect");
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    match c.get("h", &format!("/{t}/{i}")) {
                        Ok(r) if r.status == 200 => seen.push(Seen {
                            start,
                            end: Instant::now(),
                            upstream: r.header("x-upstream").unwrap_or("").to_owned(),
                        }),
                        Ok(r) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("{} {}", r.status, r.text())),
                        Err(e) => {
                            failures.lock().expect("lock").push(format!("io: {e}"));
                            c = Client::connect(addr).expect("reconnect");
                        }
                    }
                    i += 1;
                }
                seen
            })
        })
        .collect()
}

#[test]
fn reloads_under_load_lose_nothing() {
    let a = Upstream::start("a", Behavior::Echo);
    let b = Upstream::start("b", Behavior::Echo);
    let plan_a = one_route(&a, "accessLog: { path: access.log }\n");
    let plan_b = one_route(&b, "accessLog: { path: access.log }\n");
    let invalid =
        "accessLog: { path: access.log }\nroutes:\n  - { name: r, pathPrefix: /, cluster: nope }\nclusters: []\n";
    let mut gw = Gateway::start_with(&plan_a, &["--admin", "127.0.0.1:0"]);
    let config = gw.dir.join("gateway.yaml");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));

    // Baseline latency without reloads.
    let baseline = load(gw.addr, 16, stop.clone(), failures.clone());
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let mut base_lat: Vec<Duration> = baseline
        .into_iter()
        .flat_map(|t| t.join().expect("client"))
        .map(|s| s.end - s.start)
        .collect();
    let base_count = base_lat.len();
    base_lat.sort();

    // 16 keep-alive clients for 10 s while 50 reloads alternate A, B and an invalid config.
    stop.store(false, Ordering::Relaxed);
    let clients = load(gw.addr, 16, stop.clone(), failures.clone());
    let digest = |gw: &Gateway| {
        let (_, plan) = gw.admin_get("/plan");
        serde_json::from_str::<serde_json::Value>(&plan).expect("/plan is JSON")["digest"].clone()
    };
    let mut serving_digest = digest(&gw);
    let mut timeline: Vec<(Instant, Instant, &str)> = Vec::new(); // (sent, done, upstream now serving)
    let mut serving = "a";
    let mut refused = 0;
    let started = Instant::now();
    for k in 0..50 {
        let (text, next) = match k % 3 {
            0 => (plan_b.as_str(), Some("b")),
            1 => (plan_a.as_str(), Some("a")),
            _ => (invalid, None),
        };
        write_atomically(&config, text);
        let sent = Instant::now();
        let (status, body) = admin_post(&gw, "/reload");
        let done = Instant::now();
        match next {
            Some(up) => {
                assert_eq!(status, 200, "reload {k}: {body}");
                serving = up;
                serving_digest = digest(&gw);
            }
            None => {
                assert!(status >= 400, "an invalid config was accepted");
                assert!(
                    body.contains("gateway.yaml:3:40: error: routes[0].cluster: unknown cluster \"nope\""),
                    "{body}"
                );
                refused += 1;
                assert_eq!(digest(&gw), serving_digest, "/plan changed on a refused reload");
            }
        }
        timeline.push((sent, done, serving));
        let next_at = started + Duration::from_millis(200 * (k + 1));
        std::thread::sleep(next_at.saturating_duration_since(Instant::now()));
    }
    stop.store(true, Ordering::Relaxed);
    let seen: Vec<Seen> = clients.into_iter().flat_map(|t| t.join().expect("client")).collect();
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "{} failed requests: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Every request was answered by the upstream of the plan current when it
    // was routed: one that started after a reload completed and ended before
    // the next reload was sent can only have seen that reload's plan.
    for s in &seen {
        assert!(s.upstream == "a" || s.upstream == "b", "answered by {:?}", s.upstream);
        let window = timeline.windows(2).find(|w| s.start > w[0].1 && s.end < w[1].0);
        if let Some(w) = window {
            assert_eq!(s.upstream, w[0].2, "a request routed by a stale or future plan");
        }
    }
    assert_eq!(refused, 16);
    assert_eq!(gw.metric("gateway_reload_failures_total"), 16.0);
    assert_eq!(gw.metric("gateway_reloads_total"), 34.0);
    let mut lat: Vec<Duration> = seen.iter().map(|s| s.end - s.start).collect();
    lat.sort();
    println!(
        "reload under load: {} requests, 0 failed, p99 {:?} during reloads vs {:?} without ({} requests)",
        seen.len(),
        percentile(&lat, 0.99),
        percentile(&base_lat, 0.99),
        base_count
    );

    gw.signal(15);
    assert_eq!(gw.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0));
    let log = std::fs::read_to_string(gw.dir.join("access.log")).expect("access log");
    assert_eq!(
        log.lines().count(),
        seen.len() + base_count,
        "access-log lines vs requests"
    );
}

/// `listening on` is a promise that signals are handled: a SIGHUP sent the
/// moment it is read reloads. (The handlers used to be installed after the
/// announcement; a loaded machine let a SIGHUP through to its default
/// action, which ends the process.)
#[test]
fn a_sighup_right_after_listening_on_reloads_rather_than_kills() {
    let a = Upstream::start("a", Behavior::Echo);
    for _ in 0..10 {
        let mut gw = Gateway::start(&one_route(&a, "accessLog: { enabled: false }\n"));
        gw.signal(1);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gw.stderr_text().contains("reloaded") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(gw.stderr_text().contains("reloaded"), "{}", gw.stderr_text());
        assert!(gw.wait_exit(Duration::ZERO).is_none(), "the gateway ended on SIGHUP");
    }
}

/// A reload that removes an upstream lets go of the idle connections to it
/// at once (the upstream is being retired, often), not after `pool.idleMs`;
/// the upstreams it keeps keep theirs.
#[test]
fn a_reload_closes_idle_connections_to_the_upstreams_it_removes() {
    let raw = |name: &str, response: &'static str| Upstream::start(name, Behavior::Raw { response, close: false });
    let a = raw("a", "HTTP/1.1 200 OK\r\nx-upstream: a\r\ncontent-length: 0\r\n\r\n");
    let b = raw("b", "HTTP/1.1 200 OK\r\nx-upstream: b\r\ncontent-length: 0\r\n\r\n");
    let kept = raw(
        "kept",
        "HTTP/1.1 200 OK\r\nx-upstream: kept\r\ncontent-length: 0\r\n\r\n",
    );
    let routes = "  - { name: r, pathPrefix: /, cluster: c }\n  - { name: k, pathPrefix: /kept, cluster: k }\n";
    let yaml = |up: &Upstream| config(routes, &[cluster("c", &[(up, 1)]), cluster("k", &[(&kept, 1)])]);
    let gw = Gateway::start_with(&yaml(&a), &["--admin", "127.0.0.1:0"]);
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/").expect("r").header("x-upstream"), Some("a"));
    assert_eq!(c.get("h", "/kept").expect("r").header("x-upstream"), Some("kept"));
    let opened = |u: &Upstream| u.connections.load(std::sync::atomic::Ordering::SeqCst);
    let closed = |u: &Upstream| u.closed.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!((opened(&a), closed(&a)), (1, 0), "one pooled connection to a");
    write_atomically(&gw.dir.join("gateway.yaml"), &yaml(&b));
    assert_eq!(admin_post(&gw, "/reload").0, 200);
    let deadline = Instant::now() + Duration::from_secs(3);
    while closed(&a) < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(closed(&a), 1, "the connection to the removed upstream is still open");
    assert_eq!(c.get("h", "/").expect("r").header("x-upstream"), Some("b"));
    assert_eq!(c.get("h", "/kept").expect("r").header("x-upstream"), Some("kept"));
    assert_eq!(
        (opened(&kept), closed(&kept)),
        (1, 0),
        "the kept upstream's connection is reused"
    );
}

#[test]
fn sighup_reloads_and_an_invalid_config_is_refused_with_located_errors() {
    let a = Upstream::start("a", Behavior::Echo);
    let b = Upstream::start("b", Behavior::Echo);
    let gw = Gateway::start_with(
        &one_route(&a, "accessLog: { enabled: false }\n"),
        &["--admin", "127.0.0.1:0"],
    );
    let config = gw.dir.join("gateway.yaml");
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/").expect("r").header("x-upstream"), Some("a"));
    let wait_stderr = |needle: &str, count: usize| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while gw.stderr_text().matches(needle).count() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        gw.stderr_text()
    };
    write_atomically(&config, &one_route(&b, "accessLog: { enabled: false }\n"));
    gw.signal(1);
    let stderr = wait_stderr("reloaded", 1);
    assert!(stderr.contains("reloaded") && stderr.contains("-> sha256:"), "{stderr}");
    assert_eq!(
        c.get("h", "/").expect("r").header("x-upstream"),
        Some("b"),
        "keep-alive connection sees the new plan"
    );
    let (_, plan) = gw.admin_get("/plan");
    write_atomically(
        &config,
        "accessLog: { enabled: false }\nroutes:\n  - { name: r, pathPrefix: /, cluster: c, hots: x }\nclusters: []\n",
    );
    gw.signal(1);
    let stderr = wait_stderr("reload refused", 1);
    assert!(
        stderr.contains("gateway.yaml:3:43: error: routes[0].hots: unknown field \"hots\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("reload refused: still serving plan sha256:"),
        "{stderr}"
    );
    assert_eq!(
        c.get("h", "/").expect("r").header("x-upstream"),
        Some("b"),
        "the old plan keeps serving"
    );
    assert_eq!(gw.admin_get("/plan").1, plan, "/plan keeps the old digest");
    assert_eq!(gw.metric("gateway_reload_failures_total"), 1.0);
}

#[test]
fn connections_beyond_max_connections_are_closed_at_once_and_counted() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start_with(
        &one_route(&up, "accessLog: { enabled: false }\nlimits: { maxConnections: 3 }\n"),
        &["--admin", "127.0.0.1:0"],
    );
    let mut held: Vec<Client> = (0..3).map(|_| Client::connect(gw.addr).expect("connect")).collect();
    for c in &mut held {
        assert_eq!(c.get("h", "/").expect("r").status, 200);
    }
    let mut extra = Client::connect(gw.addr).expect("TCP connect still succeeds");
    let _ = extra.send(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert!(
        extra.is_closed(Duration::from_secs(2)),
        "the fourth connection was served"
    );
    assert_eq!(gw.metric("gateway_client_connections_rejected_total"), 1.0);
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = Client::connect(gw.addr).expect("connect");
        match c.get("h", "/") {
            Ok(r) if r.status == 200 => break,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            other => panic!("a freed slot was not reused: {other:?}"),
        }
    }
}

#[test]
fn request_bodies_beyond_the_limit_get_413_and_are_counted() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start_with(
        &one_route(
            &up,
            "accessLog: { enabled: false }\nlimits: { maxRequestBodyBytes: 1000 }\n",
        ),
        &["--admin", "127.0.0.1:0"],
    );
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1001\r\n\r\n")
        .expect("send");
    let r = c.read_response(false).expect("413");
    assert_eq!((r.status, r.header("x-gateway-error")), (413, Some("body_too_large")));
    assert_eq!(up.hits(), 0, "a declared oversize body reached the upstream");
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n")
        .expect("send");
    c.send(&[b'x'; 1000]).expect("body");
    assert_eq!(c.read_response(false).expect("200").status, 200, "at the limit is fine");
    // A chunked body that grows past the limit is cut, and the client, which
    // goes on sending as an uploading client does before it reads, still
    // reads the 413: the close lingers (RFC 9112 §9.6) instead of resetting
    // a connection with unread bytes, which could destroy the answer.
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("send");
    let chunk = [b"400\r\n".as_slice(), &[b'y'; 1024], b"\r\n"].concat();
    c.send(&chunk).expect("first chunk");
    let r = c.read_response(false).expect("the 413");
    assert_eq!((r.status, r.header("connection")), (413, Some("close")));
    // Without the lingering close, the first chunk draws a reset, which the
    // next send meets (50 ms is ample for it on loopback).
    for i in 0..4 {
        c.send(&chunk)
            .unwrap_or_else(|e| panic!("chunk {i} after the 413: {e} (the connection was reset)"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.is_closed(Duration::from_secs(5)), "the lingering close ends");
    assert_eq!(gw.wait_metric("gateway_request_body_limit_exceeded_total", 2.0), 2.0);
    assert_eq!(up.requests().iter().filter(|s| s.body_len > 1000).count(), 0);
}

/// A head refused while its body is on the way: the close lingers too, so
/// the `400` is read rather than lost to a reset.
#[test]
fn a_refused_head_closes_without_resetting_a_client_still_sending() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&one_route(&up, "accessLog: { enabled: false }\n"));
    let mut c = Client::connect(gw.addr).expect("connect");
    c.send(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("send");
    c.send(&[b'z'; 4096]).expect("body");
    let r = c.read_response(false).expect("the 400");
    assert_eq!((r.status, r.header("x-gateway-error")), (400, Some("bad_request")));
    for i in 0..4 {
        c.send(&[b'z'; 4096])
            .unwrap_or_else(|e| panic!("block {i} after the 400: {e} (the connection was reset)"));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(c.is_closed(Duration::from_secs(5)), "the lingering close ends");
    assert_eq!(up.hits(), 0);
}

#[test]
fn slowloris_connections_are_closed_and_do_not_starve_others() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&one_route(
        &up,
        "accessLog: { enabled: false }\ndefaults: { timeouts: { readMs: 1000 } }\n",
    ));
    let stop = Arc::new(AtomicBool::new(false));
    // 500 connections trickling a header, one byte per 100 ms, from 5 threads.
    let tricklers: Vec<_> = (0..5)
        .map(|_| {
            let (addr, stop) = (gw.addr, stop.clone());
            std::thread::spawn(move || {
                let mut socks: Vec<Client> = (0..100).filter_map(|_| Client::connect(addr).ok()).collect();
                for s in &mut socks {
                    let _ = s.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ");
                }
                let deadline = Instant::now() + Duration::from_secs(4);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    for s in &mut socks {
                        let _ = s.send(b"a");
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                // By now readMs (1 s) has passed for every one of them: each
                // got its 408, or a reset when its late bytes met the closed socket.
                let mut closed = 0;
                for s in &mut socks {
                    s.set_read_timeout(Duration::from_secs(1));
                    closed += usize::from(match s.read_response(false) {
                        Ok(r) => r.status == 408,
                        Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
                    });
                }
                closed
            })
        })
        .collect();
    let mut c = Client::connect(gw.addr).expect("connect");
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut served = 0;
    while Instant::now() < deadline {
        let t = Instant::now();
        let r = c.get("h", "/").expect("response");
        assert_eq!(r.status, 200);
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "a normal request waited {:?}",
            t.elapsed()
        );
        served += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let closed: usize = tricklers.into_iter().map(|t| t.join().expect("trickler")).sum();
    assert!(served > 10);
    assert_eq!(closed, 500, "trickling connections left open past readMs");
    assert_eq!(up.hits(), served);
}

#[test]
fn idle_keep_alive_connections_are_closed_after_idle_ms() {
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start(&one_route(
        &up,
        "accessLog: { enabled: false }\ndefaults: { timeouts: { idleMs: 300 } }\n",
    ));
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/").expect("r").status, 200);
    let t = Instant::now();
    assert!(c.is_closed(Duration::from_secs(3)), "idle connection kept open");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1300),
        "closed after {took:?}"
    );
}

#[test]
fn a_flapping_upstream_gets_every_request_an_answer() {
    let first = Upstream::start("flap", Behavior::Echo);
    let addr = first.addr;
    let mut gw = Gateway::start_with(
        &one_route(
            &first,
            "accessLog: { path: access.log }\ndefaults: { timeouts: { connectMs: 300, upstreamMs: 1000 } }\n",
        ),
        &[],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let results = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..2)
        .map(|_| {
            let (stop, results, gaddr) = (stop.clone(), results.clone(), gw.addr);
            std::thread::spawn(move || {
                let mut c = Client::connect(gaddr).expect("connect");
                while !stop.load(Ordering::Relaxed) {
                    let r = c.get("h", "/").expect("every request gets a response");
                    results
                        .lock()
                        .expect("lock")
                        .push((r.status, r.header("x-gateway-error").map(str::to_owned)));
                    if r.header("connection") == Some("close") {
                        c = Client::connect(gaddr).expect("reconnect");
                    }
                }
            })
        })
        .collect();
    // Killed and restarted every 500 ms for 4 s.
    let mut current = Some(first);
    let deadline = Instant::now() + Duration::from_secs(4);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        match current.take() {
            Some(up) => drop(up),
            None => {
                let restart = Instant::now() + Duration::from_secs(2);
                current = loop {
                    match Upstream::start_at("flap", addr, Behavior::Echo) {
                        Ok(up) => break Some(up),
                        Err(_) if Instant::now() < restart => std::thread::sleep(Duration::from_millis(20)),
                        Err(e) => panic!("cannot restart the upstream: {e}"),
                    }
                };
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client");
    }
    let results = results.lock().expect("lock").clone();
    let ok = results.iter().filter(|(s, _)| *s == 200).count();
    for (status, kind) in &results {
        assert!(
            *status == 200 || (matches!(status, 502 | 504) && kind.is_some()),
            "undocumented answer {status} {kind:?}"
        );
    }
    assert!(
        ok > 0 && ok < results.len(),
        "the upstream did not flap ({ok} of {})",
        results.len()
    );
    gw.signal(15);
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()),
        Some(0),
        "the process stayed up and stopped cleanly"
    );
    let log = std::fs::read_to_string(gw.dir.join("access.log")).expect("log");
    assert_eq!(log.lines().count(), results.len(), "one access-log line per request");
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_short_soak_keeps_memory_and_descriptors_flat() {
    let secs: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let up = Upstream::start("u", Behavior::Echo);
    let gw = Gateway::start_with(
        &one_route(&up, "accessLog: { path: access.log }\n"),
        &["--admin", "127.0.0.1:0"],
    );
    let pid = gw.child.id();
    // Descriptors once every client connection is gone (the metric is read
    // over a fresh admin connection, which may still be closing: allow it).
    let settled_fds = || {
        let deadline = Instant::now() + Duration::from_secs(5);
        while gw.metric("gateway_client_connections") > 0.0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        fds(pid)
    };
    let run = |duration: Duration| {
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let (stop, addr) = (stop.clone(), gw.addr);
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        // Fresh connections as well as reused ones.
                        let mut c = Client::connect(addr).expect("connect");
                        for _ in 0..20 {
                            assert_eq!(c.get("h", "/soak").expect("r").status, 200);
                            n += 1;
                        }
                        // A steady rate, not a flood.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        clients.into_iter().map(|c| c.join().expect("client")).sum::<u64>()
    };
    let warm = run(Duration::from_secs(2));
    let rss_warm = rss_kib(pid);
    let fds_warm = settled_fds();
    let soaked = run(Duration::from_secs(secs));
    let rss_after = rss_kib(pid);
    let fds_after = settled_fds();
    let open = gw.metric(&format!(
        r#"gateway_upstream_connections{{cluster="c",upstream="{}",state="idle"}}"#,
        up.url()
    )) + gw.metric(&format!(
        r#"gateway_upstream_connections{{cluster="c",upstream="{}",state="active"}}"#,
        up.url()
    ));
    println!(
        "soak: {} requests; RSS {rss_warm} KiB after warm-up, {rss_after} KiB after {secs} s; fds {fds_warm} after warm-up, {fds_after} after; upstream connections open {open}",
        warm + soaked
    );
    assert!(
        rss_after as f64 <= rss_warm as f64 * 1.10,
        "RSS grew from {rss_warm} to {rss_after} KiB"
    );
    // Pooled upstream connections stay within the pool's bound (512 per
    // upstream per worker), and descriptors are back to the warmed-up count.
    assert!(open <= 1024.0, "pool grew past its bound: {open}");
    assert!(
        fds_after <= fds_warm + 2,
        "descriptors: {fds_warm} after warm-up, {fds_after} after the soak"
    );
}
