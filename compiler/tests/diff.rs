//! `gateway diff` is honest both ways: every example request it prints routes
//! differently under the two plans (checked with the lookup), and when it
//! says "no change in routing", requests route identically.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::path::Path;

use plan::{OwnedRequest, Router};
use proptest::prelude::*;

const HOSTS: [&str; 4] = ["a.example.com", "\"*.example.com\"", "\"*\"", "b.test"];
const PATHS: [&str; 5] = ["/a", "/a/b", "/", "/b", "/a/1"];
const REGEXES: [&str; 3] = ["/a/[0-9]+", "/(a|b)/.*", "/[a-z]"];
const CLUSTERS: [&str; 2] = ["c1", "c2"];

#[derive(Debug, Clone)]
struct R {
    host: usize,
    kind: u8,
    path: usize,
    method: bool,
    cluster: usize,
}

fn yaml(routes: &[R]) -> String {
    let mut y = String::from("routes:\n");
    for (i, r) in routes.iter().enumerate() {
        let matcher = match r.kind {
            0 => format!("pathPrefix: \"{}\"", PATHS[r.path]),
            1 => format!("path: \"{}\"", PATHS[r.path]),
            _ => format!("pathRegex: \"{}\"", REGEXES[r.path % 3]),
        };
        let method = if r.method { ", methods: [POST]" } else { "" };
        y.push_str(&format!(
            "  - {{ name: r{i}, host: {}, {matcher}{method}, cluster: {} }}\n",
            HOSTS[r.host], CLUSTERS[r.cluster]
        ));
    }
    y.push_str("clusters:\n  - { name: c1, upstreams: [{ url: \"http://127.0.0.1:1\" }] }\n  - { name: c2, upstreams: [{ url: \"http://127.0.0.1:2\" }] }\n");
    y
}

fn router(text: &str) -> Option<Router> {
    let c = compiler::compile_str("t.yaml", text, Path::new("."));
    let plan = c.plan?;
    Some(Router::new(plan::decode(&plan::encode(&plan, "sha256:t")).unwrap()).unwrap())
}

/// Route name and cluster a request gets, or none.
fn outcome(r: &Router, host: &str, path: &str, req: &OwnedRequest) -> Option<(String, Option<String>)> {
    let m = r.lookup(host, path, req)?;
    let route = &r.plan().routes[m.route as usize];
    Some((
        route.name.clone(),
        route.cluster().map(|c| r.plan().clusters[c as usize].name.clone()),
    ))
}

fn route_strategy() -> impl Strategy<Value = R> {
    (0usize..4, 0u8..3, 0usize..5, any::<bool>(), 0usize..2).prop_map(|(host, kind, path, method, cluster)| R {
        host,
        kind,
        path,
        method,
        cluster,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn examples_really_move_and_no_change_means_no_change(
        old in prop::collection::vec(route_strategy(), 1..6),
        edits in prop::collection::vec((0usize..6, route_strategy(), 0u8..4), 0..3),
    ) {
        let mut new = old.clone();
        for (at, r, op) in edits {
            let at = at % new.len().max(1);
            match op {
                0 if !new.is_empty() => new[at] = r,
                1 if new.len() > 1 => { new.remove(at); }
                2 => new.push(r),
                _ if new.len() > 1 => new.swap(0, at),
                _ => {}
            }
        }
        let (Some(a), Some(b)) = (router(&yaml(&old)), router(&yaml(&new))) else { return Ok(()) };
        let d = compiler::diff::diff(&a, &b);
        for m in &d.moved {
            let uri: http::Uri = m.url.parse().unwrap();
            let req = OwnedRequest { method: m.method.clone(), headers: m.headers.clone(), query: uri.query().map(str::to_owned) };
            let host = uri.host().unwrap();
            prop_assert_ne!(outcome(&a, host, uri.path(), &req), outcome(&b, host, uri.path(), &req), "example {:?} does not move", m);
        }
        if d.moved.is_empty() {
            for host in ["a.example.com", "x.example.com", "b.test", "other.org", "example.com"] {
                for path in ["/", "/a", "/a/", "/a/b", "/a/1", "/a/12", "/a/x", "/b", "/b/c", "/c", "/a/b/c"] {
                    for method in ["GET", "POST"] {
                        let req = OwnedRequest { method: method.into(), ..OwnedRequest::default() };
                        prop_assert_eq!(
                            outcome(&a, host, path, &req), outcome(&b, host, path, &req),
                            "diff found no moved request, but {} {}{} moves\nold:\n{}new:\n{}", method, host, path, yaml(&old), yaml(&new)
                        );
                    }
                }
            }
        }
    }
}

/// The outcomes `diff` prints name a redirect's and a rewrite's parts the way
/// the config spells them, not as Rust structures.
#[test]
fn redirect_and_rewrite_outcomes_read_as_config() {
    let old = "routes:\n  - { name: docs, pathPrefix: /docs, redirect: { scheme: https, host: d.example.com, port: 8443, pathPrefix: /v2, status: 301 } }\n  - { name: s, pathPrefix: /s, cluster: c1, rewrite: { path: /assets } }\nclusters:\n  - { name: c1, upstreams: [{ url: \"http://127.0.0.1:1\" }] }\n";
    let new = old
        .replace("status: 301", "status: 308")
        .replace("path: /assets", "pathPrefix: /a");
    let d = compiler::diff::diff(&router(old).unwrap(), &router(&new).unwrap());
    let texts: Vec<String> = d.moved.iter().map(|m| format!("{} -> {}", m.before, m.after)).collect();
    assert!(
        texts.contains(
            &"route docs: redirect scheme https, host d.example.com, port 8443, pathPrefix /v2, status 301 -> route docs: redirect scheme https, host d.example.com, port 8443, pathPrefix /v2, status 308"
                .to_owned()
        ),
        "{texts:#?}"
    );
    assert!(
        texts.contains(
            &"route s: cluster c1; rewrite path /assets -> route s: cluster c1; rewrite pathPrefix /a".to_owned()
        ),
        "{texts:#?}"
    );
}
