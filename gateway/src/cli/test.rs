//! `gateway test CASES...`: route assertions run offline (SPEC §13), through
//! the same lookup, policies, filters and redirects as `run`. One line per
//! case, then `N passed, M failed`; `--format junit|json|github` for CI.

use std::fmt::Write as _;
use std::path::PathBuf;

use compiler::cases::{Case, Cases, read_cases};
use plan::{Action, Router};

use crate::cli::offline::{Offline, Outcome, Request};
use crate::load::{Loaded, Source, load};

/// One case's verdict.
#[derive(Debug)]
pub struct Verdict {
    pub file: String,
    pub case: Case,
    /// Empty when the case passed.
    pub failures: Vec<String>,
    /// `file:line` of the route the request took.
    pub route_at: Option<String>,
}

fn show(v: Option<&str>) -> String {
    v.map_or_else(|| "null".to_owned(), |s| format!("{s:?}"))
}

/// A header's forwarded lines, joined with `,` (spaces around commas dropped).
fn joined(headers: &[(String, String)], name: &str) -> Option<String> {
    let lines: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!lines.is_empty()).then(|| normalize_list(&lines.join(",")))
}

fn normalize_list(v: &str) -> String {
    v.split(',').map(str::trim).collect::<Vec<_>>().join(",")
}

/// `(scheme, host, port, path and query)` of a `Location`, the port explicit.
fn location_parts(l: &str) -> Option<(String, String, u16, String)> {
    let uri: http::Uri = l.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default = if scheme == "https" { 443 } else { 80 };
    Some((
        scheme,
        uri.host()?.to_ascii_lowercase(),
        uri.port_u16().unwrap_or(default),
        uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
    ))
}

/// Compares what happened with what a case expects.
fn judge(router: &Router, case: &Case, got: &Outcome) -> Vec<String> {
    let plan = router.plan();
    let e = &case.expect;
    let mut out = Vec::new();
    let route = got.route.map(|r| plan.routes[r as usize].name.as_str());
    if let Some(want) = &e.route
        && want.as_deref() != route
    {
        out.push(format!(
            "route: expected {}, got {}",
            show(want.as_deref()),
            show(route)
        ));
    }
    if let Some(want) = &e.cluster {
        let cluster = got.cluster.map(|c| plan.clusters[c as usize].name.as_str());
        // A split: the expected cluster may be any of its clusters with a weight.
        let in_split = got.route.is_some_and(|r| match &plan.routes[r as usize].action {
            Action::Backends { backends, .. } => backends
                .iter()
                .any(|b| b.weight > 0 && plan.clusters[b.cluster as usize].name == *want),
            _ => false,
        });
        if cluster != Some(want.as_str()) && !in_split {
            out.push(format!("cluster: expected {want:?}, got {}", show(cluster)));
        }
    }
    if let Some(want) = e.status {
        match got.status {
            Some(s) if s == want => {}
            Some(s) => out.push(format!(
                "status: expected {want}, got {s}{}",
                got.error.map(|k| format!(" ({k})")).unwrap_or_default()
            )),
            None => out.push(format!("status: expected {want}, got the request forwarded upstream")),
        }
    }
    if let Some(want) = &e.location {
        let same = match (&got.location, location_parts(want)) {
            (Some(l), Some(w)) => location_parts(l) == Some(w),
            (Some(l), None) => l == want,
            _ => false,
        };
        if !same {
            out.push(format!(
                "location: expected {want:?}, got {}",
                show(got.location.as_deref())
            ));
        }
    }
    if let Some(want) = &e.upstream_path
        && got.upstream_path.as_deref() != Some(want.as_str())
    {
        out.push(format!(
            "upstreamPath: expected {want:?}, got {}",
            show(got.upstream_path.as_deref())
        ));
    }
    for (name, want) in &e.request_headers {
        let have = joined(&got.request_headers, name);
        let want = want.as_deref().map(normalize_list);
        if got.status.is_some() || have != want {
            let shown = match (&have, got.status) {
                (_, Some(s)) => format!("nothing forwarded (status {s})"),
                (Some(h), None) => format!("{h:?}"),
                (None, None) => "absent".to_owned(),
            };
            let want = want.map_or_else(|| "absent".to_owned(), |w| format!("{w:?}"));
            out.push(format!("requestHeaders.{name}: expected {want}, got {shown}"));
        }
    }
    out
}

/// The plan a cases file runs against: `--config`/`--plan`, else the file's
/// own `config:`/`plan:`, else `gateway.yaml`.
pub fn source_for(cases: &Cases, config: Option<&PathBuf>, plan: Option<&PathBuf>) -> Source {
    match (plan, config, &cases.plan, &cases.config) {
        (Some(p), ..) => Source::Plan(p.clone()),
        (None, Some(c), ..) => Source::Config(c.clone()),
        (None, None, Some(p), _) => Source::Plan(p.clone()),
        (None, None, None, Some(c)) => Source::Config(c.clone()),
        _ => Source::Config(PathBuf::from("gateway.yaml")),
    }
}

/// Runs the cases of one file against `loaded`; `Err` for a case that cannot
/// be stated (invalid input).
pub fn run_file(file: &str, cases: &Cases, loaded: &Loaded) -> Result<Vec<Verdict>, String> {
    let mut offline = Offline::new(&loaded.router)?;
    let mut verdicts = Vec::with_capacity(cases.cases.len());
    for case in &cases.cases {
        let request = Request {
            method: case.method.clone(),
            url: case.url.clone(),
            headers: case.headers.clone(),
        };
        let got = offline
            .run(&request)
            .map_err(|e| format!("{file}:{}:{}: case {:?}: {e}", case.loc.line, case.loc.col, case.name))?;
        let plan = loaded.router.plan();
        verdicts.push(Verdict {
            file: file.to_owned(),
            case: case.clone(),
            failures: judge(&loaded.router, case, &got),
            route_at: got
                .route
                .map(|r| format!("{}:{}", plan.source, plan.routes[r as usize].line)),
        });
    }
    Ok(verdicts)
}

/// Escapes text for an XML attribute or element. Tab, LF and CR become
/// character references, so an attribute keeps them; other control
/// characters, which XML 1.0 does not allow even escaped, are written as
/// Rust escapes (`\u{1}`), so a case name or message never makes the
/// report unreadable.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => out.push_str(&format!("&#{};", u32::from(c))),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML, one test suite per cases file.
pub fn junit(verdicts: &[Verdict]) -> String {
    let failures = verdicts.iter().filter(|v| !v.failures.is_empty()).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"gateway test\" tests=\"{}\" failures=\"{failures}\">\n",
        verdicts.len()
    );
    let mut files: Vec<&str> = verdicts.iter().map(|v| v.file.as_str()).collect();
    files.dedup();
    for file in files {
        let mine: Vec<&Verdict> = verdicts.iter().filter(|v| v.file == file).collect();
        let failed = mine.iter().filter(|v| !v.failures.is_empty()).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\">",
            xml(file),
            mine.len()
        );
        for v in mine {
            let _ = write!(
                out,
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                xml(&v.case.name),
                xml(file),
                xml(file),
                v.case.loc.line
            );
            if v.failures.is_empty() {
                out.push_str("/>\n");
            } else {
                let text = v.failures.join("\n");
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml(&v.failures[0]),
                    xml(&text)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// One line per case (`ok` / `FAILED`), the failures under a failed one.
pub fn lines(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        if v.failures.is_empty() {
            let _ = writeln!(out, "ok      {}", v.case.name);
        } else {
            let at = v
                .route_at
                .as_deref()
                .map(|a| format!(" (route at {a})"))
                .unwrap_or_default();
            let _ = writeln!(out, "FAILED  {} ({}:{}){at}", v.case.name, v.file, v.case.loc.line);
            for f in &v.failures {
                let _ = writeln!(out, "          {f}");
            }
        }
    }
    out
}

/// One JSON object per case.
pub fn json(verdicts: &[Verdict]) -> String {
    verdicts
        .iter()
        .map(|v| {
            serde_json::json!({
                "name": v.case.name,
                "file": v.file,
                "line": v.case.loc.line,
                "ok": v.failures.is_empty(),
                "failures": v.failures,
                "route": v.route_at,
            })
            .to_string()
                + "\n"
        })
        .collect()
}

/// GitHub workflow commands for the failed cases.
pub fn github(verdicts: &[Verdict]) -> String {
    verdicts
        .iter()
        .filter(|v| !v.failures.is_empty())
        .map(|v| {
            let message = format!("{}: {}", v.case.name, v.failures.join("; "))
                .replace('%', "%25")
                .replace('\n', "%0A");
            format!(
                "::error file={},line={},col={}::{message}\n",
                v.file, v.case.loc.line, v.case.loc.col
            )
        })
        .collect()
}

/// Reads every cases file and loads its plan (each file's own, else the
/// shared one), once per distinct source.
pub fn load_all(
    files: &[PathBuf],
    config: Option<&PathBuf>,
    plan: Option<&PathBuf>,
) -> Result<Vec<(String, Cases, Source)>, String> {
    let mut out = Vec::new();
    for f in files {
        let cases = read_cases(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        let source = source_for(&cases, config, plan);
        out.push((f.display().to_string(), cases, source));
    }
    Ok(out)
}

/// Loads `source` for the test run.
pub fn load_source(source: &Source) -> Result<Loaded, crate::load::LoadError> {
    load(source)
}

#[cfg(test)]
mod tests {
    use super::xml;

    /// A case name with a control character once made the JUnit report
    /// malformed XML (XML 1.0 allows no such character, escaped or not).
    #[test]
    fn xml_text_is_well_formed_whatever_the_case_name_holds() {
        assert_eq!(
            xml("a\"&<>'\u{1}\u{1b}]]>\t\n\r"),
            "a&quot;&amp;&lt;&gt;'\\u{1}\\u{1b}]]&gt;&#9;&#10;&#13;"
        );
        assert_eq!(xml("café \u{FFFF}"), "café \\u{ffff}");
    }
}
