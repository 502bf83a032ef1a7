//! A route as the plan stores it (SPEC §4): where it matches (hosts, one path
//! matcher, request conditions), what it does (one action) and how it edits
//! the exchange (filters, rewrite). Everything here was validated by the
//! compiler; the router re-checks every index it follows.

use serde::{Deserialize, Serialize};

use crate::Timeouts;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// Normalized host patterns: `"example.com"`, `"*.example.com"` or `"*"`.
    pub hosts: Vec<String>,
    pub path: PathMatch,
    /// Methods, exact and case-sensitive; empty = any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// All must hold. Names are lowercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Condition>,
    /// All must hold; the first occurrence of each parameter, percent-decoded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<Condition>,
    pub action: Action,
    #[serde(default, skip_serializing_if = "HeaderFilter::is_empty")]
    pub request_headers: HeaderFilter,
    #[serde(default, skip_serializing_if = "HeaderFilter::is_empty")]
    pub response_headers: HeaderFilter,
    #[serde(default, skip_serializing_if = "Rewrite::is_empty")]
    pub rewrite: Rewrite,
    pub timeouts: Timeouts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<crate::Retry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<u32>,
    /// Where the route was declared, for `explain` and diagnostics.
    pub line: u32,
    pub column: u32,
}

impl Route {
    /// The cluster of a `cluster` action.
    pub fn cluster(&self) -> Option<u32> {
        match self.action {
            Action::Cluster(c) => Some(c),
            _ => None,
        }
    }

    /// Whether any request condition beyond host and path applies.
    pub fn has_conditions(&self) -> bool {
        !self.methods.is_empty() || !self.headers.is_empty() || !self.query.is_empty()
    }
}

/// The one path matcher of a route (SPEC §4.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PathMatch {
    /// Segment-wise prefix, normalized: starts with `/`, no trailing `/` unless `/`.
    Prefix(String),
    /// The whole normalized path.
    Exact(String),
    /// The whole normalized path matches this pattern; its DFA is in the
    /// route's host tables.
    Regex(String),
}

impl PathMatch {
    /// 0 exact, 1 regex, 2 prefix: the order of SPEC §4.6 step 2.
    pub fn rank(&self) -> u8 {
        match self {
            PathMatch::Exact(_) => 0,
            PathMatch::Regex(_) => 1,
            PathMatch::Prefix(_) => 2,
        }
    }

    /// Within a kind, larger is more specific: prefix segments, pattern length.
    pub fn specificity(&self) -> usize {
        match self {
            PathMatch::Exact(_) => 0,
            PathMatch::Regex(source) => source.len(),
            PathMatch::Prefix(p) => p[1..].split('/').filter(|s| !s.is_empty()).count(),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            PathMatch::Prefix(s) | PathMatch::Exact(s) | PathMatch::Regex(s) => s,
        }
    }

    /// The config key this matcher is written with.
    pub fn key(&self) -> &'static str {
        match self {
            PathMatch::Prefix(_) => "pathPrefix",
            PathMatch::Exact(_) => "path",
            PathMatch::Regex(_) => "pathRegex",
        }
    }
}

/// A header or query condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Condition {
    pub name: String,
    pub value: ValueMatch,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ValueMatch {
    Exact(String),
    /// The whole value matches; `dfa` indexes [`crate::Plan::regexes`].
    Regex {
        source: String,
        dfa: u32,
    },
}

/// What a selected route does (SPEC §4.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Action {
    Cluster(u32),
    /// A split across clusters by smooth WRR.
    Backends {
        backends: Vec<Backend>,
        /// One period of the smooth-WRR sequence (indices into `backends`),
        /// empty when longer than [`crate::MAX_TABLE_LEN`].
        wrr: Vec<u32>,
    },
    Redirect(Redirect),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Backend {
    pub cluster: u32,
    pub weight: u32,
}

/// A redirect answered by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<PathReplace>,
    pub status: u16,
}

/// How a rewrite or redirect replaces the path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum PathReplace {
    /// The whole path.
    Full(String),
    /// The prefix the route matched (only on `pathPrefix` routes).
    Prefix(String),
}

/// `set`, `add`, `remove` on request or response headers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderFilter {
    /// Names as written (compared case-insensitively), values validated.
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
}

impl HeaderFilter {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.remove.is_empty()
    }

    /// Whether a received field named `name` is dropped (by `set` or `remove`).
    pub fn drops(&self, name: &[u8]) -> bool {
        self.remove.iter().any(|r| r.as_bytes().eq_ignore_ascii_case(name))
            || self.set.iter().any(|(s, _)| s.as_bytes().eq_ignore_ascii_case(name))
    }

    /// The fields this filter writes: `set`, then `add`.
    pub fn written(&self) -> impl Iterator<Item = (&str, &str)> {
        self.set.iter().chain(&self.add).map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Changes to the forwarded request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rewrite {
    pub host: Option<String>,
    pub path: Option<PathReplace>,
}

impl Rewrite {
    pub fn is_empty(&self) -> bool {
        self.host.is_none() && self.path.is_none()
    }
}

/// Replaces the route's matched prefix (`prefix`, normalized) of `path` by
/// `replacement`, joining the rest with exactly one `/` (SPEC §4.4). `path` is
/// the normalized path as forwarded; its first segments as matchers see them
/// ([`crate::match_segments`]: `;params` set aside, a segment of params only
/// not counting) are the prefix's.
pub fn replace_prefix(path: &str, prefix: &str, replacement: &str, out: &mut String) {
    let segments = prefix[1..].split('/').filter(|s| !s.is_empty()).count();
    let mut rest = path;
    let mut skipped = 0;
    while skipped < segments && !rest.is_empty() {
        let after = &rest[1..];
        let (segment, next) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if !segment.starts_with(';') {
            skipped += 1;
        }
        rest = next;
    }
    let replacement = replacement.strip_suffix('/').unwrap_or(replacement);
    out.push_str(replacement);
    if rest.is_empty() {
        if replacement.is_empty() {
            out.push('/');
        }
    } else {
        out.push_str(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_replacement_joins_with_one_slash() {
        let cases = [
            ("/strip/three", "/strip", "/", "/three"),
            ("/strip", "/strip", "/", "/"),
            ("/strip/", "/strip", "/", "/"),
            ("/prefix/one/two", "/prefix/one", "/one", "/one/two"),
            ("/prefix/one/two", "/prefix/one", "/one/", "/one/two"),
            ("/a/b/", "/a", "/x", "/x/b/"),
            ("/a/", "/a", "/x", "/x/"),
            ("/anything", "/", "/base", "/base/anything"),
            ("/", "/", "/base", "/base/"),
            ("/foo", "/foo", "/", "/"),
            ("/admin;j=1/x", "/admin", "/new", "/new/x"),
            ("/;j=1/admin/x", "/admin", "/new", "/new/x"),
            ("/a/;j/b/c", "/a/b", "/x", "/x/c"),
        ];
        for (path, prefix, replacement, expected) in cases {
            let mut out = String::new();
            replace_prefix(path, prefix, replacement, &mut out);
            assert_eq!(out, expected, "{path} with {prefix} -> {replacement}");
        }
    }
}
