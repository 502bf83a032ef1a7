//! A counting global allocator proves that lookups and WRR picks allocate nothing.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use plan::reference as support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Per thread: the test harness allocates on its own threads meanwhile.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|c| c.set(c.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    let before = allocations();
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
    let allocations = allocations() - before;
    assert_eq!(hits, 5000);
    assert_eq!(allocations, 0, "lookups and picks allocated {allocations} times");
}
