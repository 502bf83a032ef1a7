//! Smooth weighted round robin (NGINX's algorithm), precomputed into a table.
//!
//! The sequence repeats every `sum(weights / gcd)` picks, so the compiler stores one
//! period and the gateway reads it with one atomic counter shared by all threads:
//! N consecutive requests follow the sequence exactly. Periods longer than
//! [`MAX_TABLE_LEN`] are not stored; the picker then runs the same algorithm live
//! under a mutex, which yields the identical sequence.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Longest WRR period stored in a plan (entries are `u32`, so 256 KiB per cluster).
pub const MAX_TABLE_LEN: u64 = 65_536;

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Weights divided by their GCD; the period of the sequence is their sum.
pub fn reduced_weights(weights: &[u32]) -> Vec<u64> {
    let g = weights.iter().fold(0u64, |g, &w| gcd(g, u64::from(w))).max(1);
    weights.iter().map(|&w| u64::from(w) / g).collect()
}

/// One step of smooth WRR over `current` (same length as `weights`): the index
/// picked. Ties go to the first in config order.
fn step(weights: &[u64], current: &mut [i128]) -> usize {
    let mut total = 0i128;
    let mut best = 0;
    for (i, &w) in weights.iter().enumerate() {
        total += i128::from(w);
        current[i] += i128::from(w);
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

/// One full period of the smooth-WRR sequence over `weights` (reduced by their GCD),
/// or `None` when the period exceeds [`MAX_TABLE_LEN`].
pub fn smooth_wrr_sequence(weights: &[u32]) -> Option<Vec<u32>> {
    let reduced = reduced_weights(weights);
    let period: u64 = reduced.iter().sum();
    if period == 0 || period > MAX_TABLE_LEN {
        return None;
    }
    let mut current = vec![0i128; reduced.len()];
    Some((0..period).map(|_| step(&reduced, &mut current) as u32).collect())
}

/// Picks upstream indices for one cluster; shared by every worker thread.
#[derive(Debug)]
pub enum WrrPicker {
    Table {
        sequence: Box<[u32]>,
        position: AtomicU64,
    },
    Live {
        weights: Box<[u64]>,
        current: Mutex<Vec<i128>>,
    },
}

impl WrrPicker {
    /// A picker for `weights`, reading `table` when the plan stored one.
    pub fn new(weights: &[u32], table: &[u32]) -> Self {
        if table.is_empty() {
            let weights: Box<[u64]> = reduced_weights(weights).into();
            let current = Mutex::new(vec![0; weights.len()]);
            WrrPicker::Live { weights, current }
        } else {
            WrrPicker::Table {
                sequence: table.into(),
                position: AtomicU64::new(0),
            }
        }
    }

    /// The next upstream index; allocation-free and lock-free for table pickers.
    #[inline]
    pub fn pick(&self) -> usize {
        match self {
            WrrPicker::Table { sequence, position } => {
                let n = position.fetch_add(1, Ordering::Relaxed);
                sequence[(n % sequence.len() as u64) as usize] as usize
            }
            WrrPicker::Live { weights, current } => {
                // A poisoned lock only means another thread panicked mid-pick; the
                // state is still a valid WRR state.
                let mut current = current.lock().unwrap_or_else(|e| e.into_inner());
                step(weights, &mut current)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(weights: &[u32], n: usize) -> String {
        let picker = WrrPicker::new(weights, &smooth_wrr_sequence(weights).unwrap_or_default());
        (0..n).map(|_| (b'a' + picker.pick() as u8) as char).collect()
    }

    #[test]
    fn sequences_match_nginx() {
        let cases: [(&[u32], usize, &str); 6] = [
            (&[5, 1, 1], 14, "aabacaaaabacaa"),
            (&[1], 3, "aaa"),
            (&[10, 2, 2], 7, "aabacaa"),
            (&[1, 1], 4, "abab"),
            (&[3, 1], 8, "aabaaaba"),
            (&[2, 3], 5, "babab"),
        ];
        for (weights, n, expected) in cases {
            assert_eq!(letters(weights, n), expected, "weights {weights:?}");
        }
    }

    #[test]
    fn table_is_one_reduced_period() {
        assert_eq!(smooth_wrr_sequence(&[10, 2, 2]).map(|s| s.len()), Some(7));
        assert_eq!(smooth_wrr_sequence(&[1_000_000, 1]).map(|s| s.len()), None);
    }

    #[test]
    fn live_picker_follows_the_same_sequence_for_large_weights() {
        let weights = [70_000, 30_001];
        let live = WrrPicker::new(&weights, &[]);
        let reduced = reduced_weights(&weights);
        let mut current = vec![0i128; 2];
        for _ in 0..1000 {
            assert_eq!(live.pick(), step(&reduced, &mut current));
        }
        let mut counts = [0u32; 2];
        for _ in 0..100_001 {
            counts[live.pick()] += 1;
        }
        // Over one full period (1000 + 100_001 picks span more than one) the split
        // follows the weights.
        assert!(counts[0] > counts[1] * 2, "{counts:?}");
    }
}
