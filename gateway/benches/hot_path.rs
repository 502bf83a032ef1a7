//! The gateway's own per-request work outside routing: parsing a request head
//! (into a fresh header map), encoding the head forwarded upstream (with and
//! without a route's header filters), formatting an access-log line into a
//! reused buffer, and counting a response in the shared metrics, alone and
//! while another worker thread counts into the same route.

#![allow(clippy::expect_used, clippy::unwrap_used)] // bench code: a failed expectation is a failed run

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use gateway::observe::accesslog::{LineContext, format_line};
use gateway::observe::exchange::Exchange;
use gateway::observe::per_worker::enter_worker;
use gateway::observe::stats::Registry;
use http::Method;
use http1::{Fields, Filter, Forward, Parsed, RequestTarget, encode_request, parse_into};
use plan::LogField;

const HEAD: &[u8] = b"GET /v1/users/42?expand=orders HTTP/1.1\r\nHost: api.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: application/json\r\nAccept-Encoding: gzip, br\r\nX-Request-Id: 7f3c2a\r\nConnection: keep-alive\r\n\r\n";

fn bench(c: &mut Criterion) {
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut map = Fields::default();
    // As the gateway does it: into the connection's reused header map.
    c.bench_function("hot/parse-request-head", |b| {
        b.iter(|| {
            if buf.capacity() - buf.len() < HEAD.len() {
                buf = BytesMut::with_capacity(1 << 20);
            }
            buf.extend_from_slice(HEAD);
            match parse_into(&mut buf, 16_384, 100, std::mem::take(&mut map)) {
                Parsed::Complete(head) => {
                    map = head.headers;
                    map.clear();
                    true
                }
                _ => false,
            }
        })
    });

    buf.extend_from_slice(HEAD);
    let Parsed::Complete(head) = parse_into(&mut buf, 16_384, 100, Fields::default()) else {
        panic!("bench head refused");
    };
    let mut out = BytesMut::with_capacity(4 * 1024);
    // A route with filters: two sets, an add, a remove (SPEC §4.9).
    let filtered = Filter::new(
        ["x-route", "x-version", "accept-encoding"],
        [("X-Route", "users"), ("X-Version", "2"), ("X-Tag", "edge")],
    );
    for (name, filter) in [
        ("hot/encode-forwarded-request-head", Filter::none()),
        ("hot/encode-forwarded-request-head-filtered", &filtered),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                encode_request(
                    &mut out,
                    &Forward {
                        method: &head.method,
                        target: [b"/base", b"/v1/users/42", b"?", b"expand=orders"],
                        headers: &head.headers,
                        host: &head.host,
                        forwarded_host: &head.host,
                        client_ip: b"127.0.0.1",
                        proto: b"http",
                        body: head.body,
                        filter,
                        websocket: false,
                    },
                );
                black_box(out.len())
            })
        });
    }

    let mut ex = Exchange::new(Instant::now(), std::time::SystemTime::now());
    ex.method = Some(Method::GET);
    ex.target = Some(RequestTarget::parse(Bytes::from_static(b"/v1/users/42?expand=orders")).expect("target"));
    ex.host = Some(Bytes::from_static(b"api.example.com"));
    ex.status = 200;
    ex.route = Some(0);
    ex.upstream_status = Some(200);
    ex.bytes_sent = 512;
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
    let mut out = Vec::with_capacity(64 * 1024);
    c.bench_function("hot/format-access-log-line-default-fields", |b| {
        b.iter(|| {
            out.clear();
            format_line(&mut out, &LogField::DEFAULT, &ex, &ctx);
            black_box(out.len())
        })
    });
    c.bench_function("hot/format-access-log-line-all-fields", |b| {
        b.iter(|| {
            out.clear();
            format_line(&mut out, &LogField::ALL, &ex, &ctx);
            black_box(out.len())
        })
    });
}

/// What `lifecycle::finish` and the connection loop count per proxied
/// response: the in-flight gauge up and down, the route's status counter and
/// duration histogram. Each worker thread counts into its own shards of them
/// (`observe::per_worker`).
fn count_one(registry: &Registry) {
    let global = &registry.global;
    global.in_flight.add(1);
    registry.unrouted.record(200, Duration::from_micros(480));
    registry.unrouted.duration.observe(Duration::from_micros(350));
    global.in_flight.add(-1);
}

fn metrics(c: &mut Criterion) {
    let registry = Registry::new();
    enter_worker();
    c.bench_function("hot/count-response-metrics-one-worker", |b| {
        b.iter(|| count_one(black_box(&registry)))
    });
    // A second worker counting into the same route at full speed. Before the
    // counters were kept per worker, their cache lines moved between the two
    // cores on every add: 480 ns per response here, against 34 ns alone.
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            enter_worker();
            while !stop.load(Ordering::Relaxed) {
                count_one(&registry);
            }
        });
        c.bench_function("hot/count-response-metrics-two-workers-same-route", |b| {
            b.iter(|| count_one(black_box(&registry)))
        });
        stop.store(true, Ordering::Relaxed);
    });
}

criterion_group!(benches, bench, metrics);
criterion_main!(benches);
