//! Upstream targets, parsed once per plan: where to connect, the base path
//! to prepend, the pool slot and the counters of each.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plan::Plan;

use crate::observe::stats::{ClusterStats, Stats};
use crate::observe::upstream_log::FailureLog;

/// One upstream, as the hot path needs it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured (for logs).
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// Resolved when the host is an IP literal; names resolve at connect time.
    pub addr: Option<SocketAddr>,
    /// Path prefix to prepend, without trailing `/` (empty for none).
    pub base_path: String,
    /// Index into every worker's pool; stable across reloads for one authority.
    pub pool_id: usize,
    /// Idle pooled connections are closed after this long (`pool.idleMs`).
    pub idle_timeout: Duration,
    pub stats: Arc<ClusterStats>,
    /// Rate-limited `warn` lines for this upstream's failures.
    pub failures: Arc<FailureLog>,
}

/// Pool ids by authority, process-wide, so a reloaded plan reuses the pooled
/// connections of upstreams it keeps.
#[derive(Debug, Default)]
pub struct PoolIds(Mutex<HashMap<String, usize>>);

impl PoolIds {
    fn get(&self, authority: &str) -> usize {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let next = map.len();
        *map.entry(authority.to_owned()).or_insert(next)
    }
}

/// All targets of a plan, addressed by `(cluster, upstream)`.
#[derive(Debug)]
pub struct Targets {
    offsets: Vec<usize>,
    targets: Vec<Target>,
}

impl Targets {
    pub fn new(plan: &Plan, ids: &PoolIds, stats: &Stats) -> Result<Self, String> {
        let mut offsets = Vec::with_capacity(plan.clusters.len());
        let mut targets = Vec::new();
        for (c, cluster) in plan.clusters.iter().enumerate() {
            offsets.push(targets.len());
            let cluster_stats = stats.clusters.get(c).cloned().ok_or("cluster without counters")?;
            let idle_timeout = Duration::from_millis(cluster.pool.idle_ms);
            for u in &cluster.upstreams {
                targets.push(parse_target(&u.url, ids, cluster_stats.clone(), idle_timeout)?);
            }
        }
        Ok(Self { offsets, targets })
    }

    /// Flat index of `(cluster, upstream)`, the pool's key.
    pub fn id(&self, cluster: u32, upstream: usize) -> usize {
        self.offsets[cluster as usize] + upstream
    }

    pub fn get(&self, id: usize) -> &Target {
        &self.targets[id]
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

fn parse_target(url: &str, ids: &PoolIds, stats: Arc<ClusterStats>, idle_timeout: Duration) -> Result<Target, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("upstream {url:?}: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("upstream {url:?}: no authority"))?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = bare
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port));
    let base_path = uri.path().trim_end_matches('/').to_owned();
    let authority = format!("{host}:{port}");
    Ok(Target {
        url: url.to_owned(),
        pool_id: ids.get(&authority),
        idle_timeout,
        authority,
        addr,
        base_path,
        stats,
        failures: Arc::default(),
    })
}
