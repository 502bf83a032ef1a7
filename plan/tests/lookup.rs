//! Host trie, prefix trees and tier selection through the public router, as tables
//! of cases; plus a property test against the naive reference matcher.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use plan::reference as support;

use plan::{OwnedRequest, PathMatch, Tier, normalize_path};
use proptest::prelude::*;
use support::{Spec, Val, reference_lookup, reference_route, router, router_of};

fn get() -> OwnedRequest {
    OwnedRequest {
        method: "GET".into(),
        ..OwnedRequest::default()
    }
}

fn check(routes: &[(Option<&str>, &str)], cases: &[(&str, &str, Option<usize>)]) {
    let r = router(routes);
    for &(host, path, expected) in cases {
        let got = r.lookup(host, path, &get()).map(|m| m.route as usize);
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
    assert_eq!(r.lookup(&long, "/", &get()), None);
    assert_eq!(r.lookup(&long, "/any", &get()).map(|m| m.route), Some(1));
    assert_eq!(r.lookup("a..com", "/", &get()).map(|m| m.route), None);
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
            // A segment of params only is dropped, as a Java upstream merges
            // the `//` it leaves: `/;x/api/v1` is `/api/v1` to it.
            ("h", "/;x/api/v1", Some(1)),
            ("h", "/api/;/v1", Some(1)),
            ("h", "/;x", None),
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
    assert_eq!(
        r.lookup("api.example.com", "/v1", &get()).map(|m| m.tier),
        Some(Tier::Exact)
    );
    assert!(matches!(
        r.lookup("a.example.com", "/v2", &get()).map(|m| m.tier),
        Some(Tier::Wildcard(_))
    ));
    assert_eq!(r.lookup("x.org", "/", &get()).map(|m| m.tier), Some(Tier::CatchAll));
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
            "a", "b", "api", "v1", "", ".", "..", "a;x", "..;y", "%61", "v1;", "%2e", ";x", ";",
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
        let normalized: Vec<(String, String)> = r.plan().routes.iter().map(|x| (x.hosts[0].clone(), x.path.as_str().to_owned())).collect();
        for (host, path, port) in requests {
            let host = match port { Some(p) => format!("{host}:{p}"), None => host };
            let path = normalize_path(&path).expect("generated paths are absolute");
            prop_assert!(!path.split('/').any(|s| plan::is_dot_segment(s).is_some()), "dot segment left in {path}");
            prop_assert!(!path.contains("//"), "run of slashes left in {path}");
            let got = r.lookup(&host, &path, &get()).map(|m| m.route as usize);
            let want = reference_lookup(&normalized, &host, &path);
            prop_assert_eq!(got, want, "host {} path {} routes {:?}", host, path, normalized);
        }
    }
}

fn spec(host: Option<&str>, path: PathMatch) -> Spec {
    Spec::new(host, path)
}

fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}

fn regex(p: &str) -> PathMatch {
    PathMatch::Regex(p.into())
}

fn req(method: &str, headers: &[(&str, &str)], query: Option<&str>) -> OwnedRequest {
    OwnedRequest {
        method: method.into(),
        headers: headers.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect(),
        query: query.map(Into::into),
    }
}

fn route_of(specs: &[Spec], host: &str, path: &str, r: &OwnedRequest) -> Option<usize> {
    let router = router_of(specs);
    let got = router.lookup(host, path, r).map(|m| m.route as usize);
    assert_eq!(
        got,
        reference_route(specs, host, path, r),
        "reference disagrees: {host}{path} {r:?}"
    );
    got
}

#[test]
fn exact_paths_before_regexes_before_prefixes() {
    let specs = [
        spec(None, prefix("/users")),
        spec(None, regex("/users/[0-9]+")),
        spec(None, exact("/users/42")),
        spec(None, regex("/users/[0-9]+/?")),
        spec(None, exact("/users/")),
    ];
    let cases = [
        ("/users/42", Some(2)),
        // The longer pattern source first.
        ("/users/7", Some(3)),
        ("/users/7/", Some(3)),
        ("/users/x", Some(0)),
        ("/users", Some(0)),
        // A trailing slash matters to exact paths.
        ("/users/", Some(4)),
        // Matchers see each segment's ;params set aside.
        ("/users;a=1/42;b", Some(2)),
        ("/users/8;v", Some(3)),
        ("/other", None),
    ];
    for (path, want) in cases {
        assert_eq!(route_of(&specs, "h", path, &get()), want, "{path}");
    }
}

#[test]
fn regexes_match_the_whole_path() {
    let specs = [spec(None, regex("/a[0-9]")), spec(None, regex(".*/b"))];
    for (path, want) in [
        ("/a1", Some(0)),
        ("/a12", None),
        ("/x/a1", None),
        ("/x/b", Some(1)),
        ("/b/x", None),
    ] {
        assert_eq!(route_of(&specs, "h", path, &get()), want, "{path}");
    }
}

#[test]
fn conditions_order_methods_then_header_count_then_query_count() {
    let mut with_method = spec(None, prefix("/"));
    with_method.methods = vec!["POST".into()];
    let mut two_headers = spec(None, prefix("/"));
    two_headers.headers = vec![
        ("Version".into(), Val::Exact("two".into())),
        ("color".into(), Val::Regex("or.*".into())),
    ];
    let mut one_header = spec(None, prefix("/"));
    one_header.headers = vec![("version".into(), Val::Exact("two".into()))];
    let mut query = spec(None, prefix("/"));
    query.query = vec![("q".into(), Val::Exact("a b".into()))];
    let specs = [spec(None, prefix("/")), query, one_header, two_headers, with_method];
    let cases = [
        (req("GET", &[], None), Some(0)),
        (req("POST", &[("Version", "two")], None), Some(4)),
        (req("GET", &[("VERSION", "two")], None), Some(2)),
        (req("GET", &[("version", "two"), ("Color", "orange")], None), Some(3)),
        (req("GET", &[("version", "two"), ("Color", "red")], None), Some(2)),
        // Lines of one header are read joined with commas.
        (req("GET", &[("version", "two"), ("version", "two")], None), Some(0)),
        (req("GET", &[("version", "Two")], None), Some(0)),
        (req("GET", &[], Some("q=a%20b&q=x")), Some(1)),
        (req("GET", &[], Some("q=x&q=a%20b")), Some(0)),
        (req("GET", &[], Some("Q=a%20b")), Some(0)),
        (req("GET", &[], Some("%71=a b")), Some(1)),
        (req("get", &[], None), Some(0)),
    ];
    for (r, want) in cases {
        assert_eq!(route_of(&specs, "h", "/x", &r), want, "{r:?}");
    }
}

#[test]
fn a_route_whose_conditions_fail_falls_back_within_and_across_tiers() {
    let mut exact_host = spec(Some("api.example.com"), prefix("/v1"));
    exact_host.methods = vec!["DELETE".into()];
    let mut multi = spec(Some("*.example.com"), exact("/v1"));
    multi.hosts.push(Some("example.org".into()));
    let specs = [exact_host, multi, spec(None, prefix("/"))];
    let cases = [
        ("api.example.com", "DELETE", "/v1/x", Some(0)),
        ("api.example.com", "GET", "/v1", Some(1)),
        ("api.example.com", "GET", "/v1/x", Some(2)),
        ("example.org", "GET", "/v1", Some(1)),
        ("a.example.org", "GET", "/v1", Some(2)),
    ];
    for (host, method, path, want) in cases {
        assert_eq!(
            route_of(&specs, host, path, &req(method, &[], None)),
            want,
            "{host} {method} {path}"
        );
    }
}

fn full_spec_strategy() -> impl Strategy<Value = Spec> {
    let path = prop_oneof![
        2 => prefix_strategy().prop_map(PathMatch::Prefix),
        1 => prefix_strategy().prop_map(PathMatch::Exact),
        1 => prop::sample::select(vec!["/a/[0-9]+", "/api/.*", "/(a|b)/v1", "/[a-z]+", ".*", "/v1(/.*)?", "/a/b/?"])
            .prop_map(|s| PathMatch::Regex(s.to_owned())),
    ];
    let val = prop_oneof![
        prop::sample::select(vec!["1", "2", "a b", ""]).prop_map(|v| Val::Exact(v.to_owned())),
        prop::sample::select(vec!["[0-9]", "a.*", "1,2"]).prop_map(|v| Val::Regex(v.to_owned())),
    ];
    (
        prop::collection::vec(pattern_strategy(), 1..3),
        path,
        prop::collection::vec(prop::sample::select(vec!["GET", "POST"]), 0..2),
        prop::collection::vec((prop::sample::select(vec!["x", "Y"]), val.clone()), 0..3),
        prop::collection::vec((prop::sample::select(vec!["p", "q"]), val), 0..2),
    )
        .prop_map(|(hosts, path, methods, headers, query)| Spec {
            hosts,
            path,
            methods: methods.into_iter().map(str::to_owned).collect(),
            headers: headers.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
            query: query.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
        })
}

fn request_strategy() -> impl Strategy<Value = OwnedRequest> {
    let header = (
        prop::sample::select(vec!["x", "X", "y", "z"]),
        prop::sample::select(vec!["1", "2", "a b", "abc", ""]),
    );
    (
        prop::sample::select(vec!["GET", "POST", "PUT"]),
        prop::collection::vec(header, 0..4),
        prop::option::of(prop::sample::select(vec![
            "p=1", "q=2&p=1", "p=a%20b", "p=a+b", "q", "%70=2", "p=1&p=2", "q=abc&p=",
        ])),
    )
        .prop_map(|(method, headers, query)| OwnedRequest {
            method: method.to_owned(),
            headers: headers.into_iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
            query: query.map(str::to_owned),
        })
}

/// The generated routes the compiler would accept: valid host patterns, none
/// listed twice in one route.
fn compilable(specs: Vec<Spec>) -> Vec<Spec> {
    specs
        .into_iter()
        .map(|mut s| {
            let mut seen = std::collections::HashSet::new();
            s.hosts
                .retain(|h| seen.insert(plan::parse_host_pattern(h.as_deref()).map(|p| p.to_plan_string()).ok()));
            s
        })
        .filter(|s| s.hosts.iter().all(|h| plan::parse_host_pattern(h.as_deref()).is_ok()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn lookup_equals_the_reference_for_the_whole_language(
        specs in prop::collection::vec(full_spec_strategy(), 0..10),
        requests in prop::collection::vec((host_strategy(), path_strategy(), request_strategy()), 1..8),
    ) {
        let specs = compilable(specs);
        let r = router_of(&specs);
        for (host, path, request) in requests {
            let path = normalize_path(&path).expect("generated paths are absolute");
            let got = r.lookup(&host, &path, &request).map(|m| m.route as usize);
            let want = reference_route(&specs, &host, &path, &request);
            prop_assert_eq!(got, want, "host {} path {} request {:?} specs {:?}", host, path, request, specs);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// `explain` narrates the same decision the lookup makes.
    #[test]
    fn the_trace_picks_what_the_lookup_picks(
        specs in prop::collection::vec(full_spec_strategy(), 0..10),
        requests in prop::collection::vec((host_strategy(), path_strategy(), request_strategy()), 1..8),
    ) {
        let specs = compilable(specs);
        let r = router_of(&specs);
        for (host, path, request) in requests {
            let path = normalize_path(&path).expect("generated paths are absolute");
            let trace = r.trace(&host, &path, &request);
            prop_assert_eq!(trace.winner, r.lookup(&host, &path, &request));
            for t in &trace.tiers {
                let last = t.candidates.len().saturating_sub(1);
                for (i, c) in t.candidates.iter().enumerate() {
                    prop_assert_eq!(c.outcome.is_ok(), trace.winner.is_some_and(|w| w.route == c.route && i == last));
                }
            }
        }
    }
}
