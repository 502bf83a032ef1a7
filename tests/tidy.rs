//! Invariants checked mechanically, in the manner of rust-analyzer's
//! `xtask/src/tidy.rs`: each is a rule ARCHITECTURE.md states, read off the
//! source tree itself.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.rs` file under `dir` (relative to the workspace root).
fn rust_files(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !matches!(name, "target" | "corpus" | "artifacts" | "snapshots") {
                    walk(&path, out);
                }
            } else if name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join(dir), &mut out);
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn rel(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// The workspace's own Rust code (production, tests, benches, fuzz targets, policies).
const CODE: &[&str] = &[
    "plan",
    "http1",
    "policy-host",
    "compiler",
    "gateway",
    "tests",
    "golden",
    "bench",
    "fuzz/fuzz_targets",
    "policies",
];

/// The crates that run in production.
const PRODUCTION: &[&str] = &[
    "plan/src",
    "http1/src",
    "policy-host/src",
    "compiler/src",
    "gateway/src",
];

#[test]
fn every_file_says_what_it_is_for() {
    let missing: Vec<String> = CODE
        .iter()
        .flat_map(|d| rust_files(d))
        .filter(|p| !read(p).starts_with("//!"))
        .map(|p| rel(&p))
        .collect();
    assert!(missing.is_empty(), "files without a leading `//!` line: {missing:#?}");
}

#[test]
fn production_crates_forbid_unsafe_code() {
    // The exceptions (ARCHITECTURE.md, "unsafe"): the counting allocators of
    // the allocation tests and the guest SDK's imports are not production
    // crates; every production crate root forbids it.
    for root_file in [
        "plan/src/lib.rs",
        "http1/src/lib.rs",
        "policy-host/src/lib.rs",
        "compiler/src/lib.rs",
        "gateway/src/lib.rs",
        "gateway/src/main.rs",
    ] {
        assert!(
            read(&root().join(root_file)).contains("#![forbid(unsafe_code)]"),
            "{root_file} does not forbid unsafe code"
        );
    }
}

#[test]
fn fuzz_targets_use_crates_not_paths() {
    for file in rust_files("fuzz/fuzz_targets") {
        assert!(
            !read(&file).contains("#[path"),
            "{} includes source by path",
            rel(&file)
        );
    }
}

#[test]
fn no_production_file_grows_past_600_lines() {
    let long: Vec<(String, usize)> = PRODUCTION
        .iter()
        .flat_map(|d| rust_files(d))
        .map(|p| (rel(&p), read(&p).lines().count()))
        .filter(|(_, n)| *n > 600)
        .collect();
    assert!(long.is_empty(), "split these by job: {long:?}");
}

/// The `x-gateway-error` kinds as `error/mod.rs` maps them.
fn error_kinds() -> Vec<String> {
    let text = read(&root().join("gateway/src/error/mod.rs"));
    let start = text.find("pub fn as_str(self)").expect("ErrorKind::as_str");
    let end = start + text[start..].find("\n    }\n").expect("end of as_str");
    text[start..end]
        .lines()
        .filter_map(|l| l.split("=> \"").nth(1))
        .map(|s| s.trim_end_matches("\",").to_owned())
        .collect()
}

#[test]
fn statuses_and_error_kinds_are_mapped_only_in_error_rs() {
    let kinds = error_kinds();
    assert!(kinds.len() >= 15, "found only {kinds:?}");
    for file in rust_files("gateway/src") {
        let name = rel(&file);
        if name.ends_with("gateway/src/error/mod.rs") {
            continue;
        }
        let text = read(&file);
        // Tests may name kinds in assertions.
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        for kind in &kinds {
            assert!(
                !code.contains(&format!("\"{kind}\"")),
                "{name} spells the kind \"{kind}\": map it in error/mod.rs"
            );
        }
        // The admin listener answers for itself; nothing else picks a status.
        if !name.ends_with("gateway/src/admin.rs") {
            assert!(
                no_status_constants(code),
                "{name} picks a status: map it in error/mod.rs"
            );
        }
        assert!(
            !code.contains("b\"x-gateway-error"),
            "{name} writes x-gateway-error itself"
        );
    }
}

/// No `StatusCode::SOME_CONSTANT` (an upper-case associated constant).
fn no_status_constants(code: &str) -> bool {
    code.match_indices("StatusCode::")
        .all(|(i, m)| !code[i + m.len()..].starts_with(|c: char| c.is_ascii_uppercase()))
}

#[test]
fn the_abi_document_lists_exactly_the_abi_table() {
    let doc = read(&root().join("policies/ABI.md"));
    // Rows of the host-function table: "| `name` | `(params) -> result` | ...".
    let documented: BTreeSet<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter(|l| l.contains("` | `("))
        .filter_map(|l| l.split('`').next())
        .map(str::to_owned)
        .collect();
    let table: BTreeSet<String> = plan::abi::HOST_FUNCTIONS.iter().map(|f| f.0.to_owned()).collect();
    assert_eq!(documented, table, "policies/ABI.md and plan::abi disagree");
}

/// The gateway's module graph from `crate::` paths: module file → files it uses.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = root().join("gateway/src");
    let files: BTreeSet<String> = rust_files("gateway/src")
        .iter()
        .map(|p| p.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    // `a::b::c` → the longest prefix that names a module file.
    let resolve = |segments: &[&str]| -> Option<String> {
        (1..=segments.len()).rev().find_map(|n| {
            let base = segments[..n].join("/");
            [format!("{base}.rs"), format!("{base}/mod.rs")]
                .into_iter()
                .find(|f| files.contains(f))
        })
    };
    let mut graph = BTreeMap::new();
    for file in &files {
        let text = read(&src.join(file));
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let dir: Vec<&str> = {
            let mut parts: Vec<&str> = file.trim_end_matches(".rs").split('/').collect();
            if matches!(parts.last(), Some(&"mod") | Some(&"lib") | Some(&"main")) {
                parts.pop();
            }
            parts
        };
        let mut uses = BTreeSet::new();
        for (i, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
            let is_super = code[i..].starts_with("super::");
            let rest = &code[i + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            if is_super {
                let mut base = dir.clone();
                base.pop();
                base.extend(segments);
                segments = base;
            }
            if let Some(target) = resolve(&segments)
                && target != *file
            {
                uses.insert(target);
            }
        }
        // A parent that names a child module (`route::route(..)`, `pub use
        // pool::Pool`) uses it.
        if file.ends_with("mod.rs") || file == "lib.rs" {
            let children = code.lines().filter_map(|l| {
                let l = l.trim_start_matches("pub ");
                l.strip_prefix("mod ")?.strip_suffix(';')
            });
            for child in children {
                if code.contains(&format!("{child}::")) || code.contains(&format!("use {child}::")) {
                    let mut segments = dir.clone();
                    segments.push(child);
                    if let Some(target) = resolve(&segments).filter(|t| t != file) {
                        uses.insert(target);
                    }
                }
            }
        }
        graph.insert(file.clone(), uses);
    }
    graph
}

#[test]
fn the_gateway_module_graph_has_no_cycles() {
    let graph = module_graph();
    // Depth-first search for a back edge; report the cycle found.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(node.to_owned(), 1);
        stack.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            match state.get(next.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = stack.iter().position(|n| n == next).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(next.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(next, graph, state, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for node in graph.keys() {
        if state.get(node.as_str()).copied().unwrap_or(0) == 0
            && let Some(cycle) = visit(node, &graph, &mut state, &mut Vec::new())
        {
            panic!("module cycle: {}", cycle.join(" -> "));
        }
    }
    // The graph is not vacuous: the driver reaches the failure path.
    assert!(
        graph["proxy/mod.rs"].contains("error/mod.rs"),
        "{:?}",
        graph["proxy/mod.rs"]
    );
}
