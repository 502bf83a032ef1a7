//! Why a policy call failed, and the counters of one policy
//! (`gateway_policy_calls_total{policy}`, `gateway_policy_errors_total{policy,kind}`).
//! A failure is also said in the gateway's own log, at most once per policy
//! and kind per second.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a policy call failed (the `kind` label of `gateway_policy_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Trap,
    Timeout,
    Fuel,
    Memory,
    BadPointer,
    BadDecision,
    InitFailed,
}

impl Failure {
    pub const ALL: [Failure; 7] = [
        Failure::Trap,
        Failure::Timeout,
        Failure::Fuel,
        Failure::Memory,
        Failure::BadPointer,
        Failure::BadDecision,
        Failure::InitFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Trap => "trap",
            Failure::Timeout => "timeout",
            Failure::Fuel => "fuel",
            Failure::Memory => "memory",
            Failure::BadPointer => "bad_pointer",
            Failure::BadDecision => "bad_decision",
            Failure::InitFailed => "init_failed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Counters of one policy, shared by every generation that has a policy of
/// that name (so counts survive reloads).
#[derive(Debug)]
pub struct PolicyStats {
    pub name: String,
    pub calls: AtomicU64,
    pub failures: [AtomicU64; Failure::ALL.len()],
    /// Per kind, the unix second of the last log line (high bits) and the
    /// failures not logged since (low [`SUPPRESSED_BITS`] bits).
    logged: [AtomicU64; Failure::ALL.len()],
}

const SUPPRESSED_BITS: u32 = 24;
const SUPPRESSED_MAX: u64 = (1 << SUPPRESSED_BITS) - 1;

impl PolicyStats {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            calls: AtomicU64::new(0),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
            logged: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Counts a failure, and logs it at `warn` unless a line for this kind
    /// went out this second (the next line says how many were not logged).
    pub fn failed(&self, f: Failure) {
        self.failures[f.index()].fetch_add(1, Ordering::Relaxed);
        if let Some(suppressed) = self.admit(f, unix_second()) {
            tracing::warn!(
                policy = self.name.as_str(),
                kind = f.as_str(),
                suppressed,
                "policy failed; its onError decides"
            );
        }
    }

    /// `Some(failures not logged since the last line)` when a line may go out
    /// at second `now`; `None` counts this one as not logged.
    fn admit(&self, f: Failure, now: u64) -> Option<u64> {
        let mut admitted = None;
        let _ = self.logged[f.index()].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |packed| {
            let (second, suppressed) = (packed >> SUPPRESSED_BITS, packed & SUPPRESSED_MAX);
            if second == now {
                admitted = None;
                Some((packed & !SUPPRESSED_MAX) | (suppressed + 1).min(SUPPRESSED_MAX))
            } else {
                admitted = Some(suppressed);
                Some(now << SUPPRESSED_BITS)
            }
        });
        admitted
    }

    pub fn failures_of(&self, f: Failure) -> u64 {
        self.failures[f.index()].load(Ordering::Relaxed)
    }
}

/// The current unix second: the clock of the rate limits below.
pub(crate) fn unix_second() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A per-second allowance of log lines, shared by every instance of a
/// policy: a policy that logs on every request (or in a loop) cannot flood
/// the gateway's stderr, whose writes a worker waits for.
#[derive(Debug, Default)]
pub struct LineLimit {
    /// The unix second (high 32 bits), the lines let out in it (next 8) and
    /// the lines held back since the last one let out (low 24).
    packed: AtomicU64,
}

impl LineLimit {
    /// Lines a policy may log per second.
    pub const PER_SECOND: u64 = 100;

    /// `Some(lines held back since the last one let out)` when a line may go
    /// out at second `now`; `None` holds this one back.
    pub fn admit(&self, now: u64) -> Option<u64> {
        const HELD: u64 = (1 << 24) - 1;
        let mut admitted = None;
        let _ = self.packed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
            let (second, lines, held) = (p >> 32, (p >> 24) & 0xff, p & HELD);
            let now = now & 0xffff_ffff;
            if second != now {
                admitted = Some(held);
                Some(now << 32 | 1 << 24)
            } else if lines < Self::PER_SECOND {
                admitted = Some(held);
                Some(now << 32 | (lines + 1) << 24)
            } else {
                admitted = None;
                Some(now << 32 | lines << 24 | (held + 1).min(HELD))
            }
        });
        admitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_lines_a_second_and_the_count_of_the_rest() {
        let limit = LineLimit::default();
        for _ in 0..LineLimit::PER_SECOND {
            assert_eq!(limit.admit(7), Some(0));
        }
        assert_eq!(limit.admit(7), None);
        assert_eq!(limit.admit(7), None);
        assert_eq!(limit.admit(8), Some(2), "the next second's first line says 2 were held");
        assert_eq!(limit.admit(8), Some(0));
    }

    #[test]
    fn one_line_per_kind_and_second_counting_the_rest() {
        let stats = PolicyStats::new("p");
        assert_eq!(stats.admit(Failure::Trap, 100), Some(0));
        assert_eq!(stats.admit(Failure::Trap, 100), None);
        assert_eq!(stats.admit(Failure::Trap, 100), None);
        // Another kind has its own second.
        assert_eq!(stats.admit(Failure::Fuel, 100), Some(0));
        assert_eq!(stats.admit(Failure::Trap, 101), Some(2));
        assert_eq!(stats.admit(Failure::Trap, 101), None);
        assert_eq!(stats.admit(Failure::Trap, 105), Some(1));
    }
}
