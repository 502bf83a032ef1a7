//! Path normalization and plan lookup: never panic; a normalized path has no
//! dot-segment (params set aside) and no run of `/`, normalizing it again
//! changes nothing, and lookup agrees with the naive reference matcher of
//! SPEC §4 (which sets each segment's `;params` aside) on generated route sets.
#![no_main]

use libfuzzer_sys::fuzz_target;

use plan::reference as support;

const HOSTS: [&str; 8] = ["a.example.com", "*.example.com", "*.b.example.com", "example.com", "*", "A.Example.COM", "*.com", "x.y"];
const PREFIXES: [&str; 8] = ["/", "/api", "/api/v1", "/a", "/a/b", "/static", "/api/", "/v1"];

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n % 9) as usize;
    if rest.len() < n * 2 {
        return;
    }
    let (spec, request) = rest.split_at(n * 2);
    let mut seen = std::collections::HashSet::new();
    let mut routes: Vec<(Option<&str>, &str)> = Vec::new();
    for pair in spec.chunks(2) {
        let host = HOSTS[(pair[0] % 8) as usize];
        let prefix = PREFIXES[(pair[1] % 8) as usize];
        let h = plan::parse_host_pattern(Some(host)).map(|h| h.to_plan_string());
        let p = plan::split_prefix(prefix);
        if let (Ok(h), Ok(p)) = (h, p)
            && seen.insert((h, p))
        {
            routes.push((Some(host), prefix));
        }
    }
    let router = support::router(&routes);
    let text = String::from_utf8_lossy(request);
    let (host, path) = text.split_once(' ').unwrap_or(("a.example.com", &text));
    let Ok(normalized) = plan::normalize_path(path) else { return };
    assert!(normalized.starts_with('/'));
    assert!(
        !normalized.split('/').any(|s| plan::is_dot_segment(s).is_some()),
        "dot-segment left in {normalized:?} (from {path:?})"
    );
    assert!(!normalized.contains("//"), "run of slashes left in {normalized:?} (from {path:?})");
    assert_eq!(
        plan::normalize_path(&normalized).as_deref(),
        Ok(&*normalized),
        "normalizing twice changed {path:?}"
    );
    let table: Vec<(String, String)> =
        router.plan().routes.iter().map(|r| (r.host.clone(), r.path_prefix.clone())).collect();
    let got = router.lookup(host, &normalized).map(|m| m.route as usize);
    let want = support::reference_lookup(&table, host, &normalized);
    assert_eq!(got, want, "host {host:?} path {normalized:?} routes {table:?}");
});
