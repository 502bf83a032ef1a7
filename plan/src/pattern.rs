//! The pattern syntax the compiler, the index builder and the reference
//! matchers agree on: host patterns and path prefixes.

use crate::normalize::{PathError, is_dot_segment, normalize_path};

/// A route's host pattern, normalized to lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    Exact(String),
    /// `*.suffix`: matches one or more labels before `suffix`, never `suffix` itself.
    Wildcard(String),
    Any,
}

impl HostPattern {
    /// The pattern as stored in the plan (`"*"` for any).
    pub fn to_plan_string(&self) -> String {
        match self {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Wildcard(s) => format!("*.{s}"),
            HostPattern::Any => "*".to_owned(),
        }
    }
}

fn check_hostname(name: &str) -> Result<(), String> {
    if name.len() > 253 {
        return Err(format!("host {name:?} is longer than 253 characters"));
    }
    if name.starts_with('[') && name.ends_with(']') {
        let inner = &name[1..name.len() - 1];
        if !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Ok(());
        }
        return Err(format!("invalid IPv6 literal {name:?}"));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("invalid host {name:?}: empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "invalid host {name:?}: label {label:?} is longer than 63 characters"
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("invalid host {name:?}: character {c:?} is not allowed"));
        }
    }
    Ok(())
}

/// Parses a route's `host` (`None` = omitted = any host).
pub fn parse_host_pattern(host: Option<&str>) -> Result<HostPattern, String> {
    let Some(raw) = host else {
        return Ok(HostPattern::Any);
    };
    let host = raw.strip_suffix('.').unwrap_or(raw);
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if host.is_empty() {
        return Err("host is empty (omit it, or use \"*\", to match any host)".into());
    }
    if !host.starts_with('[') && host.contains(':') {
        return Err(format!(
            "host {raw:?} must not include a port (ports are ignored when matching)"
        ));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if suffix.contains('*') {
            return Err(format!(
                "invalid host {raw:?}: a wildcard is only allowed as the whole leftmost label (\"*.example.com\")"
            ));
        }
        check_hostname(suffix)?;
        return Ok(HostPattern::Wildcard(suffix.to_ascii_lowercase()));
    }
    if host.contains('*') {
        return Err(format!(
            "invalid host {raw:?}: a wildcard is only allowed as the whole leftmost label (\"*.example.com\")"
        ));
    }
    check_hostname(host)?;
    Ok(HostPattern::Exact(host.to_ascii_lowercase()))
}

/// Validates a `pathPrefix` and returns its normalized form: normalized as
/// request paths are (SPEC §4.3, so `/%61pi` is `/api` and `//api` is `/api`),
/// and one trailing `/` dropped (`/api/` and `/api` are the same prefix under
/// segment-wise matching).
pub fn split_prefix(prefix: &str) -> Result<String, String> {
    if !prefix.starts_with('/') {
        return Err(format!("pathPrefix {prefix:?} must start with \"/\""));
    }
    if let Some(c) = prefix.chars().find(|c| matches!(c, '?' | '#')) {
        return Err(format!(
            "pathPrefix {prefix:?} contains {c:?}; the query and fragment are never part of the matched path, so it can never match"
        ));
    }
    if prefix.contains(';') {
        return Err(format!(
            "pathPrefix {prefix:?} contains ';'; each segment's ;params are set aside before matching, so it can never match"
        ));
    }
    if prefix.contains(' ') {
        return Err(format!(
            "pathPrefix {prefix:?} contains ' ', which no request path carries (a space is written %20), so it can never match"
        ));
    }
    if let Some(seg) = prefix[1..].split('/').find(|s| is_dot_segment(s).is_some()) {
        return Err(format!(
            "pathPrefix {prefix:?} contains the dot-segment {seg:?}; request paths are normalized before matching, so it can never match"
        ));
    }
    let normalized = match normalize_path(prefix) {
        Ok(p) => p.into_owned(),
        Err(PathError::EncodedSeparator) => {
            return Err(format!(
                "pathPrefix {prefix:?} contains an encoded slash, backslash or NUL; such requests are refused with 400, so it can never match"
            ));
        }
        Err(e) => {
            return Err(format!(
                "pathPrefix {prefix:?}: {e}; such requests are refused with 400, so it can never match"
            ));
        }
    };
    let normalized = if normalized.len() > 1 {
        normalized.strip_suffix('/').unwrap_or(&normalized)
    } else {
        &normalized
    };
    Ok(normalized.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let cases: [(Option<&str>, Result<HostPattern, &str>); 12] = [
            (None, Ok(HostPattern::Any)),
            (Some("*"), Ok(HostPattern::Any)),
            (
                Some("API.Example.com"),
                Ok(HostPattern::Exact("api.example.com".into())),
            ),
            (Some("example.com."), Ok(HostPattern::Exact("example.com".into()))),
            (Some("*.Example.com"), Ok(HostPattern::Wildcard("example.com".into()))),
            (Some("a.*.com"), Err("wildcard")),
            (Some("*foo.com"), Err("wildcard")),
            (Some("*.*.com"), Err("wildcard")),
            (Some("example.com:80"), Err("port")),
            (Some("a..com"), Err("empty label")),
            (Some(""), Err("empty")),
            (Some("bad host"), Err("not allowed")),
        ];
        for (input, expected) in cases {
            let got = parse_host_pattern(input);
            match (&got, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(g, e, "input {input:?}"),
                (Err(g), Err(e)) => assert!(g.contains(e), "input {input:?}: {g}"),
                _ => panic!("input {input:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn prefixes() {
        let cases = [
            ("/", Ok("/")),
            ("/api", Ok("/api")),
            ("/api/", Ok("/api")),
            ("/api/v1", Ok("/api/v1")),
            ("api", Err("start with")),
            ("/api?x=1", Err("query")),
            ("/api#top", Err("fragment")),
            ("/a/../b", Err("dot-segment")),
            ("/a/./b", Err("dot-segment")),
            ("/a%2Fb", Err("encoded slash")),
            ("/a%2e%2e", Ok("/a..")),
            ("/a/%2E%2e", Err("dot-segment")),
            ("/%61pi//v1/", Ok("/api/v1")),
            ("/a%3b", Ok("/a%3B")),
            ("/a;b", Err("';'")),
            ("/a\\b", Err("refused with 400")),
            ("/a%zz", Err("refused with 400")),
            ("/a b", Err("%20")),
            ("/a%20b", Ok("/a%20b")),
        ];
        for (input, expected) in cases {
            let got = split_prefix(input);
            match (&got, &expected) {
                (Ok(g), Ok(e)) => assert_eq!(g, e, "input {input:?}"),
                (Err(g), Err(e)) => assert!(g.contains(e), "input {input:?}: {g}"),
                _ => panic!("input {input:?}: got {got:?}, expected {expected:?}"),
            }
        }
    }
}
