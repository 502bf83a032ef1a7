//! Test support (feature `reference`), shared by the plan's tests, its
//! benches and the fuzz targets: routers built from `(host, prefix)` tables,
//! and the naive reference matcher written from SPEC §4 that the compiled
//! lookup must agree with.

#![allow(clippy::expect_used)] // test support: a failed expectation is a failed test

use crate::{
    AccessLog, Cluster, Limits, Plan, PlanBuilder, Route, Router, Timeouts, Upstream, decode, encode,
    host_without_port, parse_host_pattern, split_prefix,
};

/// A router whose route `i` is `routes[i]` (host `None` = any) on one cluster.
pub fn router(routes: &[(Option<&str>, &str)]) -> Router {
    let mut builder = PlanBuilder::new();
    let mut plan_routes = Vec::new();
    for (i, (host, prefix)) in routes.iter().enumerate() {
        let host = parse_host_pattern(*host).expect("valid host");
        let prefix = split_prefix(prefix).expect("valid prefix");
        builder.insert(&host, &prefix, i as u32).expect("no duplicates");
        plan_routes.push(Route {
            name: format!("r{i}"),
            host: host.to_plan_string(),
            path_prefix: prefix,
            cluster: 0,
            timeouts: Timeouts::default(),
            policies: vec![],
            line: i as u32 + 1,
            column: 1,
        });
    }
    let (hosts, catch_all, paths) = builder.finish();
    let plan = Plan {
        source: "test.yaml".into(),
        listen: "127.0.0.1:0".into(),
        admin: None,
        limits: Limits::default(),
        shutdown_delay_ms: 0,
        drain_ms: 0,
        defaults: Timeouts::default(),
        access_log: AccessLog::default(),
        routes: plan_routes,
        clusters: vec![Cluster {
            name: "c".into(),
            upstreams: vec![Upstream {
                url: "http://127.0.0.1:1".into(),
                weight: 1,
            }],
            wrr: vec![0],
            pool: Default::default(),
        }],
        policies: vec![],
        hosts,
        catch_all,
        paths,
    };
    Router::new(decode(&encode(&plan, "sha256:test")).expect("decodes")).expect("consistent")
}

/// SPEC §4.2: does the pattern match the host (port already removed)?
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

/// SPEC §4.3: the path as matchers see it: each segment's `;params` set aside.
pub fn reference_match_path(path: &str) -> String {
    path.split('/')
        .map(|seg| seg.split(';').next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("/")
}

/// SPEC §4.4: segment-wise prefix match (on a path whose params are set aside).
pub fn reference_prefix(prefix: &str, path: &str) -> bool {
    let path = reference_match_path(path);
    prefix == "/" || path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// SPEC §4.4 by linear scan: most specific host tier (exact, then wildcards by
/// longest suffix, then any), then the longest prefix.
pub fn reference_lookup(routes: &[(String, String)], host: &str, path: &str) -> Option<usize> {
    let host = host_without_port(host);
    routes
        .iter()
        .enumerate()
        .filter_map(|(i, (pattern, prefix))| {
            let (tier, suffix_len) = reference_host_tier(pattern, host)?;
            reference_prefix(prefix, path).then_some((
                tier,
                std::cmp::Reverse(suffix_len),
                std::cmp::Reverse(prefix.len()),
                i,
            ))
        })
        .min()
        .map(|(_, _, _, i)| i)
}
