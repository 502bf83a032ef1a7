//! JSON strings appended to a reused buffer, for the access log and the echo
//! upstream: `serde_json` does the escaping (RFC 8259 §7) straight into the
//! `Vec`, without allocating.

/// Appends `s` as a quoted JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    if !push_plain(out, s.as_bytes()) {
        // Writing into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Appends raw bytes as a JSON string, replacing invalid UTF-8.
pub fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    if push_plain(out, b) {
        return;
    }
    match std::str::from_utf8(b) {
        Ok(s) => push_str(out, s),
        Err(_) => push_str(out, &String::from_utf8_lossy(b)),
    }
}

/// The common case of a log value (a path, a route name, an address):
/// printable ASCII with nothing to escape, appended between quotes as it
/// is. Anything else (a quote, a backslash, a control byte, non-ASCII) is
/// left to `serde_json` (`false`). The output is byte for byte what
/// `serde_json` writes.
fn push_plain(out: &mut Vec<u8>, b: &[u8]) -> bool {
    if !b.iter().all(|&c| (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\') {
        return false;
    }
    out.reserve(b.len() + 2);
    out.push(b'"');
    out.extend_from_slice(b);
    out.push(b'"');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        for (input, expected) in [
            ("plain", r#""plain""#),
            ("a\"b", r#""a\"b""#),
            ("back\\slash", r#""back\\slash""#),
            ("line\nbreak\ttab", r#""line\nbreak\ttab""#),
            ("\u{1}", r#""\u0001""#),
            ("ünï", "\"ünï\""),
        ] {
            let mut out = Vec::new();
            push_str(&mut out, input);
            assert_eq!(String::from_utf8(out).unwrap_or_default(), expected);
        }
        // The plain path writes exactly what serde_json writes, for every
        // ASCII character and around it.
        for c in 0u8..0x80 {
            let s = format!("a{}b", char::from(c));
            let mut out = Vec::new();
            push_str(&mut out, &s);
            let mut via_bytes = Vec::new();
            push_bytes(&mut via_bytes, s.as_bytes());
            let expected = serde_json::to_string(&s).unwrap_or_default();
            assert_eq!(String::from_utf8(out).unwrap_or_default(), expected, "{c:#x}");
            assert_eq!(String::from_utf8(via_bytes).unwrap_or_default(), expected, "{c:#x}");
        }
        let mut out = Vec::new();
        push_bytes(&mut out, b"a\xffb");
        assert_eq!(String::from_utf8(out).unwrap_or_default(), "\"a\u{fffd}b\"");
    }
}
