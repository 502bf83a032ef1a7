//! SPEC §4 (v0.2) through the real binary: exact and regex paths, method,
//! header and query conditions, backends splits, redirects, header filters
//! and rewrites, including hostile and contradictory requests.

use gateway_tests::{Behavior, Client, Gateway, Upstream, raw_exchange};

use crate::cluster;

struct Setup {
    gw: Gateway,
    ups: Vec<Upstream>,
}

const ROUTES: &str = r#"routes:
  - name: health
    path: /healthz
    cluster: a
  - name: user
    pathRegex: "/users/[0-9]+"
    cluster: b
  - name: users
    pathPrefix: /users
    cluster: a
  - name: post-only
    pathPrefix: /write
    methods: [POST, PUT]
    cluster: b
  - name: write-rest
    pathPrefix: /write
    cluster: a
  - name: canary
    pathPrefix: /c
    headers: [{ name: X-Canary, value: "1" }, { name: Accept, regex: "application/(json|cbor)" }]
    cluster: b
  - name: by-query
    pathPrefix: /c
    query: [{ name: v, value: "a b" }]
    cluster: c
  - name: c-rest
    pathPrefix: /c
    cluster: a
  - name: split
    pathPrefix: /split
    backends: [{ cluster: a, weight: 3 }, { cluster: b, weight: 1 }, { cluster: c, weight: 0 }]
  - name: moved
    pathPrefix: /old
    redirect: { pathPrefix: /new, status: 301 }
    responseHeaders: { add: { X-Redirected: "yes" } }
  - name: secure
    host: "*.secure.test"
    pathPrefix: /
    redirect: { scheme: https }
  - name: filtered
    pathPrefix: /f
    cluster: a
    requestHeaders:
      set: { X-Set: "new" }
      add: { X-Add: "added" }
      remove: [X-Secret]
    responseHeaders:
      set: { X-Up: "overwritten" }
      add: { X-Via: "gateway" }
      remove: [X-Upstream]
    rewrite: { host: internal.test, pathPrefix: /inner }
  - name: dead
    pathPrefix: /dead
    cluster: dead
    responseHeaders: { add: { X-Route: dead } }
"#;

fn setup() -> Setup {
    let ups: Vec<Upstream> = ["a", "b", "c"]
        .iter()
        .map(|n| Upstream::start(n, Behavior::Echo))
        .collect();
    let mut yaml = format!(
        "accessLog: {{ enabled: true, json: {{ fields: [method, path, status, route, cluster, error] }} }}\n{ROUTES}clusters:\n"
    );
    for (name, u) in ["a", "b", "c"].iter().zip(&ups) {
        yaml.push_str(&cluster(name, &[(u, 1)]));
    }
    // Nothing listens on port 1.
    yaml.push_str("  - { name: dead, upstreams: [{ url: \"http://127.0.0.1:1\" }] }\n");
    Setup {
        gw: Gateway::start(&yaml),
        ups,
    }
}

fn request(s: &Setup, raw: &str) -> gateway_tests::Response {
    raw_exchange(s.gw.addr, raw.as_bytes()).unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

fn served_by(s: &Setup, raw: &str) -> String {
    let r = request(s, raw);
    r.header("x-upstream")
        .map_or_else(|| format!("status {}", r.status), str::to_owned)
}

#[test]
fn matchers_and_conditions_choose_the_route() {
    let s = setup();
    let cases = [
        ("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        // Exact: a trailing slash matters.
        ("GET /healthz/ HTTP/1.1\r\nHost: h\r\n\r\n", "status 404"),
        ("GET /users/42 HTTP/1.1\r\nHost: h\r\n\r\n", "b"),
        // The regex matches the whole path, ;params set aside.
        ("GET /users/42;v=1 HTTP/1.1\r\nHost: h\r\n\r\n", "b"),
        ("GET /users/42/x HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        ("GET /users/4%32 HTTP/1.1\r\nHost: h\r\n\r\n", "b"),
        ("GET /users/x HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        ("POST /write HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "b"),
        ("GET /write HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        // Methods are case-sensitive tokens.
        ("post /write HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", "a"),
        (
            "GET /c HTTP/1.1\r\nHost: h\r\nx-canary: 1\r\nAccept: application/json\r\n\r\n",
            "b",
        ),
        // Both header conditions must hold.
        (
            "GET /c HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\nAccept: text/html\r\n\r\n",
            "a",
        ),
        // Two lines of one header read as "1,1", not "1".
        (
            "GET /c HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\nX-Canary: 1\r\nAccept: application/json\r\n\r\n",
            "a",
        ),
        // Values are case-sensitive.
        (
            "GET /c HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\nAccept: Application/JSON\r\n\r\n",
            "a",
        ),
        ("GET /c?v=a%20b HTTP/1.1\r\nHost: h\r\n\r\n", "c"),
        // The first occurrence counts; `+` is not a space.
        ("GET /c?v=x&v=a%20b HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        ("GET /c?v=a+b HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        // A malformed escape is taken literally, never decoded into a match.
        ("GET /c?v=a%2 HTTP/1.1\r\nHost: h\r\n\r\n", "a"),
        ("GET /c?%76=a%20b HTTP/1.1\r\nHost: h\r\n\r\n", "c"),
    ];
    for (raw, want) in cases {
        assert_eq!(served_by(&s, raw), want, "{raw:?}");
    }
}

#[test]
fn a_split_follows_smooth_wrr_and_never_picks_a_zero_weight() {
    let s = setup();
    let mut c = Client::connect(s.gw.addr).expect("connect");
    let picks: Vec<String> = (0..8)
        .map(|_| {
            let r = c.get("h", "/split").expect("response");
            r.header("x-upstream").unwrap_or("?").to_owned()
        })
        .collect();
    assert_eq!(picks, ["a", "a", "b", "a", "a", "a", "b", "a"]);
    assert!(s.ups[2].requests().is_empty());
}

#[test]
fn redirects_are_answered_by_the_gateway_and_logged() {
    let s = setup();
    let r = request(&s, "GET /old/page;j=1?q=1 HTTP/1.1\r\nHost: example.org:8080\r\n\r\n");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("http://example.org:8080/new/page;j=1?q=1"));
    assert_eq!(r.header("x-redirected"), Some("yes"));
    let r = request(&s, "HEAD /a/b HTTP/1.1\r\nHost: www.secure.test\r\n\r\n");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://www.secure.test/a/b"));
    // An IPv6 host keeps its brackets; its port is the request's.
    let r = request(&s, "GET /old HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    assert_eq!(r.header("location"), Some("http://[::1]:8080/new"));
    // A POST body that was not read closes the connection after the redirect.
    let mut c = Client::connect(s.gw.addr).expect("connect");
    c.send(b"POST /old HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello")
        .expect("send");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 301);
    assert!(
        s.ups.iter().all(|u| u.requests().is_empty()),
        "no upstream is contacted"
    );
    let lines = s.gw.wait_log_lines(4, std::time::Duration::from_secs(5));
    assert!(
        lines.iter().any(|l| l
            == r#"{"method":"GET","path":"/old/page;j=1","status":301,"route":"moved","cluster":null,"error":null}"#),
        "{lines:#?}"
    );
}

#[test]
fn filters_and_rewrites_edit_the_exchange() {
    let s = setup();
    let r = request(
        &s,
        "GET /f/x?y=1 HTTP/1.1\r\nHost: public.test\r\nX-Set: old\r\nX-Set: older\r\nX-Secret: s\r\nX-Add: first\r\n\
         X-Forwarded-For: 10.0.0.1\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let seen = s.ups[0].requests().pop().expect("a saw the request");
    assert_eq!(seen.uri, "/inner/x?y=1");
    assert_eq!(seen.header("host"), Some("internal.test"));
    assert_eq!(seen.header("x-set"), Some("new"));
    assert_eq!(seen.headers.iter().filter(|(n, _)| n == "x-set").count(), 1);
    assert_eq!(seen.header("x-secret"), None);
    let adds: Vec<&str> = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "x-add")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(adds, ["first", "added"]);
    // X-Forwarded-* stay the gateway's, with the original host.
    assert_eq!(seen.header("x-forwarded-for"), Some("10.0.0.1, 127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-host"), Some("public.test"));
    // The response: the upstream's x-upstream removed, ours added.
    assert_eq!(r.header("x-upstream"), None);
    assert_eq!(r.header("x-via"), Some("gateway"));
    assert_eq!(r.header("x-up"), Some("overwritten"));
    // The gateway's own answers for the route get its response filter.
    let r = request(&s, "GET /dead HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-route"), Some("dead"));
    assert_eq!(r.header("x-gateway-error"), Some("connect_failed"));
}

#[test]
fn hostile_requests_against_conditions() {
    let s = setup();
    // A header value far longer than any route expects, and many query
    // parameters: matched, not crashed, no allocation blow-up.
    let long = "x".repeat(8000);
    let r = request(
        &s,
        &format!("GET /c HTTP/1.1\r\nHost: h\r\nAccept: {long}\r\nX-Canary: 1\r\n\r\n"),
    );
    assert_eq!(r.header("x-upstream"), Some("a"));
    let query: String = (0..2000).map(|i| format!("p{i}=&")).collect();
    let r = request(&s, &format!("GET /c?{query}v=a%20b HTTP/1.1\r\nHost: h\r\n\r\n"));
    assert_eq!(r.header("x-upstream"), Some("c"));
    // A regex route is not reachable through encodings normalization undoes
    // or refuses.
    assert_eq!(served_by(&s, "GET /users/%34%32 HTTP/1.1\r\nHost: h\r\n\r\n"), "b");
    assert_eq!(served_by(&s, "GET /users/1/../42 HTTP/1.1\r\nHost: h\r\n\r\n"), "b");
    assert_eq!(
        served_by(&s, "GET /users/4%2F2 HTTP/1.1\r\nHost: h\r\n\r\n"),
        "status 400"
    );
}
