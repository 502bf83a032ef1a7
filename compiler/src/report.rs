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

/// The longest source line a snippet shows whole.
const SHOWN_CHARS: usize = 120;

/// When the line at `at` is longer than [`SHOWN_CHARS`] (minified JSON, a
/// plan artifact given as a config), a text to render instead: the lines
/// before it empty, so the line keeps its number, and the line cut to a
/// window around `at` marked with `…`; with `at` and `end` moved into it.
fn window(text: &str, at: Loc, end: Loc) -> Option<(String, Loc, Loc)> {
    let index = at.line.checked_sub(1)? as usize;
    let chars: Vec<char> = text.lines().nth(index)?.chars().collect();
    if chars.len() <= SHOWN_CHARS {
        return None;
    }
    let col = at.col.saturating_sub(1) as usize;
    let from = col.saturating_sub(SHOWN_CHARS / 4).min(chars.len());
    let to = (from + SHOWN_CHARS).min(chars.len());
    let mut shown = "\n".repeat(index);
    let lead = u32::from(from > 0);
    if from > 0 {
        shown.push('…');
    }
    shown.extend(&chars[from..to]);
    if to < chars.len() {
        shown.push('…');
    }
    // Columns are 1-based; everything before `from` is gone.
    let last = (to - from) as u32 + lead + 1;
    let moved = |c: u32| (c.saturating_sub(from as u32) + lead).clamp(1, last);
    let end_col = if end.line == at.line { moved(end.col) } else { last };
    Some((
        shown,
        Loc {
            line: at.line,
            col: moved(at.col),
        },
        Loc {
            line: at.line,
            col: end_col,
        },
    ))
}

fn human(d: &Diagnostic, text: Option<&str>) -> String {
    let mut out = format!("{d}\n");
    let Some(text) = text else {
        if let Some(help) = &d.help {
            let _ = writeln!(out, "  = help: {help}");
        }
        return out;
    };
    let shown = window(text, d.loc, d.end);
    let (text, at, to) = match &shown {
        Some((text, at, to)) => (text.as_str(), *at, *to),
        None => (text, d.loc, d.end),
    };
    let mut files = SimpleFiles::new();
    let file = files.add(d.file.as_str(), text);
    let start = offset(text, at);
    let end = offset(text, to).max(start);
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

    #[test]
    fn a_long_line_is_shown_as_a_window_around_the_span() {
        let long = format!(
            "{{\"a\":\"{}\",\"formatVersion\":3,\"b\":\"{}\"}}",
            "x".repeat(300),
            "y".repeat(300)
        );
        let col = long.find("\"formatVersion\"").map_or(0, |i| i as u32 + 1);
        let d = Diagnostic {
            loc: Loc { line: 2, col },
            end: Loc { line: 2, col: col + 15 },
            ..sample()
        };
        let human = render(Format::Human, &d, Some(&format!("# c\n{long}\n")));
        let snippet = human.lines().find(|l| l.starts_with("2 │")).unwrap_or_default();
        assert!(snippet.contains("…xxx"), "{human}");
        assert!(snippet.contains("\"formatVersion\":3"), "{human}");
        assert!(snippet.ends_with("yyy…"), "{human}");
        assert!(snippet.chars().count() < SHOWN_CHARS + 10, "{human}");
        // The caret sits under `"formatVersion"`, 15 characters.
        let column = |line: &str, byte: usize| line[..byte].chars().count();
        let at = snippet.find("\"formatVersion\"").map(|b| column(snippet, b));
        let carets = human.lines().find(|l| l.contains('^')).unwrap_or_default();
        assert_eq!(carets.find('^').map(|b| column(carets, b)), at, "{human}");
        assert_eq!(carets.matches('^').count(), 15, "{human}");
    }
}
