//! Wasm policies (SPEC §11, policies/ABI.md) through the real gateway: the
//! example modules built by `policies/build.sh`, WAT fixtures for every
//! failure mode, compile-time refusal, digest checks and concurrency.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gateway_tests::{Behavior, Client, Gateway, Upstream, scratch_dir};

use crate::cluster;

fn module(name: &str) -> PathBuf {
    Path::new(env!("POLICIES_DIR")).join(format!("{name}.wasm"))
}

/// Starts a gateway whose config directory holds the example modules and any
/// `fixtures` (name, WAT text) compiled to `name.wasm`.
fn start(yaml: &str, fixtures: &[(&str, &str)]) -> Gateway {
    let dir = scratch_dir("policies");
    for name in ["canary", "deny", "tenant", "add_header", "add_header_c", "noop"] {
        std::fs::copy(module(name), dir.join(format!("{name}.wasm"))).expect("example module built");
    }
    for (name, wat) in fixtures {
        std::fs::write(
            dir.join(format!("{name}.wasm")),
            wat::parse_str(wat).expect("fixture WAT"),
        )
        .expect("write");
    }
    let config = dir.join("gateway.yaml");
    std::fs::write(&config, yaml).expect("write config");
    let args = [
        "run",
        "--config",
        config.to_str().expect("utf8"),
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--threads",
        "2",
    ];
    Gateway::spawn(&args, dir).unwrap_or_else(|e| panic!("gateway did not start: {e}"))
}

/// A config whose one route (any host, `/`) runs policy `name` (its module
/// `name.wasm`, with `settings` such as `onError: deny`) before cluster `u`.
fn one_policy(up: &Upstream, name: &str, settings: &str) -> String {
    format!(
        "accessLog: {{ enabled: false }}\nroutes:\n  - {{ name: r, pathPrefix: /, cluster: u, policies: [{name}] }}\nclusters:\n{}policies:\n  - {{ name: {name}, module: {name}.wasm{settings} }}\n",
        cluster("u", &[(up, 1)])
    )
}

fn upstream_of(r: &gateway_tests::Response) -> &str {
    r.header("x-upstream").unwrap_or("")
}

#[test]
fn example_policies_do_what_they_say() {
    let stable = Upstream::start("stable", Behavior::Echo);
    let canary = Upstream::start("canary", Behavior::Echo);
    let acme = Upstream::start("acme", Behavior::Echo);
    let globex = Upstream::start("globex", Behavior::Echo);
    let yaml = format!(
        r#"accessLog: {{ enabled: false }}
routes:
  - {{ name: canary, host: canary.test, pathPrefix: /, cluster: stable, policies: [canary] }}
  - {{ name: deny, host: deny.test, pathPrefix: /, cluster: stable, policies: [deny] }}
  - {{ name: tenant, host: tenant.test, pathPrefix: /, cluster: stable, policies: [tenant] }}
  - {{ name: tag, host: tag.test, pathPrefix: /, cluster: stable, policies: [tag] }}
  - {{ name: tag-c, host: tagc.test, pathPrefix: /, cluster: stable, policies: [tagc] }}
  - {{ name: plain, host: plain.test, pathPrefix: /, cluster: stable }}
clusters:
{}{}{}{}policies:
  - {{ name: canary, module: canary.wasm, config: {{ header: x-canary, value: "1" }}, clusters: [canary] }}
  - {{ name: deny, module: deny.wasm, config: {{ pathPrefixes: "/admin, /internal", clientIPs: "127.0.0.1" }} }}
  - {{ name: tenant, module: tenant.wasm, config: {{ header: x-tenant }}, clusters: [acme, globex] }}
  - {{ name: tag, module: add_header.wasm, config: {{ name: x-policy, value: rust }} }}
  - {{ name: tagc, module: add_header_c.wasm, config: {{ name: x-policy, value: c }} }}
"#,
        cluster("stable", &[(&stable, 1)]),
        cluster("canary", &[(&canary, 1)]),
        cluster("acme", &[(&acme, 1)]),
        cluster("globex", &[(&globex, 1)]),
    );
    let gw = start(&yaml, &[]);
    let mut c = Client::connect(gw.addr).expect("connect");
    let mut send = |host: &str, path: &str, extra: &str| {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").as_bytes())
            .expect("send");
        c.read_response(false).expect("response")
    };
    // Canary: only x-canary: 1 goes to the canary cluster.
    assert_eq!(upstream_of(&send("canary.test", "/a", "")), "stable");
    assert_eq!(upstream_of(&send("canary.test", "/a", "X-Canary: 1\r\n")), "canary");
    assert_eq!(upstream_of(&send("canary.test", "/a", "X-Canary: 0\r\n")), "stable");
    // Deny: by client IP (the test client is 127.0.0.1), with the policy's 403.
    let r = send("deny.test", "/public", "");
    assert_eq!(r.status, 403);
    assert_eq!(r.text(), "forbidden by policy\n");
    // Tenant routing by header.
    assert_eq!(upstream_of(&send("tenant.test", "/", "X-Tenant: acme\r\n")), "acme");
    assert_eq!(upstream_of(&send("tenant.test", "/", "X-Tenant: globex\r\n")), "globex");
    assert_eq!(
        upstream_of(&send("tenant.test", "/", "X-Tenant: initech\r\n")),
        "stable"
    );
    assert_eq!(upstream_of(&send("tenant.test", "/", "")), "stable");
    // Add a header (Rust and C modules).
    send("tag.test", "/", "");
    send("tagc.test", "/", "");
    send("plain.test", "/", "");
    let seen = stable.requests();
    let tags: Vec<Option<&str>> = seen.iter().rev().take(3).map(|s| s.header("x-policy")).collect();
    assert_eq!(
        tags,
        [None, Some("c"), Some("rust")],
        "route without policies is unaffected"
    );
    assert_eq!(canary.hits() + acme.hits() + globex.hits(), 3);
}

#[test]
fn deny_by_path_prefix_and_policy_order() {
    let up = Upstream::start("u", Behavior::Echo);
    let other = Upstream::start("other", Behavior::Echo);
    let yaml = format!(
        r#"accessLog: {{ enabled: false }}
routes:
  - {{ name: guarded, pathPrefix: /, cluster: u, policies: [deny, canary] }}
  - {{ name: reversed, host: rev.test, pathPrefix: /, cluster: u, policies: [canary, deny] }}
clusters:
{}{}policies:
  - {{ name: deny, module: deny.wasm, config: {{ pathPrefixes: "/admin,/internal/" }} }}
  - {{ name: canary, module: canary.wasm, clusters: [other] }}
"#,
        cluster("u", &[(&up, 1)]),
        cluster("other", &[(&other, 1)])
    );
    let gw = start(&yaml, &[]);
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/admin").expect("r").status, 403);
    assert_eq!(c.get("h", "/admin/users").expect("r").status, 403);
    assert_eq!(
        c.get("h", "/administrator").expect("r").status,
        200,
        "segment-wise, like routes"
    );
    assert_eq!(c.get("h", "/internal/x").expect("r").status, 403);
    assert_eq!(c.get("h", "/public").expect("r").status, 200);
    // Order: the first decision other than continue wins.
    c.send(b"GET /admin HTTP/1.1\r\nHost: h\r\nX-Canary: 1\r\n\r\n")
        .expect("send");
    assert_eq!(c.read_response(false).expect("r").status, 403, "deny runs first");
    c.send(b"GET /admin HTTP/1.1\r\nHost: rev.test\r\nX-Canary: 1\r\n\r\n")
        .expect("send");
    let r = c.read_response(false).expect("r");
    assert_eq!(
        (r.status, upstream_of(&r)),
        (200, "other"),
        "canary runs first and routes"
    );
}

/// A fixture module: the ABI's exports around an `on_request` body.
fn fixture(body: &str) -> String {
    format!(
        r#"(module
  (import "hook" "request_field" (func $field (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32) {body}))"#
    )
}

/// A policy that sets header after header (a loop gone wrong) is bounded:
/// the edits it may make to one request are capped, the calls beyond the
/// cap say -1, and neither the worker nor the forwarded head suffers.
#[test]
fn a_policy_that_floods_headers_is_bounded() {
    let up = Upstream::start("u", Behavior::Echo);
    let flood = r#"(module
  (import "hook" "set_header" (func $set (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32) (local $i i32)
    (memory.fill (i32.const 16) (i32.const 97) (i32.const 65536))
    (local.set $i (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 40000)))
        (i32.store8 (i32.const 0) (i32.add (i32.const 97) (i32.rem_u (local.get $i) (i32.const 26))))
        (i32.store8 (i32.const 1) (i32.add (i32.const 97) (i32.rem_u (i32.div_u (local.get $i) (i32.const 26)) (i32.const 26))))
        (i32.store8 (i32.const 2) (i32.add (i32.const 97) (i32.rem_u (i32.div_u (local.get $i) (i32.const 676)) (i32.const 26))))
        (i32.store8 (i32.const 3) (i32.add (i32.const 97) (i32.rem_u (i32.div_u (local.get $i) (i32.const 17576)) (i32.const 26))))
        (drop (call $set (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 1024)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))
"#;
    let yaml = one_policy(
        &up,
        "flood",
        ", onError: deny, limits: { timeoutMs: 2000, memoryPages: 2 }",
    );
    let chatty = r#"(module
  (import "hook" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "chatty")
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32) (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const 5000)))
        (call $log (i32.const 2) (i32.const 0) (i32.const 6))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0)))"#;
    let yaml = yaml.replace(
        "routes:\n",
        "routes:\n  - { name: c, host: chatty, pathPrefix: /, cluster: u, policies: [chatty] }\n",
    ) + "  - { name: chatty, module: chatty.wasm, onError: deny, limits: { timeoutMs: 2000 } }\n";
    let gw = start(&yaml, &[("flood", flood), ("chatty", chatty)]);
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..2 {
        let r = c.get("h", "/").expect("response");
        assert_eq!(r.status, 200, "{}\n{}", r.text(), gw.stderr_text());
    }
    // A policy that logs in a loop gets 100 lines a second; the next line
    // let out counts the ones held back.
    let started = Instant::now();
    assert_eq!(c.get("chatty", "/").expect("response").status, 200);
    let lines = |gw: &Gateway| gw.stderr_text().lines().filter(|l| l.contains("chatty")).count();
    let seconds = started.elapsed().as_secs() + 1;
    assert!(lines(&gw) as u64 <= 100 * seconds, "{} lines", lines(&gw));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(c.get("chatty", "/").expect("response").status, 200);
    let stderr = gw.stderr_text();
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("chatty") && l.contains("suppressed=")),
        "{stderr}"
    );
    let seen = up.requests();
    let added = seen[0].headers.iter().filter(|(_, v)| v.len() == 1024).count();
    // 64 KiB of names and values: 63 of these 1,028-byte edits.
    assert_eq!(added, 63, "headers set by the policy and forwarded");
    let bytes: usize = seen[0].headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    assert!(bytes <= 65 * 1024, "{bytes} bytes of headers forwarded");
}

/// The gateway's own log is written from a thread of its own: a stderr
/// whose reader stopped (here, once a policy logs 4 KB a request) drops
/// lines, and never stops a worker in the middle of a request.
#[test]
fn a_stderr_nobody_reads_never_stops_the_gateway() {
    let up = Upstream::start("u", Behavior::Echo);
    let loud = r#"(module
  (import "hook" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "hook_abi_v1"))
  (func (export "on_request") (result i32)
    (memory.fill (i32.const 0) (i32.const 120) (i32.const 4000))
    (call $log (i32.const 2) (i32.const 0) (i32.const 4000))
    (i32.const 0)))"#;
    let yaml = one_policy(&up, "loud", ", onError: deny");
    let gw = start(&yaml, &[("loud", loud)]);
    gw.pause_stderr();
    let started = Instant::now();
    let mut c = Client::connect(gw.addr).expect("connect");
    for i in 0..300 {
        let r = c.get("h", &format!("/{i}")).expect("answered with stderr stuck");
        assert_eq!(r.status, 200);
    }
    // 100 lines a second of 4 KB: far more than a pipe holds.
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = gw.admin_get("/metrics").1;
    assert!(text.contains("gateway_log_dropped_total "), "{text}");
}

#[test]
fn every_failure_mode_follows_on_error_and_the_gateway_keeps_serving() {
    let up = Upstream::start("u", Behavior::Echo);
    let fixtures = [
        ("spin", fixture("(loop (br 0)) (i32.const 0)")),
        ("bomb", fixture("(drop (memory.grow (i32.const 1000))) (i32.const 0)")),
        ("trap", fixture("unreachable")),
        (
            "badptr",
            fixture("(drop (call $field (i32.const 3) (i32.const 1000000) (i32.const 16))) (i32.const 0)"),
        ),
        ("baddecision", fixture("(i32.const 99)")),
        (
            "badinit",
            r#"(module (memory (export "memory") 1) (func (export "hook_abi_v1"))
                 (func (export "hook_init") (result i32) (i32.const 1))
                 (func (export "on_request") (result i32) (i32.const 0)))"#
                .to_owned(),
        ),
    ];
    let kinds = [
        ("spin", "timeout"),
        ("bomb", "memory"),
        ("trap", "trap"),
        ("badptr", "bad_pointer"),
        ("baddecision", "bad_decision"),
        ("badinit", "init_failed"),
    ];
    let mut routes = String::new();
    let mut policies = String::new();
    for (name, _) in &fixtures {
        for on_error in ["deny", "allow"] {
            routes.push_str(&format!("  - {{ name: {name}-{on_error}, host: {name}-{on_error}.test, pathPrefix: /, cluster: u, policies: [{name}-{on_error}] }}\n"));
            policies.push_str(&format!(
                "  - {{ name: {name}-{on_error}, module: {name}.wasm, onError: {on_error}, limits: {{ timeoutMs: 20, memoryPages: 4 }} }}\n"
            ));
        }
    }
    let yaml = format!(
        "accessLog: {{ enabled: false }}\nroutes:\n{routes}clusters:\n{}policies:\n{policies}",
        cluster("u", &[(&up, 1)])
    );
    let refs: Vec<(&str, &str)> = fixtures.iter().map(|(n, w)| (*n, w.as_str())).collect();
    let gw = start(&yaml, &refs);
    let mut c = Client::connect(gw.addr).expect("connect");
    for (name, kind) in kinds {
        for round in 0..2 {
            let t = Instant::now();
            let r = c.get(&format!("{name}-deny.test"), "/").expect("response");
            assert_eq!(
                (r.status, r.header("x-gateway-error")),
                (503, Some("policy_error")),
                "{name} deny"
            );
            assert!(t.elapsed() < Duration::from_secs(2), "{name} stalled the gateway");
            let r = c.get(&format!("{name}-allow.test"), "/").expect("response");
            assert_eq!(r.status, 200, "{name} allow (round {round})");
        }
        for on_error in ["deny", "allow"] {
            let sample = format!(r#"gateway_policy_errors_total{{policy="{name}-{on_error}",kind="{kind}"}}"#);
            assert_eq!(gw.metric(&sample), 2.0, "{sample}");
        }
    }
    assert_eq!(c.get("badptr-allow.test", "/after").expect("response").status, 200);
    assert_eq!(up.hits(), 13);
}

#[test]
fn policy_failures_show_in_the_access_log_and_the_gateways_own() {
    let up = Upstream::start("u", Behavior::Echo);
    let yaml = format!(
        "routes:\n  - {{ name: r, pathPrefix: /, cluster: u, policies: [trap] }}\nclusters:\n{}policies:\n  - {{ name: trap, module: trap.wasm, onError: allow }}\naccessLog: {{ json: {{ fields: [status, error, route] }} }}\n",
        cluster("u", &[(&up, 1)])
    );
    let trap = fixture("unreachable");
    let gw = start(&yaml, &[("trap", &trap)]);
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..20 {
        assert_eq!(c.get("h", "/").expect("response").status, 200);
    }
    let lines = gw.wait_log_lines(20, Duration::from_secs(5));
    assert!(
        lines
            .iter()
            .all(|l| l == r#"{"status":200,"error":"policy_error","route":"r"}"#),
        "{lines:#?}"
    );
    // Said at warn with the policy and the kind; rate-limited to one line per
    // second (20 failures within well under 20 seconds).
    let stderr = gw.stderr_text();
    let said: Vec<&str> = stderr.lines().filter(|l| l.contains("policy failed")).collect();
    assert!(!said.is_empty(), "{stderr}");
    assert!(said.len() < 20, "{said:#?}");
    assert!(
        said.iter()
            .all(|l| l.contains("WARN") && l.contains("policy=\"trap\"") && l.contains("kind=\"trap\"")),
        "{said:#?}"
    );
}

#[test]
fn a_module_whose_digest_changed_is_refused_at_start() {
    let dir = scratch_dir("digest");
    std::fs::copy(module("noop"), dir.join("noop.wasm")).expect("copy");
    std::fs::write(
        dir.join("gateway.yaml"),
        "routes:\n  - { name: r, pathPrefix: /, cluster: c, policies: [p] }\nclusters:\n  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }\npolicies:\n  - { name: p, module: noop.wasm }\n",
    )
    .expect("write");
    let out = std::process::Command::new(gateway_tests::gateway_bin())
        .args(["compile", "gateway.yaml", "-o", "gateway.plan.json"])
        .current_dir(&dir)
        .output()
        .expect("compile");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Swap the embedded module for another valid one, and re-seal the plan's
    // own digest, as a tampering tool would: the module digest still differs.
    let text = std::fs::read_to_string(dir.join("gateway.plan.json")).expect("plan");
    let mut doc: serde_json::Value = serde_json::from_str(&text).expect("json");
    let other = std::fs::read(module("add_header")).expect("module");
    let other_b64 = base64_encode(&other);
    doc["plan"]["policies"][0]["wasm"] = serde_json::Value::String(other_b64);
    let plan: plan::Plan = serde_json::from_value(doc["plan"].clone()).expect("plan");
    std::fs::write(
        dir.join("tampered.plan.json"),
        plan::encode(&plan, doc["sourceDigest"].as_str().unwrap_or("")),
    )
    .expect("write");
    let r = Gateway::spawn(&["run", "--plan", "tampered.plan.json", "--listen", "127.0.0.1:0"], dir);
    let err = r.expect_err("a tampered module must be refused");
    assert!(
        err.contains("module digest") && err.contains("differs from the plan's"),
        "{err}"
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn modules_that_break_the_abi_are_refused_at_compile_time_with_a_location() {
    let dir = scratch_dir("abi");
    let wrong_import = r#"(module (import "env" "fopen" (func (param i32) (result i32)))
        (memory (export "memory") 1) (func (export "hook_abi_v1")) (func (export "on_request") (result i32) (i32.const 0)))"#;
    let missing_export = r#"(module (memory (export "memory") 1) (func (export "hook_abi_v1")))"#;
    std::fs::write(dir.join("wrong.wasm"), wat::parse_str(wrong_import).expect("wat")).expect("write");
    std::fs::write(dir.join("missing.wasm"), wat::parse_str(missing_export).expect("wat")).expect("write");
    std::fs::write(
        dir.join("gateway.yaml"),
        "routes:\n  - { name: r, pathPrefix: /, cluster: c, policies: [a, b] }\nclusters:\n  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }\npolicies:\n  - name: a\n    module: wrong.wasm\n  - name: b\n    module: missing.wasm\n    clusters: [canery]\n",
    )
    .expect("write");
    let out = std::process::Command::new(gateway_tests::gateway_bin())
        .args(["check"])
        .current_dir(&dir)
        .output()
        .expect("check");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("gateway.yaml:7:13: error: policies[0].module: module \"wrong.wasm\" imports \"env.fopen\", which is not in the hook ABI v1"), "{stderr}");
    assert!(
        stderr.contains(
            "gateway.yaml:9:13: error: policies[1].module: module \"missing.wasm\" does not export \"on_request\""
        ),
        "{stderr}"
    );
}

#[test]
fn eight_concurrent_clients_through_a_policy_route() {
    let stable = Upstream::start("stable", Behavior::Echo);
    let canary = Upstream::start("canary", Behavior::Echo);
    let yaml = format!(
        "accessLog: {{ enabled: false }}\nroutes:\n  - {{ name: r, pathPrefix: /, cluster: stable, policies: [canary, tag] }}\nclusters:\n{}{}policies:\n  - {{ name: canary, module: canary.wasm, clusters: [canary] }}\n  - {{ name: tag, module: add_header.wasm, config: {{ name: x-policy, value: on }} }}\n",
        cluster("stable", &[(&stable, 1)]),
        cluster("canary", &[(&canary, 1)])
    );
    let gw = start(&yaml, &[]);
    let deadline = Instant::now() + Duration::from_secs(3);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let addr = gw.addr;
            std::thread::spawn(move || {
                let mut c = Client::connect(addr).expect("connect");
                let mut n = 0;
                while Instant::now() < deadline {
                    let canary = (n + t) % 2 == 0;
                    let extra = if canary { "X-Canary: 1\r\n" } else { "" };
                    c.send(format!("GET /{t}/{n} HTTP/1.1\r\nHost: h\r\n{extra}\r\n").as_bytes())
                        .expect("send");
                    let r = c.read_response(false).expect("response");
                    assert_eq!(r.status, 200, "{}", r.text());
                    assert_eq!(upstream_of(&r), if canary { "canary" } else { "stable" });
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: usize = threads.into_iter().map(|t| t.join().expect("client")).sum();
    assert!(total > 100, "only {total} requests in 3 s");
    assert!(stable.requests().iter().all(|s| s.header("x-policy") == Some("on")));
}

/// A policy's `log` message may carry request data: its control bytes are
/// escaped, so it can neither forge a line of the gateway's own log nor drive
/// a terminal.
#[test]
fn a_policy_log_message_cannot_start_a_line_of_its_own() {
    let up = Upstream::start("u", Behavior::Echo);
    let wat = r#"(module
      (import "hook" "log" (func $log (param i32 i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "first\n2026-01-01T00:00:00.000Z  INFO forged\r\1b[2J")
      (func (export "hook_abi_v1"))
      (func (export "on_request") (result i32)
        (call $log (i32.const 2) (i32.const 0) (i32.const 48))
        (i32.const 0)))"#;
    let yaml = one_policy(&up, "say", "");
    let gw = start(&yaml, &[("say", wat)]);
    let mut c = Client::connect(gw.addr).expect("connect");
    assert_eq!(c.get("h", "/").expect("response").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    while !gw.stderr_text().contains("first") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stderr = gw.stderr_text();
    let line = stderr
        .lines()
        .find(|l| l.contains("first"))
        .unwrap_or_else(|| panic!("the policy's line: {stderr}"));
    assert!(
        line.contains(r"first\n2026-01-01T00:00:00.000Z  INFO forged\r\u{1b}[2J"),
        "{line}"
    );
    assert!(!stderr.lines().any(|l| l.starts_with("2026-01-01")), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "{stderr}");
}

/// A policy's prepared response is framed by the gateway: the framing and
/// `Connection` headers the policy adds are dropped, so its answer reads as
/// exactly its body and the connection carries the next request.
#[test]
fn a_prepared_response_is_framed_by_the_gateway_not_the_policy() {
    let up = Upstream::start("u", Behavior::Echo);
    let wat = r#"(module
      (import "hook" "respond" (func $respond (param i32 i32 i32) (result i32)))
      (import "hook" "respond_header" (func $rh (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "hi")
      (data (i32.const 16) "content-length")
      (data (i32.const 32) "999")
      (data (i32.const 48) "transfer-encoding")
      (data (i32.const 80) "chunked")
      (data (i32.const 96) "connection")
      (data (i32.const 112) "x-foo")
      (data (i32.const 144) "x-foo")
      (data (i32.const 160) "bar")
      (data (i32.const 176) "x-kept")
      (func (export "hook_abi_v1"))
      (func (export "on_request") (result i32)
        (drop (call $respond (i32.const 200) (i32.const 0) (i32.const 2)))
        (drop (call $rh (i32.const 16) (i32.const 14) (i32.const 32) (i32.const 3)))
        (drop (call $rh (i32.const 48) (i32.const 17) (i32.const 80) (i32.const 7)))
        (drop (call $rh (i32.const 96) (i32.const 10) (i32.const 112) (i32.const 5)))
        (drop (call $rh (i32.const 144) (i32.const 5) (i32.const 160) (i32.const 3)))
        (drop (call $rh (i32.const 176) (i32.const 6) (i32.const 160) (i32.const 3)))
        (i32.const 1)))"#;
    let yaml = one_policy(&up, "answer", "");
    let gw = start(&yaml, &[("answer", wat)]);
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..2 {
        let r = c.get("h", "/").expect("response");
        assert_eq!((r.status, r.text().as_str()), (200, "hi"));
        assert_eq!(r.header("content-length"), Some("2"));
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("connection"), None);
        assert_eq!(r.header("x-kept"), Some("bar"));
    }
    assert_eq!(up.hits(), 0);
}

/// A `204` (or `304`) a policy prepared with a body is sent without it: the
/// body would otherwise be read as the answer to the client's next request
/// on the connection (here, a forged `200`).
#[test]
fn a_prepared_204_never_sends_its_body() {
    let up = Upstream::start("u", Behavior::Echo);
    let wat = r#"(module
      (import "hook" "respond" (func $respond (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "HTTP/1.1 200 OK\0d\0acontent-length: 6\0d\0a\0d\0aforged")
      (func (export "hook_abi_v1"))
      (func (export "on_request") (result i32)
        (drop (call $respond (i32.const 204) (i32.const 0) (i32.const 44)))
        (i32.const 1)))"#;
    let yaml = one_policy(&up, "nothing", "");
    let gw = start(&yaml, &[("nothing", wat)]);
    let mut c = Client::connect(gw.addr).expect("connect");
    for _ in 0..3 {
        let r = c.get("h", "/").expect("response");
        assert_eq!((r.status, r.text().as_str()), (204, ""));
        assert_eq!(r.header("content-length"), None);
    }
    assert!(
        !c.is_closed(Duration::from_millis(50)),
        "the connection carries on after 204s"
    );
}
