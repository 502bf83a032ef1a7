//! Diagnostics for people and for machines (SPEC §13): `short` (the §3 line),
//! `human` (the line, then the source with a caret span and help, rendered by
//! `codespan-reporting` in the manner of rustc), `json` (one object per
//! diagnostic) and `github` (Actions workflow commands).

use std::fmt::Write as _;

use codespan_reporting::diagnostic::{Diagnostic as Report, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Config};

use crate::diag::{Diagnostic, Loc, Severity};

/// How diagnostics are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Human,
    Short,
    Json,
    Github,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "human" => Some(Format::Human),
            "short" => Some(Format::Short),
            "json" => Some(Format::Json),
            "github" => Some(Format::Github),
            _ => None,
        }
    }
}

/// Byte offset of `loc` in `text` (clamped to the text).
fn offset(text: &str, loc: Loc) -> usize {
    let mut line_start = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == loc.line as usize {
            let col = loc.col.saturating_sub(1) as usize;
            let in_line: usize = line.chars().take(col).map(char::len_utf8).sum();
            return (line_start + in_line).min(text.len());
        }
        line_start += line.len();
    }
    text.len()
}

fn human(d: &Diagnostic, text: Option<&str>) -> String {
    let mut out = format!("{d}\n");
    let Some(text) = text else {
        if let Some(help) = &d.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        return out;
    };
    let mut files = SimpleFiles::new();
    let file = files.add(d.file.as_str(), text);
    let start = offset(text, d.loc);
    let end = offset(text, d.end).max(start);
    let report = match d.severity {
        Severity::Error => Report::error(),
        Severity::Warning => Report::warning(),
    }
    .with_message(format!("{}: {}", d.path, d.message))
    .with_labels(vec![Label::primary(file, start..end)])
    .with_notes(d.help.iter().map(|h| format!("help: {h}")).collect());
    // The short line first, then codespan's snippet without its own header.
    if let Ok(rendered) = term::emit_into_string(&Config::default(), &files, &report) {
        for line in rendered.lines().skip(1) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Escapes a GitHub workflow command's message (`%`, CR, LF).
fn gh_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a GitHub workflow command's property (also `:` and `,`).
fn gh_property(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn json(d: &Diagnostic) -> String {
    serde_json::json!({
        "file": d.file,
        "line": d.loc.line,
        "column": d.loc.col,
        "endLine": d.end.line,
        "endColumn": d.end.col,
        "path": d.path,
        "severity": d.severity.as_str(),
        "message": d.message,
        "help": d.help,
    })
    .to_string()
}

fn github(d: &Diagnostic) -> String {
    let mut message = format!("{}: {}", d.path, d.message);
    if let Some(help) = &d.help {
        message.push_str(&format!("\nhelp: {help}"));
    }
    format!(
        "::{} file={},line={},col={},endLine={},endColumn={},title={}::{}",
        d.severity.as_str(),
        gh_property(&d.file),
        d.loc.line,
        d.loc.col,
        d.end.line,
        d.end.col,
        gh_property(&d.path),
        gh_data(&message)
    )
}

/// Renders one diagnostic; `text` is its file's source, when known (the
/// `human` form shows it).
pub fn render(format: Format, d: &Diagnostic, text: Option<&str>) -> String {
    match format {
        Format::Human => human(d, text),
        Format::Short => format!("{d}\n"),
        Format::Json => format!("{}\n", json(d)),
        Format::Github => format!("{}\n", github(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Diagnostic {
        Diagnostic {
            file: "gateway.yaml".into(),
            loc: Loc { line: 2, col: 14 },
            end: Loc { line: 2, col: 18 },
            path: "routes[0].cluster".into(),
            severity: Severity::Error,
            message: "unknown cluster \"apii\" (did you mean \"api\"?)".into(),
            help: Some("clusters are declared under `clusters:`, by name".into()),
        }
    }

    #[test]
    fn every_format() {
        let text = "routes:\n  - { cluster: apii }\n";
        let d = sample();
        assert_eq!(
            render(Format::Short, &d, None),
            "gateway.yaml:2:14: error: routes[0].cluster: unknown cluster \"apii\" (did you mean \"api\"?)\n"
        );
        let human = render(Format::Human, &d, Some(text));
        assert!(human.contains("2 │   - { cluster: apii }"), "{human}");
        assert!(human.contains("^^^^"), "{human}");
        assert!(human.contains("= help: clusters are declared"), "{human}");
        let j: serde_json::Value = serde_json::from_str(render(Format::Json, &d, None).trim()).unwrap_or_default();
        assert_eq!(j["endColumn"], 18);
        assert_eq!(j["severity"], "error");
        assert_eq!(
            render(Format::Github, &d, None),
            "::error file=gateway.yaml,line=2,col=14,endLine=2,endColumn=18,title=routes[0].cluster::routes[0].cluster: unknown cluster \"apii\" (did you mean \"api\"?)%0Ahelp: clusters are declared under `clusters:`, by name\n"
        );
    }
}
