//! The `gateway` command line as users script it (SPEC §2): exit codes, output
//! shape, byte-identical plans, refused artifacts, `explain`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gateway(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("gateway runs")
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gateway-cli-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

const CONFIG: &str = "\
routes:
  - name: api
    host: api.example.com
    pathPrefix: /v1
    cluster: api
  - name: tenants
    host: \"*.example.com\"
    pathPrefix: /
    cluster: api
  - name: default
    pathPrefix: /static
    cluster: api
clusters:
  - name: api
    upstreams:
      - { url: \"http://127.0.0.1:9001\", weight: 5 }
      - { url: \"http://127.0.0.1:9002\", weight: 1 }
";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_exit_codes_and_output() {
    let dir = scratch("check");
    std::fs::write(dir.join("gateway.yaml"), CONFIG).expect("write");
    let ok = gateway(&["check"], &dir);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stderr).contains("gateway.yaml: ok: 3 route(s)"),
        "{}",
        text(&ok.stderr)
    );
    assert!(std::fs::read_dir(&dir).expect("dir").count() == 1, "check wrote a file");

    let bad = CONFIG
        .replace("cluster: api\n  - name: tenants", "cluster: apii\n  - name: tenants")
        .replace("weight: 1 }", "weight: 0 }");
    std::fs::write(dir.join("bad.yaml"), bad).expect("write");
    let out = gateway(&["check", "bad.yaml"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:5:14: error: routes[0].cluster: unknown cluster \"apii\" (did you mean \"api\"?)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "bad.yaml:17:49: error: clusters[0].upstreams[1].weight: must be an integer greater than 0, got 0"
        ),
        "{stderr}"
    );

    let missing = gateway(&["check", "nope.yaml"], &dir);
    assert_eq!(missing.status.code(), Some(2));
    let usage = gateway(&["check", "--bogus"], &dir);
    assert_eq!(usage.status.code(), Some(2));
    // A level that is not one would filter out every line: refused.
    let level = gateway(&["check", "--log-level", "bogus"], &dir);
    assert_eq!(level.status.code(), Some(2));
    assert!(
        text(&level.stderr).contains("possible values: error, warn, info, debug, trace, off"),
        "{}",
        text(&level.stderr)
    );
    assert_eq!(gateway(&["check", "--log-level", "debug"], &dir).status.code(), Some(0));
    // Zero workers would serve nothing: refused before anything starts.
    let zero = gateway(&["run", "--threads", "0", "--listen", "127.0.0.1:0"], &dir);
    assert_eq!(zero.status.code(), Some(2));
    assert!(
        text(&zero.stderr).contains("not a worker count from 1 to 1024"),
        "{}",
        text(&zero.stderr)
    );
    for cmd in ["check", "compile", "explain", "run", "demo"] {
        let help = gateway(&[cmd, "--help"], &dir);
        assert_eq!(help.status.code(), Some(0), "{cmd} --help");
        assert!(text(&help.stdout).contains("Usage: gateway"), "{cmd} --help");
    }
}

/// What editors and tools write around YAML: a byte-order mark is read
/// past, a second document is refused (the parser would drop it silently),
/// and bytes that are not UTF-8 are an invalid config at their location.
#[test]
fn byte_order_marks_second_documents_and_non_utf8_bytes() {
    let dir = scratch("encodings");
    std::fs::write(dir.join("bom.yaml"), format!("\u{feff}{CONFIG}")).expect("write");
    let out = gateway(&["check", "bom.yaml"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let second = format!("{CONFIG}---\nroutes: []\n");
    std::fs::write(dir.join("two.yaml"), &second).expect("write");
    let out = gateway(&["check", "two.yaml", "--format", "short"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("two.yaml:18:1: error: yaml: a second YAML document starts here"),
        "{}",
        text(&out.stderr)
    );
    // An empty trailing document, as generators often leave, is no harm.
    std::fs::write(dir.join("trailing.yaml"), format!("---\n{CONFIG}---\n")).expect("write");
    assert_eq!(gateway(&["check", "trailing.yaml"], &dir).status.code(), Some(0));

    let mut latin1 = CONFIG
        .replace("pathPrefix: /static", "pathPrefix: /caf\u{e9}")
        .into_bytes();
    let at = latin1.iter().position(|&b| b == 0xc3).expect("the é");
    latin1.splice(at..at + 2, [0xe9]);
    std::fs::write(dir.join("latin1.yaml"), latin1).expect("write");
    let out = gateway(&["check", "latin1.yaml", "--format", "short"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("latin1.yaml:11:21: error: config: the config is not UTF-8: byte 0xE9 here"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn compile_is_byte_identical_and_relocatable() {
    let a = scratch("compile-a");
    let b = scratch("compile-b");
    std::fs::write(a.join("gateway.yaml"), CONFIG).expect("write");
    std::fs::write(b.join("gateway.yaml"), CONFIG).expect("write");
    let out = gateway(&["compile"], &a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let first = std::fs::read(a.join("gateway.plan.json")).expect("default output beside the config");
    let out = gateway(&["compile", "gateway.yaml", "-o", "again.plan.json"], &a);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(first, std::fs::read(a.join("again.plan.json")).expect("written"));
    let out = gateway(&["compile", "-o", "-"], &b);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        first, out.stdout,
        "a copy in another directory compiles to the same bytes"
    );
    let plan_text = text(&first);
    assert!(
        !plan_text.contains(a.to_str().unwrap_or("/")),
        "plan holds the compiling machine's path"
    );
    assert!(
        plan_text.starts_with(&format!(
            "{{\"formatVersion\":{},\"digest\":\"sha256:",
            plan::FORMAT_VERSION
        )),
        "{plan_text}"
    );

    let bad = scratch("compile-bad");
    std::fs::write(bad.join("gateway.yaml"), "routes: [}").expect("write");
    let out = gateway(&["compile"], &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(!bad.join("gateway.plan.json").exists());
}

/// A plan is replaced whole (written beside it, then renamed over it): a
/// gateway that reads it meanwhile gets the old plan or the new one, never
/// a truncated part, and a failed write leaves the old plan intact.
#[test]
fn compile_replaces_a_plan_whole_and_follows_links() {
    use std::io::Read as _;
    let dir = scratch("compile-replace");
    std::fs::write(dir.join("gateway.yaml"), CONFIG).expect("write");
    assert_eq!(
        gateway(&["compile", "-o", "live.plan.json"], &dir).status.code(),
        Some(0)
    );
    let old = std::fs::read(dir.join("live.plan.json")).expect("plan");
    // A reader that opened the old plan keeps reading all of it.
    let mut reader = std::fs::File::open(dir.join("live.plan.json")).expect("open");
    std::fs::write(dir.join("gateway.yaml"), CONFIG.replace("/v1", "/v2")).expect("write");
    let out = gateway(&["compile", "-o", "live.plan.json"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).expect("read");
    assert!(seen == old, "the open file was rewritten in place");
    let new = std::fs::read(dir.join("live.plan.json")).expect("plan");
    assert_ne!(new, old);
    assert!(text(&new).contains("/v2"));
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    // Through a symbolic link, the file it names is replaced, not the link.
    std::os::unix::fs::symlink("live.plan.json", dir.join("current.plan.json")).expect("link");
    std::fs::write(dir.join("gateway.yaml"), CONFIG).expect("write");
    assert_eq!(
        gateway(&["compile", "-o", "current.plan.json"], &dir).status.code(),
        Some(0)
    );
    let link = std::fs::symlink_metadata(dir.join("current.plan.json")).expect("link");
    assert!(link.file_type().is_symlink(), "the link was replaced by a file");
    assert_eq!(std::fs::read(dir.join("live.plan.json")).expect("plan"), old);
}

#[test]
fn damaged_and_foreign_plans_are_refused() {
    let dir = scratch("refuse");
    std::fs::write(dir.join("gateway.yaml"), CONFIG).expect("write");
    assert_eq!(gateway(&["compile"], &dir).status.code(), Some(0));
    let plan = text(&std::fs::read(dir.join("gateway.plan.json")).expect("plan"));

    let damaged = plan.replacen("/v1", "/v2", 1);
    std::fs::write(dir.join("damaged.plan.json"), damaged).expect("write");
    let out = gateway(&["run", "--plan", "damaged.plan.json", "--listen", "127.0.0.1:0"], &dir);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("error: damaged.plan.json: plan is damaged: digest mismatch"),
        "{}",
        text(&out.stderr)
    );

    let current = format!("\"formatVersion\":{}", plan::FORMAT_VERSION);
    let foreign = plan.replacen(&current, "\"formatVersion\":1", 1);
    std::fs::write(dir.join("v2.plan.json"), foreign).expect("write");
    let out = gateway(
        &["explain", "--plan", "v2.plan.json", "http://api.example.com/v1"],
        &dir,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unsupported plan formatVersion 1"),
        "{}",
        text(&out.stderr)
    );
    let out = gateway(&["run", "--plan", "v2.plan.json", "--listen", "127.0.0.1:0"], &dir);
    assert_ne!(out.status.code(), Some(0));

    let invalid = dir.join("invalid.yaml");
    std::fs::write(&invalid, "routes:\n  - { name: a, pathPrefix: /, cluster: nope }\n").expect("write");
    let out = gateway(&["run", "--config", "invalid.yaml", "--listen", "127.0.0.1:0"], &dir);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("invalid.yaml:2:40: error: routes[0].cluster: unknown cluster \"nope\""),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn explain_routed_and_unrouted() {
    let dir = scratch("explain");
    std::fs::write(dir.join("gateway.yaml"), CONFIG).expect("write");
    let out = gateway(&["explain", "http://API.example.com:8080/v1/users/../items?id=7"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for expected in [
        "route     api (gateway.yaml:2)",
        "tier      exact host \"api.example.com\"",
        "matched   pathPrefix \"/v1\"",
        "cluster   api",
        "path      /v1/items (normalized from /v1/users/../items",
        "wrr       period 6: a a a b a a",
        "forward   to http://127.0.0.1:9001",
        "  | GET /v1/items?id=7 HTTP/1.1",
        "  | host: API.example.com:8080",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in\n{report}");
    }

    let out = gateway(&["explain", "gateway.yaml", "http://api.example.com/v2"], &dir);
    assert_eq!(out.status.code(), Some(0));
    let report = text(&out.stdout);
    assert!(report.contains("route     tenants (gateway.yaml:6)"), "{report}");
    assert!(
        report.contains("tier      exact host \"api.example.com\": 1 route(s)\n  none    no route's path matcher matches: falling back to the next tier"),
        "{report}"
    );

    let out = gateway(&["explain", "http://example.com/nothing"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(report.contains("404 no_route"), "{report}");
    assert!(report.contains("closest routes:"), "{report}");
    assert!(
        report.contains("default (gateway.yaml:10): pathPrefix \"/static\" does not match \"/nothing\""),
        "{report}"
    );
    assert!(
        report.contains("tenants (gateway.yaml:6): host pattern \"*.example.com\" does not match \"example.com\""),
        "{report}"
    );

    let out = gateway(&["explain"], &dir);
    assert_eq!(out.status.code(), Some(2));
}

const LANGUAGE: &str = "\
routes:
  - name: v2
    host: api.example.com
    pathRegex: \"/users/[0-9]+\"
    methods: [GET]
    headers: [{ name: X-Version, value: \"2\" }]
    cluster: v2
    requestHeaders: { set: { X-Route: v2 }, remove: [Cookie] }
    responseHeaders: { add: { Cache-Control: no-store } }
    rewrite: { host: users.internal, path: /user }
  - name: users
    host: api.example.com
    pathPrefix: /users
    backends: [{ cluster: v1, weight: 3 }, { cluster: v2, weight: 1 }]
  - name: old
    pathPrefix: /old
    redirect: { scheme: https, pathPrefix: /new, status: 308 }
clusters:
  - { name: v1, upstreams: [{ url: \"http://127.0.0.1:9001/base\" }] }
  - { name: v2, upstreams: [{ url: \"http://127.0.0.1:9002\" }] }
";

#[test]
fn explain_narrates_conditions_actions_filters_and_the_forwarded_head() {
    let dir = scratch("explain-language");
    std::fs::write(dir.join("gateway.yaml"), LANGUAGE).expect("write");
    let out = gateway(
        &[
            "explain",
            "http://api.example.com/users/42?x=1",
            "-H",
            "X-Version: 2",
            "-H",
            "Cookie: a=b",
        ],
        &dir,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    for expected in [
        "request   GET http://api.example.com/users/42?x=1",
        "header    X-Version: 2",
        "route     v2 (gateway.yaml:2)",
        "matched   pathRegex \"/users/[0-9]+\"; method in [GET] ✓; header x-version = \"2\" ✓",
        "request   headers: set X-Route: v2; remove Cookie",
        "response  headers: add Cache-Control: no-store",
        "rewrite   host users.internal",
        "  | GET /user?x=1 HTTP/1.1",
        "  | host: users.internal",
        "  | X-Version: 2",
        "  | X-Route: v2",
        "  | x-forwarded-host: api.example.com",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in\n{report}");
    }
    assert!(!report.contains("Cookie: a=b\n  |"), "{report}");

    // A failed condition is named, and the next candidate (a prefix) wins.
    let out = gateway(
        &[
            "explain",
            "--method",
            "POST",
            "http://api.example.com/users/42",
            "-H",
            "x-version: 1",
        ],
        &dir,
    );
    let report = text(&out.stdout);
    assert!(
        report.contains("  passed  v2 (gateway.yaml:2) pathRegex \"/users/[0-9]+\": method POST is not one of GET"),
        "{report}"
    );
    assert!(report.contains("route     users (gateway.yaml:11)"), "{report}");
    assert!(report.contains("split     v1 ×3, v2 ×1"), "{report}");
    assert!(report.contains("  | POST /base/users/42 HTTP/1.1"), "{report}");
    let out = gateway(
        &[
            "explain",
            "-X",
            "GET",
            "http://api.example.com/users/42",
            "-H",
            "x-version: 1",
        ],
        &dir,
    );
    assert!(
        text(&out.stdout).contains("header x-version = \"2\": got \"1\""),
        "{}",
        text(&out.stdout)
    );

    // A redirect: the Location, and no upstream.
    let out = gateway(&["explain", "http://example.org:8080/old/page?q=1"], &dir);
    assert_eq!(out.status.code(), Some(0));
    let report = text(&out.stdout);
    assert!(
        report.contains("action    redirect 308 to https://example.org/new/page?q=1 (no upstream is contacted)"),
        "{report}"
    );
    assert!(!report.contains("forward   "), "{report}");

    let out = gateway(&["explain", "http://example.org/", "-H", "bad header"], &dir);
    assert_eq!(out.status.code(), Some(2));
}
