//! The request-target (RFC 9112 §3.2), parsed once per request into the one
//! structure that routing, forwarding and the access log all read.

use std::ops::Range;

use bytes::Bytes;

use crate::headers::valid_host;

/// The form of a request-target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `/path?query`
    Origin,
    /// `http://authority/path?query`: the authority replaces `Host`.
    Absolute,
    /// `*` (OPTIONS only).
    Asterisk,
}

/// Why a request-target was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// 400 `bad_request`.
    #[error("{0}")]
    Malformed(&'static str),
    /// 400 `bad_host`: the authority of an absolute-form target.
    #[error("{0}")]
    BadHost(&'static str),
}

/// A parsed request-target: the bytes as received and where each part sits.
#[derive(Debug, Clone)]
pub struct RequestTarget {
    raw: Bytes,
    form: Form,
    authority: Range<usize>,
    path: Range<usize>,
    query: Option<Range<usize>>,
}

impl RequestTarget {
    /// Parses `raw` (as httparse accepted it: no spaces or control bytes).
    pub fn parse(raw: Bytes) -> Result<Self, TargetError> {
        let text = std::str::from_utf8(&raw).map_err(|_| TargetError::Malformed("request target is not UTF-8"))?;
        let bytes = text.as_bytes();
        let (form, authority, path_start) = if bytes.first() == Some(&b'/') {
            (Form::Origin, 0..0, 0)
        } else if text == "*" {
            return Ok(Self {
                form: Form::Asterisk,
                authority: 0..0,
                path: 0..1,
                query: None,
                raw,
            });
        } else {
            let scheme_end = if starts_with_ignore_case(bytes, b"http://") {
                7
            } else if starts_with_ignore_case(bytes, b"https://") {
                8
            } else {
                return Err(TargetError::Malformed("bad request target"));
            };
            let end = bytes[scheme_end..]
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .map_or(bytes.len(), |i| scheme_end + i);
            let authority = &bytes[scheme_end..end];
            if authority.contains(&b'@') {
                return Err(TargetError::BadHost("userinfo in the request target"));
            }
            if !valid_host(authority) {
                return Err(TargetError::BadHost("invalid host in the request target"));
            }
            (Form::Absolute, scheme_end..end, end)
        };
        let rest = &bytes[path_start..];
        let (path, query) = match rest.iter().position(|&b| b == b'?') {
            Some(q) => (path_start..path_start + q, Some(path_start + q + 1..bytes.len())),
            None => (path_start..bytes.len(), None),
        };
        if query.as_ref().is_some_and(|q| bytes[q.clone()].contains(&b'#')) {
            return Err(TargetError::Malformed("fragment in the request target"));
        }
        Ok(Self {
            raw,
            form,
            authority,
            path,
            query,
        })
    }

    /// The target exactly as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn form(&self) -> Form {
        self.form
    }

    fn str(&self, r: Range<usize>) -> &str {
        // Checked to be UTF-8 by `parse`; ranges split at ASCII bytes.
        std::str::from_utf8(&self.raw[r]).unwrap_or("")
    }

    /// The path as received, without the query: `/` for an absolute-form
    /// target with an empty path, `*` for the asterisk form.
    pub fn path(&self) -> &str {
        if self.path.is_empty() {
            "/"
        } else {
            self.str(self.path.clone())
        }
    }

    /// The query, without its `?`.
    pub fn query(&self) -> Option<&str> {
        self.query.clone().map(|q| self.str(q))
    }

    /// The authority of an absolute-form target.
    pub fn authority(&self) -> Option<&str> {
        (self.form == Form::Absolute).then(|| self.str(self.authority.clone()))
    }
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parts<'a> = (Form, Option<&'a str>, &'a str, Option<&'a str>);

    fn check(raw: &'static str, expected: Result<Parts<'_>, TargetError>) {
        let got = RequestTarget::parse(Bytes::from_static(raw.as_bytes()));
        let got = got
            .as_ref()
            .map(|t| (t.form(), t.authority(), t.path(), t.query()))
            .map_err(|e| *e);
        assert_eq!(got, expected, "{raw:?}");
    }

    #[test]
    fn forms() {
        use Form::*;
        check("/a/b?x=1", Ok((Origin, None, "/a/b", Some("x=1"))));
        check("/", Ok((Origin, None, "/", None)));
        check("/a?", Ok((Origin, None, "/a", Some(""))));
        check("http://h/a?q", Ok((Absolute, Some("h"), "/a", Some("q"))));
        check("HTTP://H:8080", Ok((Absolute, Some("H:8080"), "/", None)));
        // The query of an empty path is not a path: regression for the log
        // recording `/x` while routing used `/`.
        check("http://h?q=/x", Ok((Absolute, Some("h"), "/", Some("q=/x"))));
        check("https://h/x", Ok((Absolute, Some("h"), "/x", None)));
        check("*", Ok((Asterisk, None, "*", None)));
        check(
            "http://user@h/",
            Err(TargetError::BadHost("userinfo in the request target")),
        );
        check(
            "http://user:pw@h/",
            Err(TargetError::BadHost("userinfo in the request target")),
        );
        check(
            "http:///x",
            Err(TargetError::BadHost("invalid host in the request target")),
        );
        check("ftp://h/x", Err(TargetError::Malformed("bad request target")));
        check("h:443", Err(TargetError::Malformed("bad request target")));
        check("/a?b#c", Err(TargetError::Malformed("fragment in the request target")));
    }
}
