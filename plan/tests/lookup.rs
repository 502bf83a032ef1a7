//! Host trie, prefix trees and tier selection through the public router, as tables
//! of cases; plus a property test against the naive reference matcher.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use plan::reference as support;

use plan::{Tier, normalize_path};
use proptest::prelude::*;
use support::{reference_lookup, router};

fn check(routes: &[(Option<&str>, &str)], cases: &[(&str, &str, Option<usize>)]) {
    let r = router(routes);
    for &(host, path, expected) in cases {
        let got = r.lookup(host, path).map(|m| m.route as usize);
        assert_eq!(got, expected, "{host}{path}");
    }
}

#[test]
fn exact_hosts_are_case_insensitive_and_ignore_ports() {
    check(
        &[(Some("api.example.com"), "/"), (Some("www.example.com"), "/")],
        &[
            ("api.example.com", "/", Some(0)),
            ("API.Example.COM", "/x", Some(0)),
            ("api.example.com:8080", "/", Some(0)),
            ("api.example.com.", "/", Some(0)),
            ("www.example.com", "/", Some(1)),
            ("example.com", "/", None),
            ("x.api.example.com", "/", None),
            ("", "/", None),
        ],
    );
}

#[test]
fn wildcards_match_one_or_more_labels_never_the_apex_longest_suffix_first() {
    check(
        &[(Some("*.example.com"), "/"), (Some("*.eu.example.com"), "/")],
        &[
            ("a.example.com", "/", Some(0)),
            ("a.b.c.example.com", "/", Some(0)),
            ("example.com", "/", None),
            ("a.eu.example.com", "/", Some(1)),
            ("x.y.eu.example.com", "/", Some(1)),
            ("eu.example.com", "/", Some(0)),
            ("A.EU.Example.com:80", "/", Some(1)),
            ("aexample.com", "/", None),
            // Regression (found by fuzz/run.sh, normalize_lookup): an empty
            // leftmost label matched the wildcard.
            (".example.com", "/", None),
            ("a..example.com", "/", None),
        ],
    );
}

#[test]
fn hosts_that_are_not_dns_names_match_only_catch_all_routes() {
    // Regression (found by fuzz/run.sh, normalize_lookup): the trie and the
    // reference disagreed on hosts longer than 253 bytes.
    let r = router(&[(Some("*.com"), "/"), (None, "/any")]);
    let long = format!("{}.com", "a".repeat(260));
    assert_eq!(r.lookup(&long, "/"), None);
    assert_eq!(r.lookup(&long, "/any").map(|m| m.route), Some(1));
    assert_eq!(r.lookup("a..com", "/").map(|m| m.route), None);
}

#[test]
fn prefixes_match_segment_wise_longest_first() {
    check(
        &[(None, "/api"), (None, "/api/v1"), (None, "/static/"), (None, "/a//b")],
        &[
            ("h", "/api", Some(0)),
            ("h", "/api/", Some(0)),
            ("h", "/api/x", Some(0)),
            ("h", "/apix", None),
            ("h", "/api/v1", Some(1)),
            ("h", "/api/v1/users", Some(1)),
            ("h", "/api/v10", Some(0)),
            ("h", "/static", Some(2)),
            ("h", "/Static", None),
            // The prefix `/a//b` is normalized to `/a/b`, as request paths are.
            ("h", "/a/b/c", Some(3)),
            ("h", "/", None),
            // Matchers set each segment's `;params` aside (SPEC §4.3).
            ("h", "/api;jsessionid=1/v1", Some(1)),
            ("h", "/api/v1;x", Some(1)),
            ("h", "/api;x", Some(0)),
            ("h", "/apix;api", None),
        ],
    );
}

#[test]
fn tiers_fall_back_from_exact_to_wildcard_to_catch_all() {
    let routes = [
        (Some("api.example.com"), "/v1"),
        (Some("*.example.com"), "/v2"),
        (None, "/"),
        (Some("*.example.com"), "/v1/deep"),
    ];
    check(
        &routes,
        &[
            ("api.example.com", "/v1/x", Some(0)),
            // Exact host has no /v2: the wildcard tier answers.
            ("api.example.com", "/v2", Some(1)),
            // The exact tier wins even when a wildcard has a longer prefix.
            ("api.example.com", "/v1/deep", Some(0)),
            ("api.example.com", "/v3", Some(2)),
            ("other.example.com", "/v1/deep/x", Some(3)),
            ("other.org", "/v1", Some(2)),
        ],
    );
    let r = router(&routes);
    assert_eq!(r.lookup("api.example.com", "/v1").map(|m| m.tier), Some(Tier::Exact));
    assert!(matches!(
        r.lookup("a.example.com", "/v2").map(|m| m.tier),
        Some(Tier::Wildcard(_))
    ));
    assert_eq!(r.lookup("x.org", "/").map(|m| m.tier), Some(Tier::CatchAll));
}

#[test]
fn shorter_wildcard_answers_when_the_longer_has_no_matching_prefix() {
    check(
        &[(Some("*.b.example.com"), "/x"), (Some("*.example.com"), "/y")],
        &[
            ("a.b.example.com", "/x", Some(0)),
            ("a.b.example.com", "/y", Some(1)),
            ("a.b.example.com", "/z", None),
        ],
    );
}

fn host_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "example", "com", "API"]), 1..5)
        .prop_map(|l| l.join("."))
}

fn pattern_strategy() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        1 => Just(None),
        3 => host_strategy().prop_map(Some),
        2 => host_strategy().prop_map(|h| Some(format!("*.{h}"))),
    ]
}

fn path_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "a", "b", "api", "v1", "", ".", "..", "a;x", "..;y", "%61", "v1;", "%2e",
        ]),
        0..5,
    )
    .prop_map(|segs| format!("/{}", segs.join("/")))
}

fn prefix_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "api", "v1"]), 0..4)
        .prop_map(|segs| format!("/{}", segs.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn lookup_equals_the_reference_matcher(
        routes in prop::collection::vec((pattern_strategy(), prefix_strategy()), 0..12),
        requests in prop::collection::vec((host_strategy(), path_strategy(), prop::option::of(1u16..9999)), 1..10),
    ) {
        // Keep the first of routes equal after normalization, as the compiler would.
        let mut seen = std::collections::HashSet::new();
        let routes: Vec<(Option<String>, String)> = routes
            .into_iter()
            .filter(|(h, p)| {
                let host = plan::parse_host_pattern(h.as_deref()).map(|h| h.to_plan_string());
                let prefix = plan::split_prefix(p);
                matches!((host, prefix), (Ok(h), Ok(p)) if seen.insert((h.clone(), p.clone())))
            })
            .collect();
        let table: Vec<(Option<&str>, &str)> = routes.iter().map(|(h, p)| (h.as_deref(), p.as_str())).collect();
        let r = router(&table);
        let normalized: Vec<(String, String)> = r.plan().routes.iter().map(|x| (x.host.clone(), x.path_prefix.clone())).collect();
        for (host, path, port) in requests {
            let host = match port { Some(p) => format!("{host}:{p}"), None => host };
            let path = normalize_path(&path).expect("generated paths are absolute");
            prop_assert!(!path.split('/').any(|s| plan::is_dot_segment(s).is_some()), "dot segment left in {path}");
            prop_assert!(!path.contains("//"), "run of slashes left in {path}");
            let got = r.lookup(&host, &path).map(|m| m.route as usize);
            let want = reference_lookup(&normalized, &host, &path);
            prop_assert_eq!(got, want, "host {} path {} routes {:?}", host, path, normalized);
        }
    }
}
