//! Request heads: httparse under the configured limits, then the framing,
//! host and method rules of SPEC §4.1 and §6, decided once per head.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{Method, Version};

use crate::fields::Fields;
use crate::headers::{ConnectionTokens, Known, parse_content_length, valid_host};
use crate::target::{Form, RequestTarget, TargetError};

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    /// A declared `Content-Length` (0 included: it is forwarded as declared).
    Length(u64),
    Chunked,
}

impl BodyKind {
    /// Whether body bytes follow the head.
    pub fn has_body(self) -> bool {
        !matches!(self, BodyKind::None | BodyKind::Length(0))
    }
}

/// A parsed request head whose framing, host and method passed every check.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub target: RequestTarget,
    pub version: Version,
    pub headers: Fields,
    pub body: BodyKind,
    /// The host the request is for: the absolute-form authority, else `Host`
    /// (validated; with any port).
    pub host: Bytes,
    /// The client allows the connection to be reused after this exchange.
    pub keep_alive: bool,
    pub expect_continue: bool,
    /// A WebSocket opening handshake (SPEC §14): an HTTP/1.1 `GET` without a
    /// body whose `Connection` has `upgrade` and whose `Upgrade` names
    /// `websocket`. Only then are the two headers forwarded.
    pub websocket: bool,
}

impl RequestHead {
    /// The host as text (validated ASCII).
    pub fn host_str(&self) -> &str {
        std::str::from_utf8(&self.host).unwrap_or("")
    }
}

/// Why a head was refused; the gateway's `error.rs` maps each to a status and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Syntax or framing error (400 `bad_request`), with the reason.
    Malformed(&'static str),
    /// Missing, empty, repeated or invalid host (400 `bad_host`).
    BadHost(&'static str),
    /// Head larger than `maxHeaderBytes` or more than `maxHeaders` fields (431).
    TooLarge,
    /// A method the gateway never forwards (`TRACE`): 405.
    MethodNotAllowed,
    /// An `Expect` other than `100-continue`: 417.
    ExpectationFailed,
}

/// What is known of a refused request, for its access-log line.
#[derive(Debug, Default, Clone)]
pub struct Partial {
    pub method: Option<Method>,
    pub target: Option<Bytes>,
}

#[derive(Debug)]
pub enum Parsed {
    Complete(RequestHead),
    /// More bytes needed.
    Incomplete,
    Refused(HeadError, Partial),
}

/// Header slots parsed on the stack; more (`maxHeaders` above it) go to the heap.
const STACK_HEADERS: usize = 128;

/// Parses one head from the front of `buf`, consuming it when complete.
pub fn parse(buf: &mut BytesMut, max_bytes: usize, max_headers: usize) -> Parsed {
    parse_into(buf, max_bytes, max_headers, Fields::default())
}

/// As [`parse`], filling `fields` (emptied first), so a connection can reuse
/// their storage for all its requests.
pub fn parse_into(buf: &mut BytesMut, max_bytes: usize, max_headers: usize, fields: Fields) -> Parsed {
    // Leading empty lines before a request line are allowed (RFC 9112 §2.2).
    while buf.starts_with(b"\r\n") {
        let _ = buf.split_to(2);
    }
    while buf.starts_with(b"\n") {
        let _ = buf.split_to(1);
    }
    let mut stack: [MaybeUninit<httparse::Header<'_>>; STACK_HEADERS] =
        [const { MaybeUninit::uninit() }; STACK_HEADERS];
    let mut heap: Vec<MaybeUninit<httparse::Header<'_>>>;
    let headers: &mut [MaybeUninit<httparse::Header<'_>>] = if max_headers <= STACK_HEADERS {
        &mut stack[..max_headers]
    } else {
        heap = (0..max_headers).map(|_| MaybeUninit::uninit()).collect();
        &mut heap
    };
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(buf, headers);
    let partial = |req: &httparse::Request<'_, '_>| Partial {
        method: req.method.and_then(|m| Method::from_bytes(m.as_bytes()).ok()),
        target: req.path.map(|p| Bytes::copy_from_slice(p.as_bytes())),
    };
    let len = match status {
        Ok(httparse::Status::Complete(len)) if len > max_bytes => {
            return Parsed::Refused(HeadError::TooLarge, partial(&req));
        }
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > max_bytes => {
            return Parsed::Refused(HeadError::TooLarge, partial(&req));
        }
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Refused(HeadError::TooLarge, partial(&req)),
        Err(e) => {
            let why = match e {
                httparse::Error::Version => "bad HTTP version",
                httparse::Error::Token => "bad method or request target",
                httparse::Error::NewLine | httparse::Error::Status => "bad request line",
                httparse::Error::HeaderName => "bad header name",
                httparse::Error::HeaderValue => "bad header value",
                _ => "bad header",
            };
            return Parsed::Refused(HeadError::Malformed(why), partial(&req));
        }
    };
    let Some(method) = req.method.and_then(|m| Method::from_bytes(m.as_bytes()).ok()) else {
        return Parsed::Refused(HeadError::Malformed("bad method"), partial(&req));
    };
    let version = if req.version == Some(1) {
        Version::HTTP_11
    } else {
        Version::HTTP_10
    };
    let base = buf.as_ptr() as usize;
    let frozen_range = |s: &[u8]| {
        let start = s.as_ptr() as usize - base;
        start..start + s.len()
    };
    let target_range = req.path.map(|p| frozen_range(p.as_bytes()));
    // Where each field's name and value sit in the head, classified now
    // (the head is frozen into `Bytes` once httparse lets go of the buffer).
    let count = req.headers.len();
    let mut headers = fields;
    headers.begin(count);
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        headers.push(frozen_range(name), frozen_range(h.value), Known::of(name));
    }
    let head_bytes = buf.split_to(len).freeze();
    headers.set_head(head_bytes.clone());
    let Some(raw_target) = target_range.map(|r| head_bytes.slice(r)) else {
        return Parsed::Refused(HeadError::Malformed("missing request target"), Partial::default());
    };
    // What a refused request's log line shows; built only when refusing.
    let refuse = |error: HeadError| {
        Parsed::Refused(
            error,
            Partial {
                method: Some(method.clone()),
                target: Some(raw_target.clone()),
            },
        )
    };

    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_te = false;
    let mut host: Option<Bytes> = None;
    let mut hosts = 0;
    let mut connection = ConnectionTokens::default();
    let mut expect_continue = false;
    let mut expect_other = false;
    let mut upgrade_websocket = false;
    // httparse already refused names that are not tokens and values with a
    // control byte (but HTAB) or DEL.
    for (kind, value, range) in headers.received() {
        match kind {
            Known::ContentLength => {
                let Some(n) = parse_content_length(value) else {
                    return refuse(HeadError::Malformed("bad Content-Length"));
                };
                if content_length.is_some_and(|prev| prev != n) {
                    return refuse(HeadError::Malformed("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            Known::TransferEncoding => {
                if saw_te {
                    return refuse(HeadError::Malformed("repeated Transfer-Encoding"));
                }
                saw_te = true;
                if !value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return refuse(HeadError::Malformed("unsupported Transfer-Encoding"));
                }
                chunked = true;
            }
            Known::Host => {
                hosts += 1;
                host = Some(head_bytes.slice(range));
            }
            Known::Connection => connection.add(value),
            Known::Upgrade => upgrade_websocket |= crate::headers::has_token(value, b"websocket"),
            Known::Expect => {
                if value.trim_ascii().eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    expect_other = true;
                }
            }
            _ => {}
        }
    }
    // Framing first: whatever else is wrong, a message of uncertain length
    // must never be read past.
    if chunked && content_length.is_some() {
        return refuse(HeadError::Malformed("both Content-Length and Transfer-Encoding"));
    }
    if chunked && version == Version::HTTP_10 {
        return refuse(HeadError::Malformed("Transfer-Encoding in an HTTP/1.0 request"));
    }
    let target = match RequestTarget::parse(raw_target.clone()) {
        Ok(t) => t,
        Err(TargetError::Malformed(why)) => return refuse(HeadError::Malformed(why)),
        Err(TargetError::BadHost(why)) => return refuse(HeadError::BadHost(why)),
    };
    if hosts > 1 {
        return refuse(HeadError::BadHost("more than one Host header"));
    }
    if let Some(h) = &host
        && !valid_host(h)
    {
        return refuse(HeadError::BadHost(if h.is_empty() {
            "empty Host header"
        } else {
            "invalid Host header"
        }));
    }
    // HTTP/1.1 requires `Host` even with an absolute-form target (RFC 9112 §3.2).
    if host.is_none() && version == Version::HTTP_11 {
        return refuse(HeadError::BadHost("missing Host header"));
    }
    let host = match (target.authority(), host) {
        (Some(authority), _) => raw_target.slice_ref(authority.as_bytes()),
        (None, Some(h)) => h,
        (None, None) => return refuse(HeadError::BadHost("missing Host header")),
    };
    if target.form() == Form::Asterisk && method != Method::OPTIONS {
        return refuse(HeadError::Malformed("\"*\" is a target for OPTIONS only"));
    }
    if method == Method::TRACE {
        return refuse(HeadError::MethodNotAllowed);
    }
    if expect_other {
        return refuse(HeadError::ExpectationFailed);
    }
    let body = match (chunked, content_length) {
        (true, _) => BodyKind::Chunked,
        (false, Some(n)) => BodyKind::Length(n),
        (false, None) => BodyKind::None,
    };
    let keep_alive = match version {
        Version::HTTP_11 => !connection.close,
        _ => connection.keep_alive && !connection.close,
    };
    let websocket = version == Version::HTTP_11
        && method == Method::GET
        && connection.upgrade
        && upgrade_websocket
        && matches!(body, BodyKind::None | BodyKind::Length(0));
    Parsed::Complete(RequestHead {
        method,
        target,
        version,
        headers,
        body,
        host,
        keep_alive,
        // An HTTP/1.0 client does not know interim responses: it would read
        // a `100` as the answer (RFC 9110 §10.1.1: "MUST ignore").
        expect_continue: expect_continue && version == Version::HTTP_11,
        websocket,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Expected = Result<(BodyKind, bool), HeadError>;

    fn check(raw: &str, expected: Expected) {
        let mut buf = BytesMut::from(raw);
        let got = match parse(&mut buf, 16_384, 100) {
            Parsed::Complete(h) => Ok((h.body, h.keep_alive)),
            Parsed::Refused(e, _) => Err(e),
            Parsed::Incomplete => panic!("incomplete: {raw:?}"),
        };
        assert_eq!(got, expected, "{raw:?}");
    }

    #[test]
    fn framing_rules() {
        use BodyKind::*;
        use HeadError::*;
        let cases: &[(&str, Expected)] = &[
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
            ("GET / HTTP/1.0\r\nHost: a\r\n\r\n", Ok((None, false))),
            (
                "GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n",
                Ok((None, true)),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                Ok((None, false)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                Ok((Length(5), true)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
                Ok((Length(0), true)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                Ok((Length(5), true)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
                Ok((Length(5), true)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                Ok((Chunked, true)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                Err(Malformed("conflicting Content-Length headers")),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
                Err(Malformed("bad Content-Length")),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(Malformed("both Content-Length and Transfer-Encoding")),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                Err(Malformed("unsupported Transfer-Encoding")),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                Err(Malformed("bad Content-Length")),
            ),
            // A `Connection` token naming a framing header changes nothing.
            (
                "POST / HTTP/1.1\r\nHost: a\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\n",
                Ok((Length(5), true)),
            ),
        ];
        for (raw, expected) in cases {
            check(raw, *expected);
        }
    }

    #[test]
    fn host_rules() {
        use HeadError::*;
        let cases: &[(&str, Expected)] = &[
            ("GET / HTTP/1.1\r\n\r\n", Err(BadHost("missing Host header"))),
            ("GET / HTTP/1.0\r\n\r\n", Err(BadHost("missing Host header"))),
            // HTTP/1.1 needs Host even with an absolute-form target.
            ("GET http://a/x HTTP/1.1\r\n\r\n", Err(BadHost("missing Host header"))),
            ("GET http://a/x HTTP/1.0\r\n\r\n", Ok((BodyKind::None, false))),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Err(BadHost("more than one Host header")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
                Err(BadHost("more than one Host header")),
            ),
            ("GET / HTTP/1.1\r\nHost:\r\n\r\n", Err(BadHost("empty Host header"))),
            (
                "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
                Err(BadHost("invalid Host header")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
                Err(BadHost("invalid Host header")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n",
                Err(BadHost("invalid Host header")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: \"a\"\r\n\r\n",
                Err(BadHost("invalid Host header")),
            ),
            (
                "GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n",
                Err(BadHost("invalid Host header")),
            ),
            (
                "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
                Err(BadHost("userinfo in the request target")),
            ),
        ];
        for (raw, expected) in cases {
            check(raw, *expected);
        }
    }

    #[test]
    fn methods_and_expectations() {
        use HeadError::*;
        check("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", Err(MethodNotAllowed));
        check(
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
            Ok((BodyKind::Length(1), true)),
        );
        let expects = |raw: &str| match parse(&mut BytesMut::from(raw), 16_384, 100) {
            Parsed::Complete(head) => head.expect_continue,
            other => panic!("{raw:?}: {other:?}"),
        };
        assert!(expects(
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n"
        ));
        assert!(!expects(
            "POST / HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"
        ));
        check(
            "POST / HTTP/1.1\r\nHost: a\r\nExpect: something-else\r\n\r\n",
            Err(ExpectationFailed),
        );
        check("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Ok((BodyKind::None, true)));
        check(
            "GET * HTTP/1.1\r\nHost: a\r\n\r\n",
            Err(Malformed("\"*\" is a target for OPTIONS only")),
        );
    }

    #[test]
    fn limits_give_too_large() {
        let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "a".repeat(2000)).as_str());
        assert!(matches!(
            parse(&mut buf, 1024, 100),
            Parsed::Refused(HeadError::TooLarge, _)
        ));
        let many: String = (0..5).map(|i| format!("X-{i}: v\r\n")).collect();
        let mut buf = BytesMut::from(format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n").as_str());
        assert!(matches!(
            parse(&mut buf, 16_384, 4),
            Parsed::Refused(HeadError::TooLarge, _)
        ));
    }

    #[test]
    fn absolute_form_host_replaces_the_header() {
        let mut buf = BytesMut::from("GET http://Example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        let Parsed::Complete(h) = parse(&mut buf, 16_384, 100) else {
            panic!()
        };
        assert_eq!(h.host_str(), "Example.com:8080");
        assert_eq!(h.target.path(), "/a/b");
        assert_eq!(h.target.query(), Some("q=1"));
    }
}
