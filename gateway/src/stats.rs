//! Lock-free counters, resolved per plan: the hot path does plain atomic adds on
//! slots found by index, never by label.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::ErrorKind;

const KINDS: usize = ErrorKind::ALL.len();

/// Counters of one cluster.
#[derive(Debug)]
pub struct ClusterStats {
    /// Failed exchanges by kind (`gateway_proxy_errors_total{cluster,kind}`);
    /// timeouts also count in `upstream_timeouts`.
    pub errors: [AtomicU64; KINDS],
    /// `gateway_upstream_timeouts_total{cluster,kind}`: connect, then upstream.
    pub upstream_timeouts: [AtomicU64; 2],
}

impl Default for ClusterStats {
    fn default() -> Self {
        Self {
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            upstream_timeouts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// All counters of one plan generation.
#[derive(Debug)]
pub struct Stats {
    pub clusters: Vec<ClusterStats>,
}

impl Stats {
    pub fn new(clusters: usize) -> Self {
        Self {
            clusters: (0..clusters).map(|_| ClusterStats::default()).collect(),
        }
    }

    /// Counts an upstream-side failure of `cluster`.
    pub fn upstream_failure(&self, cluster: u32, kind: ErrorKind) {
        let Some(c) = self.clusters.get(cluster as usize) else {
            return;
        };
        c.errors[kind.index()].fetch_add(1, Ordering::Relaxed);
        match kind {
            ErrorKind::ConnectTimeout => {
                c.upstream_timeouts[0].fetch_add(1, Ordering::Relaxed);
            }
            ErrorKind::UpstreamTimeout => {
                c.upstream_timeouts[1].fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}
