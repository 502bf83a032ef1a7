//! The write side: the forwarded request head, and body framing (`Framing`
//! chooses it, `Framing::frame` lays out one vectored write). Every forwarded
//! message carries framing the gateway wrote from the length it validated.

use std::io::IoSlice;

use bytes::{BufMut, BytesMut};
use http::header::{HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::headers::{is_hop_by_hop, listed_in};
use crate::request::BodyKind;

pub(crate) fn status_line(out: &mut BytesMut, status: StatusCode) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
}

pub(crate) fn header_line(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_slice(name);
    out.put_slice(b": ");
    out.put_slice(value);
    out.put_slice(b"\r\n");
}

/// The request head sent upstream.
#[derive(Debug)]
pub struct Forward<'a> {
    pub method: &'a Method,
    /// The origin-form target, in pieces written one after another.
    pub target: [&'a [u8]; 4],
    pub headers: &'a HeaderMap,
    /// The `Host` to send (the received one, or an absolute-form authority).
    pub host: &'a [u8],
    /// `X-Forwarded-Host`.
    pub forwarded_host: &'a [u8],
    /// Appended to `X-Forwarded-For`.
    pub client_ip: &'a [u8],
    /// `X-Forwarded-Proto`.
    pub proto: &'a [u8],
    pub body: BodyKind,
}

/// Headers the forwarded head never copies from the client: hop-by-hop ones,
/// those the gateway writes itself (framing, `Host`, `X-Forwarded-*`), and
/// `Expect` (the gateway answers `100-continue` itself).
fn rewritten(name: &str) -> bool {
    matches!(
        name,
        "host" | "content-length" | "expect" | "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host"
    ) || is_hop_by_hop(name.as_bytes())
}

/// Encodes the forwarded request head: request line, `Host`, the client's
/// end-to-end headers (minus those its `Connection` names), `X-Forwarded-*`,
/// then the body framing of the gateway's own choosing.
pub fn encode_request(out: &mut BytesMut, f: &Forward<'_>) {
    out.put_slice(f.method.as_str().as_bytes());
    out.put_u8(b' ');
    for piece in f.target {
        out.put_slice(piece);
    }
    out.put_slice(b" HTTP/1.1\r\n");
    header_line(out, b"host", f.host);
    let connection = f.headers.get_all(http::header::CONNECTION);
    let names_headers = connection
        .iter()
        .any(|v| !v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"keep-alive") && !v.is_empty());
    for (name, value) in f.headers {
        let n = name.as_str();
        // `HeaderName`s are lowercase: exact matches suffice.
        if rewritten(n) || (names_headers && listed_in(connection.iter().map(HeaderValue::as_bytes), n.as_bytes())) {
            continue;
        }
        header_line(out, n.as_bytes(), value.as_bytes());
    }
    out.put_slice(b"x-forwarded-for: ");
    for prior in f.headers.get_all("x-forwarded-for") {
        out.put_slice(prior.as_bytes());
        out.put_slice(b", ");
    }
    out.put_slice(f.client_ip);
    out.put_slice(b"\r\n");
    header_line(out, b"x-forwarded-proto", f.proto);
    header_line(out, b"x-forwarded-host", f.forwarded_host);
    match f.body {
        BodyKind::None => {}
        BodyKind::Length(n) => header_line(out, b"content-length", itoa::Buffer::new().format(n).as_bytes()),
        BodyKind::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.put_slice(b"\r\n");
}

/// How a body is framed on the write side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes follow (HEAD, 1xx, 204, 304).
    NoBody,
    /// A `Content-Length` the gateway wrote.
    Length,
    Chunked,
    /// HTTP/1.0 client, unknown length: the body ends when the connection closes.
    Close,
}

impl Framing {
    /// The framing of a response to `method` with `status`, towards a client
    /// speaking `version`.
    pub fn choose(method: &Method, status: StatusCode, has_length: bool, version: Version) -> Framing {
        if *method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Framing::NoBody
        } else if has_length {
            Framing::Length
        } else if version == Version::HTTP_11 {
            Framing::Chunked
        } else {
            Framing::Close
        }
    }

    /// The pieces of one vectored write: `head` (not yet sent, or empty), then
    /// `data` framed (as one chunk when chunked), followed at `end` by the
    /// last chunk. `size` must come from [`ChunkSize::new`] for `data`.
    pub fn frame<'a>(self, head: &'a [u8], size: &'a ChunkSize, data: &'a [u8], end: bool) -> [IoSlice<'a>; 5] {
        let data = if self == Framing::NoBody { &[][..] } else { data };
        let chunked = self == Framing::Chunked;
        let framed = chunked && !data.is_empty();
        let terminal: &[u8] = if end && chunked { b"0\r\n\r\n" } else { b"" };
        [
            IoSlice::new(head),
            IoSlice::new(if framed { size.as_bytes() } else { &[] }),
            IoSlice::new(data),
            IoSlice::new(if framed { b"\r\n" } else { &[] }),
            IoSlice::new(terminal),
        ]
    }
}

impl From<BodyKind> for Framing {
    /// The framing of a forwarded request body.
    fn from(body: BodyKind) -> Self {
        match body {
            BodyKind::None => Framing::NoBody,
            BodyKind::Length(_) => Framing::Length,
            BodyKind::Chunked => Framing::Chunked,
        }
    }
}

/// A chunk-size line (`<hex>\r\n`) on the stack.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSize {
    buf: [u8; 18],
    len: usize,
}

impl ChunkSize {
    pub fn new(mut n: usize) -> Self {
        let mut tmp = [0u8; 16];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b"0123456789abcdef"[n & 0xf];
            n >>= 4;
            if n == 0 {
                break;
            }
        }
        let digits = tmp.len() - i;
        let mut buf = [0u8; 18];
        buf[..digits].copy_from_slice(&tmp[i..]);
        buf[digits] = b'\r';
        buf[digits + 1] = b'\n';
        Self { buf, len: digits + 2 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header;

    #[test]
    fn chunk_sizes() {
        for (len, expected) in [(0, "0\r\n"), (5, "5\r\n"), (255, "ff\r\n"), (65_536, "10000\r\n")] {
            assert_eq!(ChunkSize::new(len).as_bytes(), expected.as_bytes());
        }
    }

    fn forward(headers: &HeaderMap, body: BodyKind) -> String {
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            &Forward {
                method: &Method::POST,
                target: [b"/v1/x", b"?q=1", b"", b""],
                headers,
                host: b"api.example.com",
                forwarded_host: b"api.example.com",
                client_ip: b"127.0.0.1",
                proto: b"http",
                body,
            },
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn forwarded_request_head() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("api.example.com"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        assert_eq!(
            forward(&h, BodyKind::Length(3)),
            "POST /v1/x?q=1 HTTP/1.1\r\nhost: api.example.com\r\nx-kept: yes\r\n\
             x-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: api.example.com\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn connection_never_removes_framing_or_host() {
        // Regression: `Connection: Content-Length` dropped the length while the
        // body was forwarded, so the upstream read the body as a second request.
        for connection in [
            "Content-Length",
            "keep-alive, content-length",
            "HOST, Transfer-Encoding",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("a"));
            h.insert(header::CONNECTION, HeaderValue::from_str(connection).expect("value"));
            h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3"));
            let out = forward(&h, BodyKind::Length(3));
            assert!(out.contains("\r\ncontent-length: 3\r\n"), "{connection}: {out}");
            assert!(out.contains("\r\nhost: api.example.com\r\n"), "{connection}: {out}");
            let chunked = forward(&h, BodyKind::Chunked);
            assert!(
                chunked.contains("\r\ntransfer-encoding: chunked\r\n"),
                "{connection}: {chunked}"
            );
            assert!(!chunked.contains("content-length"), "{connection}: {chunked}");
        }
    }
}
