//! Gateway API HTTPRoute conformance cases (`tests/gwapi/cases.yaml`, copied
//! from `../shared/gwapi/`, translated from the Kubernetes Gateway API
//! conformance suite by someone other than this gateway's authors): every
//! case through the real binary, with one scripted upstream per backend.
//!
//! The file's format is in `tests/gwapi/README.md`. Each gateway entry's
//! config is used as written, with the backends' `http://NAME:8080` replaced
//! by the scripted upstreams' addresses.

use std::collections::BTreeMap;
use std::time::Duration;

use gateway_tests::{Fail, Gateway, Response, Script, Scripted, raw_exchange};
use marked_yaml::Node;
use serde_json::Value;

const CASES: &str = include_str!("../gwapi/cases.yaml");

/// Tests whose config needs keys of a later issue; each is asserted to be
/// refused for exactly that key, so it cannot be forgotten when the key lands.
/// (Empty since `retry` landed.)
const NEEDS: &[(&str, &str)] = &[];

/// A YAML node as JSON (plain scalars that read as integers become numbers).
fn json(node: &Node) -> Value {
    match node {
        Node::Scalar(s) => {
            let raw = s.as_str();
            match raw.parse::<i64>() {
                Ok(n) if s.may_coerce() => Value::from(n),
                _ if s.may_coerce() && raw == "true" => Value::Bool(true),
                _ if s.may_coerce() && raw == "false" => Value::Bool(false),
                _ => Value::String(raw.to_owned()),
            }
        }
        Node::Sequence(seq) => Value::Array(seq.iter().map(json).collect()),
        Node::Mapping(map) => Value::Object(map.iter().map(|(k, v)| (k.as_str().to_owned(), json(v))).collect()),
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// One gateway of a test: the process and its backends by cluster name.
struct Running {
    gateway: Gateway,
    backends: BTreeMap<String, Scripted>,
}

fn start(config: &Value) -> Running {
    let mut config = config.clone();
    let mut backends = BTreeMap::new();
    for cluster in config["clusters"].as_array_mut().into_iter().flatten() {
        let name = str_of(cluster, "name").expect("cluster name").to_owned();
        let upstream = Scripted::start(&name);
        for u in cluster["upstreams"].as_array_mut().into_iter().flatten() {
            u["url"] = Value::from(upstream.url());
        }
        backends.insert(name, upstream);
    }
    config["accessLog"] = serde_json::json!({ "enabled": false });
    // JSON is YAML: the config goes to the gateway as written here.
    let gateway = Gateway::start(&config.to_string());
    Running { gateway, backends }
}

/// A header's lines joined with commas, spaces around commas dropped.
fn joined<'a>(headers: impl Iterator<Item = (&'a String, &'a String)>, name: &str) -> Option<String> {
    let lines: Vec<&str> = headers
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!lines.is_empty()).then(|| {
        lines
            .iter()
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(",")
    })
}

fn normalize_list(v: &str) -> String {
    v.split(',').map(str::trim).collect::<Vec<_>>().join(",")
}

/// `scheme://host:port/path` of an absolute or relative `Location`, the port
/// made explicit, against the request's URL.
fn location_parts(location: &str, request_url: &str) -> (String, String, u16, String) {
    let absolute = if location.starts_with('/') {
        let base: http::Uri = request_url.parse().expect("request url");
        format!(
            "{}://{}{location}",
            base.scheme_str().unwrap_or("http"),
            base.authority().map_or("", |a| a.as_str())
        )
    } else {
        location.to_owned()
    };
    let uri: http::Uri = absolute
        .parse()
        .unwrap_or_else(|e| panic!("Location {location:?}: {e}"));
    let scheme = uri.scheme_str().unwrap_or("http").to_owned();
    let default = if scheme == "https" { 443 } else { 80 };
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    (scheme, host, uri.port_u16().unwrap_or(default), uri.path().to_owned())
}

fn send(gateway: &Gateway, request: &Value) -> (Response, String) {
    let method = str_of(request, "method").unwrap_or("GET");
    let url = str_of(request, "url").expect("url");
    let uri: http::Uri = url.parse().expect("url parses");
    let host = uri.authority().map_or("", |a| a.as_str());
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut raw = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    if let Some(headers) = request.get("headers").and_then(Value::as_object) {
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {}\r\n", v.as_str().unwrap_or_default()));
        }
    }
    raw.push_str("Connection: close\r\n\r\n");
    let response = raw_exchange(gateway.addr, raw.as_bytes()).unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    (response, url.to_owned())
}

fn script(case: &Value) -> Script {
    let Some(b) = case.get("backendResponse") else {
        return Script::default();
    };
    Script {
        headers: b
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(n, v)| (n.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        delay: Duration::from_millis(b.get("delayMs").and_then(Value::as_u64).unwrap_or(0)),
        fail_first: b.get("failFirst").and_then(Value::as_u64).unwrap_or(0) as usize,
        fail_with: match b.get("failWith") {
            Some(Value::String(s)) if s == "reset" => Some(Fail::Reset),
            Some(Value::Number(n)) => Some(Fail::Status(n.as_u64().unwrap_or(500) as u16)),
            Some(other) => panic!("unknown failWith {other}"),
            None => None,
        },
    }
}

/// Runs one case; `Err` says what differed.
fn run_case(running: &Running, case: &Value) -> Result<(), String> {
    assert!(
        case.get("repeat").is_none(),
        "distribution cases are not in this file's tests yet"
    );
    let script = script(case);
    for b in running.backends.values() {
        b.set(script.clone());
    }
    let request = &case["request"];
    let (response, url) = send(&running.gateway, request);
    let expect = &case["expect"];
    let backend_expected = expect.get("cluster").is_some() || expect.get("upstreamPath").is_some();
    let status = expect
        .get("status")
        .and_then(Value::as_u64)
        .unwrap_or(if backend_expected { 200 } else { 0 });
    let mut problems = Vec::new();
    if response.status as u64 != status {
        problems.push(format!(
            "status {} (want {status}), body {:?}",
            response.status,
            response.text()
        ));
    }
    let method = str_of(request, "method").unwrap_or("GET");
    if let Some(cluster) = str_of(expect, "cluster") {
        for (name, b) in &running.backends {
            let seen = b.requests();
            let wanted = name == cluster;
            if wanted && !seen.iter().any(|s| s.method == method) {
                problems.push(format!("backend {cluster} received no {method}"));
            }
            if !wanted && !seen.is_empty() {
                problems.push(format!("backend {name} received {} request(s), want none", seen.len()));
            }
        }
    }
    let served = running.backends.values().flat_map(|b| b.requests()).last();
    if let Some(path) = str_of(expect, "upstreamPath") {
        match &served {
            Some(s) if s.uri == path => {}
            Some(s) => problems.push(format!("upstream path {:?} (want {path:?})", s.uri)),
            None => problems.push("no backend received the request".to_owned()),
        }
    }
    if let Some(want) = expect.get("requestHeaders").and_then(Value::as_object) {
        let headers = served.as_ref().map(|s| s.headers.clone()).unwrap_or_default();
        for (n, v) in want {
            let got = joined(headers.iter().map(|(a, b)| (a, b)), n);
            if got.as_deref() != Some(normalize_list(v.as_str().unwrap_or_default()).as_str()) {
                problems.push(format!("request header {n}: {got:?} (want {v})"));
            }
        }
    }
    for n in expect
        .get("absentRequestHeaders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = n.as_str().unwrap_or_default();
        if let Some(s) = &served
            && s.header(n).is_some()
        {
            problems.push(format!("request header {n} should be absent"));
        }
    }
    if let Some(want) = expect.get("responseHeaders").and_then(Value::as_object) {
        for (n, v) in want {
            let got = joined(response.headers.iter().map(|(a, b)| (a, b)), n);
            if got.as_deref() != Some(normalize_list(v.as_str().unwrap_or_default()).as_str()) {
                problems.push(format!("response header {n}: {got:?} (want {v})"));
            }
        }
    }
    for n in expect
        .get("absentResponseHeaders")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let n = n.as_str().unwrap_or_default();
        if response.header(n).is_some() {
            problems.push(format!("response header {n} should be absent"));
        }
    }
    if let Some(want) = str_of(expect, "location") {
        match response.header("location") {
            Some(got) if location_parts(got, &url) == location_parts(want, &url) => {}
            got => problems.push(format!("Location {got:?} (want {want:?})")),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[test]
fn gateway_api_httproute_conformance_cases() {
    let root = marked_yaml::parse_yaml(0, CASES).expect("cases.yaml parses");
    let root = json(&root);
    let mut failures = Vec::new();
    let mut ran = 0;
    for test in root["tests"].as_array().expect("tests") {
        let name = str_of(test, "name").expect("test name");
        let gateways = test["gateways"].as_array().expect("gateways");
        if let Some((_, key)) = NEEDS.iter().find(|(t, _)| *t == name) {
            let config = gateways[0]["config"].to_string();
            let compiled = compiler::compile_str("gateway.yaml", &config, std::path::Path::new("."));
            assert!(
                compiled
                    .errors()
                    .all(|e| e.message.contains(&format!("unknown field \"{key}\"")))
                    && compiled.plan.is_none(),
                "{name} now compiles or fails for another reason: run its cases (remove it from NEEDS)"
            );
            continue;
        }
        let running: BTreeMap<&str, Running> = gateways
            .iter()
            .map(|g| (str_of(g, "name").expect("gateway name"), start(&g["config"])))
            .collect();
        for case in test["cases"].as_array().expect("cases") {
            let case_name = str_of(case, "name").expect("case name");
            let gateway = str_of(case, "gateway").unwrap_or_else(|| str_of(&gateways[0], "name").expect("name"));
            ran += 1;
            if let Err(why) = run_case(&running[gateway], case) {
                failures.push(format!("{case_name}: {why}"));
            }
        }
    }
    assert!(ran >= 60, "only {ran} cases ran");
    assert!(
        failures.is_empty(),
        "{} of {ran} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
