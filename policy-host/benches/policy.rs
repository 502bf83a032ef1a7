//! Policy call cost: a warm call (one host call inside) and a fresh
//! instantiation from the pooling allocator.

#![allow(clippy::expect_used, clippy::unwrap_used)] // bench code: a failed expectation is a failed run

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;

use policy_host::{Policies, PolicyStats, RequestView, WarmSet};

const MODULE: &str = r#"(module
  (import "hook" "request_field" (func $field (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32)
    (drop (call $field (i32.const 3) (i32.const 0) (i32.const 256)))
    (i32.const 0)))"#;

fn policies() -> Policies {
    let dir = std::env::temp_dir().join(format!("gateway-policy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("noop.wasm"), wat::parse_str(MODULE).expect("wat")).expect("write");
    let yaml = "routes:\n  - { name: r, pathPrefix: /, cluster: c, policies: [p] }\nclusters:\n  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }\npolicies:\n  - { name: p, module: noop.wasm }\n";
    let compiled = compiler::compile_str("bench.yaml", yaml, &dir);
    let plan = compiled.plan.expect("valid");
    Policies::new(&plan, 1, 64, |n| Arc::new(PolicyStats::new(n)))
        .expect("loads")
        .expect("has policies")
}

fn bench(c: &mut Criterion) {
    let policies = policies();
    let mut view = RequestView::default();
    view.method.extend_from_slice(b"GET");
    view.path.extend_from_slice(b"/v1/users/42");
    let mut warm = WarmSet::default();
    warm.call(&policies, 0, &mut view).expect("first call");
    c.bench_function("policy/warm-call-one-host-call", |b| {
        b.iter(|| black_box(warm.call(&policies, 0, &mut view).is_ok()))
    });
    c.bench_function("policy/instantiate-and-call", |b| {
        b.iter(|| {
            let mut fresh = WarmSet::default();
            black_box(fresh.call(&policies, 0, &mut view).is_ok())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
