//! Request path normalization (SPEC §4.3), in order: refuse what no path may
//! carry, decode percent-encoded unreserved characters (and write the other
//! escapes with uppercase hex), remove dot-segments (RFC 3986 §5.2.4), merge
//! runs of `/`. Matching then sets each segment's `;params` aside
//! ([`match_segment`]), as a Java upstream reads them.
//!
//! Every spelling an upstream might decode to the same path normalizes to one
//! path here, so a route cannot be bypassed by encoding: `/%61dmin`, `//admin`,
//! `/x/../admin`, `/x/..;/admin` and `/admin;p` all match as `/admin`.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form (`*`, or no leading `/`): a bad request, not a bad path.
    #[error("path does not start with \"/\"")]
    NotAbsolute,
    #[error("encoded slash, backslash or NUL in the path")]
    EncodedSeparator,
    #[error("raw backslash, '#' or control byte in the path")]
    ForbiddenByte,
    #[error("malformed percent-encoding in the path")]
    BadEscape,
}

impl PathError {
    /// The cause, as a `400` response names it.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::NotAbsolute => "path does not start with \"/\"",
            PathError::EncodedSeparator => "encoded slash, backslash or NUL in the path",
            PathError::ForbiddenByte => "raw backslash, '#' or control byte in the path",
            PathError::BadEscape => "malformed percent-encoding in the path",
        }
    }
}

/// What a path segment is to dot-segment removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dot {
    One,
    Two,
}

/// A segment as matchers see it: without its `;params`.
#[inline]
pub fn match_segment(seg: &str) -> &str {
    match seg.find(';') {
        Some(i) => &seg[..i],
        None => seg,
    }
}

/// `Some` when `seg` is `.` or `..` once its `;params` are set aside, in any
/// mix of literal and `%2e` spellings (`..;x` and `%2E.` are dot-segments).
pub fn is_dot_segment(seg: &str) -> Option<Dot> {
    fn is_dot(s: &str) -> bool {
        s == "." || s.eq_ignore_ascii_case("%2e")
    }
    let seg = match_segment(seg);
    match seg.len() {
        1 | 3 if is_dot(seg) => Some(Dot::One),
        2 | 4 | 6 => {
            let first_len = if seg.starts_with('.') { 1 } else { 3 };
            let (a, b) = seg.split_at_checked(first_len)?;
            (is_dot(a) && is_dot(b)).then_some(Dot::Two)
        }
        _ => None,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Checks every byte and escape; `Ok(true)` when the path needs rewriting
/// (an escape to decode or to uppercase, a run of `/`, a dot-segment).
fn scan(path: &str) -> Result<bool, PathError> {
    let bytes = path.as_bytes();
    let mut rewrite = false;
    // A dot-segment can only start right after a `/`, with `.` or `%`.
    let mut maybe_dot = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' | b'#' | 0..=0x1f | 0x7f => return Err(PathError::ForbiddenByte),
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadEscape);
                };
                let v = hi * 16 + lo;
                if matches!(v, b'/' | b'\\' | 0) {
                    return Err(PathError::EncodedSeparator);
                }
                rewrite |= is_unreserved(v) || bytes[i + 1].is_ascii_lowercase() || bytes[i + 2].is_ascii_lowercase();
                i += 3;
                continue;
            }
            b'/' => match bytes.get(i + 1) {
                Some(b'/') => rewrite = true,
                Some(b'.' | b'%') => maybe_dot = true,
                _ => {}
            },
            _ => {}
        }
        i += 1;
    }
    Ok(rewrite || (maybe_dot && path[1..].split('/').any(|seg| is_dot_segment(seg).is_some())))
}

/// Decodes percent-encoded unreserved characters; other escapes are kept with
/// uppercase hex. The input passed [`scan`].
fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let v = hex(bytes[i + 1]).unwrap_or(0) * 16 + hex(bytes[i + 2]).unwrap_or(0);
            if is_unreserved(v) {
                out.push(v as char);
            } else {
                out.push('%');
                out.push(bytes[i + 1].to_ascii_uppercase() as char);
                out.push(bytes[i + 2].to_ascii_uppercase() as char);
            }
            i += 3;
        } else {
            // Multi-byte UTF-8 is copied whole: `%` and ASCII never occur inside it.
            let len = path[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&path[i..i + len]);
            i += len;
        }
    }
    out
}

/// Normalizes a request path (without query). Borrows when nothing changes,
/// so the common case allocates nothing.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if !scan(path)? {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path);
    // Dot-segments (RFC 3986 §5.2.4), over segments: a final `.` or `..`
    // leaves a trailing slash.
    let segments: Vec<&str> = decoded[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, seg) in segments.iter().enumerate() {
        match is_dot_segment(seg) {
            Some(dot) => {
                if dot == Dot::Two {
                    out.pop();
                }
                if i == last {
                    out.push("");
                }
            }
            None => out.push(seg),
        }
    }
    // Runs of `/`: empty segments go, but a trailing slash stays.
    let keep_trailing = out.last() == Some(&"");
    let mut normalized = String::with_capacity(decoded.len());
    for seg in out.iter().filter(|s| !s.is_empty()) {
        normalized.push('/');
        normalized.push_str(seg);
    }
    if keep_trailing || normalized.is_empty() {
        normalized.push('/');
    }
    Ok(Cow::Owned(normalized))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, PathError>) {
        let got = normalize_path(input);
        assert_eq!(got.as_deref().map_err(|e| *e), expected, "input {input:?}");
    }

    #[test]
    fn dot_segments_are_removed() {
        let cases = [
            ("/", Ok("/")),
            ("/a/b", Ok("/a/b")),
            ("/a/b/", Ok("/a/b/")),
            ("/a/./b", Ok("/a/b")),
            ("/a/../b", Ok("/b")),
            ("/a/b/..", Ok("/a/")),
            ("/a/b/.", Ok("/a/b/")),
            ("/..", Ok("/")),
            ("/../../x", Ok("/x")),
            ("/.", Ok("/")),
            ("/a/b/c/./../../g", Ok("/a/g")),
            ("/api/%2e%2e/admin", Ok("/admin")),
            ("/api/%2E./admin", Ok("/admin")),
            ("/api/.%2e/admin", Ok("/admin")),
            ("/api/%2e/x", Ok("/api/x")),
            ("/a/..b/c", Ok("/a/..b/c")),
            ("/a/.b", Ok("/a/.b")),
            ("/a/...", Ok("/a/...")),
            // `;params` do not hide a dot-segment (Tomcat reads `..;x` as `..`).
            ("/x/..;/admin", Ok("/admin")),
            ("/x/..;jsessionid=1/admin", Ok("/admin")),
            ("/x/.;p/admin", Ok("/x/admin")),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn encodings_and_slashes() {
        let cases = [
            // Regression: `/%61dmin/users` reached the `/` route and was
            // forwarded undecoded, and the upstream served `/admin/users`.
            ("/%61dmin/users", Ok("/admin/users")),
            ("/%41%2D%5F%7E%2e", Ok("/A-_~.")),
            ("/a%20b", Ok("/a%20b")),
            ("/a%3bb", Ok("/a%3Bb")),
            ("/%25", Ok("/%25")),
            ("/%2561", Ok("/%2561")),
            // Regression: `//admin` and `/.//admin` reached the `/` route.
            ("//admin", Ok("/admin")),
            ("/.//admin", Ok("/admin")),
            ("/a//b///c", Ok("/a/b/c")),
            ("/a/b//", Ok("/a/b/")),
            ("//", Ok("/")),
            ("/a//../b", Ok("/a/b")),
            ("/é/ü", Ok("/é/ü")),
            ("a/b", Err(PathError::NotAbsolute)),
            ("*", Err(PathError::NotAbsolute)),
            ("/a%2Fb", Err(PathError::EncodedSeparator)),
            ("/a%2fb", Err(PathError::EncodedSeparator)),
            ("/a%5cb", Err(PathError::EncodedSeparator)),
            ("/a%5Cb", Err(PathError::EncodedSeparator)),
            ("/a%00", Err(PathError::EncodedSeparator)),
            ("/a\\b", Err(PathError::ForbiddenByte)),
            ("/a#b", Err(PathError::ForbiddenByte)),
            ("/a\u{1}b", Err(PathError::ForbiddenByte)),
            ("/a\u{7f}", Err(PathError::ForbiddenByte)),
            ("/a%", Err(PathError::BadEscape)),
            ("/a%4", Err(PathError::BadEscape)),
            ("/a%zz", Err(PathError::BadEscape)),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn params_are_set_aside_for_matching_only() {
        check("/admin;jsessionid=1/x", Ok("/admin;jsessionid=1/x"));
        assert_eq!(match_segment("admin;jsessionid=1"), "admin");
        assert_eq!(match_segment(";x"), "");
        assert_eq!(match_segment("plain"), "plain");
    }

    #[test]
    fn clean_paths_are_borrowed() {
        assert!(matches!(normalize_path("/v1/users"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/v1/users;x=1/%20"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/v1/../users"), Ok(Cow::Owned(_))));
        assert!(matches!(normalize_path("/v1/%7e"), Ok(Cow::Owned(_))));
    }
}
