//! JSON strings appended to a reused buffer, for the access log and the echo
//! upstream: `serde_json` does the escaping (RFC 8259 §7) straight into the
//! `Vec`, without allocating.

/// Appends `s` as a quoted JSON string.
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends raw bytes as a JSON string, replacing invalid UTF-8.
pub fn push_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => push_str(out, s),
        Err(_) => push_str(out, &String::from_utf8_lossy(b)),
    }
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
        let mut out = Vec::new();
        push_bytes(&mut out, b"a\xffb");
        assert_eq!(String::from_utf8(out).unwrap_or_default(), "\"a\u{fffd}b\"");
    }
}
