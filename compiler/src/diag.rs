//! Located diagnostics: `FILE:LINE:COL: error|warning: field.path: message`
//! (SPEC §3), each with the span of the offending token and optional help.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A line and column, both 1-based, as in editors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

/// One error or warning about the config, with everything needed to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    pub loc: Loc,
    /// Where the offending token ends (exclusive), on `loc`'s line or later.
    pub end: Loc,
    pub path: String,
    pub severity: Severity,
    pub message: String,
    /// What to do about it, when there is something to say.
    pub help: Option<String>,
}

impl fmt::Display for Diagnostic {
    /// The one-line (`short`) form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}: {}",
            self.file,
            self.loc.line,
            self.loc.col,
            self.severity.as_str(),
            self.path,
            self.message
        )
    }
}

/// Collects diagnostics for one file; the compiler never stops at the first one.
#[derive(Debug)]
pub struct Diagnostics {
    file: String,
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            items: Vec::new(),
        }
    }

    pub fn error(&mut self, loc: Loc, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, loc, path.into(), message.into(), None);
    }

    pub fn error_help(
        &mut self,
        loc: Loc,
        path: impl Into<String>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.push(Severity::Error, loc, path.into(), message.into(), Some(help.into()));
    }

    pub fn warning(&mut self, loc: Loc, path: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, loc, path.into(), message.into(), None);
    }

    fn push(&mut self, severity: Severity, loc: Loc, path: String, message: String, help: Option<String>) {
        self.items.push(Diagnostic {
            file: self.file.clone(),
            loc,
            end: loc,
            path,
            severity,
            message,
            help,
        });
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// All diagnostics in file order, each with the end of its token in `text`.
    pub fn into_sorted(mut self, text: &str) -> Vec<Diagnostic> {
        let lines: Vec<&str> = text.lines().collect();
        for d in &mut self.items {
            d.end = token_end(&lines, d.loc);
        }
        self.items.sort_by_key(|d| (d.loc, d.severity));
        self.items
    }
}

/// Where the YAML token starting at `at` ends: a quoted scalar at its closing
/// quote, a flow collection at its closing bracket (on the same line), a key
/// at its `:`, a plain scalar before `,`, `]`, `}` or a comment. At least one
/// character; the end of the line at most.
fn token_end(lines: &[&str], at: Loc) -> Loc {
    let Some(line) = lines.get(at.line.saturating_sub(1) as usize) else {
        return at;
    };
    let chars: Vec<char> = line.chars().collect();
    let start = at.col.saturating_sub(1) as usize;
    if start >= chars.len() {
        return Loc {
            line: at.line,
            col: at.col + 1,
        };
    }
    let end = match chars[start] {
        c if c.is_whitespace() => start + 1,
        q @ ('"' | '\'') => {
            let mut i = start + 1;
            while i < chars.len() && chars[i] != q {
                i += if q == '"' && chars[i] == '\\' { 2 } else { 1 };
            }
            (i + 1).min(chars.len())
        }
        open @ ('[' | '{') => {
            let close = if open == '[' { ']' } else { '}' };
            let mut depth = 0;
            let mut i = start;
            let mut end = chars.len();
            while i < chars.len() {
                if chars[i] == open {
                    depth += 1;
                } else if chars[i] == close {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                i += 1;
            }
            end
        }
        _ => {
            let mut i = start;
            while i < chars.len() {
                let c = chars[i];
                let key_end = c == ':' && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
                if matches!(c, ',' | ']' | '}') || key_end || (c == '#' && i > start && chars[i - 1].is_whitespace()) {
                    break;
                }
                i += 1;
            }
            while i > start + 1 && chars[i - 1].is_whitespace() {
                i -= 1;
            }
            i.max(start + 1)
        }
    };
    Loc {
        line: at.line,
        col: end as u32 + 1,
    }
}

/// The closest of `candidates` to `name`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// ` (did you mean "x"?)` or nothing.
pub fn suggestion<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(name, candidates)
        .map(|c| format!(" (did you mean {c:?}?)"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ends() {
        let lines = [
            "    cluster: apii",
            "      - { url: \"http://x:1\", weight: 0 }",
            "  upstreams: []",
            "    bogus: 1  # c",
        ];
        let end = |line, col| {
            let e = token_end(&lines, Loc { line, col });
            (e.line, e.col)
        };
        assert_eq!(end(1, 14), (1, 18));
        assert_eq!(end(2, 16), (2, 28));
        assert_eq!(end(2, 38), (2, 39));
        assert_eq!(end(3, 14), (3, 16));
        assert_eq!(end(4, 5), (4, 10));
        assert_eq!(end(4, 12), (4, 13));
    }
}
