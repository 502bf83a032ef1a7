//! Plan lookup at 1 / 100 / 10,000 routes (mixed exact, wildcard and catch-all
//! hosts, prefixes up to 6 segments) against a naive linear scan; one
//! benchmark per matcher and condition kind; WRR picks from two threads.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

use plan::reference as support;
use plan::{OwnedRequest, PathMatch};
use support::{Spec, Val};

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
        let get = OwnedRequest {
            method: "GET".into(),
            ..OwnedRequest::default()
        };
        let mut k = 0;
        group.bench_function(format!("trie/{n}"), |b| {
            b.iter(|| {
                let (h, p) = &reqs[k % reqs.len()];
                k += 1;
                black_box(router.lookup(h, p, &get))
            })
        });
        let normalized: Vec<(String, String)> = router
            .plan()
            .routes
            .iter()
            .map(|r| (r.hosts[0].clone(), r.path.as_str().to_owned()))
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

/// One lookup per matcher and condition kind, each among many routes of its
/// kind where that matters.
fn bench_kinds(c: &mut Criterion) {
    let mut group = c.benchmark_group("kind");
    let get = OwnedRequest {
        method: "GET".into(),
        headers: vec![
            ("x-version".into(), "v42".into()),
            ("accept".into(), "text/html".into()),
        ],
        query: Some("page=7&sort=asc".into()),
    };
    let many =
        |n: usize, f: &dyn Fn(usize) -> PathMatch| -> Vec<Spec> { (0..n).map(|i| Spec::new(None, f(i))).collect() };
    let cases: Vec<(&str, Vec<Spec>, &str)> = vec![
        (
            "prefix-10000",
            many(10_000, &|i| PathMatch::Prefix(format!("/svc{i}/items"))),
            "/svc9999/items/123",
        ),
        (
            "exact-10000",
            many(10_000, &|i| PathMatch::Exact(format!("/svc{i}/items"))),
            "/svc9999/items",
        ),
        (
            "regex-1",
            many(1, &|i| PathMatch::Regex(format!("/svc{i}/items/[0-9]+"))),
            "/svc0/items/123",
        ),
        (
            "regex-1000-last",
            many(1000, &|i| PathMatch::Regex(format!("/svc{i}/items/[0-9]+"))),
            "/svc999/items/123",
        ),
    ];
    let conditional = |f: &dyn Fn(&mut Spec)| {
        let mut specs = many(100, &|i| PathMatch::Prefix(format!("/svc{i}")));
        let mut s = Spec::new(None, PathMatch::Prefix("/".into()));
        f(&mut s);
        specs.push(s);
        specs
    };
    let cases = cases.into_iter().chain([
        (
            "method",
            conditional(&|s| s.methods = vec!["POST".into(), "GET".into()]),
            "/x",
        ),
        (
            "header-exact",
            conditional(&|s| s.headers = vec![("X-Version".into(), Val::Exact("v42".into()))]),
            "/x",
        ),
        (
            "header-regex",
            conditional(&|s| s.headers = vec![("Accept".into(), Val::Regex("text/(html|plain)".into()))]),
            "/x",
        ),
        (
            "query-exact",
            conditional(&|s| s.query = vec![("sort".into(), Val::Exact("asc".into()))]),
            "/x",
        ),
        (
            "query-regex",
            conditional(&|s| s.query = vec![("page".into(), Val::Regex("[0-9]+".into()))]),
            "/x",
        ),
    ]);
    for (name, specs, path) in cases {
        let router = support::router_of(&specs);
        assert!(router.lookup("h", path, &get).is_some(), "{name} routes");
        group.bench_function(name, |b| {
            b.iter(|| black_box(router.lookup("h", black_box(path), &get)))
        });
    }
    group.finish();
}

/// The representation choice (ARCHITECTURE.md): one walk of a path through
/// a 1-pattern and a 1,000-pattern DFA, dense vs sparse, with their sizes.
fn bench_dfa_repr(c: &mut Criterion) {
    use regex_automata::dfa::Automaton;
    let mut group = c.benchmark_group("dfa");
    for n in [1usize, 1000] {
        let patterns: Vec<String> = (0..n).map(|i| format!("/svc{i}/items/[0-9]+")).collect();
        let dense = plan::build::compile_dfa(&patterns, 64 << 20).expect("builds");
        let sparse = dense.to_sparse().expect("sparse");
        eprintln!(
            "dfa/{n}: dense {} bytes, sparse {} bytes",
            dense.write_to_len(),
            sparse.write_to_len()
        );
        let path = format!("/svc{}/items/123456", n - 1);
        let start = regex_automata::util::start::Config::new().anchored(regex_automata::Anchored::Yes);
        let walk = |dfa: &dyn Fn(
            regex_automata::util::primitives::StateID,
            u8,
        ) -> regex_automata::util::primitives::StateID,
                    s: regex_automata::util::primitives::StateID| {
            let mut s = s;
            for &b in path.as_bytes() {
                s = dfa(s, b);
            }
            s
        };
        let ds = dense.start_state(&start).expect("start");
        let ss = sparse.start_state(&start).expect("start");
        group.bench_function(format!("dense/{n}"), |b| {
            b.iter(|| black_box(dense.next_eoi_state(walk(&|s, x| dense.next_state(s, x), ds))))
        });
        group.bench_function(format!("sparse/{n}"), |b| {
            b.iter(|| black_box(sparse.next_eoi_state(walk(&|s, x| sparse.next_state(s, x), ss))))
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

criterion_group!(benches, bench_lookup, bench_kinds, bench_dfa_repr, bench_wrr);

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
