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
//! thread but those that called [`exclude_this_thread`]).
//!
//! This crate is one of the two places with `unsafe` (ARCHITECTURE.md): a
//! `GlobalAlloc` impl is unsafe by definition. It delegates to `System`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The allocator: `System`, counting allocations and reallocations.
#[derive(Debug)]
pub struct Counting;

static PROCESS: AtomicUsize = AtomicUsize::new(0);

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

/// Allocations made by the calling thread so far.
pub fn thread_allocations() -> usize {
    THREAD.with(Cell::get)
}

/// Allocations made by every thread not excluded, so far.
pub fn process_allocations() -> usize {
    PROCESS.load(Ordering::Relaxed)
}

/// Leaves the calling thread's allocations out of [`process_allocations`].
pub fn exclude_this_thread() {
    EXCLUDED.with(|e| e.set(true));
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
