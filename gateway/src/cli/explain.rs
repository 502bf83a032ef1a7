//! `gateway explain`: which route a URL takes and why, or why none does. Written
//! to be pasted into a bug report.

use std::fmt::Write as _;

use plan::{NONE, Route, Router, Tier, host_without_port, normalize_path};

/// Does `host` (no port) match a plan host pattern? The naive reading of SPEC §4.2.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return host.len() > suffix.len() + 1
            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
            && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    }
    pattern.eq_ignore_ascii_case(host)
}

/// How many leading segments of `prefix` match `path`, and whether all do.
fn prefix_match(prefix: &str, path: &str) -> (usize, bool) {
    if prefix == "/" {
        return (0, true);
    }
    let mut want = prefix[1..].split('/');
    let mut have = path.strip_prefix('/').unwrap_or(path).split('/');
    let mut n = 0;
    loop {
        match (want.next(), have.next()) {
            (None, _) => return (n, true),
            (Some(w), Some(h)) if w == h => n += 1,
            _ => return (n, false),
        }
    }
}

fn location(router: &Router, route: &Route) -> String {
    format!("{}:{}", router.plan().source, route.line)
}

/// Explains `url`; returns the report and whether it was routed.
pub fn explain(router: &Router, url: &str) -> (String, bool) {
    let mut out = String::new();
    let with_scheme;
    let url_for_parse = if url.contains("://") {
        url
    } else {
        with_scheme = format!("http://{url}");
        &with_scheme
    };
    let uri: http::Uri = match url_for_parse.parse() {
        Ok(u) => u,
        Err(e) => return (format!("invalid URL {url:?}: {e}\n"), false),
    };
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host = host_without_port(authority);
    let raw_path = if uri.path().is_empty() { "/" } else { uri.path() };
    let _ = writeln!(out, "request   {url}");
    let port_note = if host.len() < authority.len() {
        " (port ignored)"
    } else {
        ""
    };
    let _ = writeln!(out, "host      {host}{port_note}");
    let path = match normalize_path(raw_path) {
        Ok(p) => p,
        Err(e) => {
            let _ = writeln!(out, "path      {raw_path}");
            let _ = writeln!(out, "result    400 bad_path: {e}");
            return (out, false);
        }
    };
    let mut notes = Vec::new();
    if path != raw_path {
        notes.push(format!("normalized from {raw_path}"));
    }
    if uri.query().is_some() {
        notes.push("query ignored for matching, forwarded intact".to_owned());
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let _ = writeln!(out, "path      {path}{notes}");

    let plan = router.plan();
    let Some(m) = router.lookup(authority, &path) else {
        let _ = writeln!(out, "result    404 no_route: no route matches");
        let mut scored: Vec<(bool, usize, &Route, String)> = plan
            .routes
            .iter()
            .map(|r| {
                let host_ok = host_matches(&r.host, host);
                let (segments, prefix_ok) = prefix_match(&r.path_prefix, &path);
                let why = match (host_ok, prefix_ok) {
                    (false, _) => format!("host pattern {:?} does not match {host:?}", r.host),
                    (true, false) => format!(
                        "pathPrefix {:?} does not match {path:?} (segment-wise; {segments} segment(s) agree)",
                        r.path_prefix
                    ),
                    (true, true) => "matches".to_owned(),
                };
                (host_ok, segments, r, why)
            })
            .collect();
        scored.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)).then(a.2.line.cmp(&b.2.line)));
        if scored.is_empty() {
            let _ = writeln!(out, "closest   (the plan has no routes)");
        } else {
            let _ = writeln!(out, "closest routes:");
            for (_, _, r, why) in scored.iter().take(5) {
                let _ = writeln!(out, "  {} ({}): {why}", r.name, location(router, r));
            }
        }
        return (out, false);
    };

    let route = &plan.routes[m.route as usize];
    let cluster = &plan.clusters[m.cluster as usize];
    let _ = writeln!(out, "route     {} ({})", route.name, location(router, route));
    let tier = match m.tier {
        Tier::Exact => format!("exact host {:?}", route.host),
        Tier::Wildcard(_) => format!("wildcard host {:?}", route.host),
        Tier::CatchAll => "catch-all host \"*\"".to_owned(),
    };
    let _ = writeln!(out, "tier      {tier}");
    // Say which more specific routes were passed over, so tier fallback is visible.
    for r in &plan.routes {
        let more_specific = match m.tier {
            Tier::Exact => false,
            Tier::Wildcard(_) => !r.host.starts_with('*') || r.host.len() > route.host.len(),
            Tier::CatchAll => r.host != "*",
        };
        if more_specific && r.host != route.host && host_matches(&r.host, host) {
            let _ = writeln!(
                out,
                "skipped   {} ({}): host {:?} matches but pathPrefix {:?} does not",
                r.name,
                location(router, r),
                r.host,
                r.path_prefix
            );
        }
    }
    let _ = writeln!(out, "prefix    {}", route.path_prefix);
    let _ = writeln!(out, "cluster   {}", cluster.name);
    for (i, u) in cluster.upstreams.iter().enumerate() {
        let _ = writeln!(out, "  upstream {} {} weight {}", letter(i), u.url, u.weight);
    }
    if cluster.wrr.is_empty() {
        let _ = writeln!(
            out,
            "wrr       live smooth WRR (period above {} picks)",
            plan::MAX_TABLE_LEN
        );
    } else {
        let shown: Vec<String> = cluster.wrr.iter().take(32).map(|&i| letter(i as usize)).collect();
        let more = if cluster.wrr.len() > 32 { " ..." } else { "" };
        let _ = writeln!(out, "wrr       period {}: {}{more}", cluster.wrr.len(), shown.join(" "));
    }
    let first = cluster.wrr.first().map_or(0, |&i| i as usize);
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let _ = writeln!(
        out,
        "forward   {}{path}{query} (first pick of a fresh process)",
        cluster.upstreams[first].url
    );
    let t = route.timeouts;
    let _ = writeln!(
        out,
        "timeouts  readMs {} writeMs {} upstreamMs {} connectMs {}",
        t.read_ms, t.write_ms, t.upstream_ms, t.connect_ms
    );
    if !route.policies.is_empty() {
        let names: Vec<&str> = route
            .policies
            .iter()
            .map(|&p| plan.policies[p as usize].name.as_str())
            .collect();
        let _ = writeln!(out, "policies  {}", names.join(", "));
    }
    debug_assert!(m.route != NONE);
    (out, true)
}

fn letter(i: usize) -> String {
    if i < 26 {
        ((b'a' + i as u8) as char).to_string()
    } else {
        format!("#{i}")
    }
}
