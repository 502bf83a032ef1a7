//! Request head parsing and the framing checks of SPEC §6.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Version};

/// How the request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    None,
    Length(u64),
    Chunked,
}

/// A parsed, framing-checked request head.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    /// The request-target as received.
    pub target: Bytes,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: BodyKind,
    /// The client allows the connection to be reused after this exchange.
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl RequestHead {
    /// Path part of the target (origin-form or absolute-form), without query.
    pub fn path(&self) -> &str {
        let t = target_str(&self.target);
        let t = strip_scheme_authority(t);
        t.split_once('?').map_or(t, |(p, _)| p)
    }

    pub fn query(&self) -> Option<&str> {
        target_str(&self.target).split_once('?').map(|(_, q)| q)
    }

    /// The host the request is for: the absolute-form authority, else `Host`.
    pub fn host(&self) -> Option<&str> {
        let t = target_str(&self.target);
        if let Some(rest) = t.strip_prefix("http://").or_else(|| t.strip_prefix("https://")) {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            return Some(&rest[..end]);
        }
        self.headers.get(header::HOST).and_then(|h| h.to_str().ok())
    }

    /// The target's path and query, for forwarding (origin-form).
    pub fn path_and_query(&self) -> &str {
        strip_scheme_authority(target_str(&self.target))
    }
}

fn target_str(t: &Bytes) -> &str {
    // httparse accepts only visible ASCII in the target.
    std::str::from_utf8(t).unwrap_or("")
}

fn strip_scheme_authority(t: &str) -> &str {
    match t.strip_prefix("http://").or_else(|| t.strip_prefix("https://")) {
        Some(rest) => match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            Some(_) | None => "/",
        },
        None => t,
    }
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Syntax or framing error: 400.
    Malformed(&'static str),
    /// Head larger than `maxHeaderBytes` or more than `maxHeaders` fields: 431.
    TooLarge,
}

/// Partially parsed facts, kept for the access log of a refused request.
#[derive(Debug, Default, Clone)]
pub struct Partial {
    pub method: Option<Method>,
    pub target: Option<Bytes>,
}

pub enum Parsed {
    /// The head, and how many bytes of the buffer it took.
    Complete(RequestHead),
    /// More bytes needed.
    Incomplete,
    Refused(HeadError, Partial),
}

const STACK_HEADERS: usize = 128;

/// Parses one head from the front of `buf`, consuming it when complete.
pub fn parse(buf: &mut BytesMut, max_bytes: usize, max_headers: usize) -> Parsed {
    parse_into(buf, max_bytes, max_headers, HeaderMap::new())
}

/// As [`parse`], filling `headers` (emptied first), so a connection can reuse
/// one map's storage for all its requests.
pub fn parse_into(buf: &mut BytesMut, max_bytes: usize, max_headers: usize, map: HeaderMap) -> Parsed {
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
    // Where each header's name and value sit in the head, kept on the stack
    // (the head is frozen into `Bytes` before the header map is built).
    let count = req.headers.len();
    let mut stack_spans = [[0u32; 4]; STACK_HEADERS];
    let mut heap_spans: Vec<[u32; 4]>;
    let spans: &mut [[u32; 4]] = if count <= STACK_HEADERS {
        &mut stack_spans[..count]
    } else {
        heap_spans = vec![[0; 4]; count];
        &mut heap_spans
    };
    for (span, h) in spans.iter_mut().zip(req.headers.iter()) {
        let (n, v) = (frozen_range(h.name.as_bytes()), frozen_range(h.value));
        *span = [n.start as u32, n.end as u32, v.start as u32, v.end as u32];
    }
    let head_bytes = buf.split_to(len).freeze();
    let Some(target) = target_range.map(|r| head_bytes.slice(r)) else {
        return Parsed::Refused(HeadError::Malformed("missing request target"), Partial::default());
    };
    // What a refused request's log line shows; built only when refusing.
    let refuse = |why: &'static str| {
        Parsed::Refused(
            HeadError::Malformed(why),
            Partial {
                method: Some(method.clone()),
                target: Some(target.clone()),
            },
        )
    };

    // Room for a policy's added headers without regrowing, in the common case.
    let mut headers = map;
    headers.clear();
    headers.reserve(count + 3);
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut saw_te = false;
    let mut hosts = 0;
    let mut close = false;
    let mut keep_alive_token = false;
    let mut expect_continue = false;
    for &[ns, ne, vs, ve] in spans.iter() {
        let Ok(name) = HeaderName::from_bytes(&head_bytes[ns as usize..ne as usize]) else {
            return refuse("bad header name");
        };
        let Ok(value) = HeaderValue::from_maybe_shared(head_bytes.slice(vs as usize..ve as usize)) else {
            return refuse("bad header value");
        };
        match name {
            header::CONTENT_LENGTH => {
                let Some(n) = parse_content_length(value.as_bytes()) else {
                    return refuse("bad Content-Length");
                };
                if content_length.is_some_and(|prev| prev != n) {
                    return refuse("conflicting Content-Length headers");
                }
                content_length = Some(n);
            }
            header::TRANSFER_ENCODING => {
                if saw_te {
                    return refuse("repeated Transfer-Encoding");
                }
                saw_te = true;
                if !value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    return refuse("unsupported Transfer-Encoding");
                }
                chunked = true;
            }
            header::HOST => hosts += 1,
            header::CONNECTION => {
                for token in value.as_bytes().split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    close |= token.eq_ignore_ascii_case(b"close");
                    keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
            header::EXPECT if value.as_bytes().trim_ascii().eq_ignore_ascii_case(b"100-continue") => {
                expect_continue = true;
            }
            _ => {}
        }
        headers.append(name, value);
    }
    if chunked && content_length.is_some() {
        return refuse("both Content-Length and Transfer-Encoding");
    }
    if chunked && version == Version::HTTP_10 {
        return refuse("Transfer-Encoding in an HTTP/1.0 request");
    }
    if hosts > 1 {
        return refuse("more than one Host header");
    }
    let absolute = target.starts_with(b"http://") || target.starts_with(b"https://");
    if hosts == 0 && !absolute && version == Version::HTTP_11 {
        return refuse("missing Host header");
    }
    let body = match (chunked, content_length) {
        (true, _) => BodyKind::Chunked,
        (false, Some(0)) | (false, None) => BodyKind::None,
        (false, Some(n)) => BodyKind::Length(n),
    };
    let keep_alive = match version {
        Version::HTTP_11 => !close,
        _ => keep_alive_token && !close,
    };
    Parsed::Complete(RequestHead {
        method,
        target,
        version,
        headers,
        body,
        keep_alive,
        expect_continue,
    })
}

fn parse_content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
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
        let cases: [(&str, Expected); 14] = [
            ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", Ok((None, true))),
            ("GET / HTTP/1.0\r\n\r\n", Ok((None, false))),
            ("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Ok((None, true))),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                Ok((None, false)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
                Ok((Length(5), true)),
            ),
            (
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
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
            ("GET / HTTP/1.1\r\n\r\n", Err(Malformed("missing Host header"))),
            ("GET http://a/x HTTP/1.1\r\n\r\n", Ok((None, true))),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Err(Malformed("more than one Host header")),
            ),
        ];
        for (raw, expected) in cases {
            check(raw, expected);
        }
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
    fn absolute_form_gives_host_and_path() {
        let mut buf = BytesMut::from("GET http://Example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: other\r\n\r\n");
        let Parsed::Complete(h) = parse(&mut buf, 16_384, 100) else {
            panic!()
        };
        assert_eq!(h.host(), Some("Example.com:8080"));
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), Some("q=1"));
        assert_eq!(h.path_and_query(), "/a/b?q=1");
    }
}
