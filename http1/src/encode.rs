//! The write side: the forwarded request head, and body framing (`Framing`
//! chooses it, `Framing::frame` lays out one vectored write). Every forwarded
//! message carries framing the gateway wrote from the length it validated.

use std::io::IoSlice;

use bytes::{BufMut, BytesMut};
use http::{Method, StatusCode, Version};

use crate::fields::{Fields, Line};
use crate::filter::Filter;
use crate::headers::{ConnectionTokens, Known, listed_in};
use crate::request::BodyKind;

pub(crate) fn status_line(out: &mut BytesMut, status: StatusCode) {
    // The common ones without looking the reason phrase up.
    let line: &[u8] = match status.as_u16() {
        200 => b"HTTP/1.1 200 OK\r\n",
        204 => b"HTTP/1.1 204 No Content\r\n",
        301 => b"HTTP/1.1 301 Moved Permanently\r\n",
        302 => b"HTTP/1.1 302 Found\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        _ => b"",
    };
    if !line.is_empty() {
        out.put_slice(line);
        return;
    }
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
    pub headers: &'a Fields,
    /// The `Host` to send (the received one, or an absolute-form authority).
    pub host: &'a [u8],
    /// `X-Forwarded-Host`.
    pub forwarded_host: &'a [u8],
    /// Appended to `X-Forwarded-For`.
    pub client_ip: &'a [u8],
    /// `X-Forwarded-Proto`.
    pub proto: &'a [u8],
    pub body: BodyKind,
    /// The route's request-header filter.
    pub filter: &'a Filter,
    /// A WebSocket opening handshake: `Connection: upgrade` and `Upgrade:
    /// websocket` are forwarded (the gateway writes them; every other
    /// `Upgrade` is dropped as hop-by-hop).
    pub websocket: bool,
}

/// Headers the forwarded head never copies from the client: hop-by-hop ones,
/// those the gateway writes itself (framing, `Host`, `X-Forwarded-*`), and
/// `Expect` (the gateway answers `100-continue` itself).
fn rewritten(kind: Known) -> bool {
    kind.is_hop_by_hop()
        || matches!(
            kind,
            Known::Host
                | Known::ContentLength
                | Known::Expect
                | Known::XForwardedFor
                | Known::XForwardedProto
                | Known::XForwardedHost
        )
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
    let mut tokens = ConnectionTokens::default();
    let mut forwarded_for = false;
    for (_, value, kind) in f.headers.iter() {
        match kind {
            Known::Connection => tokens.add(value),
            Known::XForwardedFor => forwarded_for = true,
            _ => {}
        }
    }
    let connection = || {
        f.headers
            .iter()
            .filter(|(_, _, k)| *k == Known::Connection)
            .map(|(_, v, _)| v)
    };
    for (line, kind) in f.headers.lines() {
        let name = match line {
            Line::Raw(_, name) | Line::Parts(name, _) => name,
        };
        if rewritten(kind) || (tokens.names_headers && listed_in(connection(), name)) || f.filter.drops(name) {
            continue;
        }
        match line {
            Line::Raw(raw, _) => {
                out.put_slice(raw);
                out.put_slice(b"\r\n");
            }
            Line::Parts(name, value) => header_line(out, name, value),
        }
    }
    for (name, value) in f.filter.added() {
        header_line(out, name, value);
    }
    out.put_slice(b"x-forwarded-for: ");
    if forwarded_for {
        for (_, prior, _) in f.headers.iter().filter(|(_, _, k)| *k == Known::XForwardedFor) {
            out.put_slice(prior);
            out.put_slice(b", ");
        }
    }
    out.put_slice(f.client_ip);
    out.put_slice(b"\r\n");
    header_line(out, b"x-forwarded-proto", f.proto);
    header_line(out, b"x-forwarded-host", f.forwarded_host);
    if f.websocket {
        out.put_slice(b"connection: upgrade\r\nupgrade: websocket\r\n");
    }
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

    #[test]
    fn chunk_sizes() {
        for (len, expected) in [(0, "0\r\n"), (5, "5\r\n"), (255, "ff\r\n"), (65_536, "10000\r\n")] {
            assert_eq!(ChunkSize::new(len).as_bytes(), expected.as_bytes());
        }
    }

    /// The forwarded head of a request whose header lines are `lines`.
    fn forward(lines: &str, body: BodyKind) -> String {
        forward_with(lines, body, Filter::none())
    }

    fn forward_with(lines: &str, body: BodyKind, filter: &Filter) -> String {
        let mut buf = BytesMut::from(format!("POST /x HTTP/1.1\r\n{lines}\r\n").as_str());
        let crate::Parsed::Complete(head) = crate::parse(&mut buf, 16_384, 100) else {
            panic!("test head refused: {lines:?}");
        };
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            &Forward {
                method: &Method::POST,
                target: [b"/v1/x", b"?q=1", b"", b""],
                headers: &head.headers,
                host: b"api.example.com",
                forwarded_host: b"api.example.com",
                client_ip: b"127.0.0.1",
                proto: b"http",
                body,
                filter,
                websocket: false,
            },
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn forwarded_request_head() {
        let lines = "Host: api.example.com\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2\r\n\
                     X-Forwarded-Proto: https\r\nConnection: close, x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
                     TE: trailers\r\nExpect: 100-continue\r\nContent-Length: 3\r\nX-Kept: yes\r\n";
        assert_eq!(
            forward(lines, BodyKind::Length(3)),
            "POST /v1/x?q=1 HTTP/1.1\r\nhost: api.example.com\r\nX-Kept: yes\r\n\
             x-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: api.example.com\r\ncontent-length: 3\r\n\r\n"
        );
    }

    #[test]
    fn request_filters_edit_after_hop_by_hop_removal_and_before_forwarded_headers() {
        let filter = Filter::new(
            ["x-set", "X-Remove"],
            [("X-Set", "new"), ("X-Add", "two"), ("X-Set", "second")],
        );
        let lines = "Host: a\r\nX-Set: old\r\nx-set: older\r\nX-REMOVE: 1\r\nX-Add: one\r\nConnection: x-add\r\n";
        assert_eq!(
            forward_with(lines, BodyKind::None, &filter),
            "POST /v1/x?q=1 HTTP/1.1\r\nhost: api.example.com\r\nX-Set: new\r\nX-Add: two\r\nX-Set: second\r\n\
             x-forwarded-for: 127.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: api.example.com\r\n\r\n"
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
            let lines = format!("Host: a\r\nConnection: {connection}\r\nContent-Length: 3\r\n");
            let out = forward(&lines, BodyKind::Length(3));
            assert!(out.contains("\r\ncontent-length: 3\r\n"), "{connection}: {out}");
            assert!(out.contains("\r\nhost: api.example.com\r\n"), "{connection}: {out}");
            let chunked = forward(&lines, BodyKind::Chunked);
            assert!(
                chunked.contains("\r\ntransfer-encoding: chunked\r\n"),
                "{connection}: {chunked}"
            );
            assert!(!chunked.contains("content-length"), "{connection}: {chunked}");
        }
    }
}
