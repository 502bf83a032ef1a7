//! YAML syntax errors for people (SPEC §13): located at the offending
//! character and worded as what to do. The parser reports where it gave up,
//! which for an unclosed bracket is lines later and for a tab can be a line
//! early; a scan of the text for those two causes comes first.

use crate::diag::{Diagnostics, Loc};

/// The first tab in a line's indentation, or inside a flow collection.
fn tab(text: &str) -> Option<Loc> {
    for (i, line) in text.lines().enumerate() {
        let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
        if let Some(col) = indent.chars().position(|c| c == '\t') {
            return Some(Loc {
                line: i as u32 + 1,
                col: col as u32 + 1,
            });
        }
    }
    None
}

/// The innermost flow bracket (`[` or `{`) never closed, or a closing one
/// with nothing to close, skipping quoted strings and comments. Outside flow
/// collections a bracket only counts where a value starts (after `:`, `-` or
/// at the start of a line): a plain scalar such as `/files/[a-z]+` may hold
/// brackets.
fn unbalanced(text: &str) -> Option<(Loc, char)> {
    let mut open: Vec<(Loc, char)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        // The last character that is not whitespace, on this line.
        let mut last: Option<char> = None;
        let mut prev = ' ';
        let mut chars = line.chars().enumerate();
        while let Some((col, c)) = chars.next() {
            let at = Loc {
                line: i as u32 + 1,
                col: col as u32 + 1,
            };
            let starts_value = prev.is_whitespace() && matches!(last, None | Some(':' | '-' | ',' | '[' | '{'))
                || matches!(prev, '[' | '{' | ',');
            let in_flow = !open.is_empty();
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if starts_value => quote = Some(c),
                (None, '#') if prev.is_whitespace() => break,
                (None, '[' | '{') if in_flow || starts_value => open.push((at, c)),
                (None, ']' | '}') if in_flow => {
                    let want = if c == ']' { '[' } else { '{' };
                    match open.pop() {
                        Some((_, o)) if o == want => {}
                        Some(other) => return Some(other),
                        None => return Some((at, c)),
                    }
                }
                _ => {}
            }
            if !c.is_whitespace() {
                last = Some(c);
            }
            prev = c;
        }
    }
    open.pop()
}

/// The parser's words, for people.
fn plain(message: &str) -> (String, Option<&'static str>) {
    let m = message.to_ascii_lowercase();
    let (what, help) = if m.contains("mapping values are not allowed") {
        (
            "a `key: value` is not allowed here",
            Some("a value that contains `: ` must be quoted; otherwise check the indentation of this line"),
        )
    } else if m.contains("did not find expected key") || m.contains("did not find expected '-'") {
        (
            "this line's indentation does not line up with the keys or items around it",
            Some("indent with spaces, the same amount for every key of one mapping"),
        )
    } else if m.contains("cannot start any token") {
        ("this character cannot start a value", Some("quote the value"))
    } else if m.contains("found unexpected end of stream") || m.contains("found unknown escape") {
        (
            "a quoted string is not closed, or holds an invalid escape",
            Some("close the quote; in double quotes write `\\\\` for a backslash"),
        )
    } else if m.contains("block sequence entries are not allowed") {
        (
            "a `- item` is not allowed here",
            Some("a list under a key starts on the next line, indented"),
        )
    } else {
        return (format!("invalid YAML: {message}"), None);
    };
    (what.to_owned(), help)
}

/// Reports a syntax error the parser found (`at`, `message`), at the cause
/// when the text shows one.
/// What every YAML file the compiler reads goes through first: a leading
/// byte-order mark (Windows editors write one; YAML allows it, and an
/// editor's columns do not count it) is read past, and a second document is
/// an error at its start (`what`: "a config", "a cases file").
pub fn one_document<'t>(text: &'t str, diags: &mut Diagnostics, what: &str, help: &str) -> &'t str {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(at) = second_document(text) {
        diags.error_help(
            at,
            "yaml",
            format!("a second YAML document starts here: {what} is one document"),
            help,
        );
    }
    text
}

/// Where a second YAML document with content starts (its `---`, or its
/// first line after a `...`), if one does: the parser reads the first and
/// would silently leave the rest. An empty document (a trailing `---`) is
/// no harm. A marker is a line that begins with it (block scalars are
/// indented, so their lines never do).
pub fn second_document(text: &str) -> Option<Loc> {
    let marker = |line: &str, m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '#']))
    };
    let blank = |s: &str| {
        let s = s.trim_start();
        s.is_empty() || s.starts_with('#')
    };
    // A document with content came before the current one.
    let mut seen = false;
    // The current document has content.
    let mut content = false;
    // The current document's `---`.
    let mut start = None;
    for (i, line) in text.lines().enumerate() {
        let at = Loc {
            line: i as u32 + 1,
            col: 1,
        };
        if marker(line, "---") || marker(line, "...") {
            seen |= content;
            content = false;
            start = line.starts_with('-').then_some(at);
            // Content may follow `---` on its line: `--- {a: 1}`.
            if line.starts_with('-') && !blank(&line[3..]) {
                if seen {
                    return start;
                }
                content = true;
            }
            continue;
        }
        if blank(line) || (line.starts_with('%') && !content) {
            continue;
        }
        if seen {
            return Some(start.unwrap_or(at));
        }
        content = true;
    }
    None
}

pub fn report(diags: &mut Diagnostics, text: &str, at: Loc, message: &str) {
    if let Some(loc) = tab(text) {
        diags.error_help(
            loc,
            "yaml",
            "a tab in the indentation",
            "YAML indents with spaces only: replace the tab with spaces",
        );
        return;
    }
    if let Some((loc, c)) = unbalanced(text) {
        let (message, help) = match c {
            '[' => ("this `[` is never closed", "add the matching `]`"),
            '{' => ("this `{` is never closed", "add the matching `}`"),
            ']' => ("this `]` closes nothing", "remove it, or add the `[` it should close"),
            _ => ("this `}` closes nothing", "remove it, or add the `{` it should close"),
        };
        diags.error_help(loc, "yaml", message, help);
        return;
    }
    match plain(message) {
        (what, Some(help)) => diags.error_help(at, "yaml", what, help),
        (what, None) => diags.error(at, "yaml", what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_document_with_content_is_found() {
        let at = |line| Some(Loc { line, col: 1 });
        assert_eq!(second_document("a: 1\n---\nb: 2\n"), at(2));
        assert_eq!(second_document("%YAML 1.2\n---\na: 1\n--- {b: 2}\n"), at(4));
        assert_eq!(second_document("a: 1\n...\n# note\nb: 2\n"), at(4));
        assert_eq!(second_document("--- # first\na: 1\n---\n# only a comment\n"), None);
        assert_eq!(second_document("a: 1\n...\n"), None);
        // Not markers: indented (a block scalar's line), or longer words.
        assert_eq!(second_document("a: |\n  ---\n  b\nc: 2\n"), None);
        assert_eq!(second_document("a: 1\n----\n"), None);
        assert_eq!(second_document("a: 1\n---x: 2\n"), None);
    }

    #[test]
    fn causes_are_found_where_they_are() {
        assert_eq!(tab("a:\n\tb: 1\n"), Some(Loc { line: 2, col: 1 }));
        assert_eq!(tab("a: \"x\ty\"\n"), None);
        assert_eq!(
            unbalanced("routes: [\n  { name: a },\nclusters: []\n"),
            Some((Loc { line: 1, col: 9 }, '['))
        );
        assert_eq!(unbalanced("a: [b, \"]\", '['] # ]\n"), None);
        assert_eq!(unbalanced("a: b]\n"), None);
        assert_eq!(
            unbalanced("p: /files/[a-z]+\nq: [1\n"),
            Some((Loc { line: 2, col: 4 }, '['))
        );
        assert_eq!(unbalanced("a: { b: [1, 2 }\n"), Some((Loc { line: 1, col: 9 }, '[')));
    }
}
