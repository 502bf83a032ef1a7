//! Golden access-log tests: a scripted scenario through the real gateway and
//! real upstreams, snapshotted with insta. Values that differ between runs are
//! redacted by checks that still assert their shape.
//!
//! Review changes with `cargo insta review` (or `INSTA_UPDATE=always cargo test
//! -p gateway-tests --test golden`, then read the diff of `golden/snapshots/`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::collections::HashMap;
use std::time::Duration;

use gateway_tests::{Behavior, Client, Gateway, Upstream, raw_exchange};
use insta::internals::Content;

/// Sends one request (`send`), then waits for its access-log line, so lines
/// come in request order.
fn step(gw: &Gateway, expected_lines: usize, send: impl FnOnce()) {
    send();
    let lines = gw.wait_log_lines(expected_lines, Duration::from_secs(10));
    assert_eq!(lines.len(), expected_lines, "one line per request");
}

/// Keys appear exactly in the configured order (serde_json's `Value` sorts them,
/// so this reads the raw line).
fn assert_key_order(line: &str, fields: &[&str]) {
    let mut at = 0;
    for f in fields {
        let key = format!("\"{f}\":");
        let found = line[at..].find(&key).map(|i| i + at);
        assert!(found.is_some(), "{f} missing or out of order in {line}");
        at = found.unwrap_or(at) + key.len();
    }
}

fn parse(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Replaces upstream URLs by the upstream's name, after checking their shape.
fn upstream_names(ups: &[&Upstream]) -> HashMap<String, String> {
    ups.iter()
        .map(|u| (u.url(), format!("http://upstream-{}", u.name)))
        .collect()
}

macro_rules! assert_log_snapshot {
    ($name:expr, $lines:expr, $names:expr) => {{
        let names = $names.clone();
        insta::assert_json_snapshot!($name, $lines, {
            "[].timestamp" => insta::dynamic_redaction(|value, _| {
                let ts = value.as_str().expect("timestamp is a string");
                let shape = ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T' && ts.as_bytes()[19] == b'.';
                assert!(shape, "timestamp {ts:?} is not RFC 3339 UTC with milliseconds");
                "[timestamp]"
            }),
            "[].durationMs" => insta::dynamic_redaction(|value, _| {
                let ms = match value {
                    Content::F64(f) => f,
                    Content::U64(u) => u as f64,
                    other => panic!("durationMs is not a number: {other:?}"),
                };
                assert!((0.0..10_000.0).contains(&ms), "durationMs {ms}");
                "[duration]"
            }),
            "[].plan" => insta::dynamic_redaction(|value, _| {
                let d = value.as_str().expect("plan is a string");
                assert!(d.len() == 12 && d.bytes().all(|b| b.is_ascii_hexdigit()), "plan {d:?}");
                "[plan digest]"
            }),
            "[].upstreamURL" => insta::dynamic_redaction(move |value, _| {
                match value.as_str() {
                    Some(url) => Content::from(names.get(url).cloned().unwrap_or_else(|| panic!("unknown upstream {url}"))),
                    None => value,
                }
            }),
        });
    }};
}

#[test]
fn access_log_golden_scenario() {
    let a = Upstream::start("a", Behavior::Echo);
    let b = Upstream::start("b", Behavior::Echo);
    let slow = Upstream::start("slow", Behavior::Delay(Duration::from_secs(3)));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_url = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let yaml = format!(
        r#"limits: {{ maxHeaderBytes: 2048 }}
routes:
  - {{ name: exact, host: api.example.com, pathPrefix: /v1, cluster: a }}
  - {{ name: tenants, host: "*.example.com", pathPrefix: /tenant, cluster: b }}
  - {{ name: down, pathPrefix: /down, cluster: down }}
  - {{ name: slow, pathPrefix: /slow, cluster: slow, timeouts: {{ upstreamMs: 300 }} }}
  - {{ name: default, pathPrefix: /, cluster: mix }}
clusters:
  - {{ name: a, upstreams: [{{ url: "{a}" }}] }}
  - {{ name: b, upstreams: [{{ url: "{b}" }}] }}
  - {{ name: mix, upstreams: [{{ url: "{a}", weight: 3 }}, {{ url: "{b}", weight: 2 }}] }}
  - {{ name: down, upstreams: [{{ url: "{closed_url}" }}] }}
  - {{ name: slow, upstreams: [{{ url: "{slow}" }}] }}
"#,
        a = a.url(),
        b = b.url(),
        slow = slow.url()
    );
    let gw = Gateway::start_with(&yaml, &["--threads", "1"]);
    let mut c = Client::connect(gw.addr).expect("connect");
    let mut n = 0;
    let mut get = |host: &str, path: &str, status: u16| {
        n += 1;
        step(&gw, n, || {
            assert_eq!(c.get(host, path).expect("response").status, status, "{host}{path}")
        });
    };
    get("api.example.com", "/v1/users?id=7", 200);
    get("t1.example.com", "/tenant/x", 200);
    get("other.test", "/anything", 200);
    for i in 0..5 {
        get("other.test", &format!("/burst/{i}"), 200);
    }
    get("other.test", "/down/x", 502);
    get("other.test", "/slow", 504);
    step(&gw, n + 1, || {
        assert_eq!(
            raw_exchange(gw.addr, b"GET /no-host HTTP/1.1\r\n\r\n")
                .expect("400")
                .status,
            400
        )
    });
    step(&gw, n + 2, || {
        let big = format!("GET /big HTTP/1.1\r\nHost: h\r\nX-Big: {}\r\n\r\n", "x".repeat(4096));
        assert_eq!(raw_exchange(gw.addr, big.as_bytes()).expect("431").status, 431)
    });
    let raw = gw.log_lines();
    for line in &raw {
        assert_key_order(
            line,
            &[
                "timestamp",
                "clientIP",
                "method",
                "path",
                "status",
                "durationMs",
                "route",
                "cluster",
                "upstreamURL",
            ],
        );
    }
    let lines = parse(&raw);
    let names = upstream_names(&[&a, &b, &slow]);
    let mut names = names;
    names.insert(closed_url, "http://upstream-closed".to_owned());
    assert_log_snapshot!("default_fields", &lines, names);
}

#[test]
fn access_log_custom_fields() {
    let a = Upstream::start("a", Behavior::Echo);
    let yaml = format!(
        r#"routes:
  - {{ name: api, host: api.example.com, pathPrefix: /v1, cluster: a }}
clusters:
  - {{ name: a, upstreams: [{{ url: "{a}" }}] }}
accessLog:
  json: {{ fields: [method, path, query, status, error, route, cluster, upstreamStatus, bytesSent, host, userAgent, requestId, plan] }}
"#,
        a = a.url()
    );
    let gw = Gateway::start_with(&yaml, &["--threads", "1"]);
    let mut c = Client::connect(gw.addr).expect("connect");
    step(&gw, 1, || {
        c.send(b"POST /v1/items/../orders?limit=10&q=%22x%22 HTTP/1.1\r\nHost: API.example.com:8080\r\nUser-Agent: golden/1.0 \"quoted\"\r\nX-Request-Id: req-42\r\nContent-Length: 5\r\n\r\nhello")
            .expect("send");
        assert_eq!(c.read_response(false).expect("200").status, 200);
    });
    step(&gw, 2, || {
        assert_eq!(c.get("nowhere.test", "/v1").expect("404").status, 404)
    });
    let raw = gw.log_lines();
    for line in &raw {
        assert_key_order(
            line,
            &[
                "method",
                "path",
                "query",
                "status",
                "error",
                "route",
                "cluster",
                "upstreamStatus",
                "bytesSent",
                "host",
                "userAgent",
                "requestId",
                "plan",
            ],
        );
    }
    let lines = parse(&raw);
    for line in &lines {
        let keys: Vec<&str> = line.as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 13, "exactly the configured fields: {keys:?}");
    }
    assert_log_snapshot!("custom_fields", &lines, upstream_names(&[&a]));
}
