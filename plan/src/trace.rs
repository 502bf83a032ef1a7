//! The lookup, narrated: for `gateway explain`, every host tier a request
//! reaches and, in each, the routes whose path matcher matched, in
//! precedence order, with the condition that turned each down. It walks the
//! same tables as [`Router::lookup`] and must pick the same route (tested).

use crate::NONE;
use crate::request::{Failed, RequestView};
use crate::router::{Match, Router, Tier};

/// One route considered in a tier: its path matched; `Err` names the first
/// condition that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub route: u32,
    pub outcome: Result<(), Failed>,
}

/// One host tier the request reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierTrace {
    pub tier: Tier,
    pub table: u32,
    /// The host pattern of the tier's table (`api.example.com`, `*.example.com`, `*`).
    pub pattern: String,
    /// Routes of the table whose path matcher matched, in precedence order,
    /// up to and including the winner.
    pub candidates: Vec<Candidate>,
    /// Routes of the table in all.
    pub routes: usize,
}

/// Every tier reached, most specific first, and the winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub tiers: Vec<TierTrace>,
    pub winner: Option<Match>,
}

impl Router {
    /// The host pattern a tier's table serves.
    fn pattern(&self, tier: Tier, host: &[u8]) -> String {
        let plan = self.plan();
        match tier {
            Tier::CatchAll => "*".to_owned(),
            Tier::Exact => String::from_utf8_lossy(crate::host_without_port_bytes(host)).to_ascii_lowercase(),
            Tier::Wildcard(mut node) => {
                let mut labels = Vec::new();
                while node != 0 && node != NONE {
                    let n = &plan.hosts[node as usize];
                    labels.push(n.label.as_str());
                    node = n.parent;
                }
                format!("*.{}", labels.join("."))
            }
        }
    }

    /// The routes of table `t`: exact, regex and prefix candidates whose path
    /// matched, in the order the lookup tries them.
    fn candidates(&self, t: u32, path: &str) -> (Vec<u32>, usize) {
        let plan = self.plan();
        let table = &plan.tables[t as usize];
        let paths = self.paths();
        let mut out = Vec::new();
        let walk = paths.walk(table.root, path);
        if walk.complete {
            out.extend_from_slice(paths.exact(walk.node));
        }
        for set in &table.regex {
            let mut matched: Vec<u32> = self.dfas()[set.dfa as usize].walk_path(path).collect();
            matched.sort_unstable();
            out.extend(matched.into_iter().map(|p| set.routes[p as usize]));
        }
        let mut node = walk.node;
        while node != NONE {
            out.extend_from_slice(paths.prefix(node));
            node = paths.parent(node);
        }
        let total = plan
            .routes
            .iter()
            .filter(|r| r.hosts.iter().any(|h| self.table_of(h) == Some(t)))
            .count();
        (out, total)
    }

    /// The table of a host pattern as the plan stores it.
    fn table_of(&self, pattern: &str) -> Option<u32> {
        let plan = self.plan();
        if pattern == "*" {
            return (plan.catch_all != NONE).then_some(plan.catch_all);
        }
        let (name, wildcard) = match pattern.strip_prefix("*.") {
            Some(suffix) => (suffix, true),
            None => (pattern, false),
        };
        let mut node = 0u32;
        for label in name.rsplit('.') {
            node = plan.hosts.iter().position(|n| n.parent == node && n.label == label)? as u32;
        }
        let n = &plan.hosts[node as usize];
        let t = if wildcard { n.wildcard } else { n.exact };
        (t != NONE).then_some(t)
    }

    /// The lookup of `host`, `path` and `req`, narrated.
    pub fn trace(&self, host: &(impl AsRef<[u8]> + ?Sized), path: &str, req: &impl RequestView) -> Trace {
        let host = host.as_ref();
        let mut tiers = Vec::new();
        let mut winner = None;
        for (table, tier) in self.tiers(host) {
            let (routes, total) = self.candidates(table, path);
            let mut candidates = Vec::new();
            for route in routes {
                let outcome = self.check_conditions(route, req);
                let won = outcome.is_ok();
                candidates.push(Candidate { route, outcome });
                if won {
                    winner = Some(Match { route, tier, table });
                    break;
                }
            }
            tiers.push(TierTrace {
                tier,
                table,
                pattern: self.pattern(tier, host),
                candidates,
                routes: total,
            });
            if winner.is_some() {
                break;
            }
        }
        Trace { tiers, winner }
    }
}
