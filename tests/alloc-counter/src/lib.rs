//! A counting global allocator, for the tests that pin allocation budgets
//! (`plan/tests/alloc.rs`, `http1/tests/alloc.rs`, `gateway/tests/alloc.rs`,
//! `gateway/tests/request_alloc.rs`). A test crate installs it with
//!
//! ```text
//! #[global_allocator]
//! static ALLOCATOR: alloc_counter::Counting = alloc_counter::Counting;
//! ```
//!
//! and reads [`thread_allocations`] (this thread only: the test harness
//! allocates on its own threads meanwhile) or [`process_allocations`] (every
//! thread but those that called [`exclude_this_thread`]), or the bytes those
//! threads hold, [`process_live_bytes`].
//!
//! This crate is one of the two places with `unsafe` (ARCHITECTURE.md): a
//! `GlobalAlloc` impl is unsafe by definition. It delegates to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// The allocator: `System`, counting allocations and reallocations.
#[derive(Debug)]
pub struct Counting;

static PROCESS: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);

thread_local! {
    static THREAD: Cell<usize> = const { Cell::new(0) };
    static EXCLUDED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    THREAD.with(|c| c.set(c.get() + 1));
    if !EXCLUDED.with(Cell::get) {
        PROCESS.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts `bytes` more (or, negative, fewer) held, on threads not excluded.
fn hold(bytes: isize) {
    if !EXCLUDED.with(Cell::get) {
        LIVE.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// Allocations made by the calling thread so far.
pub fn thread_allocations() -> usize {
    THREAD.with(Cell::get)
}

/// Allocations made by every thread not excluded, so far.
pub fn process_allocations() -> usize {
    PROCESS.load(Ordering::Relaxed)
}

/// Bytes allocated and not yet freed by every thread not excluded (a block
/// freed on another thread than the one that allocated it is counted where
/// each happened).
pub fn process_live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Leaves the calling thread's allocations out of [`process_allocations`]
/// and [`process_live_bytes`].
pub fn exclude_this_thread() {
    EXCLUDED.with(|e| e.set(true));
}

// SAFETY: delegates to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        hold(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        hold(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        hold(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
