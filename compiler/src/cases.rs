//! Route test cases (`gateway test`, SPEC §13), read with the same located
//! diagnostics as configs:
//!
//! ```yaml
//! config: ../gateway.yaml        # optional; relative to this file
//! cases:
//!   - name: users by id
//!     request: { method: GET, url: "http://api.example.com/v1/users/42", headers: { x-env: canary } }
//!     expect: { route: users, cluster: users, upstreamPath: /v1/users/42 }
//! ```

use std::path::{Path, PathBuf};

use marked_yaml::Node;

use crate::diag::{Diagnostic, Diagnostics, Loc};
use crate::yaml::{Reader, is_null, join, loc};

const TOP: &[&str] = &["config", "plan", "cases"];
const CASE: &[&str] = &["name", "request", "expect"];
const REQUEST: &[&str] = &["method", "url", "headers"];
const EXPECT: &[&str] = &[
    "route",
    "cluster",
    "status",
    "location",
    "upstreamPath",
    "requestHeaders",
];

/// What a case expects; every key optional (at least one present).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// `Some(None)`: no route (`route: null`).
    pub route: Option<Option<String>>,
    pub cluster: Option<String>,
    pub status: Option<u16>,
    pub location: Option<String>,
    pub upstream_path: Option<String>,
    /// Each header as forwarded: its value (several joined with `, `), or
    /// `None`: the header must be absent (`name: null`).
    pub request_headers: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub loc: Loc,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub expect: Expect,
}

/// A cases file, read.
#[derive(Debug, Default)]
pub struct Cases {
    /// `config:` or `plan:` (resolved from the file's directory), if given.
    pub config: Option<PathBuf>,
    pub plan: Option<PathBuf>,
    pub cases: Vec<Case>,
    pub diagnostics: Vec<Diagnostic>,
    pub text: String,
}

/// A header map of a case: names to scalar values. In `expect`, a plain
/// `null` (or `~`) value says the header must be absent (`None`); in a
/// request it is an error, as is any value that is not a scalar.
fn header_map(
    reader: &mut Reader<'_>,
    node: &Node,
    path: &str,
    absent_allowed: bool,
) -> Option<Vec<(String, Option<String>)>> {
    let Some(map) = node.as_mapping() else {
        reader
            .diags
            .error(loc(node), path, "must be a mapping of header names to values");
        return None;
    };
    let mut headers = Vec::with_capacity(map.len());
    let mut ok = true;
    for (name, value) in map.iter() {
        let p = join(path, name.as_str());
        if !absent_allowed && name.as_str().eq_ignore_ascii_case("host") {
            // The offline request takes its `Host` from `url`: a second one
            // would be a `400`, reported as a confusing route mismatch.
            reader.diags.error_help(
                loc(value),
                &p,
                "the request's host is the one in `url`",
                "write the host in the url (http://HOST/path)",
            );
            ok = false;
            continue;
        }
        match value.as_scalar() {
            Some(v) if is_null(v) => {
                if absent_allowed {
                    headers.push((name.as_str().to_owned(), None));
                } else {
                    reader.diags.error_help(
                        loc(value),
                        &p,
                        "must be a header value",
                        "quote an empty value (\"\"), or leave the header out",
                    );
                    ok = false;
                }
            }
            Some(v) => headers.push((name.as_str().to_owned(), Some(v.as_str().to_owned()))),
            None => {
                let help = if absent_allowed {
                    "one value as a string (several values: one string, separated by commas); null: the header must be absent"
                } else {
                    "one value as a string (several values: one string, separated by commas)"
                };
                reader
                    .diags
                    .error_help(loc(value), &p, "must be a header value (a string)", help);
                ok = false;
            }
        }
    }
    ok.then_some(headers)
}

impl Reader<'_> {
    fn case(&mut self, node: &Node, path: &str) -> Option<Case> {
        let map = self.mapping(node, path, CASE)?;
        let name = match map.get_node("name") {
            Some(n) => self.string(n, &join(path, "name"))?.value,
            None => {
                self.diags
                    .error(loc(node), join(path, "name"), "missing required field");
                return None;
            }
        };
        let rp = join(path, "request");
        let Some(request) = map.get_node("request") else {
            self.diags.error(loc(node), &rp, "missing required field");
            return None;
        };
        let req = self.mapping(request, &rp, REQUEST)?;
        let method = match req.get_node("method") {
            Some(m) => self.string(m, &join(&rp, "method"))?.value,
            None => "GET".to_owned(),
        };
        let url = match req.get_node("url") {
            Some(u) => self.string(u, &join(&rp, "url"))?.value,
            None => {
                self.diags
                    .error(loc(request), join(&rp, "url"), "missing required field");
                return None;
            }
        };
        // Header names are not fields of ours: any mapping is allowed here.
        let headers = match req.get_node("headers") {
            Some(h) => header_map(self, h, &join(&rp, "headers"), false)?
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?)))
                .collect(),
            None => Vec::new(),
        };
        let ep = join(path, "expect");
        let Some(expect_node) = map.get_node("expect") else {
            self.diags
                .error(loc(node), &ep, "missing required field: a case must expect something");
            return None;
        };
        let e = self.mapping(expect_node, &ep, EXPECT)?;
        if e.is_empty() {
            self.diags.error_help(
                loc(expect_node),
                &ep,
                "a case with no expectation tests nothing",
                format!("expect one or more of: {}", EXPECT.join(", ")),
            );
            return None;
        }
        let mut expect = Expect::default();
        for (k, v) in e.iter() {
            let p = join(&ep, k.as_str());
            match k.as_str() {
                "route" => {
                    expect.route = Some(match v.as_scalar() {
                        Some(s) if is_null(s) => None,
                        _ => Some(self.string(v, &p)?.value),
                    });
                }
                "cluster" => expect.cluster = Some(self.string(v, &p)?.value),
                "status" => expect.status = Some(self.integer(v, &p, 100, 599, "")?.value as u16),
                "location" => expect.location = Some(self.string(v, &p)?.value),
                "upstreamPath" => expect.upstream_path = Some(self.string(v, &p)?.value),
                "requestHeaders" => expect.request_headers = header_map(self, v, &p, true)?,
                _ => {}
            }
        }
        Some(Case {
            name,
            loc: loc(node),
            method,
            url,
            headers,
            expect,
        })
    }
}

/// Reads a cases file; `Err` only when it cannot be read. Diagnostics (with
/// locations) say what is wrong with it.
pub fn read_cases(path: &Path) -> std::io::Result<Cases> {
    let raw = std::fs::read_to_string(path)?;
    let file = path.display().to_string();
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut diags = Diagnostics::new(&file);
    let text = crate::syntax::one_document(
        &raw,
        &mut diags,
        "a cases file",
        "put its cases in the first document's `cases`, or give it a file of its own",
    );
    let mut out = Cases::default();
    match marked_yaml::parse_yaml(0, text) {
        Ok(root) => {
            let mut r = Reader {
                diags: &mut diags,
                text,
            };
            if let Some(map) = r.mapping(&root, "", TOP) {
                for key in ["config", "plan"] {
                    if let Some(v) = map.get_node(key)
                        && let Some(s) = r.string(v, key)
                    {
                        let p = Some(base.join(&s.value));
                        if key == "config" { out.config = p } else { out.plan = p }
                    }
                }
                match map.get_node("cases").map(|c| (c, r.sequence(c, "cases"))) {
                    Some((_, Some(seq))) => {
                        for (i, item) in seq.iter().enumerate() {
                            if let Some(c) = r.case(item, &format!("cases[{i}]")) {
                                out.cases.push(c);
                            }
                        }
                    }
                    Some((node, None)) => r.diags.error(loc(node), "cases", "must list at least one case"),
                    None => r
                        .diags
                        .error(Loc { line: 1, col: 1 }, "cases", "missing required field"),
                }
            }
        }
        Err(e) => crate::syntax_error(&mut diags, text, &e),
    }
    out.diagnostics = diags.into_sorted(text);
    out.text = text.to_owned();
    Ok(out)
}
