//! A counting global allocator proves that lookups (every matcher and
//! condition kind), backend splits and WRR picks allocate nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use plan::reference as support;
use plan::{OwnedRequest, PathMatch};
use support::{Spec, Val};

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

#[test]
fn lookup_normalize_and_pick_allocate_nothing() {
    let mut specs = vec![
        Spec::new(Some("api.example.com"), PathMatch::Prefix("/v1".into())),
        Spec::new(Some("api.example.com"), PathMatch::Prefix("/v1/admin".into())),
        Spec::new(Some("*.example.com"), PathMatch::Prefix("/".into())),
        Spec::new(Some("*.eu.example.com"), PathMatch::Prefix("/x".into())),
        Spec::new(None, PathMatch::Prefix("/static".into())),
        Spec::new(None, PathMatch::Prefix("/".into())),
        Spec::new(None, PathMatch::Exact("/health".into())),
        Spec::new(None, PathMatch::Regex("/users/[0-9]+".into())),
        Spec::new(None, PathMatch::Regex("/users/[0-9]+/(posts|likes)".into())),
    ];
    let mut conditional = Spec::new(None, PathMatch::Prefix("/static".into()));
    conditional.methods = vec!["GET".into(), "HEAD".into()];
    conditional.headers = vec![
        ("X-Version".into(), Val::Exact("two".into())),
        ("Accept".into(), Val::Regex("text/.*".into())),
    ];
    conditional.query = vec![
        ("v".into(), Val::Exact("a b".into())),
        ("n".into(), Val::Regex("[0-9]+".into())),
    ];
    specs.push(conditional);
    let router = support::router_of(&specs);
    let request = OwnedRequest {
        method: "GET".into(),
        headers: vec![
            ("x-version".into(), "two".into()),
            ("Accept".into(), "text/html".into()),
            ("accept".into(), "text/plain".into()),
        ],
        query: Some("v=a%20b&n=42&v=x".into()),
    };
    let requests = [
        ("api.example.com:8080", "/v1/admin/users?x=1"),
        ("API.EXAMPLE.COM", "/v1"),
        ("a.b.eu.example.com", "/y/z"),
        ("nowhere.test", "/static/app.js"),
        ("nowhere.test", "/"),
        ("nowhere.test", "/health"),
        ("nowhere.test", "/users/42"),
        ("nowhere.test", "/users/42;p=1/likes"),
    ];
    let mut hits = 0;
    let before = alloc_counter::thread_allocations();
    for _ in 0..1000 {
        for (host, target) in requests {
            let path = target.split_once('?').map_or(target, |(p, _)| p);
            let normalized = plan::normalize_path(path).expect("absolute");
            if let Some(m) = router.lookup(host, &normalized, &request) {
                hits += 1;
                let cluster = router.cluster_for(m.route).expect("a cluster route");
                std::hint::black_box(router.pick(cluster));
            }
        }
    }
    let allocations = alloc_counter::thread_allocations() - before;
    assert_eq!(hits, 8000);
    assert_eq!(allocations, 0, "lookups and picks allocated {allocations} times");
    // The conditional route did win its requests (the conditions were run).
    let m = router.lookup("h", "/static/x", &request).expect("routed");
    assert_eq!(m.route, 9);
}
