//! Plan lookup at 1 / 100 / 10,000 routes (mixed exact, wildcard and catch-all
//! hosts, prefixes up to 6 segments) against a naive linear scan; WRR picks from
//! two threads.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use plan::reference as support;

/// `n` routes: a third exact hosts, a third wildcards, a third catch-all, with
/// prefixes of 1 to 6 segments.
pub fn routes(n: usize) -> Vec<(Option<String>, String)> {
    (0..n)
        .map(|i| {
            let host = match i % 3 {
                0 => Some(format!("svc{}.example.com", i / 3)),
                1 => Some(format!("*.t{}.example.com", i / 3)),
                _ => None,
            };
            let depth = 1 + i % 6;
            let prefix: String = (0..depth).map(|d| format!("/s{}", (i + d) % 97)).collect();
            (host, format!("{prefix}/r{i}"))
        })
        .collect()
}

fn requests(n: usize) -> Vec<(String, String)> {
    (0..64)
        .map(|k| {
            let i = (k * 7919) % n;
            let (host, prefix) = &routes(n)[i];
            let host = match host {
                Some(h) => h.replace('*', "a.b"),
                None => "unknown.test".to_owned(),
            };
            (host, format!("{prefix}/deeper/path"))
        })
        .collect()
}

fn bench_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("lookup");
    for n in [1usize, 100, 10_000] {
        let table = routes(n);
        let refs: Vec<(Option<&str>, &str)> = table.iter().map(|(h, p)| (h.as_deref(), p.as_str())).collect();
        let router = support::router(&refs);
        let reqs = requests(n);
        let mut k = 0;
        group.bench_function(format!("trie/{n}"), |b| {
            b.iter(|| {
                let (h, p) = &reqs[k % reqs.len()];
                k += 1;
                black_box(router.lookup(h, p))
            })
        });
        let normalized: Vec<(String, String)> = router
            .plan()
            .routes
            .iter()
            .map(|r| (r.host.clone(), r.path_prefix.clone()))
            .collect();
        group.bench_function(format!("linear-scan/{n}"), |b| {
            b.iter(|| {
                let (h, p) = &reqs[k % reqs.len()];
                k += 1;
                black_box(support::reference_lookup(&normalized, h, p))
            })
        });
    }
    group.finish();
}

fn bench_wrr(c: &mut Criterion) {
    let picker = std::sync::Arc::new(plan::WrrPicker::new(
        &[5, 1, 1],
        &plan::smooth_wrr_sequence(&[5, 1, 1]).unwrap_or_default(),
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let other = {
        let (p, s) = (picker.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                black_box(p.pick());
            }
        })
    };
    c.bench_function("wrr/pick-contended-2-threads", |b| b.iter(|| black_box(picker.pick())));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = other.join();
}

criterion_group!(benches, bench_lookup, bench_wrr);

fn bench_calibrate(c: &mut Criterion) {
    let mut m = std::collections::HashMap::new();
    for i in 0..1000 {
        m.insert(format!("label{i}"), i);
    }
    let keys: Vec<String> = (0..64).map(|i| format!("label{}", i * 13)).collect();
    let mut k = 0;
    c.bench_function("calibrate/std-hashmap-get", |b| {
        b.iter(|| {
            k += 1;
            black_box(m.get(keys[k & 63].as_str()))
        })
    });
}

criterion_group!(calibrate, bench_calibrate);

criterion_main!(benches, calibrate);
