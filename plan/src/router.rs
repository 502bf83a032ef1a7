//! The loaded plan: checked indices, runtime indexes, DFAs and WRR pickers,
//! and the one lookup the gateway calls per request.

use std::sync::Arc;

use crate::dfa::Dfa;
use crate::host::{HostTrie, host_without_port_bytes};
use crate::path::PrefixTree;
use crate::request::{Conditions, Failed, RequestView};
use crate::wrr::{MAX_TABLE_LEN, WrrPicker, reduced_weights, smooth_wrr_sequence};
use crate::{Action, Decoded, NONE, PathMatch, Plan};

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
    pub tier: Tier,
    /// The table the route was found in.
    pub table: u32,
}

/// A plan ready to serve: immutable, shared by every worker thread.
#[derive(Debug)]
pub struct Router {
    plan: Plan,
    digest: String,
    source_digest: String,
    hosts: HostTrie,
    paths: PrefixTree,
    dfas: Vec<Dfa>,
    /// Per route: its conditions, `None` when it has none.
    conditions: Vec<Option<Box<Conditions>>>,
    /// Per cluster: its upstream picker.
    wrr: Vec<Arc<WrrPicker>>,
    /// Per route: its `backends` picker (index into the split).
    splits: Vec<Option<Arc<WrrPicker>>>,
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), RouterError> {
    if cond { Ok(()) } else { Err(RouterError(msg())) }
}

/// A picker over `weights` with its stored `table`, after checking the table
/// is the smooth-WRR sequence of those weights.
fn picker(weights: &[u32], table: &[u32], what: &dyn Fn() -> String) -> Result<Arc<WrrPicker>, RouterError> {
    check(!weights.is_empty() && weights.iter().any(|&w| w > 0), || {
        format!("{} has no positive weight", what())
    })?;
    let period: u64 = reduced_weights(weights).iter().sum();
    if table.is_empty() {
        check(period > MAX_TABLE_LEN, || format!("{} lacks its WRR table", what()))?;
    } else {
        check(smooth_wrr_sequence(weights).as_deref() == Some(table), || {
            format!("{} has a WRR table that does not match its weights", what())
        })?;
    }
    Ok(Arc::new(WrrPicker::new(weights, table)))
}

/// The path of each node of the arena, as matchers spell it (`/a/b`; an
/// exact node's trailing empty segment gives `/a/`).
fn node_paths(plan: &Plan) -> Vec<String> {
    let mut paths: Vec<String> = Vec::with_capacity(plan.paths.len());
    for node in &plan.paths {
        let path = match node.parent {
            NONE => String::new(),
            p => format!("{}/{}", paths[p as usize], node.segment),
        };
        paths.push(path);
    }
    paths
}

impl Router {
    /// Checks every index of the plan, loads its DFAs and builds the runtime
    /// indexes.
    pub fn new(decoded: Decoded) -> Result<Self, RouterError> {
        let Decoded {
            plan,
            digest,
            source_digest,
        } = decoded;
        let mut dfas = Vec::with_capacity(plan.regexes.len());
        for (i, regex) in plan.regexes.iter().enumerate() {
            let bytes = regex.bytes().map_err(|e| RouterError(format!("regex {i}: {e}")))?;
            let dfa = Dfa::from_bytes(&bytes).map_err(|e| RouterError(format!("regex {i}: {e}")))?;
            check(dfa.pattern_len() == regex.patterns.len(), || {
                format!(
                    "regex {i} has {} patterns, its DFA {}",
                    regex.patterns.len(),
                    dfa.pattern_len()
                )
            })?;
            dfas.push(dfa);
        }
        let clusters = plan.clusters.len();
        let mut splits = Vec::with_capacity(plan.routes.len());
        let mut conditions = Vec::with_capacity(plan.routes.len());
        for (i, route) in plan.routes.iter().enumerate() {
            let split = match &route.action {
                Action::Cluster(c) => {
                    check((*c as usize) < clusters, || format!("route {i} names cluster {c}"))?;
                    None
                }
                Action::Backends { backends, wrr } => {
                    check(backends.iter().all(|b| (b.cluster as usize) < clusters), || {
                        format!("route {i} names a missing cluster")
                    })?;
                    let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
                    Some(picker(&weights, wrr, &|| format!("route {i}"))?)
                }
                Action::Redirect(r) => {
                    check(matches!(r.status, 301 | 302 | 303 | 307 | 308), || {
                        format!("route {i} redirects with status {}", r.status)
                    })?;
                    None
                }
            };
            splits.push(split);
            check(
                route.policies.iter().all(|&p| (p as usize) < plan.policies.len()),
                || format!("route {i} names a missing policy"),
            )?;
            let conds = Conditions::of(route);
            if let Some(c) = &conds {
                check(c.dfas().all(|d| (d as usize) < dfas.len()), || {
                    format!("route {i} names a missing regex")
                })?;
            }
            conditions.push(conds);
        }
        let is_table = |t: u32| t == NONE || (t as usize) < plan.tables.len();
        for (i, node) in plan.hosts.iter().enumerate() {
            check(is_table(node.exact) && is_table(node.wildcard), || {
                format!("host node {i} names a missing table")
            })?;
        }
        check(is_table(plan.catch_all), || "catch-all names a missing table".into())?;
        let node_path = node_paths(&plan);
        for (t, table) in plan.tables.iter().enumerate() {
            check(
                plan.paths.get(table.root as usize).is_some_and(|n| n.parent == NONE),
                || format!("table {t} has a root that is not a root"),
            )?;
            for set in &table.regex {
                let regex = plan.regexes.get(set.dfa as usize);
                check(regex.is_some_and(|r| r.patterns.len() == set.routes.len()), || {
                    format!("table {t} has a regex set that does not fit its DFA")
                })?;
                for (&r, pattern) in set.routes.iter().zip(regex.map(|r| &r.patterns[..]).unwrap_or(&[])) {
                    let route = plan.routes.get(r as usize);
                    check(
                        route.is_some_and(|route| route.path == PathMatch::Regex(pattern.clone())),
                        || format!("table {t}: pattern {pattern:?} is not the regex of route {r}"),
                    )?;
                }
            }
        }
        for (n, node) in plan.paths.iter().enumerate() {
            let spelled = &node_path[n];
            for &r in &node.exact {
                let ok = plan
                    .routes
                    .get(r as usize)
                    .is_some_and(|route| route.path == PathMatch::Exact(spelled.clone()));
                check(ok, || {
                    format!("path node {n} lists route {r} whose path is not {spelled:?}")
                })?;
            }
            for &r in &node.prefix {
                let prefix = if spelled.is_empty() { "/" } else { spelled };
                let ok = plan
                    .routes
                    .get(r as usize)
                    .is_some_and(|route| route.path == PathMatch::Prefix(prefix.to_owned()));
                check(ok, || {
                    format!("path node {n} lists route {r} whose prefix is not {prefix:?}")
                })?;
            }
        }
        let mut wrr = Vec::with_capacity(clusters);
        for (i, cluster) in plan.clusters.iter().enumerate() {
            let weights: Vec<u32> = cluster.upstreams.iter().map(|u| u.weight).collect();
            check(weights.iter().all(|&w| w > 0), || {
                format!("cluster {i} has a zero weight")
            })?;
            wrr.push(picker(&weights, &cluster.wrr, &|| format!("cluster {i}"))?);
        }
        let hosts = HostTrie::new(&plan.hosts).map_err(RouterError)?;
        let paths = PrefixTree::new(&plan.paths, plan.routes.len()).map_err(RouterError)?;
        Ok(Self {
            plan,
            digest,
            source_digest,
            hosts,
            paths,
            dfas,
            conditions,
            wrr,
            splits,
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

    /// The loaded DFAs, indexed as [`Plan::regexes`].
    pub fn dfas(&self) -> &[Dfa] {
        &self.dfas
    }

    /// The prefix trees.
    pub fn paths(&self) -> &PrefixTree {
        &self.paths
    }

    /// The first condition of `route` that `req` fails, if any.
    #[inline]
    pub fn check_conditions(&self, route: u32, req: &impl RequestView) -> Result<(), Failed> {
        match &self.conditions[route as usize] {
            None => Ok(()),
            Some(c) => c.check(req, &self.dfas),
        }
    }

    #[inline]
    fn passes(&self, route: u32, req: &impl RequestView) -> bool {
        self.check_conditions(route, req).is_ok()
    }

    /// The winner within one table (SPEC §4.6 steps 2–5): exact paths, then
    /// regexes, then prefixes from the deepest; in each list the first route
    /// whose conditions hold.
    #[inline]
    fn in_table(&self, table: u32, path: &str, req: &impl RequestView) -> Option<u32> {
        let table = &self.plan.tables[table as usize];
        let walk = self.paths.walk(table.root, path);
        if walk.complete
            && let Some(&r) = self.paths.exact(walk.node).iter().find(|&&r| self.passes(r, req))
        {
            return Some(r);
        }
        for set in &table.regex {
            let best = self.dfas[set.dfa as usize]
                .walk_path(path)
                .filter(|&p| self.passes(set.routes[p as usize], req))
                .min();
            if let Some(p) = best {
                return Some(set.routes[p as usize]);
            }
        }
        let mut node = walk.node;
        while node != NONE {
            if let Some(&r) = self.paths.prefix(node).iter().find(|&&r| self.passes(r, req)) {
                return Some(r);
            }
            node = self.paths.parent(node);
        }
        None
    }

    /// The tables a request to `host` (as received, port allowed) reaches,
    /// most specific first: the exact host's, the wildcards' from the longest
    /// suffix, the catch-all's.
    #[inline]
    pub fn tiers(&self, host: &(impl AsRef<[u8]> + ?Sized)) -> impl Iterator<Item = (u32, Tier)> + '_ {
        let walk = self.hosts.walk(host_without_port_bytes(host.as_ref()));
        let exact = (walk.exact != NONE).then_some((walk.exact, Tier::Exact));
        let wildcards = std::iter::successors((walk.wildcard_node != NONE).then_some(walk.wildcard_node), |&n| {
            let up = self.hosts.next_wildcard(n);
            (up != NONE).then_some(up)
        })
        .map(|n| (self.hosts.wildcard_root(n), Tier::Wildcard(n)));
        let catch_all = (self.plan.catch_all != NONE).then_some((self.plan.catch_all, Tier::CatchAll));
        exact.into_iter().chain(wildcards).chain(catch_all)
    }

    /// Routes a request: `host` as received (port allowed), `path` normalized
    /// and without query. The most specific host tier with a matching route
    /// wins (SPEC §4.6); allocates nothing.
    #[inline]
    pub fn lookup(&self, host: &(impl AsRef<[u8]> + ?Sized), path: &str, req: &impl RequestView) -> Option<Match> {
        self.tiers(host).find_map(|(table, tier)| {
            self.in_table(table, path, req)
                .map(|route| Match { route, tier, table })
        })
    }

    /// Carries WRR positions over from the plan being replaced: a cluster (or
    /// a route's split) with the same name and weights keeps its place.
    pub fn adopt_wrr(&mut self, old: &Router) {
        for (i, cluster) in self.plan.clusters.iter().enumerate() {
            if let Some(j) = old.plan.clusters.iter().position(|c| c == cluster) {
                self.wrr[i] = old.wrr[j].clone();
            }
        }
        for (i, route) in self.plan.routes.iter().enumerate() {
            let Action::Backends { backends, .. } = &route.action else {
                continue;
            };
            let same = |r: &&crate::Route| {
                r.name == route.name
                    && matches!(&r.action, Action::Backends { backends: b, .. }
                    if b.len() == backends.len() && b.iter().zip(backends).all(|(x, y)| {
                        x.weight == y.weight && self.plan.clusters[y.cluster as usize].name == old.plan.clusters[x.cluster as usize].name
                    }))
            };
            if let Some(j) = old.plan.routes.iter().position(|r| same(&r))
                && let Some(picker) = &old.splits[j]
            {
                self.splits[i] = Some(picker.clone());
            }
        }
    }

    /// The next upstream index of `cluster` in its global smooth-WRR sequence.
    #[inline]
    pub fn pick(&self, cluster: u32) -> usize {
        self.wrr[cluster as usize].pick()
    }

    /// The cluster a request routed to `route` goes to: its `cluster`, or the
    /// next of its `backends` split; `None` for a redirect.
    #[inline]
    pub fn cluster_for(&self, route: u32) -> Option<u32> {
        match &self.plan.routes[route as usize].action {
            Action::Cluster(c) => Some(*c),
            Action::Backends { backends, .. } => {
                let picker = self.splits[route as usize].as_ref()?;
                Some(backends[picker.pick()].cluster)
            }
            Action::Redirect(_) => None,
        }
    }
}
