//! Retry budgets (SPEC §15): retries in flight on a route stay within
//! `budgetPercent` of its requests in flight, with a floor of 3 per second
//! (the way Envoy's and Linkerd's retry budgets bound them), so a failing
//! cluster never sees a retry storm. Process-wide, kept across reloads by
//! route name.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::health::now_ms;
use crate::error::kind::ErrorKind;
use crate::observe::per_worker::Gauge;

/// Why an attempt failed in a way a retry may cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Kind(ErrorKind),
    /// The upstream answered with this 5xx status.
    Status(u16),
}

impl Reason {
    /// The `reason` label of `gateway_retries_total`.
    pub fn label(self) -> String {
        match self {
            Reason::Kind(k) => k.as_str().to_owned(),
            Reason::Status(s) => s.to_string(),
        }
    }
}

/// One route's retry accounting, process-wide (kept across reloads by name).
#[derive(Debug, Default)]
pub struct Budget {
    /// Every request of the route raises it: per worker, summed for a retry.
    in_flight: Gauge,
    retries_in_flight: AtomicI64,
    /// The second (of `now_ms`) the floor counts in, and retries taken in it.
    window: AtomicU64,
    window_count: AtomicU32,
    pub exhausted: AtomicU64,
    /// `gateway_retries_total{route,reason}`: retries are rare, a lock is fine.
    pub by_reason: Mutex<BTreeMap<String, u64>>,
}

/// Retries allowed per second whatever the traffic (SPEC §15).
const FLOOR_PER_SECOND: u32 = 3;

/// A request in flight on a route with retries; leaves on drop.
#[derive(Debug)]
pub struct InFlight<'b>(&'b Budget);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.add(-1);
    }
}

/// A retry in flight; leaves on drop.
#[derive(Debug)]
pub struct Ticket<'b>(&'b Budget);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.0.retries_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Budget {
    pub fn enter(&self) -> InFlight<'_> {
        self.in_flight.add(1);
        InFlight(self)
    }

    /// A retry for `reason` if the budget allows it; counted either way.
    pub fn try_retry(&self, percent: u32, reason: Reason) -> Option<Ticket<'_>> {
        let in_flight = self.in_flight.get().max(1);
        let retries = self.retries_in_flight.load(Ordering::Relaxed);
        let within = (retries + 1) * 100 <= in_flight * i64::from(percent);
        let floor = || {
            let second = now_ms() / 1000;
            if self.window.swap(second, Ordering::Relaxed) != second {
                self.window_count.store(0, Ordering::Relaxed);
            }
            self.window_count.fetch_add(1, Ordering::Relaxed) < FLOOR_PER_SECOND
        };
        if !(within || floor()) {
            self.exhausted.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        self.retries_in_flight.fetch_add(1, Ordering::Relaxed);
        let mut map = self.by_reason.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry(reason.label()).or_insert(0) += 1;
        Some(Ticket(self))
    }
}

/// Every route's budget, by route name.
#[derive(Debug, Default)]
pub struct Budgets(Mutex<HashMap<String, Arc<Budget>>>);

impl Budgets {
    pub fn get(&self, route: &str) -> Arc<Budget> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(route.to_owned()).or_default().clone()
    }

    /// Every budget with its route name, sorted (for the exposition).
    pub fn all(&self) -> Vec<(String, Arc<Budget>)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<(String, Arc<Budget>)> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_retries_in_flight_with_a_floor_per_second() {
        let b = Budget::default();
        let _requests: Vec<InFlight<'_>> = (0..10).map(|_| b.enter()).collect();
        // 20% of 10 in flight: 2 retries, then the floor of 3 per second.
        let tickets: Vec<Ticket<'_>> = (0..10).filter_map(|_| b.try_retry(20, Reason::Status(503))).collect();
        assert_eq!(tickets.len(), 5);
        assert_eq!(b.exhausted.load(Ordering::Relaxed), 5);
        drop(tickets);
        assert!(b.try_retry(20, Reason::Kind(ErrorKind::ConnectFailed)).is_some());
    }
}
