//! Regression (issue 11, item 9): warm policy instances were keyed by the
//! address of their generation's policy set. After reloads a new set can sit
//! at an old one's address, and a worker then ran the old generation's
//! instances under the new plan: a "route to cluster i" decision indexed the
//! new plan's clusters (out of bounds when it has fewer) and the old epoch
//! ticker no longer limited the call. Keyed by generation number now.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use policy_host::{Decision, Policies, RequestView, WarmSet};
use std::sync::Arc;

use policy_host::PolicyStats;

/// A policy that routes to its third cluster.
const ROUTE_TO_THIRD: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 4)))"#;

/// A policy that lets the request through.
const CONTINUE: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32) (i32.const 0)))"#;

fn policies(generation: u64, module: &str, clusters: &[&str]) -> Policies {
    let dir = std::env::temp_dir().join(format!("gateway-generations-{}-{generation}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join("p.wasm"), wat::parse_str(module).expect("wat")).expect("write");
    let cluster_yaml: String = clusters
        .iter()
        .map(|c| format!("  - {{ name: {c}, upstreams: [{{ url: \"http://127.0.0.1:9\" }}] }}\n"))
        .collect();
    let yaml = format!(
        "routes:\n  - {{ name: r, pathPrefix: /, cluster: {first}, policies: [p] }}\nclusters:\n{cluster_yaml}policies:\n  - {{ name: p, module: p.wasm, clusters: [{list}] }}\n",
        first = clusters[0],
        list = clusters.join(", "),
    );
    let compiled = compiler::compile_str("gateway.yaml", &yaml, &dir);
    let plan = compiled.plan.unwrap_or_else(|| panic!("{:?}", compiled.diagnostics));
    Policies::new(&plan, generation, 16, |n| Arc::new(PolicyStats::new(n)))
        .expect("loads")
        .expect("has policies")
}

#[test]
fn warm_instances_never_outlive_their_generation_even_at_the_same_address() {
    let mut view = RequestView::default();
    let mut warm = WarmSet::default();
    // One slot, reused in place: the next generation's policy set sits at
    // exactly the old one's address, as it can after two reloads.
    let mut slot = Box::new(policies(1, ROUTE_TO_THIRD, &["a", "b", "c"]));
    let address = std::ptr::addr_of!(*slot) as usize;
    assert!(matches!(warm.call(&slot, 0, &mut view), Ok(Decision::Route(2))));

    *slot = policies(2, CONTINUE, &["a"]);
    assert_eq!(std::ptr::addr_of!(*slot) as usize, address);
    assert!(
        matches!(warm.call(&slot, 0, &mut view), Ok(Decision::Continue)),
        "an old generation's instance ran under the new plan"
    );

    // And back to routing, with fewer clusters than the first plan had.
    *slot = policies(3, ROUTE_TO_THIRD, &["x", "y", "z"]);
    assert!(matches!(warm.call(&slot, 0, &mut view), Ok(Decision::Route(2))));
}
