//! Counters that every worker writes, kept apart per worker.
//!
//! A counter shared by all workers moves its cache line from core to core on
//! every add: measured with two threads counting responses into one route,
//! 480 ns per response against 34 ns for one thread alone (`cargo bench -p
//! gateway --bench hot_path -- count-response`). So each hot counter has one
//! shard per worker thread, cache-line aligned and allocated the first time
//! that worker counts into it; `/metrics` sums the shards.
//!
//! Shards are still atomics written with `fetch_add`: a thread that is not a
//! worker (or a worker beyond the shard count, which wraps around) shares a
//! shard and stays exact; it only pays the sharing again.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

/// At most this many shards per counter: past it workers share (a counter
/// costs 16 bytes per shard before any worker counts into it).
const MAX_SHARDS: usize = 16;

thread_local! {
    /// The calling thread's shard index, below [`shard_count`] (0 until it
    /// calls [`enter_worker`]).
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

/// Gives the calling worker thread its own shard of every counter.
pub fn enter_worker() {
    SHARD.set(NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % shard_count());
}

/// Shards per counter: one per core, within [`MAX_SHARDS`].
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, std::num::NonZero::get)
            .min(MAX_SHARDS)
    })
}

/// One `T` per worker, summed by whoever reads it.
#[derive(Debug)]
pub struct PerWorker<T> {
    shards: Box<[OnceLock<Box<T>>]>,
}

impl<T> Default for PerWorker<T> {
    fn default() -> Self {
        Self {
            shards: (0..shard_count()).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl<T: Default> PerWorker<T> {
    /// The calling thread's shard.
    pub fn mine(&self) -> &T {
        // Every counter has `shard_count()` shards, and the index is below it.
        let shard = self.shards.get(SHARD.with(Cell::get)).unwrap_or(&self.shards[0]);
        shard.get_or_init(Box::default)
    }
}

impl<T> PerWorker<T> {
    /// Every shard some thread has counted into.
    pub fn each(&self) -> impl Iterator<Item = &T> {
        self.shards.iter().filter_map(OnceLock::get).map(|b| &**b)
    }
}

/// A gauge raised and lowered by the worker that holds what it counts (a
/// connection's exchange lives on one worker).
#[derive(Debug, Default)]
pub struct Gauge(PerWorker<Line<AtomicI64>>);

impl Gauge {
    pub fn add(&self, n: i64) {
        self.0.mine().0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.each().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }
}

/// A value alone on its cache line(s).
#[derive(Debug, Default)]
#[repr(align(64))]
pub struct Line<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_counts_into_the_same_total() {
        let gauge = Gauge::default();
        std::thread::scope(|s| {
            for _ in 0..(shard_count() + 3) {
                s.spawn(|| {
                    enter_worker();
                    for _ in 0..1_000 {
                        gauge.add(2);
                    }
                    gauge.add(-1_000);
                });
            }
        });
        // Threads beyond the shard count share shards and still add up.
        assert_eq!(gauge.get(), 1_000 * (shard_count() as i64 + 3));
        assert!(gauge.0.each().count() <= shard_count());
    }

    #[test]
    fn workers_with_distinct_indexes_count_on_distinct_shards() {
        let gauge = Gauge::default();
        let workers = shard_count();
        std::thread::scope(|s| {
            for i in 0..workers {
                let gauge = &gauge;
                s.spawn(move || {
                    SHARD.set(i % shard_count());
                    gauge.add(1);
                });
            }
        });
        assert_eq!(gauge.get(), workers as i64);
        assert_eq!(gauge.0.each().count(), workers);
        assert!(gauge.0.each().all(|s| s.0.load(Ordering::Relaxed) == 1));
    }
}
