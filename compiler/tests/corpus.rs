//! Data-driven compiler tests: every file under `err/` must be refused with
//! located diagnostics, every file under `ok/` must compile; both are insta
//! snapshots, so each message and location is reviewed.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::fmt::Write as _;
use std::path::Path;

use compiler::{Compiled, Severity, compile_str};
use plan::Action;

fn compile(path: &Path) -> Compiled {
    let text = std::fs::read_to_string(path).expect("readable corpus file");
    let dir = path.parent().expect("in a folder");
    let name = format!(
        "{}/{}",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or(""),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("")
    );
    compile_str(&name, &text, dir)
}

/// The diagnostics, one per line, with the checkout's absolute path (which a
/// message may name, e.g. a missing log directory) replaced by `$CRATE` so
/// the snapshots hold wherever the repository is cloned.
fn render(c: &Compiled) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    c.diagnostics
        .iter()
        .map(|d| format!("{d}\n").replace(root, "$CRATE"))
        .collect()
}

#[test]
fn invalid_configs_are_refused_with_located_diagnostics() {
    insta::glob!("err/*.yaml", |path| {
        let c = compile(path);
        assert!(c.plan.is_none(), "{} compiled", path.display());
        assert!(c.errors().count() > 0);
        for d in &c.diagnostics {
            assert!(d.loc.line >= 1 && d.loc.col >= 1, "unlocated: {d}");
            assert!(!d.path.is_empty(), "no field path: {d}");
        }
        insta::assert_snapshot!(render(&c));
    });
}

#[test]
fn valid_configs_compile_to_the_expected_plan() {
    insta::glob!("ok/*.yaml", |path| {
        let c = compile(path);
        let Some(plan) = &c.plan else {
            panic!("{} refused:\n{}", path.display(), render(&c));
        };
        let mut dump = render(&c);
        let _ = writeln!(
            dump,
            "listen {} drainMs {} limits {:?}",
            plan.listen, plan.drain_ms, plan.limits
        );
        let _ = writeln!(dump, "defaults {:?}", plan.defaults);
        let _ = writeln!(dump, "accessLog {:?}", plan.access_log);
        for r in &plan.routes {
            let action = match &r.action {
                Action::Cluster(c) => format!("cluster {}", plan.clusters[*c as usize].name),
                Action::Backends { backends, wrr } => {
                    let split: Vec<String> = backends
                        .iter()
                        .map(|b| format!("{}×{}", plan.clusters[b.cluster as usize].name, b.weight))
                        .collect();
                    format!("backends [{}] wrr {wrr:?}", split.join(", "))
                }
                Action::Redirect(rd) => format!("redirect {rd:?}"),
            };
            let _ = writeln!(
                dump,
                "route {} hosts {:?} {} {} {action} line {} timeouts {:?}",
                r.name,
                r.hosts,
                r.path.key(),
                r.path.as_str(),
                r.line,
                r.timeouts
            );
            if r.has_conditions() {
                let _ = writeln!(
                    dump,
                    "  methods {:?} headers {:?} query {:?}",
                    r.methods, r.headers, r.query
                );
            }
            for (what, f) in [
                ("requestHeaders", &r.request_headers),
                ("responseHeaders", &r.response_headers),
            ] {
                if !f.is_empty() {
                    let _ = writeln!(dump, "  {what} {f:?}");
                }
            }
            if r.rewrite != Default::default() {
                let _ = writeln!(dump, "  rewrite {:?}", r.rewrite);
            }
        }
        for cl in &plan.clusters {
            let ups: Vec<String> = cl.upstreams.iter().map(|u| format!("{}×{}", u.url, u.weight)).collect();
            let _ = writeln!(dump, "cluster {} [{}] wrr {:?}", cl.name, ups.join(", "), cl.wrr);
        }
        insta::assert_snapshot!(dump);
    });
}

#[test]
fn every_error_in_a_file_is_reported_not_just_the_first() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/err/two-errors.yaml");
    let c = compile(&path);
    let errors: Vec<String> = c.errors().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].contains("routes[0].cluster: unknown cluster \"web\""),
        "{errors:#?}"
    );
    assert!(
        errors[1].contains("clusters[0].upstreams[0].weight: must be an integer greater than 0, got 0"),
        "{errors:#?}"
    );
    assert!(c.warnings().all(|w| w.severity == Severity::Warning));
}

#[test]
fn spec_example_shapes() {
    let yaml = "routes:\n  - name: a\n    pathPrefix: /\n    cluster: apii\nclusters:\n  - name: api\n    upstreams:\n      - { url: \"http://127.0.0.1:9001\", weight: 5 }\n      - { url: \"http://127.0.0.1:9002\", weight: 0 }\n";
    let c = compile_str("gateway.yaml", yaml, Path::new("."));
    let lines: Vec<String> = c.errors().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "gateway.yaml:4:14: error: routes[0].cluster: unknown cluster \"apii\" (did you mean \"api\"?)",
            "gateway.yaml:9:49: error: clusters[0].upstreams[1].weight: must be an integer greater than 0, got 0",
        ]
    );
}

#[test]
fn the_same_config_compiles_to_the_same_plan() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ok/example.yaml");
    let a = compile(&path);
    let b = compile(&path);
    let (Some(pa), Some(pb)) = (&a.plan, &b.plan) else {
        panic!("example must compile")
    };
    assert_eq!(plan::encode(pa, &a.source_digest), plan::encode(pb, &b.source_digest));
}

#[test]
fn human_json_and_github_forms() {
    use compiler::report::{Format, render};
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/err/two-errors.yaml");
    let c = compile(&path);
    let human: String = c
        .diagnostics
        .iter()
        .map(|d| render(Format::Human, d, Some(&c.text)))
        .collect();
    insta::assert_snapshot!("two-errors-human", human);
    let json: String = c.diagnostics.iter().map(|d| render(Format::Json, d, None)).collect();
    insta::assert_snapshot!("two-errors-json", json);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        for key in [
            "file",
            "line",
            "column",
            "endLine",
            "endColumn",
            "path",
            "severity",
            "message",
            "help",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {line}");
        }
    }
    for d in &c.diagnostics {
        let gh = render(Format::Github, d, None);
        let rest = gh
            .strip_prefix(&format!("::{} ", d.severity.as_str()))
            .expect("an error or warning command");
        let (props, message) = rest.trim_end().split_once("::").expect("props::message");
        assert!(
            props.starts_with(&format!("file={},line={},col={}", d.file, d.loc.line, d.loc.col)),
            "{gh}"
        );
        assert!(message.ends_with(&d.message), "{gh}");
    }
}
