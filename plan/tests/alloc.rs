//! A counting global allocator proves that lookups and WRR picks allocate nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use plan::reference as support;

#[global_allocator]
static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;

#[test]
fn lookup_normalize_and_pick_allocate_nothing() {
    let routes = [
        (Some("api.example.com"), "/v1"),
        (Some("api.example.com"), "/v1/admin"),
        (Some("*.example.com"), "/"),
        (Some("*.eu.example.com"), "/x"),
        (None, "/static"),
        (None, "/"),
    ];
    let router = support::router(&routes);
    let requests = [
        ("api.example.com:8080", "/v1/admin/users?x=1"),
        ("API.EXAMPLE.COM", "/v1"),
        ("a.b.eu.example.com", "/y/z"),
        ("nowhere.test", "/static/app.js"),
        ("nowhere.test", "/"),
    ];
    let mut hits = 0;
    let before = alloc_counter::thread_allocations();
    for _ in 0..1000 {
        for (host, target) in requests {
            let path = target.split_once('?').map_or(target, |(p, _)| p);
            let normalized = plan::normalize_path(path).expect("absolute");
            if let Some(m) = router.lookup(host, &normalized) {
                hits += 1;
                std::hint::black_box(router.pick(m.cluster));
            }
        }
    }
    let allocations = alloc_counter::thread_allocations() - before;
    assert_eq!(hits, 5000);
    assert_eq!(allocations, 0, "lookups and picks allocated {allocations} times");
}
