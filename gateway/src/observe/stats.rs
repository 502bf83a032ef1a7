//! Lock-free counters. Handles are resolved when a plan is loaded (by route and
//! cluster name, so counts survive reloads); the hot path does plain atomic
//! adds on slots found by index, never by label. The counters every response
//! touches (status counts, duration histograms, the in-flight gauge) are
//! kept per worker ([`PerWorker`]) and summed when read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plan::Plan;
pub use policy_host::PolicyStats;

use crate::error::kind::ErrorKind;
use crate::observe::per_worker::{Gauge, PerWorker};

const KINDS: usize = ErrorKind::ALL.len();

/// Counters of one cluster.
#[derive(Debug)]
pub struct ClusterStats {
    pub name: String,
    /// `gateway_proxy_errors_total{cluster,kind}`.
    pub errors: [AtomicU64; KINDS],
    /// `gateway_upstream_timeouts_total{cluster,kind}`: connect, then upstream.
    pub upstream_timeouts: [AtomicU64; 2],
    /// `gateway_upstream_duration_seconds{cluster}`: request sent → response head.
    pub upstream_duration: Histogram,
}

impl ClusterStats {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            upstream_timeouts: std::array::from_fn(|_| AtomicU64::new(0)),
            upstream_duration: Histogram::default(),
        }
    }

    /// Counts an upstream-side failure, once: a timeout in
    /// `upstream_timeouts`, anything else in `errors`.
    pub fn failure(&self, kind: ErrorKind) {
        match kind {
            ErrorKind::ConnectTimeout => self.upstream_timeouts[0].fetch_add(1, Ordering::Relaxed),
            ErrorKind::UpstreamTimeout => self.upstream_timeouts[1].fetch_add(1, Ordering::Relaxed),
            _ => self.errors[kind.index()].fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Slots per route for `(status, count)`; a route seldom answers with more
/// distinct codes. Codes beyond are counted under status `other`.
const STATUS_SLOTS: usize = 16;

/// `gateway_requests_total{route,cluster,status}` for one route (or for
/// requests that matched no route).
#[derive(Debug)]
pub struct RouteStats {
    pub route: String,
    pub cluster: String,
    /// The status code each slot counts, claimed once (read by every worker,
    /// written only when a code is first seen).
    codes: [AtomicU16; STATUS_SLOTS],
    /// Per worker: a count per slot of `codes`, then the overflow.
    counts: PerWorker<StatusCounts>,
    /// `gateway_request_duration_seconds{route}`.
    pub duration: Histogram,
}

/// One worker's counts of a route's statuses.
#[derive(Debug, Default)]
#[repr(align(64))]
struct StatusCounts {
    slots: [AtomicU64; STATUS_SLOTS],
    other: AtomicU64,
}

impl RouteStats {
    fn new(route: &str, cluster: &str) -> Self {
        Self {
            route: route.to_owned(),
            cluster: cluster.to_owned(),
            codes: std::array::from_fn(|_| AtomicU16::new(0)),
            counts: PerWorker::default(),
            duration: Histogram::default(),
        }
    }

    /// Counts one response with `status` that took `duration`: a scan of at
    /// most 16 slots, claiming an empty one with a CAS the first time a code
    /// is seen.
    pub fn record(&self, status: u16, duration: Duration) {
        self.duration.observe(duration);
        let counts = self.counts.mine();
        for (code, count) in self.codes.iter().zip(&counts.slots) {
            let mut seen = code.load(Ordering::Acquire);
            if seen == 0 {
                seen = match code.compare_exchange(0, status, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => status,
                    Err(other) => other,
                };
            }
            if seen == status {
                count.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        counts.other.fetch_add(1, Ordering::Relaxed);
    }

    /// `(status, count)` for every code seen, then `(0, other)` if any.
    pub fn counts(&self) -> Vec<(u16, u64)> {
        let mut out: Vec<(u16, u64)> = Vec::new();
        for (i, code) in self.codes.iter().enumerate() {
            let code = code.load(Ordering::Acquire);
            if code != 0 {
                let n = self.counts.each().map(|c| c.slots[i].load(Ordering::Relaxed)).sum();
                out.push((code, n));
            }
        }
        let other: u64 = self.counts.each().map(|c| c.other.load(Ordering::Relaxed)).sum();
        if other > 0 {
            out.push((0, other));
        }
        out
    }
}

/// Upper bounds (seconds) of `gateway_request_duration_seconds`.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A fixed-bucket histogram of plain atomics, per worker.
#[derive(Debug, Default)]
pub struct Histogram(PerWorker<HistogramCounts>);

/// One worker's part of a [`Histogram`].
#[derive(Debug, Default)]
#[repr(align(64))]
struct HistogramCounts {
    /// Per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = DURATION_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(DURATION_BUCKETS.len());
        let mine = self.0.mine();
        mine.buckets[i].fetch_add(1, Ordering::Relaxed);
        mine.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// `(sum seconds, count, (upper bound, count in this bucket) pairs)`; the
    /// last bound is `f64::MAX`, which the encoder writes as `+Inf` and which
    /// accumulates the counts itself.
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut out = Vec::with_capacity(DURATION_BUCKETS.len() + 1);
        for i in 0..=DURATION_BUCKETS.len() {
            let n: u64 = self.0.each().map(|h| h.buckets[i].load(Ordering::Relaxed)).sum();
            total += n;
            out.push((DURATION_BUCKETS.get(i).copied().unwrap_or(f64::MAX), n));
        }
        let sum_micros: u64 = self.0.each().map(|h| h.sum_micros.load(Ordering::Relaxed)).sum();
        (sum_micros as f64 / 1e6, total, out)
    }
}

/// Process-wide counters that belong to no route or cluster.
#[derive(Debug, Default)]
pub struct Global {
    /// Raised and lowered by every exchange: per worker.
    pub in_flight: Gauge,
    pub access_log_dropped: AtomicU64,
    pub access_log_written: AtomicU64,
    pub connections_rejected: AtomicU64,
    /// Requests refused or cut for exceeding `maxRequestBodyBytes`.
    pub body_limit_exceeded: AtomicU64,
    pub reload_failures: AtomicU64,
    pub reloads: AtomicU64,
    /// Unix seconds of the last successful load (start or reload).
    pub reload_last_success: AtomicU64,
    /// Admin connections closed at once because the admin cap was reached.
    pub admin_connections_rejected: AtomicU64,
    /// WebSocket tunnels open now.
    pub tunnels_active: AtomicI64,
    /// TLS handshakes completed on the TLS listener.
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed, by reason: [`TLS_FAILURES`] order.
    pub tls_handshake_failures: [AtomicU64; 3],
}

/// The `reason` label values of `gateway_tls_handshake_failures_total`.
pub const TLS_FAILURES: [&str; 3] = ["error", "timeout", "closed"];

/// Every counter ever resolved, by name, so a reloaded plan finds its
/// routes' and clusters' counters again.
#[derive(Debug)]
pub struct Registry {
    pub global: Global,
    clusters: Mutex<HashMap<String, Arc<ClusterStats>>>,
    routes: Mutex<HashMap<(String, String), Arc<RouteStats>>>,
    policies: Mutex<HashMap<String, Arc<PolicyStats>>>,
    pub unrouted: Arc<RouteStats>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self {
            global: Global::default(),
            clusters: Mutex::default(),
            routes: Mutex::default(),
            policies: Mutex::default(),
            unrouted: Arc::new(RouteStats::new("", "")),
        }
    }

    /// The counters of one plan, indexed like its clusters and routes.
    pub fn resolve(&self, plan: &Plan) -> Stats {
        let mut clusters = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        let cluster_stats: Vec<Arc<ClusterStats>> = plan
            .clusters
            .iter()
            .map(|c| {
                clusters
                    .entry(c.name.clone())
                    .or_insert_with(|| Arc::new(ClusterStats::new(&c.name)))
                    .clone()
            })
            .collect();
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let route_stats = plan
            .routes
            .iter()
            .map(|r| {
                // Every cluster a request of this route can end at: its action's,
                // and those its policies may route to.
                let mut reachable: Vec<u32> = match &r.action {
                    plan::Action::Cluster(c) => vec![*c],
                    plan::Action::Backends { backends, .. } => backends.iter().map(|b| b.cluster).collect(),
                    plan::Action::Redirect(_) => vec![plan::NONE],
                };
                for p in r.policies.iter().filter_map(|&p| plan.policies.get(p as usize)) {
                    for &c in &p.clusters {
                        if !reachable.contains(&c) {
                            reachable.push(c);
                        }
                    }
                }
                reachable
                    .into_iter()
                    .map(|c| {
                        let cluster = plan.clusters.get(c as usize).map_or("", |c| c.name.as_str());
                        let stats = routes
                            .entry((r.name.clone(), cluster.to_owned()))
                            .or_insert_with(|| Arc::new(RouteStats::new(&r.name, cluster)))
                            .clone();
                        (c, stats)
                    })
                    .collect()
            })
            .collect();
        Stats {
            clusters: cluster_stats,
            routes: route_stats,
        }
    }

    /// The counters of the policy named `name`.
    pub fn policy(&self, name: &str) -> Arc<PolicyStats> {
        let mut policies = self.policies.lock().unwrap_or_else(|e| e.into_inner());
        policies
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(PolicyStats::new(name)))
            .clone()
    }

    pub fn all_policies(&self) -> Vec<Arc<PolicyStats>> {
        sorted(&self.policies, |p| p.name.clone())
    }

    pub fn all_clusters(&self) -> Vec<Arc<ClusterStats>> {
        sorted(&self.clusters, |c| c.name.clone())
    }

    pub fn all_routes(&self) -> Vec<Arc<RouteStats>> {
        sorted(&self.routes, |r| (r.route.clone(), r.cluster.clone()))
    }
}

/// Every value of a registry map, in a stable order for the exposition.
fn sorted<K, V, O: Ord>(map: &Mutex<HashMap<K, Arc<V>>>, key: impl Fn(&V) -> O) -> Vec<Arc<V>> {
    let mut v: Vec<Arc<V>> = map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .cloned()
        .collect();
    v.sort_by_cached_key(|x| key(x));
    v
}

/// The counters of one plan generation.
#[derive(Debug)]
pub struct Stats {
    pub clusters: Vec<Arc<ClusterStats>>,
    /// Per route: the counters of each cluster its requests can reach
    /// ([`plan::NONE`] for a redirect's own answers).
    pub routes: Vec<Vec<(u32, Arc<RouteStats>)>>,
}

impl Stats {
    /// The counters of `route` for requests that went to `cluster` (`None`:
    /// answered by the gateway: a redirect, a policy, an error before a
    /// cluster was chosen).
    pub fn route(&self, route: u32, cluster: Option<u32>) -> Option<&Arc<RouteStats>> {
        let entries = self.routes.get(route as usize)?;
        let want = cluster.unwrap_or(plan::NONE);
        entries
            .iter()
            .find(|(c, _)| *c == want)
            .or_else(|| entries.first())
            .map(|(_, s)| s)
    }

    /// Counts an upstream-side failure of `cluster`.
    pub fn upstream_failure(&self, cluster: u32, kind: ErrorKind) {
        if let Some(c) = self.clusters.get(cluster as usize) {
            c.failure(kind);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_counted_per_code_with_overflow() {
        let r = RouteStats::new("r", "c");
        for _ in 0..3 {
            r.record(200, Duration::ZERO);
        }
        r.record(404, Duration::ZERO);
        for code in 300..320 {
            r.record(code, Duration::ZERO);
        }
        let counts = r.counts();
        assert_eq!(counts[0], (200, 3));
        assert_eq!(counts[1], (404, 1));
        assert_eq!(counts.len(), STATUS_SLOTS + 1);
        assert_eq!(counts.last(), Some(&(0, 6)));
    }

    #[test]
    fn histogram_counts_per_bucket() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(60));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 60.0203).abs() < 1e-6);
        assert_eq!(buckets[0], (0.0005, 1));
        assert_eq!(buckets[5], (0.025, 1));
        assert_eq!(buckets.last(), Some(&(f64::MAX, 1)));
    }
}
