//! Why a policy call failed, and the counters of one policy
//! (`gateway_policy_calls_total{policy}`, `gateway_policy_errors_total{policy,kind}`).

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
}

impl PolicyStats {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            calls: AtomicU64::new(0),
            failures: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub fn failed(&self, f: Failure) {
        self.failures[f.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn failures_of(&self, f: Failure) -> u64 {
        self.failures[f.index()].load(Ordering::Relaxed)
    }
}
