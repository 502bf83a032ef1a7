//! Path normalization and plan lookup: never panic; a normalized path has no
//! dot-segment (params set aside) and no run of `/`, normalizing it again
//! changes nothing, and lookup agrees with the naive reference matcher of
//! SPEC §4 (host tiers, exact, regex and prefix paths, method, header and
//! query conditions) on generated route sets and requests.
#![no_main]

use libfuzzer_sys::fuzz_target;

use plan::reference::{self as support, Spec, Val};
use plan::{OwnedRequest, PathMatch};

const HOSTS: [&str; 8] = ["a.example.com", "*.example.com", "*.b.example.com", "example.com", "*", "A.Example.COM", "*.com", "x.y"];
const PATHS: [&str; 8] = ["/", "/api", "/api/v1", "/a", "/a/b", "/static", "/api/", "/v1"];
const REGEXES: [&str; 4] = ["/a/[0-9]+", "/api/.*", "/(a|b)/v1", "/[a-z]+"];

fn path(byte: u8) -> PathMatch {
    let p = PATHS[(byte % 8) as usize].to_owned();
    match byte >> 6 {
        0 | 1 => PathMatch::Prefix(p),
        2 => PathMatch::Exact(p),
        _ => PathMatch::Regex(REGEXES[(byte % 4) as usize].to_owned()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else { return };
    let n = (n % 9) as usize;
    if rest.len() < n * 3 {
        return;
    }
    let (spec, request) = rest.split_at(n * 3);
    let mut specs: Vec<Spec> = Vec::new();
    for triple in spec.chunks(3) {
        let mut s = Spec::new(Some(HOSTS[(triple[0] % 8) as usize]), path(triple[1]));
        let c = triple[2];
        if c & 1 != 0 {
            s.methods = vec!["GET".into()];
        }
        if c & 2 != 0 {
            s.headers = vec![("X-V".into(), Val::Exact("1".into()))];
        }
        if c & 4 != 0 {
            s.headers.push(("accept".into(), Val::Regex("a.*".into())));
        }
        if c & 8 != 0 {
            s.query = vec![("q".into(), Val::Exact(if c & 16 != 0 { "a b".into() } else { "1".into() }))];
        }
        specs.push(s);
    }
    // Duplicate matches are refused by the compiler: keep the first.
    let mut seen = std::collections::HashSet::new();
    specs.retain(|s| {
        let host = plan::parse_host_pattern(s.hosts[0].as_deref()).map(|h| h.to_plan_string());
        let path = match &s.path {
            PathMatch::Prefix(p) => plan::split_prefix(p).map(PathMatch::Prefix),
            other => Ok(other.clone()),
        };
        matches!((host, path), (Ok(h), Ok(p)) if seen.insert(format!("{h} {p:?} {:?} {:?} {:?}", s.methods, s.headers, s.query)))
    });
    let router = support::router_of(&specs);
    let text = String::from_utf8_lossy(request);
    let mut parts = text.splitn(4, ' ');
    let host = parts.next().unwrap_or("a.example.com");
    let target = parts.next().unwrap_or("/");
    let method = parts.next().unwrap_or("GET");
    let header = parts.next().unwrap_or("");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_owned())),
        None => (target, None),
    };
    let req = OwnedRequest {
        method: method.to_owned(),
        headers: header
            .split('|')
            .filter_map(|h| h.split_once(':'))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect(),
        query,
    };
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
    let got = router.lookup(host, &normalized, &req).map(|m| m.route as usize);
    let want = support::reference_route(&specs, host, &normalized, &req);
    assert_eq!(got, want, "host {host:?} path {normalized:?} request {req:?} routes {specs:?}");
    assert_eq!(router.trace(host, &normalized, &req).winner.map(|m| m.route as usize), got);
});
