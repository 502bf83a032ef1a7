//! What the process knows about each upstream (SPEC §15): its active-check
//! verdict, its passive ejection, its resolved addresses and its connection
//! counts; and, per cluster, the smooth-WRR picker over the upstreams that
//! are available now. Process-wide (all workers, all plan generations that
//! keep the upstream), so a reload keeps health, ejections and positions.
//!
//! A pick reads one `ArcSwap`ed table and bumps one atomic: no lock, no
//! allocation. The table is rebuilt only when the available set changes
//! (an ejection, its expiry, a health verdict), and the sequence restarts
//! then (SPEC §5).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;
use plan::{Outlier, WrrPicker, smooth_wrr_sequence};

/// Milliseconds since the process started: the clock of ejections.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// One upstream, process-wide.
#[derive(Debug)]
pub struct UpstreamState {
    pub cluster: String,
    pub url: String,
    /// The active checks' verdict (true when the cluster has none).
    healthy: AtomicBool,
    /// Active checks in a row: successes above 0, failures below.
    streak: AtomicI32,
    /// Passive failures in a row (connect, reset, timeout, 5xx).
    consecutive_failures: AtomicU32,
    /// `now_ms()` until which it is ejected; 0 when not ejected.
    ejected_until: AtomicU64,
    /// Ejections in a row without a success in between (doubling).
    ejections_in_row: AtomicU32,
    pub ejections_total: AtomicU64,
    pub checks_ok: AtomicU64,
    pub checks_failed: AtomicU64,
    /// The addresses its host name resolves to (one for an IP literal).
    pub endpoints: ArcSwap<Vec<SocketAddr>>,
    /// Bumped when the addresses change: pooled connections to the old ones
    /// are not reused.
    pub endpoints_version: AtomicU64,
    next_endpoint: AtomicUsize,
    /// Connections in use, and idle in a pool, across workers.
    pub active: AtomicI64,
    pub idle: AtomicI64,
    /// Open connections (active + idle), for `pool.maxConnections`.
    pub open: AtomicU32,
    /// Woken when a connection to it closes (a waiter may open one).
    pub released: tokio::sync::Notify,
    /// Requests waiting for a slot under `maxConnections`, on any worker:
    /// pools are per worker and the cap per process, so while any waits, the
    /// workers close idle connections to it rather than keep them.
    waiting: AtomicU32,
}

impl UpstreamState {
    pub fn new(cluster: &str, url: &str, endpoints: Vec<SocketAddr>) -> Self {
        Self {
            cluster: cluster.to_owned(),
            url: url.to_owned(),
            healthy: AtomicBool::new(true),
            streak: AtomicI32::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            ejections_in_row: AtomicU32::new(0),
            ejections_total: AtomicU64::new(0),
            checks_ok: AtomicU64::new(0),
            checks_failed: AtomicU64::new(0),
            endpoints: ArcSwap::from_pointee(endpoints),
            endpoints_version: AtomicU64::new(0),
            next_endpoint: AtomicUsize::new(0),
            active: AtomicI64::new(0),
            idle: AtomicI64::new(0),
            open: AtomicU32::new(0),
            released: tokio::sync::Notify::new(),
            waiting: AtomicU32::new(0),
        }
    }

    /// Requests waiting for a slot under `maxConnections`.
    pub fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Relaxed)
    }

    pub fn wait_started(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    pub fn wait_ended(&self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Ejected at `now` (a `now_ms()` reading).
    pub fn is_ejected(&self, now: u64) -> bool {
        self.ejected_until.load(Ordering::Relaxed) > now
    }

    /// Milliseconds of ejection left, if ejected.
    pub fn ejected_for(&self, now: u64) -> Option<u64> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        (until > now).then(|| until - now)
    }

    /// Replaces the resolved addresses (a re-resolution that changed them).
    pub fn set_endpoints(&self, addrs: Vec<SocketAddr>) {
        self.endpoints.store(Arc::new(addrs));
        self.endpoints_version.fetch_add(1, Ordering::Relaxed);
    }

    /// The next address to connect to, round robin over the resolved ones.
    pub fn endpoint(&self) -> Option<SocketAddr> {
        let list = self.endpoints.load();
        if list.is_empty() {
            return None;
        }
        let n = self.next_endpoint.fetch_add(1, Ordering::Relaxed);
        Some(list[n % list.len()])
    }

    /// Records an active check; `true` when the verdict flipped.
    pub fn check(&self, ok: bool, healthy_threshold: u32, unhealthy_threshold: u32) -> bool {
        if ok {
            self.checks_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.checks_failed.fetch_add(1, Ordering::Relaxed);
        }
        let streak = self.streak.load(Ordering::Relaxed);
        let streak = match (ok, streak) {
            (true, s) if s > 0 => s + 1,
            (true, _) => 1,
            (false, s) if s < 0 => s - 1,
            (false, _) => -1,
        };
        self.streak.store(streak, Ordering::Relaxed);
        let was = self.is_healthy();
        let now = if was {
            streak > -(unhealthy_threshold as i32)
        } else {
            streak >= healthy_threshold as i32
        };
        self.healthy.store(now, Ordering::Relaxed);
        now != was
    }
}

/// The picks of one cluster over its available upstreams.
#[derive(Debug)]
struct PickTable {
    /// Which upstreams were available when the table was built.
    available: Vec<bool>,
    /// Index in the picker → upstream index.
    map: Vec<u32>,
    picker: Option<WrrPicker>,
}

impl PickTable {
    fn new(weights: &[u32], available: Vec<bool>) -> Self {
        let map: Vec<u32> = (0..weights.len() as u32).filter(|&i| available[i as usize]).collect();
        let subset: Vec<u32> = map.iter().map(|&i| weights[i as usize]).collect();
        let picker =
            (!map.is_empty()).then(|| WrrPicker::new(&subset, &smooth_wrr_sequence(&subset).unwrap_or_default()));
        Self { available, map, picker }
    }
}

/// One cluster: its upstreams' states and the picker over the available ones.
#[derive(Debug)]
pub struct ClusterHealth {
    pub name: String,
    pub upstreams: Vec<Arc<UpstreamState>>,
    weights: Vec<u32>,
    outlier: Outlier,
    table: ArcSwap<PickTable>,
}

impl ClusterHealth {
    pub fn new(name: &str, upstreams: Vec<Arc<UpstreamState>>, weights: Vec<u32>, outlier: Outlier) -> Self {
        let available = upstreams
            .iter()
            .map(|u| u.is_healthy() && !u.is_ejected(now_ms()))
            .collect();
        let table = PickTable::new(&weights, available);
        Self {
            name: name.to_owned(),
            upstreams,
            weights,
            outlier,
            table: ArcSwap::from_pointee(table),
        }
    }

    /// Whether this picker serves exactly these upstreams, weights and outlier rules.
    pub fn same(&self, urls: &[&str], weights: &[u32], outlier: Outlier) -> bool {
        self.weights == weights
            && self.outlier == outlier
            && self.upstreams.iter().map(|u| u.url.as_str()).eq(urls.iter().copied())
    }

    /// The next available upstream by smooth WRR, or `None` when none is.
    #[inline]
    pub fn pick(&self) -> Option<usize> {
        let table = self.table.load();
        let picker = table.picker.as_ref()?;
        Some(table.map[picker.pick()] as usize)
    }

    /// The next pick that is not `not`, when another upstream is available.
    pub fn pick_other(&self, not: usize) -> Option<usize> {
        let first = self.pick()?;
        if first != not {
            return Some(first);
        }
        let available = self.table.load().map.len();
        (1..available)
            .find_map(|_| self.pick().filter(|&u| u != not))
            .or(Some(first))
    }

    /// Rebuilds the picker if the available set changed (an ejection ran
    /// out, a verdict flipped). Allocates only then.
    pub fn refresh(&self) {
        let now = now_ms();
        let up = |u: &Arc<UpstreamState>| u.is_healthy() && !u.is_ejected(now);
        let unchanged = self
            .table
            .load()
            .available
            .iter()
            .zip(&self.upstreams)
            .all(|(&a, u)| a == up(u));
        if !unchanged {
            let available = self.upstreams.iter().map(up).collect();
            self.table.store(Arc::new(PickTable::new(&self.weights, available)));
        }
    }

    /// A success of upstream `i`: its failure streak ends.
    #[inline]
    pub fn success(&self, i: usize) {
        let u = &self.upstreams[i];
        if u.consecutive_failures.load(Ordering::Relaxed) != 0 {
            u.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if u.ejections_in_row.load(Ordering::Relaxed) != 0 && !u.is_ejected(now_ms()) {
            u.ejections_in_row.store(0, Ordering::Relaxed);
        }
    }

    /// A failure of upstream `i`; ejects it after `consecutiveFailures` in
    /// a row, for `ejectMs` doubled per repeat (at most 10×), unless that
    /// would eject more than `maxEjectedPercent` of the cluster.
    pub fn failure(&self, i: usize) {
        let o = self.outlier;
        if o.consecutive_failures == 0 {
            return;
        }
        let u = &self.upstreams[i];
        let n = u.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_ms();
        if n < o.consecutive_failures || u.is_ejected(now) {
            return;
        }
        let ejected = self.upstreams.iter().filter(|u| u.is_ejected(now)).count();
        if (ejected + 1) * 100 > o.max_ejected_percent as usize * self.upstreams.len() {
            return;
        }
        let repeats = u.ejections_in_row.fetch_add(1, Ordering::Relaxed);
        let factor = 1u64.checked_shl(repeats).unwrap_or(u64::MAX).min(10);
        u.ejected_until
            .store(now + o.eject_ms.saturating_mul(factor), Ordering::Relaxed);
        u.consecutive_failures.store(0, Ordering::Relaxed);
        u.ejections_total.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            cluster = self.name.as_str(),
            upstream = u.url.as_str(),
            failures = n,
            eject_ms = o.eject_ms * factor,
            "upstream ejected"
        );
        self.refresh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(n: usize, weights: &[u32], outlier: Outlier) -> ClusterHealth {
        let ups = (0..n)
            .map(|i| Arc::new(UpstreamState::new("c", &format!("http://u{i}"), vec![])))
            .collect();
        ClusterHealth::new("c", ups, weights.to_vec(), outlier)
    }

    #[test]
    fn picks_follow_smooth_wrr_over_the_available_set() {
        let c = cluster(3, &[5, 1, 1], Outlier::default());
        let picks: Vec<usize> = (0..7).filter_map(|_| c.pick()).collect();
        assert_eq!(picks, [0, 0, 1, 0, 2, 0, 0]);
        // Upstream 0 fails its checks: the sequence restarts over b and c.
        for _ in 0..3 {
            c.upstreams[0].check(false, 2, 3);
        }
        c.refresh();
        let picks: Vec<usize> = (0..4).filter_map(|_| c.pick()).collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        for u in &c.upstreams {
            for _ in 0..3 {
                u.check(false, 2, 3);
            }
        }
        c.refresh();
        assert_eq!(c.pick(), None);
    }

    #[test]
    fn ejection_needs_consecutive_failures_and_respects_the_cap() {
        let outlier = Outlier {
            consecutive_failures: 2,
            eject_ms: 60_000,
            max_ejected_percent: 50,
        };
        let c = cluster(2, &[1, 1], outlier);
        c.failure(0);
        c.success(0);
        c.failure(0);
        assert!(!c.upstreams[0].is_ejected(now_ms()), "a success breaks the streak");
        c.failure(0);
        assert!(c.upstreams[0].is_ejected(now_ms()));
        assert_eq!((0..4).filter_map(|_| c.pick()).collect::<Vec<_>>(), [1, 1, 1, 1]);
        // Ejecting the second would eject 100% > 50%.
        c.failure(1);
        c.failure(1);
        assert!(!c.upstreams[1].is_ejected(now_ms()));
        assert_eq!(c.upstreams[0].ejections_total.load(Ordering::Relaxed), 1);
    }
}
