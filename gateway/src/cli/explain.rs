//! `gateway explain`: which route a request takes and why, or why none does:
//! every host tier it reaches, every route whose path matched there and the
//! condition that turned it down, then the winner's action, filters, and the
//! request head exactly as it would be forwarded. Written to be pasted into a
//! bug report.

use std::fmt::Write as _;

use bytes::BytesMut;
use plan::{
    Action, Failed, OwnedRequest, PathMatch, Route, Router, Tier, ValueMatch, host_without_port, normalize_path,
};

use crate::cli::offline::parse_url;
use crate::proxy::respond::location;

/// What to explain: a URL, a method and headers.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub method: String,
    /// `Name: value` pairs as given with `-H`.
    pub headers: Vec<(String, String)>,
    /// What a running gateway says (`--admin ADDR`).
    pub live: Option<Live>,
}

/// A running gateway's view, read from its admin listener: the plan it
/// serves and each upstream's health (`GET /plan`, `GET /upstreams`).
#[derive(Debug, Clone)]
pub struct Live {
    pub admin: std::net::SocketAddr,
    pub digest: String,
    pub upstreams: Vec<serde_json::Value>,
}

impl Live {
    pub fn fetch(admin: std::net::SocketAddr) -> Result<Live, String> {
        let plan: serde_json::Value =
            serde_json::from_str(&admin_get(admin, "/plan")?).map_err(|e| format!("{admin}/plan: not JSON: {e}"))?;
        let upstreams: Vec<serde_json::Value> = serde_json::from_str(&admin_get(admin, "/upstreams")?)
            .map_err(|e| format!("{admin}/upstreams: not a JSON list: {e}"))?;
        Ok(Live {
            admin,
            digest: plan["digest"].as_str().unwrap_or("").to_owned(),
            upstreams,
        })
    }

    /// How the running gateway sees `url` of `cluster`, in a few words.
    fn health(&self, cluster: &str, url: &str) -> String {
        let Some(u) = self
            .upstreams
            .iter()
            .find(|u| u["cluster"] == cluster && u["url"] == url)
        else {
            return "not in the running gateway's plan".into();
        };
        let mut words = Vec::new();
        words.push(if u["takesTraffic"] == true {
            "takes traffic"
        } else {
            "takes NO traffic"
        });
        if u["healthChecked"] == true {
            words.push(if u["healthy"] == true {
                "health check ok"
            } else {
                "health check failing"
            });
        }
        let mut text = words.join(", ");
        if let Some(ms) = u["ejectedForMs"].as_u64() {
            text.push_str(&format!(", ejected for {ms} ms more"));
        }
        let c = &u["counters"];
        text.push_str(&format!(
            ", {} active / {} idle connections, {} ejections",
            c["connectionsActive"], c["connectionsIdle"], c["ejections"]
        ));
        text
    }
}

/// `GET path` on an admin listener; the body of a 200.
fn admin_get(admin: std::net::SocketAddr, path: &str) -> Result<String, String> {
    use std::io::{Read as _, Write as _};
    let fail = |e: &dyn std::fmt::Display| format!("cannot read {path} from the admin listener {admin}: {e}");
    let wait = std::time::Duration::from_secs(5);
    let mut stream = std::net::TcpStream::connect_timeout(&admin, wait).map_err(|e| fail(&e))?;
    stream.set_read_timeout(Some(wait)).map_err(|e| fail(&e))?;
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| fail(&e))?;
    let mut raw = Vec::new();
    stream.take(16 << 20).read_to_end(&mut raw).map_err(|e| fail(&e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| fail(&"no response"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(fail(&head.lines().next().unwrap_or("")));
    }
    Ok(body.to_owned())
}

fn at(router: &Router, route: &Route) -> String {
    format!("{}:{}", router.plan().source, route.line)
}

fn matcher(route: &Route) -> String {
    format!("{} {:?}", route.path.key(), route.path.as_str())
}

fn value(v: &ValueMatch) -> String {
    match v {
        ValueMatch::Exact(x) => format!("= {x:?}"),
        ValueMatch::Regex { source, .. } => format!("~ /{source}/"),
    }
}

/// Why `route` was turned down, in words.
fn why(route: &Route, failed: Failed, req: &OwnedRequest) -> String {
    match failed {
        Failed::Method => format!("method {} is not one of {}", req.method, route.methods.join(", ")),
        Failed::Header(i) => {
            let c = &route.headers[i];
            let got: Vec<&str> = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(&c.name))
                .map(|(_, v)| v.as_str())
                .collect();
            if got.is_empty() {
                format!("header {} {}: absent", c.name, value(&c.value))
            } else {
                format!("header {} {}: got {:?}", c.name, value(&c.value), got.join(","))
            }
        }
        Failed::Query(i) => {
            let c = &route.query[i];
            format!(
                "query {} {}: absent or another value (first occurrence, percent-decoded)",
                c.name,
                value(&c.value)
            )
        }
    }
}

/// Every condition of the winner, as evaluated.
fn conditions(route: &Route) -> Vec<String> {
    let mut out = Vec::new();
    if !route.methods.is_empty() {
        out.push(format!("method in [{}] ✓", route.methods.join(", ")));
    }
    for c in &route.headers {
        out.push(format!("header {} {} ✓", c.name, value(&c.value)));
    }
    for c in &route.query {
        out.push(format!("query {} {} ✓", c.name, value(&c.value)));
    }
    out
}

fn filter_lines(out: &mut String, label: &str, f: &plan::HeaderFilter) {
    if f.is_empty() {
        return;
    }
    let mut parts = Vec::new();
    for (n, v) in &f.set {
        parts.push(format!("set {n}: {v}"));
    }
    for (n, v) in &f.add {
        parts.push(format!("add {n}: {v}"));
    }
    for n in &f.remove {
        parts.push(format!("remove {n}"));
    }
    let _ = writeln!(out, "{label}{}", parts.join("; "));
}

fn letter(i: usize) -> String {
    if i < 26 {
        ((b'a' + i as u8) as char).to_string()
    } else {
        format!("#{i}")
    }
}

/// The head the gateway would send upstream for `raw` (the client's head).
fn forwarded_head(
    router: &Router,
    route: &Route,
    raw: &str,
    (cluster, first): (u32, usize),
    path: &str,
    scheme: &str,
) -> String {
    let mut buf = BytesMut::from(raw);
    let http1::Parsed::Complete(head) = http1::parse(&mut buf, 1 << 20, 1000) else {
        return "  (the request head does not parse: the gateway would answer 400)\n".to_owned();
    };
    let upstream = &router.plan().clusters[cluster as usize].upstreams[first];
    let out = crate::cli::offline::forwarded_head(router, route, &head, cluster, first, path, scheme);
    let text = String::from_utf8_lossy(&out);
    let mut shown = format!("forward   to {}\n", upstream.url);
    if router.plan().clusters[cluster as usize].protocol == plan::UpstreamProtocol::H2 {
        // The same head, sent as HTTP/2 fields (`upstream_h2`).
        shown.push_str("          over HTTP/2: host as :authority, without hop-by-hop fields\n");
    }
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let _ = writeln!(shown, "  | {line}");
    }
    shown
}

/// Does `host` (no port) match a plan host pattern? The naive reading of SPEC §4.2.
fn host_matches(pattern: &str, host: &str) -> bool {
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

/// How many leading segments of `prefix` match `path`.
fn segments_agreeing(prefix: &str, path: &str) -> usize {
    prefix[1..]
        .split('/')
        .zip(plan::match_segments(path))
        .take_while(|(want, have)| want.as_bytes() == *have)
        .count()
}

/// For a request no route takes: the routes that came closest, and why
/// each does not match.
fn closest(out: &mut String, router: &Router, trace: &plan::Trace, host: &str, path: &str, req: &OwnedRequest) {
    let plan = router.plan();
    if plan.routes.is_empty() {
        let _ = writeln!(out, "closest   (the plan has no routes)");
        return;
    }
    let mut scored: Vec<(bool, usize, &Route, String)> = plan
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let host_ok = r.hosts.iter().any(|h| host_matches(h, host));
            let (agree, why_path) = match &r.path {
                PathMatch::Prefix(p) => {
                    let n = segments_agreeing(p, path);
                    (
                        n,
                        format!("pathPrefix {p:?} does not match {path:?} (segment-wise; {n} segment(s) agree)"),
                    )
                }
                PathMatch::Exact(p) => (0, format!("path {p:?} is not {path:?}")),
                PathMatch::Regex(p) => (0, format!("pathRegex {p:?} does not match {path:?}")),
            };
            let failed = trace
                .tiers
                .iter()
                .flat_map(|t| &t.candidates)
                .find(|c| c.route as usize == i)
                .and_then(|c| c.outcome.err());
            let why = match (host_ok, failed) {
                (false, _) => {
                    let patterns: Vec<String> = r.hosts.iter().map(|h| format!("{h:?}")).collect();
                    format!("host pattern {} does not match {host:?}", patterns.join(", "))
                }
                (true, Some(failed)) => why(r, failed, req),
                (true, None) => why_path,
            };
            (host_ok, agree + usize::from(failed.is_some()) * 1000, r, why)
        })
        .collect();
    scored.sort_by(|a, b| (b.0, b.1).cmp(&(a.0, a.1)).then(a.2.line.cmp(&b.2.line)));
    let _ = writeln!(out, "closest routes:");
    for (_, _, r, why) in scored.iter().take(5) {
        let _ = writeln!(out, "  {} ({}): {why}", r.name, at(router, r));
    }
}

/// Explains `request`; returns the report and whether it was routed, or a
/// usage error.
pub fn explain(router: &Router, request: &Request) -> Result<(String, bool), String> {
    let mut out = String::new();
    let url = &request.url;
    let uri = parse_url(url)?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
    let host = host_without_port(authority);
    let raw_path = if uri.path().is_empty() { "/" } else { uri.path() };
    let req = OwnedRequest {
        method: request.method.clone(),
        headers: request.headers.clone(),
        query: uri.query().map(str::to_owned),
    };
    let _ = writeln!(out, "request   {} {url}", request.method);
    for (n, v) in &request.headers {
        let _ = writeln!(out, "header    {n}: {v}");
    }
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
            return Ok((out, false));
        }
    };
    let mut notes = Vec::new();
    if path != raw_path {
        notes.push(format!("normalized from {raw_path}"));
    }
    if path.contains(';') {
        let seen: Vec<String> = plan::match_segments(&path)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        notes.push(format!("matched as /{} with ;params set aside", seen.join("/")));
    }
    if let Some(q) = uri.query() {
        notes.push(format!("query {q} is read by query conditions only, forwarded intact"));
    }
    let notes = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    };
    let _ = writeln!(out, "path      {path}{notes}");

    let plan = router.plan();
    let trace = router.trace(authority, &path, &req);
    for t in &trace.tiers {
        let kind = match t.tier {
            Tier::Exact => "exact host",
            Tier::Wildcard(_) => "wildcard host",
            Tier::CatchAll => "catch-all host",
        };
        let _ = writeln!(out, "tier      {kind} {:?}: {} route(s)", t.pattern, t.routes);
        let won = trace.winner.is_some_and(|w| w.table == t.table);
        for c in &t.candidates {
            let route = &plan.routes[c.route as usize];
            match c.outcome {
                Ok(()) => {}
                Err(failed) => {
                    let _ = writeln!(
                        out,
                        "  passed  {} ({}) {}: {}",
                        route.name,
                        at(router, route),
                        matcher(route),
                        why(route, failed, &req)
                    );
                }
            }
        }
        if !won {
            let none = if t.candidates.is_empty() {
                "no route's path matcher matches"
            } else {
                "no route's conditions hold"
            };
            let _ = writeln!(out, "  none    {none}: falling back to the next tier");
        }
    }
    let Some(m) = trace.winner else {
        let _ = writeln!(out, "result    404 no_route: no route matches");
        closest(&mut out, router, &trace, host, &path, &req);
        return Ok((out, false));
    };
    let route = &plan.routes[m.route as usize];
    let _ = writeln!(out, "route     {} ({})", route.name, at(router, route));
    let mut matched = vec![matcher(route)];
    matched.extend(conditions(route));
    let _ = writeln!(out, "matched   {}", matched.join("; "));
    filter_lines(&mut out, "request   headers: ", &route.request_headers);
    filter_lines(&mut out, "response  headers: ", &route.response_headers);
    if let Some(h) = &route.rewrite.host {
        let _ = writeln!(out, "rewrite   host {h}");
    }
    if let Some(p) = &route.rewrite.path {
        let _ = writeln!(out, "rewrite   path {p:?}");
    }
    let raw = {
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {authority}\r\n",
            request.method,
            uri.path_and_query().map_or("/", |p| p.as_str())
        );
        for (n, v) in &request.headers {
            let _ = write!(r, "{n}: {v}\r\n");
        }
        r.push_str("\r\n");
        r
    };
    let cluster = match &route.action {
        Action::Redirect(rd) => {
            let mut loc = String::new();
            location(
                &mut loc,
                rd,
                route,
                authority.as_bytes(),
                &path,
                uri.query(),
                uri.scheme_str().unwrap_or("http"),
            );
            let _ = writeln!(
                out,
                "action    redirect {} to {loc} (no upstream is contacted)",
                rd.status
            );
            None
        }
        Action::Cluster(c) => Some(*c),
        Action::Backends { backends, wrr } => {
            let split: Vec<String> = backends
                .iter()
                .map(|b| format!("{} ×{}", plan.clusters[b.cluster as usize].name, b.weight))
                .collect();
            let _ = writeln!(out, "split     {}", split.join(", "));
            let shown: Vec<&str> = wrr
                .iter()
                .take(16)
                .map(|&i| plan.clusters[backends[i as usize].cluster as usize].name.as_str())
                .collect();
            if !shown.is_empty() {
                let more = if wrr.len() > 16 { " ..." } else { "" };
                let _ = writeln!(out, "          period {}: {}{more}", wrr.len(), shown.join(" "));
            }
            wrr.first().map(|&i| backends[i as usize].cluster)
        }
    };
    if let Some(c) = cluster {
        let cl = &plan.clusters[c as usize];
        let _ = writeln!(out, "cluster   {}", cl.name);
        for (i, u) in cl.upstreams.iter().enumerate() {
            let _ = write!(out, "  upstream {} {} weight {}", letter(i), u.url, u.weight);
            if let Some(live) = &request.live {
                let _ = write!(out, "  [{}]", live.health(&cl.name, &u.url));
            }
            let _ = writeln!(out);
        }
        if let Some(live) = &request.live
            && live.digest != router.digest()
        {
            let _ = writeln!(
                out,
                "live      the gateway at {} serves plan {}, not this one ({}): its view may not match",
                live.admin,
                live.digest,
                router.digest()
            );
        }
        if cl.wrr.is_empty() {
            let _ = writeln!(
                out,
                "wrr       live smooth WRR (period above {} picks)",
                plan::MAX_TABLE_LEN
            );
        } else {
            let shown: Vec<String> = cl.wrr.iter().take(32).map(|&i| letter(i as usize)).collect();
            let more = if cl.wrr.len() > 32 { " ..." } else { "" };
            let _ = writeln!(out, "wrr       period {}: {}{more}", cl.wrr.len(), shown.join(" "));
        }
        let first = cl.wrr.first().map_or(0, |&i| i as usize);
        out.push_str(&forwarded_head(
            router,
            route,
            &raw,
            (c, first),
            &path,
            uri.scheme_str().unwrap_or("http"),
        ));
        let _ = writeln!(out, "          (first pick of a fresh process)");
    }
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
        let _ = writeln!(
            out,
            "policies  {} (run before the action; they may answer or reroute)",
            names.join(", ")
        );
    }
    Ok((out, true))
}
