//! Request path normalization: dot-segment removal (RFC 3986 §5.2.4) and the
//! encoded-separator check of SPEC §4.3.
//!
//! Percent-encoded dots (`%2e`) count as dots: an upstream that decodes them would
//! otherwise resolve `/api/%2e%2e/admin` to a path another route owns.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path does not start with \"/\"")]
    NotAbsolute,
    #[error("path contains an encoded slash, backslash or NUL")]
    EncodedSeparator,
}

/// What a path segment is to dot-segment removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dot {
    One,
    Two,
}

/// `Some` when `seg` is `.` or `..`, in any mix of literal and `%2e` spellings.
pub fn is_dot_segment(seg: &str) -> Option<Dot> {
    fn is_dot(s: &str) -> bool {
        s == "." || s.eq_ignore_ascii_case("%2e")
    }
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

fn has_encoded_separator(path: &[u8]) -> bool {
    path.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1], w[2].to_ascii_uppercase()),
                (b'2', b'F') | (b'5', b'C') | (b'0', b'0')
            )
    })
}

/// Returns the path with dot-segments removed, borrowing when there are none
/// (the common case allocates nothing).
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(PathError::NotAbsolute);
    };
    if has_encoded_separator(path.as_bytes()) {
        return Err(PathError::EncodedSeparator);
    }
    if !rest.split('/').any(|seg| is_dot_segment(seg).is_some()) {
        return Ok(Cow::Borrowed(path));
    }
    let segments: Vec<&str> = rest.split('/').collect();
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
    let mut normalized = String::with_capacity(path.len());
    for seg in out {
        normalized.push('/');
        normalized.push_str(seg);
    }
    if normalized.is_empty() {
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
            ("/a//../b", Ok("/a/b")),
            ("/api/%2e%2e/admin", Ok("/admin")),
            ("/api/%2E./admin", Ok("/admin")),
            ("/api/.%2e/admin", Ok("/admin")),
            ("/api/%2e/x", Ok("/api/x")),
            ("/a/..b/c", Ok("/a/..b/c")),
            ("/a/.b", Ok("/a/.b")),
            ("/a/...", Ok("/a/...")),
            ("a/b", Err(PathError::NotAbsolute)),
            ("*", Err(PathError::NotAbsolute)),
            ("/a%2Fb", Err(PathError::EncodedSeparator)),
            ("/a%2fb", Err(PathError::EncodedSeparator)),
            ("/a%5cb", Err(PathError::EncodedSeparator)),
            ("/a%5Cb", Err(PathError::EncodedSeparator)),
            ("/a%00", Err(PathError::EncodedSeparator)),
            ("/a%20b", Ok("/a%20b")),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn clean_paths_are_borrowed() {
        assert!(matches!(normalize_path("/v1/users"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/v1/../users"), Ok(Cow::Owned(_))));
    }
}
