//! The requests that change destination: which routes are affected, and
//! the example requests built from their matchers (see the module above).

use std::collections::{BTreeMap, BTreeSet};

use plan::build::compile_pattern;
use plan::{Action, HostPattern, OwnedRequest, PathMatch, Plan, Route, Router, ValueMatch, parse_host_pattern};

use super::{Diff, Moved, cluster_name, outcome};
use crate::lang;

/// A host for each host pattern of the affected routes: the name itself, a
/// label under a wildcard (it falls back through the same shorter wildcards
/// and the catch-all as any deeper host), and one no pattern matches.
fn hosts(affected: &[&Route]) -> Vec<String> {
    let mut set = BTreeSet::new();
    for r in affected {
        for h in &r.hosts {
            match parse_host_pattern(Some(h)) {
                Ok(HostPattern::Exact(name)) => {
                    set.insert(name);
                }
                Ok(HostPattern::Wildcard(suffix)) => {
                    set.insert(format!("gwdiff.{suffix}"));
                }
                _ => {}
            }
        }
    }
    set.insert("gwdiff.invalid".to_owned());
    set.into_iter().collect()
}

/// Paths that tell the affected routes' matchers apart from each other and
/// from every regex of both plans.
fn paths(old: &Plan, new: &Plan, affected: &[&Route]) -> Vec<String> {
    let mut set: BTreeSet<String> = BTreeSet::new();
    set.insert("/".to_owned());
    set.insert("/gwdiff".to_owned());
    let mut regexes: Vec<(String, lang::Dense, Vec<u8>, bool)> = Vec::new();
    let is_affected = |r: &Route| affected.iter().any(|a| a.name == r.name);
    for r in old.routes.iter().chain(&new.routes) {
        let mine = is_affected(r);
        if !mine && !matches!(r.path, PathMatch::Regex(_)) {
            continue;
        }
        match &r.path {
            PathMatch::Exact(p) => {
                set.insert(p.clone());
            }
            PathMatch::Prefix(p) => {
                let base = if p == "/" { "" } else { p.as_str() };
                set.insert(p.clone());
                set.insert(format!("{base}/"));
                set.insert(format!("{base}/gwdiff"));
            }
            PathMatch::Regex(source) => {
                if let Some(entry) = regexes.iter_mut().find(|(s, ..)| s == source) {
                    entry.3 |= mine;
                    continue;
                }
                if let Ok(dfa) = compile_pattern(source) {
                    let literal = regex_syntax::parse(source)
                        .map(|h| crate::regex::literal_prefix_of(&h))
                        .unwrap_or_default();
                    regexes.push((source.clone(), dfa, literal, mine));
                }
            }
        }
    }
    // Each affected regex: its shortest path, and its shortest path that no
    // exact path or other regex (which rank before prefixes) also matches.
    let exact_sources: Vec<String> = old
        .routes
        .iter()
        .chain(&new.routes)
        .filter_map(|r| match &r.path {
            PathMatch::Exact(p) => Some(regex_syntax::escape(p)),
            _ => None,
        })
        .collect();
    for (source, dfa, literal, affected_regex) in &regexes {
        if !*affected_regex {
            continue;
        }
        if let Some(w) = lang::witness_in_valid_paths(dfa) {
            set.insert(String::from_utf8_lossy(&w).into_owned());
        }
        let others: Vec<String> = regexes
            .iter()
            .filter(|(s, _, l, _)| s != source && (l.starts_with(literal) || literal.starts_with(l)))
            .map(|(s, ..)| format!("(?:{s})"))
            .chain(exact_sources.iter().cloned())
            .collect();
        if let Some(w) = outside(dfa, &others) {
            set.insert(String::from_utf8_lossy(&w).into_owned());
        }
    }
    for (i, (_, a, la, ma)) in regexes.iter().enumerate() {
        for (_, b, lb, mb) in &regexes[i + 1..] {
            if !(ma | mb) || !(la.starts_with(lb) || lb.starts_with(la)) {
                continue;
            }
            for w in [
                lang::common_path(a, b),
                lang::path_outside(a, b),
                lang::path_outside(b, a),
            ]
            .into_iter()
            .flatten()
            {
                set.insert(String::from_utf8_lossy(&w).into_owned());
            }
        }
    }
    // Prefixes against regexes: a path under each affected prefix that a
    // regex takes, and under each prefix that an affected regex takes.
    for r in old.routes.iter().chain(&new.routes) {
        let PathMatch::Prefix(p) = &r.path else { continue };
        let mine = is_affected(r);
        let related = |l: &[u8]| l.starts_with(p.as_bytes()) || p.as_bytes().starts_with(l);
        if !mine && !regexes.iter().any(|(_, _, l, affected)| *affected && related(l)) {
            continue;
        }
        let Ok(under) = compile_pattern(&format!("{}(?:/(?s:.)*)?", regex_syntax::escape(p))) else {
            continue;
        };
        if mine {
            let related: Vec<String> = regexes
                .iter()
                .filter(|(_, _, l, _)| l.starts_with(p.as_bytes()) || p.as_bytes().starts_with(l))
                .map(|(s, ..)| format!("(?:{s})"))
                .collect();
            if let Some(w) = outside(&under, &related) {
                set.insert(String::from_utf8_lossy(&w).into_owned());
            }
        }
        for (_, dfa, literal, affected_regex) in &regexes {
            if (mine || *affected_regex)
                && (literal.starts_with(p.as_bytes()) || p.as_bytes().starts_with(literal))
                && let Some(w) = lang::common_path(&under, dfa)
            {
                set.insert(String::from_utf8_lossy(&w).into_owned());
            }
        }
    }
    set.into_iter().collect()
}

/// The shortest normalized path `dfa` matches and none of `others` does.
fn outside(dfa: &lang::Dense, others: &[String]) -> Option<Vec<u8>> {
    if others.is_empty() {
        return lang::witness_in_valid_paths(dfa);
    }
    let union = plan::build::compile_dfa(others, 1 << 24).ok()?;
    lang::path_outside(dfa, &union)
}

/// Requests for the conditions of both plans: a plain GET, then for each
/// route with conditions one request meeting all of them and one missing
/// each in turn.
fn requests(old: &Plan, new: &Plan) -> Vec<OwnedRequest> {
    let mut out = vec![OwnedRequest {
        method: "GET".into(),
        ..OwnedRequest::default()
    }];
    let value_for = |v: &ValueMatch| match v {
        ValueMatch::Exact(s) => Some(s.clone()),
        ValueMatch::Regex { source, .. } => compile_pattern(source)
            .ok()
            .and_then(|d| lang::witness(&d))
            .map(|w| String::from_utf8_lossy(&w).into_owned()),
    };
    for r in old.routes.iter().chain(&new.routes) {
        if !r.has_conditions() {
            continue;
        }
        let methods: Vec<String> = if r.methods.is_empty() {
            vec!["GET".into()]
        } else {
            r.methods.clone()
        };
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .filter_map(|c| Some((c.name.clone(), value_for(&c.value)?)))
            .collect();
        let query: Vec<(String, String)> = r
            .query
            .iter()
            .filter_map(|c| Some((c.name.clone(), value_for(&c.value)?)))
            .collect();
        let build = |method: &str, skip_header: Option<usize>, skip_query: Option<usize>| OwnedRequest {
            method: method.to_owned(),
            headers: headers
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != skip_header)
                .map(|(_, h)| h.clone())
                .collect(),
            query: {
                let q: Vec<String> = query
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != skip_query)
                    .map(|(_, (n, v))| format!("{n}={}", percent(v)))
                    .collect();
                (!q.is_empty()).then(|| q.join("&"))
            },
        };
        for m in &methods {
            out.push(build(m, None, None));
        }
        let m = &methods[0];
        out.push(build(if m == "GET" { "POST" } else { "GET" }, None, None));
        for i in 0..headers.len() {
            out.push(build(m, Some(i), None));
        }
        for i in 0..query.len() {
            out.push(build(m, None, Some(i)));
        }
    }
    out.sort_by(|a, b| (&a.method, &a.headers, &a.query).cmp(&(&b.method, &b.headers, &b.query)));
    out.dedup();
    out
}

/// Percent-encodes what a query value cannot carry raw.
fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The routes (old and new versions) whose requests may change outcome:
/// added, removed or changed ones, and those whose place in the precedence
/// order of a host pattern changed relative to another route. A request whose
/// winner differs is matched by one of them in one plan or the other.
pub(super) fn affected<'p>(po: &'p Plan, pn: &'p Plan, d: &Diff) -> Vec<&'p Route> {
    let mut names: BTreeSet<&str> = d
        .routes_added
        .iter()
        .chain(&d.routes_removed)
        .map(String::as_str)
        .chain(d.routes_changed.iter().map(|c| c.name.as_str()))
        .collect();
    // Routes whose clusters changed: their requests go elsewhere.
    let changed_clusters: BTreeSet<&str> = d.clusters_changed.iter().map(|c| c.name.as_str()).collect();
    for plan in [po, pn] {
        for r in &plan.routes {
            let clusters: Vec<u32> = match &r.action {
                Action::Cluster(c) => vec![*c],
                Action::Backends { backends, .. } => backends.iter().map(|b| b.cluster).collect(),
                Action::Redirect(_) => Vec::new(),
            };
            if clusters
                .iter()
                .any(|&c| changed_clusters.contains(cluster_name(plan, c)))
            {
                names.insert(&r.name);
            }
        }
    }
    // Relative order within each host pattern, among routes in both plans.
    let by_host = |plan: &'p Plan| -> BTreeMap<&'p str, Vec<&'p str>> {
        let mut m: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, r) in plan.routes.iter().enumerate() {
            for h in &r.hosts {
                m.entry(h.as_str()).or_default().push(i);
            }
        }
        m.into_iter()
            .map(|(h, mut idx)| {
                idx.sort_by_key(|&i| plan::build::precedence(&plan.routes[i], i));
                (h, idx.into_iter().map(|i| plan.routes[i].name.as_str()).collect())
            })
            .collect()
    };
    let old_names: BTreeSet<&str> = po.routes.iter().map(|r| r.name.as_str()).collect();
    let new_names: BTreeSet<&str> = pn.routes.iter().map(|r| r.name.as_str()).collect();
    let common = |n: &&str| old_names.contains(n) && new_names.contains(n);
    let (old_order, new_order) = (by_host(po), by_host(pn));
    for (host, a) in &old_order {
        let Some(b) = new_order.get(host) else { continue };
        let a: Vec<&str> = a.iter().copied().filter(common).collect();
        let b: Vec<&str> = b.iter().copied().filter(common).collect();
        if a != b {
            let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(0);
            let last = a.len()
                - a.iter()
                    .rev()
                    .zip(b.iter().rev())
                    .position(|(x, y)| x != y)
                    .unwrap_or(0);
            names.extend(a[first..last.max(first)].iter().copied());
            names.extend(
                b[first.min(b.len())..last.min(b.len()).max(first.min(b.len()))]
                    .iter()
                    .copied(),
            );
        }
    }
    po.routes
        .iter()
        .chain(&pn.routes)
        .filter(|r| names.contains(r.name.as_str()))
        .collect()
}

/// The requests that change outcome, one example per (before, after) pair.
pub(super) fn moved(old: &Router, new: &Router, affected: &[&Route]) -> Vec<Moved> {
    if affected.is_empty() {
        return Vec::new();
    }
    let (po, pn) = (old.plan(), new.plan());
    let describe = |router: &Router, host: &str, path: &str, req: &OwnedRequest| -> String {
        match router.lookup(host, path, req) {
            Some(m) => outcome(router.plan(), &router.plan().routes[m.route as usize]),
            None => "404 no route".to_owned(),
        }
    };
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut out = Vec::new();
    let paths = paths(po, pn, affected);
    let requests = requests(po, pn);
    for host in hosts(affected) {
        for path in &paths {
            for req in &requests {
                let before = describe(old, &host, path, req);
                let after = describe(new, &host, path, req);
                if before == after || !seen.insert((before.clone(), after.clone())) {
                    continue;
                }
                let query = req.query.as_deref().map(|q| format!("?{q}")).unwrap_or_default();
                out.push(Moved {
                    method: req.method.clone(),
                    url: format!("http://{host}{path}{query}"),
                    headers: req.headers.clone(),
                    before,
                    after,
                });
            }
        }
    }
    out
}
