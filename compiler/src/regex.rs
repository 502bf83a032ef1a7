//! Reading a regex (`pathRegex`, header and query `regex`): its syntax is
//! checked with `regex-syntax` so an error points at the offending
//! character, then it is compiled to a DFA under the size cap (SPEC §4.4)
//! and checked to match something a request can carry.

use marked_yaml::Node;
use plan::build::{RegexError, compile_pattern};
use plan::dfa::MAX_PATTERN_DFA_BYTES;
use regex_automata::dfa::dense;
use regex_syntax::hir::{Hir, HirKind};

use crate::diag::Loc;
use crate::lang;
use crate::yaml::Reader;

/// Where a regex is used: what it is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegexUse {
    Path,
    Header,
    Query,
}

/// A regex that compiled: its source, its DFA, and its literal prefix (for
/// bucketing in the static checks).
#[derive(Debug, Clone)]
pub struct CompiledRegex {
    pub source: String,
    pub dfa: dense::DFA<Vec<u32>>,
    pub literal_prefix: Vec<u8>,
}

impl PartialEq for CompiledRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// The bytes every match of `hir` starts with.
fn literal_prefix(hir: &Hir) -> Vec<u8> {
    match hir.kind() {
        HirKind::Literal(lit) => lit.0.to_vec(),
        HirKind::Capture(c) => literal_prefix(&c.sub),
        HirKind::Concat(parts) => {
            let mut out = Vec::new();
            for part in parts {
                match part.kind() {
                    HirKind::Literal(lit) => out.extend_from_slice(&lit.0),
                    _ => {
                        out.extend(literal_prefix(part));
                        break;
                    }
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

/// What every match of a parsed pattern starts with.
pub(crate) fn literal_prefix_of(hir: &Hir) -> Vec<u8> {
    literal_prefix(hir)
}

/// Where character `offset` (bytes into the value) of the scalar at `at`
/// sits in `text`: quotes and backslash escapes counted, as an editor shows it.
fn locate(text: &str, at: Loc, offset: usize) -> Loc {
    let Some(line) = text.lines().nth(at.line.saturating_sub(1) as usize) else {
        return at;
    };
    let start = (at.col.saturating_sub(1)) as usize;
    let Some(rest) = line.get(start..) else { return at };
    let mut chars = rest.chars();
    let (quote, mut col) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            chars.next();
            (Some(q), at.col + 1)
        }
        _ => (None, at.col),
    };
    let mut consumed = 0;
    while consumed < offset {
        let Some(c) = chars.next() else { break };
        match (quote, c) {
            (Some('"'), '\\') | (Some('\''), '\'') => {
                chars.next();
                col += 2;
                consumed += 1;
            }
            _ => {
                col += 1;
                consumed += c.len_utf8();
            }
        }
    }
    Loc { line: at.line, col }
}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

impl Reader<'_> {
    pub fn regex(&mut self, node: &Node, path: &str, use_: RegexUse) -> Option<CompiledRegex> {
        let s = self.string(node, path)?;
        let hir = match regex_syntax::ParserBuilder::new().build().parse(&s.value) {
            Ok(hir) => hir,
            Err(e) => {
                let (offset, message) = match &e {
                    regex_syntax::Error::Parse(e) => (e.span().start.offset, e.kind().to_string()),
                    regex_syntax::Error::Translate(e) => (e.span().start.offset, e.kind().to_string()),
                    other => (0, other.to_string()),
                };
                let at = locate(self.text, s.loc, offset);
                let shown = s.value[offset.min(s.value.len())..].chars().next().map_or_else(
                    || "the end".to_owned(),
                    |c| {
                        format!(
                            "{c:?} (character {})",
                            s.value[..offset.min(s.value.len())].chars().count() + 1
                        )
                    },
                );
                self.diags
                    .error(at, path, format!("invalid regex {:?}: {message}, at {shown}", s.value));
                return None;
            }
        };
        let dfa = match compile_pattern(&s.value) {
            Ok(dfa) => dfa,
            Err(RegexError::TooLarge { size: Some(n), .. }) => {
                self.diags.error(
                    s.loc,
                    path,
                    format!(
                        "regex {:?} compiles to a DFA of {}, over the {} limit per pattern; simplify it (bounded repetitions such as {{1000}} and large Unicode classes grow a DFA fast)",
                        s.value,
                        size(n),
                        size(MAX_PATTERN_DFA_BYTES)
                    ),
                );
                return None;
            }
            Err(RegexError::TooLarge { size: None, .. }) => {
                self.diags.error(
                    s.loc,
                    path,
                    format!(
                        "regex {:?} compiles to a DFA of more than {}, over the {} limit per pattern",
                        s.value,
                        size(plan::dfa::MAX_PLAN_DFA_BYTES),
                        size(MAX_PATTERN_DFA_BYTES)
                    ),
                );
                return None;
            }
            Err(RegexError::Invalid(e)) => {
                self.diags.error(
                    s.loc,
                    path,
                    format!("regex {:?} cannot be compiled to a DFA: {e}", s.value),
                );
                return None;
            }
        };
        let empty = match use_ {
            RegexUse::Path => lang::witness_in_valid_paths(&dfa).is_none(),
            RegexUse::Header | RegexUse::Query => lang::witness(&dfa).is_none(),
        };
        if empty {
            let what = match use_ {
                RegexUse::Path => {
                    "matches no path that normalization can produce (paths start with \"/\", have no \"//\", no dot-segments, no ;params, and percent-escapes only for reserved characters, in uppercase)"
                }
                RegexUse::Header => "matches no value",
                RegexUse::Query => "matches no value",
            };
            self.diags.error(s.loc, path, format!("regex {:?} {what}", s.value));
            return None;
        }
        Some(CompiledRegex {
            literal_prefix: literal_prefix(&hir),
            source: s.value,
            dfa,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_count_quotes_and_escapes() {
        let text = "a:\n  pathRegex: \"/x\\\\d(\"\n  p2: /a(b\n";
        assert_eq!(locate(text, Loc { line: 2, col: 14 }, 4), Loc { line: 2, col: 20 });
        assert_eq!(locate(text, Loc { line: 3, col: 7 }, 2), Loc { line: 3, col: 9 });
    }

    #[test]
    fn literal_prefixes() {
        for (pattern, prefix) in [
            ("/svc1/items/[0-9]+", "/svc1/items/"),
            ("/a|/b", ""),
            ("(/api)/.*", "/api"),
            ("[a-z]+", ""),
        ] {
            let hir = regex_syntax::parse(pattern).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(literal_prefix(&hir), prefix.as_bytes(), "{pattern}");
        }
    }
}
