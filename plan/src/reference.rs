//! Test support (feature `reference`), shared by the plan's tests, its
//! benches and the fuzz targets: routers built from route specs, and the
//! naive reference matcher written from SPEC §4 that the compiled lookup must
//! agree with. The reference scans every route and matches regexes with the
//! `regex` crate, so it shares no code with the tables, trees and DFAs it
//! checks.

#![allow(clippy::expect_used)] // test support: a failed expectation is a failed test

use std::cmp::Reverse;

use crate::build::{compile_pattern, index, serialize};
use crate::{
    AccessLog, Action, Cluster, Condition, HeaderFilter, Limits, PathMatch, Plan, RegexDfa, RequestView, Rewrite,
    Route, Router, Timeouts, Upstream, ValueMatch, decode, encode, host_without_port, parse_host_pattern, split_prefix,
};

/// A value condition as a test writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Exact(String),
    Regex(String),
}

/// A route as a test writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Host patterns as written (`None` = any).
    pub hosts: Vec<Option<String>>,
    pub path: PathMatch,
    pub methods: Vec<String>,
    pub headers: Vec<(String, Val)>,
    pub query: Vec<(String, Val)>,
}

impl Spec {
    /// A route on one host with a path matcher and no conditions.
    pub fn new(host: Option<&str>, path: PathMatch) -> Self {
        Self {
            hosts: vec![host.map(str::to_owned)],
            path,
            methods: Vec::new(),
            headers: Vec::new(),
            query: Vec::new(),
        }
    }
}

fn condition(regexes: &mut Vec<RegexDfa>, name: &str, val: &Val) -> Condition {
    let value = match val {
        Val::Exact(v) => ValueMatch::Exact(v.clone()),
        Val::Regex(source) => {
            let dfa = compile_pattern(source).expect("valid regex");
            regexes.push(serialize(vec![source.clone()], &dfa));
            ValueMatch::Regex {
                source: source.clone(),
                dfa: (regexes.len() - 1) as u32,
            }
        }
    };
    Condition {
        name: name.to_owned(),
        value,
    }
}

/// A plan whose route `i` is `specs[i]`, all on one cluster.
pub fn plan(specs: &[Spec]) -> Plan {
    let mut regexes = Vec::new();
    let routes: Vec<Route> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| Route {
            name: format!("r{i}"),
            hosts: s
                .hosts
                .iter()
                .map(|h| parse_host_pattern(h.as_deref()).expect("valid host").to_plan_string())
                .collect(),
            path: match &s.path {
                PathMatch::Prefix(p) => PathMatch::Prefix(split_prefix(p).expect("valid prefix")),
                other => other.clone(),
            },
            methods: s.methods.clone(),
            headers: s
                .headers
                .iter()
                .map(|(n, v)| condition(&mut regexes, &n.to_ascii_lowercase(), v))
                .collect(),
            query: s.query.iter().map(|(n, v)| condition(&mut regexes, n, v)).collect(),
            action: Action::Cluster(0),
            request_headers: HeaderFilter::default(),
            response_headers: HeaderFilter::default(),
            rewrite: Rewrite::default(),
            timeouts: Timeouts::default(),
            retry: None,
            policies: vec![],
            line: i as u32 + 1,
            column: 1,
        })
        .collect();
    let built = index(&routes, regexes.len() as u32).expect("index builds");
    regexes.extend(built.regexes);
    Plan {
        source: "test.yaml".into(),
        listen: "127.0.0.1:0".into(),
        admin: None,
        limits: Limits::default(),
        shutdown_delay_ms: 0,
        drain_ms: 0,
        defaults: Timeouts::default(),
        access_log: AccessLog::default(),
        tls: None,
        http2: Default::default(),
        routes,
        clusters: vec![Cluster {
            name: "c".into(),
            upstreams: vec![Upstream {
                url: "http://127.0.0.1:1".into(),
                weight: 1,
            }],
            wrr: vec![0],
            pool: Default::default(),
            health_check: None,
            outlier: Default::default(),
            dns_refresh_ms: 30_000,
            protocol: Default::default(),
            tls: None,
        }],
        policies: vec![],
        hosts: built.hosts,
        catch_all: built.catch_all,
        tables: built.tables,
        paths: built.paths,
        regexes,
    }
}

/// A router over `specs`, through an encoded and decoded artifact.
pub fn router_of(specs: &[Spec]) -> Router {
    Router::new(decode(&encode(&plan(specs), "sha256:test")).expect("decodes")).expect("consistent")
}

/// A router whose route `i` is `routes[i]`: a prefix (host `None` = any).
pub fn router(routes: &[(Option<&str>, &str)]) -> Router {
    let specs: Vec<Spec> = routes
        .iter()
        .map(|(h, p)| Spec::new(*h, PathMatch::Prefix((*p).to_owned())))
        .collect();
    router_of(&specs)
}

/// SPEC §4.2: does the pattern match the host (port already removed)? The
/// tier (0 exact, 1 wildcard, 2 any) and the wildcard suffix length.
pub fn reference_host_tier(pattern: &str, host: &str) -> Option<(u8, usize)> {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    if pattern == "*" {
        return Some((2, 0));
    }
    // A host with an empty label (`.com`, `a..b`) or longer than 253 bytes is
    // not a DNS name: only the catch-all matches it.
    if host.len() > 253 || host.split('.').any(str::is_empty) {
        return None;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        let dotted = format!(".{suffix}");
        return (host.ends_with(&dotted) && host.len() > dotted.len()).then_some((1, suffix.len()));
    }
    (host == pattern).then_some((0, 0))
}

/// SPEC §4.3: the path as matchers see it, as a Java upstream reads it:
/// each segment's `;params` set aside, then the runs of `/` that leaves
/// merged into one.
pub fn reference_match_path(path: &str) -> String {
    let aside = path
        .split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/");
    let mut seen = String::with_capacity(aside.len());
    for c in aside.chars() {
        if !(c == '/' && seen.ends_with('/')) {
            seen.push(c);
        }
    }
    seen
}

/// SPEC §4.4: segment-wise prefix match (on a path whose params are set aside).
pub fn reference_prefix(prefix: &str, path: &str) -> bool {
    let path = reference_match_path(path);
    prefix == "/" || path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// SPEC §4.4: does the path matcher match the (normalized) path?
pub fn reference_path(matcher: &PathMatch, path: &str) -> bool {
    let seen = reference_match_path(path);
    match matcher {
        PathMatch::Prefix(p) => reference_prefix(p, path),
        PathMatch::Exact(p) => seen == *p,
        PathMatch::Regex(source) => whole(source).is_match(&seen),
    }
}

fn whole(source: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{source})$")).expect("valid regex")
}

fn percent_decode(raw: &str) -> Vec<u8> {
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) = (b.get(i + 1).and_then(|&c| hex(c)), b.get(i + 2).and_then(|&c| hex(c)))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn value_matches(val: &Val, got: &[u8]) -> bool {
    match val {
        Val::Exact(v) => v.as_bytes() == got,
        Val::Regex(source) => std::str::from_utf8(got).is_ok_and(|s| whole(source).is_match(s)),
    }
}

/// SPEC §4.5: do the request conditions hold?
pub fn reference_conditions(spec: &Spec, req: &impl RequestView) -> bool {
    if !spec.methods.is_empty() && !spec.methods.iter().any(|m| m.as_bytes() == req.method()) {
        return false;
    }
    for (name, val) in &spec.headers {
        let lower = name.to_ascii_lowercase();
        let lines: Vec<&[u8]> = req.header_values(lower.as_bytes()).collect();
        if lines.is_empty() || !value_matches(val, &lines.join(&b","[..])) {
            return false;
        }
    }
    for (name, val) in &spec.query {
        let query = req
            .query()
            .map(|q| String::from_utf8_lossy(q).into_owned())
            .unwrap_or_default();
        let first = query.split('&').find_map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(n) == name.as_bytes()).then(|| percent_decode(v))
        });
        if req.query().is_none() || !first.is_some_and(|v| value_matches(val, &v)) {
            return false;
        }
    }
    true
}

/// SPEC §4.6 by linear scan: among the routes whose host, path and
/// conditions match, the first by host tier (exact, then wildcards by longest
/// suffix, then any), path kind and specificity, methods, header count, query
/// count and config order.
pub fn reference_route(specs: &[Spec], host: &str, path: &str, req: &impl RequestView) -> Option<usize> {
    let host = host_without_port(host);
    specs
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let (tier, suffix) = s
                .hosts
                .iter()
                .filter_map(|h| {
                    let pattern = parse_host_pattern(h.as_deref()).expect("valid host").to_plan_string();
                    reference_host_tier(&pattern, host)
                })
                .min_by_key(|&(tier, suffix)| (tier, Reverse(suffix)))?;
            let matcher = match &s.path {
                PathMatch::Prefix(p) => PathMatch::Prefix(split_prefix(p).expect("valid prefix")),
                other => other.clone(),
            };
            if !reference_path(&matcher, path) || !reference_conditions(s, req) {
                return None;
            }
            Some((
                (tier, Reverse(suffix)),
                (
                    matcher.rank(),
                    Reverse(matcher.specificity()),
                    Reverse(!s.methods.is_empty()),
                    Reverse(s.headers.len()),
                    Reverse(s.query.len()),
                    i,
                ),
            ))
        })
        .min()
        .map(|(_, key)| key.5)
}

/// The v0.1 reference: host and prefix only.
pub fn reference_lookup(routes: &[(String, String)], host: &str, path: &str) -> Option<usize> {
    let specs: Vec<Spec> = routes
        .iter()
        .map(|(h, p)| Spec::new(Some(h), PathMatch::Prefix(p.clone())))
        .collect();
    reference_route(&specs, host, path, &crate::OwnedRequest::default())
}
