//! SPEC §4 through real requests: host tiers, segment-wise prefixes, fallback,
//! normalization, base paths, 404.

use gateway_tests::{Behavior, Client, Gateway, Upstream};

use crate::{cluster, config};

struct Setup {
    gw: Gateway,
    _ups: Vec<Upstream>,
}

fn setup() -> Setup {
    let names = ["exact", "admin", "wild", "euwild", "static", "default", "based"];
    let ups: Vec<Upstream> = names.iter().map(|n| Upstream::start(n, Behavior::Echo)).collect();
    let routes = r#"  - { name: exact, host: api.example.com, pathPrefix: /v1, cluster: exact }
  - { name: admin, host: api.example.com, pathPrefix: /v1/admin, cluster: admin }
  - { name: wild, host: "*.example.com", pathPrefix: /, cluster: wild }
  - { name: euwild, host: "*.eu.example.com", pathPrefix: /app, cluster: euwild }
  - { name: static, pathPrefix: /static, cluster: static }
  - { name: based, host: based.test, pathPrefix: /x, cluster: based }
  - { name: default, host: "*", pathPrefix: /, cluster: default }
"#;
    let mut clusters: Vec<String> = names[..6]
        .iter()
        .zip(&ups)
        .map(|(n, u)| cluster(n, &[(u, 1)]))
        .collect();
    clusters.push(format!(
        "  - name: based\n    upstreams:\n      - {{ url: \"{}/base/\" }}\n",
        ups[6].url()
    ));
    Setup {
        gw: Gateway::start(&config(routes, &clusters)),
        _ups: ups,
    }
}

#[test]
fn routing_matrix() {
    let s = setup();
    let mut c = Client::connect(s.gw.addr).expect("connect");
    // (host, request target, upstream that must answer, path+query it must see)
    let cases = [
        ("api.example.com", "/v1/users", "exact", "/v1/users"),
        ("API.Example.COM:8080", "/v1", "exact", "/v1"),
        ("api.example.com", "/v1/", "exact", "/v1/"),
        ("api.example.com", "/v1/admin/x", "admin", "/v1/admin/x"),
        ("api.example.com", "/v1/administrator", "exact", "/v1/administrator"),
        // Segment-wise: /v1x is not under /v1; the wildcard tier answers.
        ("api.example.com", "/v1x", "wild", "/v1x"),
        ("a.example.com", "/anything", "wild", "/anything"),
        ("a.b.c.example.com", "/", "wild", "/"),
        // The apex is not matched by its wildcard.
        ("example.com", "/", "default", "/"),
        // Longest wildcard suffix first, then fall back to the shorter one.
        ("x.eu.example.com", "/app/1", "euwild", "/app/1"),
        ("x.eu.example.com", "/other", "wild", "/other"),
        ("unknown.test", "/static/app.js", "static", "/static/app.js"),
        ("unknown.test", "/staticx", "default", "/staticx"),
        // Query forwarded intact; dot-segments removed before routing and forwarding.
        ("api.example.com", "/v1/q?a=1&b=%2F&c", "exact", "/v1/q?a=1&b=%2F&c"),
        ("api.example.com", "/v2/../v1/admin/./y", "admin", "/v1/admin/y"),
        // Encoded dots count: /v1/%2e%2e/static/z is /static/z, which the
        // wildcard tier (api.example.com is under *.example.com) answers.
        ("api.example.com", "/v1/%2e%2e/static/z", "wild", "/static/z"),
        // Base path prepended.
        ("based.test", "/x/y?z=1", "based", "/base/x/y?z=1"),
        // `;params` are set aside for matching, as a Java upstream reads
        // them, and a segment of params only is dropped as it merges the
        // `//` left: neither reaches around the admin route. Forwarded as is.
        (
            "api.example.com",
            "/v1/admin;jsessionid=1/x",
            "admin",
            "/v1/admin;jsessionid=1/x",
        ),
        ("api.example.com", "/v1/;x/admin", "admin", "/v1/;x/admin"),
        ("api.example.com", "/;/v1/;a=b/admin/;", "admin", "/;/v1/;a=b/admin/;"),
    ];
    for (host, target, upstream, seen_uri) in cases {
        let r = c.get(host, target).expect("response");
        assert_eq!(r.status, 200, "{host}{target}: {}", r.text());
        assert_eq!(r.header("x-upstream"), Some(upstream), "{host}{target}");
        let body = r.text();
        let uri = body.split(' ').nth(2).unwrap_or("");
        assert_eq!(uri, seen_uri, "{host}{target}: {body}");
    }
}

#[test]
fn no_route_is_404_with_kind() {
    let up = Upstream::start("only", Behavior::Echo);
    let routes = "  - { name: only, host: only.test, pathPrefix: /api, cluster: only }\n";
    let gw = Gateway::start(&config(routes, &[cluster("only", &[(&up, 1)])]));
    let mut c = Client::connect(gw.addr).expect("connect");
    for (host, path) in [("only.test", "/apix"), ("other.test", "/api"), ("only.test", "/")] {
        let r = c.get(host, path).expect("response");
        assert_eq!(r.status, 404, "{host}{path}");
        assert_eq!(r.header("x-gateway-error"), Some("no_route"));
        assert!(!r.body.is_empty(), "error responses carry a short body");
    }
    // The connection stays usable after a 404.
    assert_eq!(c.get("only.test", "/api/ok").expect("response").status, 200);
    assert_eq!(up.hits(), 1);
}
