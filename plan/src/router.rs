//! The loaded plan: checked indices, runtime indexes and WRR pickers, and the one
//! lookup the gateway calls per request.

use crate::host::{HostTrie, host_without_port_bytes};
use crate::path::PrefixTree;
use std::sync::Arc;

use crate::wrr::{MAX_TABLE_LEN, WrrPicker, reduced_weights, smooth_wrr_sequence};
use crate::{Decoded, NONE, Plan};

#[derive(Debug, thiserror::Error)]
#[error("plan is inconsistent: {0}")]
pub struct RouterError(String);

/// Which host tier a request matched in (SPEC §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Exact,
    /// The wildcard `*.suffix` whose suffix ends at this host node.
    Wildcard(u32),
    CatchAll,
}

/// A routing decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match {
    pub route: u32,
    pub cluster: u32,
    pub tier: Tier,
}

/// A plan ready to serve: immutable, shared by every worker thread.
#[derive(Debug)]
pub struct Router {
    plan: Plan,
    digest: String,
    source_digest: String,
    hosts: HostTrie,
    paths: PrefixTree,
    wrr: Vec<Arc<WrrPicker>>,
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), RouterError> {
    if cond { Ok(()) } else { Err(RouterError(msg())) }
}

impl Router {
    /// Checks every index of the plan and builds the runtime indexes.
    pub fn new(decoded: Decoded) -> Result<Self, RouterError> {
        let Decoded {
            plan,
            digest,
            source_digest,
        } = decoded;
        let is_root = |r: u32| r == NONE || plan.paths.get(r as usize).is_some_and(|n| n.parent == NONE);
        for (i, route) in plan.routes.iter().enumerate() {
            check((route.cluster as usize) < plan.clusters.len(), || {
                format!("route {i} names cluster {}", route.cluster)
            })?;
            check(
                route.policies.iter().all(|&p| (p as usize) < plan.policies.len()),
                || format!("route {i} names a missing policy"),
            )?;
        }
        for (i, node) in plan.hosts.iter().enumerate() {
            check(is_root(node.exact) && is_root(node.wildcard), || {
                format!("host node {i} points at a non-root path node")
            })?;
        }
        check(is_root(plan.catch_all), || "catch-all is not a path root".into())?;
        let mut wrr = Vec::with_capacity(plan.clusters.len());
        for (i, cluster) in plan.clusters.iter().enumerate() {
            check(!cluster.upstreams.is_empty(), || {
                format!("cluster {i} has no upstreams")
            })?;
            let weights: Vec<u32> = cluster.upstreams.iter().map(|u| u.weight).collect();
            check(weights.iter().all(|&w| w > 0), || {
                format!("cluster {i} has a zero weight")
            })?;
            let period: u64 = reduced_weights(&weights).iter().sum();
            if cluster.wrr.is_empty() {
                check(period > MAX_TABLE_LEN, || format!("cluster {i} lacks its WRR table"))?;
            } else {
                check(
                    smooth_wrr_sequence(&weights).as_deref() == Some(&cluster.wrr[..]),
                    || format!("cluster {i} has a WRR table that does not match its weights"),
                )?;
            }
            wrr.push(Arc::new(WrrPicker::new(&weights, &cluster.wrr)));
        }
        let hosts = HostTrie::new(&plan.hosts).map_err(RouterError)?;
        let paths = PrefixTree::new(&plan.paths, plan.routes.len()).map_err(RouterError)?;
        Ok(Self {
            plan,
            digest,
            source_digest,
            hosts,
            paths,
            wrr,
        })
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// `sha256:<hex>` of the plan content.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// `sha256:<hex>` of the config the plan was compiled from.
    pub fn source_digest(&self) -> &str {
        &self.source_digest
    }

    /// Routes a request: `host` as received (port allowed), `path` normalized and
    /// without query. Exact host first, then wildcards from the longest suffix,
    /// then catch-all; within a host, the longest segment-wise prefix.
    #[inline]
    pub fn lookup(&self, host: &(impl AsRef<[u8]> + ?Sized), path: &str) -> Option<Match> {
        let plan = &self.plan;
        let host = host_without_port_bytes(host.as_ref());
        let walk = self.hosts.walk(host);
        let found = |root: u32| self.paths.longest_prefix(root, path).map(|(route, _)| route);
        let hit = |route: u32, tier: Tier| Match {
            route,
            cluster: plan.routes[route as usize].cluster,
            tier,
        };
        if walk.exact != NONE
            && let Some(route) = found(walk.exact)
        {
            return Some(hit(route, Tier::Exact));
        }
        let mut node = walk.wildcard_node;
        while node != NONE {
            if let Some(route) = found(self.hosts.wildcard_root(node)) {
                return Some(hit(route, Tier::Wildcard(node)));
            }
            node = self.hosts.next_wildcard(node);
        }
        if plan.catch_all != NONE
            && let Some(route) = found(plan.catch_all)
        {
            return Some(hit(route, Tier::CatchAll));
        }
        None
    }

    /// Carries WRR positions over from the plan being replaced: a cluster with
    /// the same name, upstreams and weights keeps its place in the sequence.
    pub fn adopt_wrr(&mut self, old: &Router) {
        for (i, cluster) in self.plan.clusters.iter().enumerate() {
            if let Some(j) = old.plan.clusters.iter().position(|c| c == cluster) {
                self.wrr[i] = old.wrr[j].clone();
            }
        }
    }

    /// The next upstream index of `cluster` in its global smooth-WRR sequence.
    #[inline]
    pub fn pick(&self, cluster: u32) -> usize {
        self.wrr[cluster as usize].pick()
    }
}
