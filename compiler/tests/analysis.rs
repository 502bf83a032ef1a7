//! The static checks are sound: a route reported "never selected" is never
//! selected, for any request of a large set built from every route's own
//! paths and condition values. Random small route sets, compiled from YAML.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::path::Path;

use plan::{OwnedRequest, Router};
use proptest::prelude::*;

const PATHS: [&str; 6] = ["/a", "/a/b", "/b", "/a/1", "/", "/a/b/c"];
const REGEXES: [&str; 6] = ["/a/[0-9]+", "/a/.*", "/(a|b)", "/a/(b|1)", "/[a-z]/b", "/a/[a-z]+"];

#[derive(Debug, Clone)]
struct R {
    kind: u8,
    path: usize,
    methods: u8,
    header: Option<u8>,
}

fn yaml(routes: &[R]) -> String {
    let mut y = String::from("routes:\n");
    for (i, r) in routes.iter().enumerate() {
        let matcher = match r.kind {
            0 => format!("pathPrefix: \"{}\"", PATHS[r.path]),
            1 => format!("path: \"{}\"", PATHS[r.path]),
            _ => format!("pathRegex: \"{}\"", REGEXES[r.path]),
        };
        let methods = match r.methods {
            1 => ", methods: [GET]",
            2 => ", methods: [GET, POST]",
            _ => "",
        };
        let header = match r.header {
            Some(0) => ", headers: [{ name: x, value: \"1\" }]",
            Some(1) => ", headers: [{ name: x, regex: \"[0-9]\" }]",
            Some(_) => ", headers: [{ name: x, regex: \"1|2\" }]",
            None => "",
        };
        y.push_str(&format!(
            "  - {{ name: r{i}, {matcher}{methods}{header}, cluster: c }}\n"
        ));
    }
    y.push_str("clusters:\n  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }\n");
    y
}

fn requests() -> Vec<(String, OwnedRequest)> {
    let paths = [
        "/", "/a", "/a/", "/a/b", "/a/1", "/a/12", "/a/x", "/b", "/b/b", "/a/b/c", "/c/b", "/a/b/", "/zz", "/a/zz/q",
    ];
    let mut out = Vec::new();
    for p in paths {
        for method in ["GET", "POST", "PUT"] {
            for header in [None, Some("1"), Some("2"), Some("x")] {
                out.push((
                    p.to_owned(),
                    OwnedRequest {
                        method: method.to_owned(),
                        headers: header.map(|v| vec![("x".to_owned(), v.to_owned())]).unwrap_or_default(),
                        query: None,
                    },
                ));
            }
        }
    }
    out
}

fn route_strategy() -> impl Strategy<Value = R> {
    (0u8..3, 0usize..6, 0u8..3, prop::option::of(0u8..3)).prop_map(|(kind, path, methods, header)| R {
        kind,
        path,
        methods,
        header,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn never_selected_routes_are_never_selected(routes in prop::collection::vec(route_strategy(), 1..8)) {
        let compiled = compiler::compile_str("t.yaml", &yaml(&routes), Path::new("."));
        // Duplicate matches are refused; nothing to check then.
        let Some(plan) = compiled.plan.clone() else { return Ok(()) };
        let flagged: Vec<usize> = compiled
            .warnings()
            .filter(|w| w.message.starts_with("never selected"))
            .map(|w| w.path.trim_start_matches("routes[").trim_end_matches(']').parse().unwrap())
            .collect();
        let router = Router::new(plan::decode(&plan::encode(&plan, "sha256:t")).unwrap()).unwrap();
        for (path, req) in requests() {
            if let Some(m) = router.lookup("h", &path, &req) {
                prop_assert!(
                    !flagged.contains(&(m.route as usize)),
                    "route {} was flagged never selected but takes {} {:?}\n{}",
                    m.route, path, req, yaml(&routes)
                );
            }
        }
    }
}

#[test]
fn a_union_of_regexes_and_exact_paths_is_seen_to_cover_a_route() {
    let y = "routes:
  - { name: digits, pathRegex: \"/n/[0-9]+\", cluster: c }
  - { name: letters, pathRegex: \"/n/[a-z]+\", cluster: c }
  - { name: both, pathRegex: \"/n/(1|x)\", cluster: c }
  - { name: exact, path: /p/q, cluster: c }
  - { name: rest, pathRegex: \"/p/[^q/][^/]*\", cluster: c }
  - { name: p, pathRegex: \"/p/[a-z]\", cluster: c }
clusters:
  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }
";
    let compiled = compiler::compile_str("t.yaml", y, Path::new("."));
    let warnings: Vec<String> = compiled.warnings().map(ToString::to_string).collect();
    assert!(
        warnings.iter().any(|w| w.contains("warning: routes[2]: never selected: every request it matches goes to routes \"digits\" (t.yaml:2), \"letters\" (t.yaml:3)")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("warning: routes[5]: never selected")
            && w.contains("\"exact\"")
            && w.contains("\"rest\"")),
        "{warnings:#?}"
    );
}
