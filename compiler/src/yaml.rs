//! Typed, located reads from marked-yaml nodes. Every failed read becomes a
//! diagnostic at the offending value and the read returns `None`, so reading
//! goes on and reports everything at once.

use marked_yaml::Node;
use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};

use crate::diag::{Diagnostics, Loc, suggestion};

pub fn loc(node: &Node) -> Loc {
    span_loc(node.span())
}

pub fn span_loc(span: &marked_yaml::Span) -> Loc {
    span.start()
        .map(|m| Loc {
            line: m.line() as u32,
            col: m.column() as u32,
        })
        .unwrap_or_default()
}

/// A value with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub loc: Loc,
    pub path: String,
}

fn kind(node: &Node) -> &'static str {
    match node {
        Node::Scalar(_) => "a scalar",
        Node::Mapping(_) => "a mapping",
        Node::Sequence(_) => "a list",
    }
}

/// A plain `null`, `~` or empty scalar (YAML's null), not a quoted one.
pub(crate) fn is_null(s: &MarkedScalarNode) -> bool {
    s.may_coerce() && matches!(s.as_str(), "" | "~" | "null" | "Null" | "NULL")
}

/// A reader for one file's diagnostics.
pub struct Reader<'d> {
    pub diags: &'d mut Diagnostics,
    /// The config text, to place errors inside a value (a regex's character).
    pub text: &'d str,
}

impl Reader<'_> {
    /// `node` as a mapping whose keys are all in `allowed` (others are errors).
    pub fn mapping<'n>(&mut self, node: &'n Node, path: &str, allowed: &[&str]) -> Option<&'n MarkedMappingNode> {
        let Some(map) = node.as_mapping() else {
            self.diags
                .error(loc(node), path, format!("must be a mapping, got {}", kind(node)));
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                let key_path = join(path, key.as_str());
                let close = suggestion(key.as_str(), allowed.iter().copied());
                let message = if close.is_empty() {
                    format!(
                        "unknown field {:?}; valid fields here: {}",
                        key.as_str(),
                        allowed.join(", ")
                    )
                } else {
                    format!("unknown field {:?}{close}", key.as_str())
                };
                self.diags.error(span_loc(key.span()), key_path, message);
            }
        }
        Some(map)
    }

    pub fn sequence<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n MarkedSequenceNode> {
        match node {
            Node::Sequence(s) => Some(s),
            Node::Scalar(s) if is_null(s) => None,
            _ => {
                self.diags
                    .error(loc(node), path, format!("must be a list, got {}", kind(node)));
                None
            }
        }
    }

    /// A non-empty string.
    pub fn string(&mut self, node: &Node, path: &str) -> Option<Spanned<String>> {
        let Some(s) = node.as_scalar() else {
            self.diags
                .error(loc(node), path, format!("must be a string, got {}", kind(node)));
            return None;
        };
        if s.as_str().is_empty() || is_null(s) {
            self.diags.error(loc(node), path, "must not be empty");
            return None;
        }
        Some(Spanned {
            value: s.as_str().to_owned(),
            loc: loc(node),
            path: path.to_owned(),
        })
    }

    /// An integer in `min..=max`; `unit` follows the bound in messages (" ms").
    pub fn integer(&mut self, node: &Node, path: &str, min: i128, max: i128, unit: &str) -> Option<Spanned<u64>> {
        let expected = || {
            if min == 1 {
                "must be an integer greater than 0".to_owned()
            } else {
                format!("must be an integer greater than or equal to {min}")
            }
        };
        let Some(s) = node.as_scalar() else {
            self.diags
                .error(loc(node), path, format!("{}, got {}", expected(), kind(node)));
            return None;
        };
        let raw = s.as_str();
        let parsed = if s.may_coerce() { raw.parse::<i128>().ok() } else { None };
        let message = match parsed {
            Some(v) if v >= min && v <= max => {
                return Some(Spanned {
                    value: v as u64,
                    loc: loc(node),
                    path: path.to_owned(),
                });
            }
            Some(v) if v < min => format!("{}, got {v}", expected()),
            Some(v) => format!("must be at most {max}{unit}, got {v}"),
            None if s.may_coerce() && raw.parse::<f64>().is_ok() => format!("{}, got {raw}", expected()),
            None => format!("{}, got {raw:?}", expected()),
        };
        self.diags.error(loc(node), path, message);
        None
    }

    pub fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        match node.as_scalar().and_then(|s| s.as_bool()) {
            Some(b) => Some(b),
            None => {
                let got = node.as_scalar().map(|s| format!("{:?}", s.as_str()));
                self.diags.error(
                    loc(node),
                    path,
                    format!("must be true or false, got {}", got.as_deref().unwrap_or(kind(node))),
                );
                None
            }
        }
    }

    /// One of `choices`.
    pub fn choice(&mut self, node: &Node, path: &str, choices: &[&str]) -> Option<Spanned<String>> {
        let s = self.string(node, path)?;
        if choices.contains(&s.value.as_str()) {
            return Some(s);
        }
        let list = choices.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ");
        self.diags.error(
            s.loc,
            path,
            format!(
                "must be one of {list}, got {:?}{}",
                s.value,
                suggestion(&s.value, choices.iter().copied())
            ),
        );
        None
    }
}

/// `path.key`; an empty key is shown as `""` so every diagnostic has a path.
pub fn join(path: &str, key: &str) -> String {
    let key = if key.is_empty() { "\"\"" } else { key };
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Converts any YAML value to JSON (plain scalars typed as YAML 1.2 core would).
pub fn to_json(node: &Node) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Node::Scalar(s) => {
            let raw = s.as_str();
            if !s.may_coerce() {
                return Value::String(raw.to_owned());
            }
            if is_null(s) {
                Value::Null
            } else if let Some(b) = s.as_bool() {
                Value::Bool(b)
            } else if let Ok(i) = raw.parse::<i64>() {
                Value::from(i)
            } else if let Some(f) = raw.parse::<f64>().ok().filter(|f| f.is_finite()) {
                Value::from(f)
            } else {
                Value::String(raw.to_owned())
            }
        }
        Node::Sequence(seq) => Value::Array(seq.iter().map(to_json).collect()),
        Node::Mapping(map) => Value::Object(map.iter().map(|(k, v)| (k.as_str().to_owned(), to_json(v))).collect()),
    }
}
