//! The CI tools of SPEC §13 through the real binary: diagnostics formats and
//! `--deny-warnings`, `gateway test`, `gateway diff`, `gateway schema`, and
//! the CI recipe of docs/ci.md run as written.

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
    let dir = std::env::temp_dir().join(format!("gateway-ci-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

const WARNS: &str = "routes:
  - { name: a, pathPrefix: /, cluster: c }
clusters:
  - { name: c, upstreams: [{ url: \"http://127.0.0.1:9\" }] }
  - { name: unused, upstreams: [{ url: \"http://127.0.0.1:10\" }] }
";

#[test]
fn diagnostics_formats_and_deny_warnings() {
    let dir = scratch("formats");
    std::fs::write(dir.join("gateway.yaml"), WARNS).expect("write");
    let out = gateway(&["check", "--format", "short"], &dir);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr)
            .contains("gateway.yaml:5:13: warning: clusters[1].name: cluster \"unused\" is not used by any route"),
        "{}",
        text(&out.stderr)
    );
    let out = gateway(&["check", "--deny-warnings"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = gateway(&["compile", "--deny-warnings", "-o", "p.json"], &dir);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        !dir.join("p.json").exists(),
        "no plan is written when warnings are denied"
    );
    // The same exit for `test` and `diff` (SPEC §13), whatever they found.
    std::fs::write(
        dir.join("cases.yaml"),
        "cases:\n  - name: a\n    request: { url: \"http://h/\" }\n    expect: { route: a }\n",
    )
    .expect("write");
    let out = gateway(&["test", "cases.yaml"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = gateway(&["test", "cases.yaml", "--deny-warnings"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = gateway(&["diff", "gateway.yaml", "gateway.yaml", "--deny-warnings"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).is_empty(), "no diff is printed");
    let out = gateway(&["diff", "gateway.yaml", "gateway.yaml"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = gateway(&["check", "--format", "json"], &dir);
    let lines: Vec<serde_json::Value> = text(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 1, "only diagnostics on stderr in json form");
    assert_eq!(lines[0]["severity"], "warning");
    assert_eq!(
        (lines[0]["line"].as_u64(), lines[0]["column"].as_u64()),
        (Some(5), Some(13))
    );
    assert_eq!(
        (lines[0]["endLine"].as_u64(), lines[0]["endColumn"].as_u64()),
        (Some(5), Some(19))
    );

    let out = gateway(&["check", "--format", "github"], &dir);
    assert_eq!(
        text(&out.stderr).trim(),
        "::warning file=gateway.yaml,line=5,col=13,endLine=5,endColumn=19,title=clusters[1].name::clusters[1].name: cluster \"unused\" is not used by any route"
    );

    std::fs::write(dir.join("bad.yaml"), "routes: [\n  { name: a }\n").expect("write");
    let out = gateway(&["check", "bad.yaml", "--format", "human"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("bad.yaml:1:9: error: yaml: this `[` is never closed"),
        "{err}"
    );
    assert!(err.contains("1 │ routes: ["), "{err}");
    assert!(err.contains("= help: add the matching `]`"), "{err}");
}

#[test]
fn explain_needs_a_host_and_an_http_url() {
    let dir = scratch("explain-usage");
    std::fs::write(dir.join("gateway.yaml"), WARNS).expect("write");
    for url in ["/v1/x", "ftp://h/x", "http:///x"] {
        let out = gateway(&["explain", url], &dir);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out.stdout));
        assert!(text(&out.stderr).starts_with("error: "), "{url}: {}", text(&out.stderr));
    }
}

#[test]
fn route_tests_pass_fail_and_report() {
    let root = repo();
    let out = gateway(&["test", "tests/routes.yaml"], &root);
    assert_eq!(out.status.code(), Some(0), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("12 passed, 0 failed\n"),
        "{}",
        text(&out.stdout)
    );

    let dir = scratch("test");
    std::fs::copy(root.join("gateway.yaml"), dir.join("gateway.yaml")).expect("copy");
    std::fs::write(
        dir.join("cases.yaml"),
        "cases:
  - name: right
    request: { url: \"http://api.example.com/v1/x\" }
    expect: { route: api-v1, upstreamPath: /v1/x }
  - name: wrong
    request: { method: POST, url: \"http://api.example.com/v1/x\" }
    expect: { route: static, status: 404 }
",
    )
    .expect("write");
    let out = gateway(&["test", "cases.yaml"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    assert!(report.contains("ok      right\n"), "{report}");
    assert!(
        report.contains("FAILED  wrong (cases.yaml:5) (route at gateway.yaml:12)"),
        "{report}"
    );
    assert!(
        report.contains("route: expected \"static\", got \"api-v1\""),
        "{report}"
    );
    assert!(
        report.contains("status: expected 404, got the request forwarded upstream"),
        "{report}"
    );
    assert!(report.ends_with("1 passed, 1 failed\n"), "{report}");

    // JUnit: well-formed enough for CI (one testcase per case, failures marked).
    let out = gateway(&["test", "cases.yaml", "--format", "junit"], &dir);
    let xml = text(&out.stdout);
    assert!(
        xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"),
        "{xml}"
    );
    assert_eq!(xml.matches("<testcase ").count(), 2);
    assert_eq!(xml.matches("<failure message=").count(), 1);
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    // GitHub: one error command per failed case, at the case.
    let out = gateway(&["test", "cases.yaml", "--format", "github"], &dir);
    let gh = text(&out.stdout);
    let errors: Vec<&str> = gh.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(errors.len(), 1, "{gh}");
    assert!(errors[0].starts_with("::error file=cases.yaml,line=5,"), "{gh}");
    assert!(errors[0].contains("::wrong: route: expected \"static\""), "{gh}");

    // Invalid input: a case without expectations, a URL without a host.
    std::fs::write(
        dir.join("bad.yaml"),
        "cases:\n  - { name: x, request: { url: \"http://h/\" }, expect: {} }\n",
    )
    .expect("write");
    assert_eq!(gateway(&["test", "bad.yaml"], &dir).status.code(), Some(2));
    std::fs::write(
        dir.join("nohost.yaml"),
        "cases:\n  - { name: x, request: { url: \"/x\" }, expect: { status: 404 } }\n",
    )
    .expect("write");
    assert_eq!(gateway(&["test", "nohost.yaml"], &dir).status.code(), Some(2));
    assert_eq!(gateway(&["test", "missing.yaml"], &dir).status.code(), Some(2));
}

/// `requestHeaders: { name: null }` asserts that a header is not forwarded
/// (a `remove` filter, say); a value that is not a string is an error, not
/// an expectation quietly dropped (a case that could never fail).
#[test]
fn route_tests_assert_absent_headers_and_refuse_values_that_are_not_strings() {
    let dir = scratch("test-headers");
    std::fs::copy(repo().join("gateway.yaml"), dir.join("gateway.yaml")).expect("copy");
    std::fs::write(
        dir.join("cases.yaml"),
        "cases:
  - name: the cookie is removed
    request: { url: \"http://api.example.com/v1/users/42\", headers: { X-Version: \"2\", Cookie: a=b } }
    expect: { route: user-v2, requestHeaders: { cookie: null, x-route: user-v2 } }
  - name: the version is not removed
    request: { url: \"http://api.example.com/v1/users/42\", headers: { X-Version: \"2\" } }
    expect: { requestHeaders: { X-Version: ~ } }
",
    )
    .expect("write");
    let out = gateway(&["test", "cases.yaml"], &dir);
    let report = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{report}{}", text(&out.stderr));
    assert!(report.contains("ok      the cookie is removed\n"), "{report}");
    assert!(
        report.contains("requestHeaders.X-Version: expected absent, got \"2\""),
        "{report}"
    );
    assert!(report.ends_with("1 passed, 1 failed\n"), "{report}");

    for (case, error) in [
        (
            "request: { url: \"http://h/\" }, expect: { requestHeaders: { x-a: [a, b] } }",
            "cases[0].expect.requestHeaders.x-a: must be a header value (a string)",
        ),
        (
            "request: { url: \"http://h/\" }, expect: { requestHeaders: [x-a] }",
            "cases[0].expect.requestHeaders: must be a mapping of header names to values",
        ),
        (
            "request: { url: \"http://h/\", headers: { x-a: { b: c } } }, expect: { status: 404 }",
            "cases[0].request.headers.x-a: must be a header value (a string)",
        ),
        (
            "request: { url: \"http://h/\", headers: { x-a: null } }, expect: { status: 404 }",
            "cases[0].request.headers.x-a: must be a header value",
        ),
        (
            "request: { url: \"http://h/\", headers: [x-a] }, expect: { status: 404 }",
            "cases[0].request.headers: must be a mapping of header names to values",
        ),
        (
            "request: { url: \"http://h/\", headers: { Host: other } }, expect: { status: 404 }",
            "cases[0].request.headers.Host: the request's host is the one in `url`",
        ),
    ] {
        std::fs::write(dir.join("bad.yaml"), format!("cases:\n  - {{ name: x, {case} }}\n")).expect("write");
        let out = gateway(&["test", "bad.yaml", "--format", "short"], &dir);
        assert_eq!(out.status.code(), Some(2), "{case}");
        assert!(text(&out.stderr).contains(error), "{case}: {}", text(&out.stderr));
    }
}

#[test]
fn diff_says_what_changes_and_nothing_when_nothing_does() {
    let root = repo();
    let dir = scratch("diff");
    let old = std::fs::read_to_string(root.join("gateway.yaml")).expect("read");
    std::fs::write(dir.join("old.yaml"), &old).expect("write");
    // Comments, key order inside a flow mapping, spacing: no change.
    let same = format!(
        "# reformatted\n{}",
        old.replace(
            "{ url: \"http://127.0.0.1:9001\", weight: 5 }",
            "{ weight: 5,   url: \"http://127.0.0.1:9001\" }"
        )
    );
    std::fs::write(dir.join("same.yaml"), same).expect("write");
    let out = gateway(&["diff", "old.yaml", "same.yaml"], &dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "no change in routing\n");

    let new = old
        .replace("    pathPrefix: /v1/admin\n", "    pathPrefix: /v1/adm\n")
        .replace(
            "{ url: \"http://127.0.0.1:9002\", weight: 1 }",
            "{ url: \"http://127.0.0.1:9002\", weight: 5 }",
        );
    std::fs::write(dir.join("new.yaml"), new).expect("write");
    assert_eq!(
        gateway(&["compile", "old.yaml", "-o", "old.plan.json"], &dir)
            .status
            .code(),
        Some(0)
    );
    let out = gateway(&["diff", "old.plan.json", "new.yaml"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let report = text(&out.stdout);
    for expected in [
        "route changed: api-admin (path)",
        "cluster changed: api (upstreams)",
        "  http://127.0.0.1:9001  83.3% -> 50.0%",
        "  GET http://api.example.com/v1/adm\n    before: route api-v1: cluster api\n    after:  route api-admin: cluster web",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in\n{report}");
    }
    let out = gateway(&["diff", "old.yaml", "new.yaml", "--format", "json"], &dir);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(j["sameRouting"], false);
    assert!(j["requests"].as_array().is_some_and(|r| !r.is_empty()));
    let out = gateway(&["diff", "old.yaml", "new.yaml", "--format", "markdown"], &dir);
    assert!(
        text(&out.stdout).starts_with("### Routing changes\n"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("| request | before | after |"));

    // A cluster that starts speaking HTTP/2 to its upstreams is a change.
    let h2 = old.replacen("  - name: web\n", "  - name: web\n    protocol: h2\n", 1);
    assert_ne!(h2, old);
    std::fs::write(dir.join("h2.yaml"), h2).expect("write");
    let out = gateway(&["diff", "old.yaml", "h2.yaml"], &dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("cluster changed: web (protocol)"),
        "{}",
        text(&out.stdout)
    );

    std::fs::write(dir.join("broken.yaml"), "routes: 1\n").expect("write");
    assert_eq!(
        gateway(&["diff", "old.yaml", "broken.yaml"], &dir).status.code(),
        Some(2)
    );
    assert_eq!(
        gateway(&["diff", "old.yaml", "missing.yaml"], &dir).status.code(),
        Some(2)
    );
}

/// Python's `jsonschema` validates the schema itself, the repository's
/// configs against it, and refuses a config with a misspelt key. The configs
/// are read as YAML 1.2 reads them (as the gateway and the YAML language
/// server do): PyYAML's YAML 1.1 would turn `retry.on` into `True`.
#[test]
fn the_schema_validates_real_configs() {
    let dir = scratch("schema");
    let out = gateway(&["schema"], &dir);
    assert_eq!(out.status.code(), Some(0));
    std::fs::write(dir.join("schema.json"), &out.stdout).expect("write");
    let root = repo();
    let script = format!(
        "import json, re, sys, yaml, jsonschema\n\
         class Yaml12(yaml.SafeLoader): pass\n\
         Yaml12.yaml_implicit_resolvers = {{k: [r for r in v if r[0] != 'tag:yaml.org,2002:bool'] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}}\n\
         Yaml12.add_implicit_resolver('tag:yaml.org,2002:bool', re.compile(r'^(?:true|True|TRUE|false|False|FALSE)$'), list('tTfF'))\n\
         s = json.load(open('{dir}/schema.json'))\n\
         jsonschema.Draft202012Validator.check_schema(s)\n\
         v = jsonschema.Draft202012Validator(s)\n\
         for f in ['{root}/gateway.yaml', '{root}/compiler/tests/ok/route-language.yaml', '{root}/compiler/tests/ok/example.yaml']:\n\
         \u{20}   errs = [e.message for e in v.iter_errors(yaml.load(open(f), Loader=Yaml12))]\n\
         \u{20}   assert not errs, (f, errs)\n\
         bad = {{'routes': [{{'name': 'a', 'pathPrefx': '/', 'cluster': 'c'}}], 'clusters': []}}\n\
         assert list(v.iter_errors(bad)), 'a misspelt key must be refused'\n\
         print('schema ok')\n",
        dir = dir.display(),
        root = root.display()
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (installed by .ci/run with jsonschema and pyyaml)");
    assert!(
        out.status.success(),
        "{}{} (`pip install jsonschema pyyaml`: .ci/run does it)",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// docs/ci.md's recipe, its `run:` lines executed as written in a scratch
/// git repository with a base commit, the gateway on PATH.
#[test]
fn the_ci_recipe_runs_as_written() {
    let root = repo();
    let doc = std::fs::read_to_string(root.join("docs/ci.md")).expect("docs/ci.md");
    let block = doc
        .split("```yaml")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a yaml block in docs/ci.md");
    let steps: Vec<String> = block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- run: "))
        .map(str::to_owned)
        .collect();
    assert!(steps.len() >= 3, "{steps:?}");
    let dir = scratch("recipe");
    let sh = |cmd: &str| {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", cmd])
            .current_dir(&dir)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    Path::new(env!("CARGO_BIN_EXE_gateway"))
                        .parent()
                        .expect("bin dir")
                        .display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("GITHUB_BASE_REF", "main")
            .output()
            .expect("bash runs");
        (out.status.code(), text(&out.stdout) + &text(&out.stderr))
    };
    std::fs::copy(root.join("gateway.yaml"), dir.join("gateway.yaml")).expect("copy");
    std::fs::create_dir_all(dir.join("tests")).expect("mkdir");
    std::fs::copy(root.join("tests/routes.yaml"), dir.join("tests/routes.yaml")).expect("copy");
    let setup = "git init -q -b main . && git -c user.email=t@t -c user.name=t add -A && \
                 git -c user.email=t@t -c user.name=t commit -qm base && git update-ref refs/remotes/origin/main HEAD && \
                 sed -i 's|\"http://127.0.0.1:9002\", weight: 1|\"http://127.0.0.1:9002\", weight: 5|' gateway.yaml";
    assert_eq!(sh(setup).0, Some(0));
    for step in &steps {
        let (code, out) = sh(step);
        assert_eq!(code, Some(0), "step {step:?} failed:\n{out}");
    }
    let comment = std::fs::read_to_string(dir.join("routing-diff.md")).expect("the diff step writes routing-diff.md");
    assert!(
        comment.contains("| `api` | `http://127.0.0.1:9002` | 16.7% | 50.0% |"),
        "{comment}"
    );
    assert!(dir.join("route-tests.xml").exists());
}
