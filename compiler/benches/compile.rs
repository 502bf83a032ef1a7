//! Time to compile and to load a 10,000-route config (targets: < 1 s and < 200 ms).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

/// A config of `n` routes over exact, wildcard and catch-all hosts with nested prefixes.
pub fn config(n: usize) -> String {
    let mut y = String::from("routes:\n");
    for i in 0..n {
        let host = match i % 3 {
            0 => format!("svc{}.example.com", i / 3),
            1 => format!("\"*.t{}.example.com\"", i / 3),
            _ => "\"*\"".to_owned(),
        };
        let prefix: String = (0..1 + i % 6).map(|d| format!("/s{}", (i + d) % 97)).collect();
        let _ = writeln!(
            y,
            "  - {{ name: r{i}, host: {host}, pathPrefix: {prefix}/r{i}, cluster: c{} }}",
            i % 4
        );
    }
    y.push_str("clusters:\n");
    for c in 0..4 {
        let _ = writeln!(
            y,
            "  - name: c{c}\n    upstreams:\n      - {{ url: \"http://127.0.0.1:{}\", weight: 5 }}\n      - {{ url: \"http://127.0.0.1:{}\", weight: 1 }}",
            9000 + c * 2,
            9001 + c * 2
        );
    }
    y
}

fn bench(c: &mut Criterion) {
    let text = config(10_000);
    let mut group = c.benchmark_group("10k-routes");
    group.sample_size(10);
    group.bench_function("compile", |b| {
        b.iter(|| black_box(compiler::compile_str("bench.yaml", &text, Path::new("."))))
    });
    let compiled = compiler::compile_str("bench.yaml", &text, Path::new("."));
    let bytes = plan::encode(
        compiled.plan.as_ref().expect("bench config is valid"),
        &compiled.source_digest,
    );
    group.bench_function("load", |b| {
        b.iter(|| black_box(plan::Router::new(plan::decode(&bytes).expect("decodes")).expect("loads")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
