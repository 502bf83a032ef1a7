//! Every way a policy can fail, with WAT fixtures: each is a `Failure` of
//! the right kind, counted, and the instance is never reused; the hook ABI
//! the linker offers is exactly `plan::abi`'s table.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use policy_host::{Decision, Failure, Policies, PolicyStats, RequestView, WarmSet};

/// Loads one policy from WAT, with `limits` (YAML flow map) and clusters a, b.
fn load(wat: &str, limits: &str) -> (Policies, Arc<PolicyStats>) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "policy-host-failures-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("p.wasm"), wat::parse_str(wat).expect("wat")).expect("write");
    let yaml = format!(
        "routes:\n  - {{ name: r, pathPrefix: /, cluster: a, policies: [p] }}\nclusters:\n  - {{ name: a, upstreams: [{{ url: \"http://127.0.0.1:9\" }}] }}\n  - {{ name: b, upstreams: [{{ url: \"http://127.0.0.1:9\" }}] }}\npolicies:\n  - {{ name: p, module: p.wasm, clusters: [a, b], limits: {limits} }}\n"
    );
    let compiled = compiler::compile_str("gateway.yaml", &yaml, &dir);
    let plan = compiled.plan.unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    let stats = Arc::new(PolicyStats::new("p"));
    let s = stats.clone();
    let policies = Policies::new(&plan, 1, 8, move |_| s.clone())
        .expect("loads")
        .expect("has policies");
    (policies, stats)
}

fn module(body: &str) -> String {
    format!(
        r#"(module
  (import "hook" "request_field" (func $field (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hook_abi_v1"))
  {body})"#
    )
}

fn fails(wat: &str, limits: &str, expected: Failure) {
    let (policies, stats) = load(wat, limits);
    let mut warm = WarmSet::default();
    let mut view = RequestView::default();
    for call in 0..2 {
        match warm.call(&policies, 0, &mut view) {
            Err(f) => assert_eq!(f, expected, "call {call}"),
            Ok(d) => panic!("call {call}: expected {expected:?}, got {d:?}"),
        }
    }
    assert_eq!(stats.failures_of(expected), 2);
}

#[test]
fn a_trap_is_a_trap() {
    fails(
        &module(r#"(func (export "on_request") (result i32) unreachable)"#),
        "{}",
        Failure::Trap,
    );
}

#[test]
fn a_loop_is_cut_at_its_cpu_time_limit() {
    fails(
        &module(r#"(func (export "on_request") (result i32) (loop (br 0)) (i32.const 0))"#),
        "{ timeoutMs: 5 }",
        Failure::Timeout,
    );
}

#[test]
fn running_out_of_fuel_is_fuel() {
    fails(
        &module(r#"(func (export "on_request") (result i32) (loop (br 0)) (i32.const 0))"#),
        "{ fuel: 10000, timeoutMs: 1000 }",
        Failure::Fuel,
    );
}

#[test]
fn growing_past_the_memory_limit_is_memory() {
    fails(
        &module(
            r#"(func (export "on_request") (result i32)
                 (if (i32.lt_s (memory.grow (i32.const 4)) (i32.const 0)) (then unreachable))
                 (i32.const 0))"#,
        ),
        "{ memoryPages: 2 }",
        Failure::Memory,
    );
}

#[test]
fn a_pointer_outside_memory_is_bad_pointer() {
    fails(
        &module(
            r#"(func (export "on_request") (result i32) (call $field (i32.const 0) (i32.const 65530) (i32.const 100)))"#,
        ),
        "{}",
        Failure::BadPointer,
    );
}

#[test]
fn decisions_out_of_range_are_bad_decisions() {
    // Route to clusters[2] of a two-cluster list; a code below 0; respond
    // without a prepared response.
    for code in [4, -1, 1] {
        fails(
            &module(&format!(
                r#"(func (export "on_request") (result i32) (i32.const {code}))"#
            )),
            "{}",
            Failure::BadDecision,
        );
    }
}

#[test]
fn a_failed_init_is_init_failed() {
    fails(
        &module(
            r#"(func (export "hook_init") (result i32) (i32.const 1))
               (func (export "on_request") (result i32) (i32.const 0))"#,
        ),
        "{}",
        Failure::InitFailed,
    );
}

#[test]
fn a_failed_instance_is_replaced_and_a_healthy_one_reused() {
    // A global counts calls: it restarts at 1 only on a fresh instance.
    let wat = module(
        r#"(global $calls (mut i32) (i32.const 0))
           (func (export "on_request") (result i32)
             (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
             (if (i32.eq (global.get $calls) (i32.const 2)) (then unreachable))
             (i32.add (i32.const 2) (i32.sub (global.get $calls) (i32.const 1))))"#,
    );
    let (policies, _) = load(&wat, "{}");
    let mut warm = WarmSet::default();
    let mut view = RequestView::default();
    // 1st call: clusters[0]; 2nd: traps; 3rd: a fresh instance, clusters[0] again.
    assert!(matches!(warm.call(&policies, 0, &mut view), Ok(Decision::Route(0))));
    assert_eq!(warm.call(&policies, 0, &mut view).err(), Some(Failure::Trap));
    assert!(matches!(warm.call(&policies, 0, &mut view), Ok(Decision::Route(0))));
}

#[test]
fn the_linker_offers_exactly_the_abi_table() {
    let mut linked: Vec<(String, usize, usize)> = policy_host::linked_functions()
        .expect("links")
        .into_iter()
        .map(|(module, name, params, results)| {
            assert_eq!(module, plan::abi::HOST_MODULE);
            (name, params, results)
        })
        .collect();
    let mut table: Vec<(String, usize, usize)> = plan::abi::HOST_FUNCTIONS
        .iter()
        .map(|&(n, p, r)| (n.to_owned(), p, r))
        .collect();
    linked.sort();
    table.sort();
    assert_eq!(linked, table);
}
