//! `gateway diff OLD NEW` (SPEC §13): what a rollout changes. Routes and
//! clusters are compared by name, field by field; then the requests that
//! change destination are found from the two plans' matchers, each region
//! with one concrete example request whose old and new outcomes were checked
//! with the real lookup.
//!
//! The example requests are built from the matchers, not sampled: every
//! host pattern of either plan (and a host matching none), every exact path,
//! every prefix with a path under it no route names, every regex's shortest
//! path and, for each pair of regexes whose literal prefixes are related, a
//! path in both and a path in each but not the other (DFA products over the
//! normalized-path language); conditions get a request meeting each route's
//! conditions, and one missing each condition in turn. A request is reported
//! only when the two lookups really disagree.

use std::collections::{BTreeMap, BTreeSet};

use plan::{Action, Plan, Route, Router, ValueMatch};

mod examples;

/// A field-by-field change of one route or cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub name: String,
    pub fields: Vec<String>,
}

/// One upstream's share of its cluster's traffic, before and after, in percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub cluster: String,
    pub upstream: String,
    pub before: f64,
    pub after: f64,
}

/// A region of requests whose outcome changes, with one example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub routes_added: Vec<String>,
    pub routes_removed: Vec<String>,
    pub routes_changed: Vec<Changed>,
    pub clusters_added: Vec<String>,
    pub clusters_removed: Vec<String>,
    pub clusters_changed: Vec<Changed>,
    pub shares: Vec<Share>,
    pub moved: Vec<Moved>,
    /// Settings outside routing that differ (listen, accessLog, ...).
    pub other: Vec<String>,
}

impl Diff {
    /// Whether routing is the same: no route, cluster or request changes.
    pub fn same_routing(&self) -> bool {
        self.routes_added.is_empty()
            && self.routes_removed.is_empty()
            && self.routes_changed.is_empty()
            && self.clusters_added.is_empty()
            && self.clusters_removed.is_empty()
            && self.clusters_changed.is_empty()
            && self.moved.is_empty()
    }
}

fn cluster_name(plan: &Plan, c: u32) -> &str {
    plan.clusters.get(c as usize).map_or("?", |c| c.name.as_str())
}

/// A route's action in names, not indices.
fn action(plan: &Plan, r: &Route) -> String {
    match &r.action {
        Action::Cluster(c) => format!("cluster {}", cluster_name(plan, *c)),
        Action::Backends { backends, .. } => {
            let parts: Vec<String> = backends
                .iter()
                .map(|b| format!("{} ×{}", cluster_name(plan, b.cluster), b.weight))
                .collect();
            format!("split {}", parts.join(", "))
        }
        Action::Redirect(rd) => {
            let mut parts = Vec::new();
            if let Some(s) = &rd.scheme {
                parts.push(format!("scheme {s}"));
            }
            if let Some(h) = &rd.host {
                parts.push(format!("host {h}"));
            }
            if let Some(p) = rd.port {
                parts.push(format!("port {p}"));
            }
            if let Some(p) = &rd.path {
                parts.push(path_replace(p));
            }
            parts.push(format!("status {}", rd.status));
            format!("redirect {}", parts.join(", "))
        }
    }
}

/// A path replacement as the config spells it.
fn path_replace(p: &plan::PathReplace) -> String {
    match p {
        plan::PathReplace::Full(p) => format!("path {p}"),
        plan::PathReplace::Prefix(p) => format!("pathPrefix {p}"),
    }
}

/// What a request routed to `r` gets, for comparing plans and for people:
/// the route, its action and whatever else it does to the exchange.
fn outcome(plan: &Plan, r: &Route) -> String {
    let mut out = format!("route {}: {}", r.name, action(plan, r));
    let filter = |f: &plan::HeaderFilter| {
        let mut parts: Vec<String> = f.set.iter().map(|(n, v)| format!("set {n}: {v}")).collect();
        parts.extend(f.add.iter().map(|(n, v)| format!("add {n}: {v}")));
        parts.extend(f.remove.iter().map(|n| format!("remove {n}")));
        parts.join(", ")
    };
    if !r.request_headers.is_empty() {
        out.push_str(&format!("; requestHeaders {}", filter(&r.request_headers)));
    }
    if !r.response_headers.is_empty() {
        out.push_str(&format!("; responseHeaders {}", filter(&r.response_headers)));
    }
    if let Some(h) = &r.rewrite.host {
        out.push_str(&format!("; rewrite host {h}"));
    }
    if let Some(p) = &r.rewrite.path {
        out.push_str(&format!("; rewrite {}", path_replace(p)));
    }
    if !r.policies.is_empty() {
        let names: Vec<&str> = r
            .policies
            .iter()
            .map(|&p| plan.policies[p as usize].name.as_str())
            .collect();
        out.push_str(&format!("; policies {}", names.join(", ")));
    }
    let t = r.timeouts;
    if t != plan.defaults {
        out.push_str(&format!(
            "; timeouts read {} write {} upstream {} connect {}",
            t.read_ms, t.write_ms, t.upstream_ms, t.connect_ms
        ));
    }
    out
}

/// The fields of a route that differ.
fn route_fields(old: &Plan, a: &Route, new: &Plan, b: &Route) -> Vec<String> {
    let mut f = Vec::new();
    let mut check = |name: &str, same: bool| {
        if !same {
            f.push(name.to_owned());
        }
    };
    check("hosts", a.hosts == b.hosts);
    check("path", a.path == b.path);
    check("methods", a.methods == b.methods);
    check(
        "headers",
        a.headers
            .iter()
            .map(|c| (&c.name, value(&c.value)))
            .eq(b.headers.iter().map(|c| (&c.name, value(&c.value)))),
    );
    check(
        "query",
        a.query
            .iter()
            .map(|c| (&c.name, value(&c.value)))
            .eq(b.query.iter().map(|c| (&c.name, value(&c.value)))),
    );
    check("action", action(old, a) == action(new, b));
    check("requestHeaders", a.request_headers == b.request_headers);
    check("responseHeaders", a.response_headers == b.response_headers);
    check("rewrite", a.rewrite == b.rewrite);
    check("timeouts", a.timeouts == b.timeouts);
    let pa: Vec<&str> = a
        .policies
        .iter()
        .map(|&p| old.policies[p as usize].name.as_str())
        .collect();
    let pb: Vec<&str> = b
        .policies
        .iter()
        .map(|&p| new.policies[p as usize].name.as_str())
        .collect();
    check("policies", pa == pb);
    f
}

fn value(v: &ValueMatch) -> (&str, bool) {
    match v {
        ValueMatch::Exact(s) => (s, false),
        ValueMatch::Regex { source, .. } => (source, true),
    }
}

fn shares(c: &plan::Cluster) -> BTreeMap<&str, f64> {
    let total: f64 = c.upstreams.iter().map(|u| f64::from(u.weight)).sum();
    let mut m = BTreeMap::new();
    for u in &c.upstreams {
        *m.entry(u.url.as_str()).or_insert(0.0) += f64::from(u.weight) * 100.0 / total;
    }
    m
}

/// Compares two plans.
pub fn diff(old: &Router, new: &Router) -> Diff {
    let (po, pn) = (old.plan(), new.plan());
    let mut d = Diff::default();
    for r in &pn.routes {
        match po.routes.iter().find(|o| o.name == r.name) {
            None => d.routes_added.push(r.name.clone()),
            Some(o) => {
                let fields = route_fields(po, o, pn, r);
                if !fields.is_empty() {
                    d.routes_changed.push(Changed {
                        name: r.name.clone(),
                        fields,
                    });
                }
            }
        }
    }
    d.routes_removed = po
        .routes
        .iter()
        .filter(|o| !pn.routes.iter().any(|r| r.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    for c in &pn.clusters {
        match po.clusters.iter().find(|o| o.name == c.name) {
            None => d.clusters_added.push(c.name.clone()),
            Some(o) => {
                let mut fields = Vec::new();
                if o.upstreams != c.upstreams {
                    fields.push("upstreams".to_owned());
                    let (before, after) = (shares(o), shares(c));
                    let urls: BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
                    for url in urls {
                        d.shares.push(Share {
                            cluster: c.name.clone(),
                            upstream: url.to_owned(),
                            before: before.get(url).copied().unwrap_or(0.0),
                            after: after.get(url).copied().unwrap_or(0.0),
                        });
                    }
                }
                if o.pool != c.pool {
                    fields.push("pool".to_owned());
                }
                if o.protocol != c.protocol {
                    fields.push("protocol".to_owned());
                }
                if !fields.is_empty() {
                    d.clusters_changed.push(Changed {
                        name: c.name.clone(),
                        fields,
                    });
                }
            }
        }
    }
    d.clusters_removed = po
        .clusters
        .iter()
        .filter(|o| !pn.clusters.iter().any(|c| c.name == o.name))
        .map(|o| o.name.clone())
        .collect();
    for (what, same) in [
        ("listen", po.listen == pn.listen),
        ("admin", po.admin == pn.admin),
        ("limits", po.limits == pn.limits),
        ("defaults", po.defaults == pn.defaults),
        ("accessLog", po.access_log == pn.access_log),
        ("drainMs", po.drain_ms == pn.drain_ms),
        ("shutdownDelayMs", po.shutdown_delay_ms == pn.shutdown_delay_ms),
    ] {
        if !same {
            d.other.push(what.to_owned());
        }
    }
    d.moved = examples::moved(old, new, &examples::affected(po, pn, &d));
    d
}
