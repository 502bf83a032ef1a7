//! The upstream side of HTTP/1.1: encoding the forwarded request head and
//! parsing the upstream's response head straight into the client's response
//! head. Header values are copied once, from the upstream's read buffer into the
//! client's write buffer; no header map is built.

use std::mem::MaybeUninit;

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode, Version};

use super::head::BodyKind;
use super::write::{Framing, framing, header_line, is_hop_by_hop, status_line};

/// Encodes the request head sent upstream: the client's headers minus the
/// hop-by-hop ones (and those `Connection` names), then `X-Forwarded-For`
/// (appended), `X-Forwarded-Proto`, `X-Forwarded-Host` and the body framing.
pub fn request_head(
    out: &mut BytesMut,
    method: &Method,
    target: &[&[u8]],
    headers: &HeaderMap,
    client_ip: &[u8],
    host: Option<&[u8]>,
    body: BodyKind,
) {
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    for piece in target {
        out.put_slice(piece);
    }
    out.put_slice(b" HTTP/1.1\r\n");
    let mut wrote_host = false;
    let mut wrote_length = false;
    let connection = headers.get_all(header::CONNECTION);
    let names_headers = connection
        .iter()
        .any(|v| v.as_bytes().trim_ascii() != b"keep-alive" && !v.is_empty());
    for (name, value) in headers {
        let n = name.as_str();
        // `HeaderName`s are lowercase: exact matches suffice.
        let dropped = matches!(
            n,
            "connection"
                | "keep-alive"
                | "proxy-connection"
                | "te"
                | "trailer"
                | "transfer-encoding"
                | "upgrade"
                | "expect"
                | "x-forwarded-for"
                | "x-forwarded-proto"
                | "x-forwarded-host"
        );
        if dropped || (names_headers && listed_in_connection(connection.iter().map(HeaderValue::as_bytes), n)) {
            continue;
        }
        if *name == header::CONTENT_LENGTH {
            // Validated identical when repeated; forwarded once.
            if wrote_length || body == BodyKind::Chunked {
                continue;
            }
            wrote_length = true;
        }
        wrote_host |= *name == header::HOST;
        header_line(out, n.as_bytes(), value.as_bytes());
    }
    if let (false, Some(host)) = (wrote_host, host) {
        header_line(out, b"host", host);
    }
    out.put_slice(b"x-forwarded-for: ");
    for prior in headers.get_all("x-forwarded-for") {
        out.put_slice(prior.as_bytes());
        out.put_slice(b", ");
    }
    out.put_slice(client_ip);
    out.put_slice(b"\r\nx-forwarded-proto: http\r\n");
    if let Some(host) = host {
        header_line(out, b"x-forwarded-host", host);
    }
    if body == BodyKind::Chunked {
        out.put_slice(b"transfer-encoding: chunked\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Whether `name` (lowercase) is one of the comma-separated tokens of `values`.
fn listed_in_connection<'a>(mut values: impl Iterator<Item = &'a [u8]>, name: &str) -> bool {
    values.any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
    })
}

/// How the upstream frames its response body (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamBody {
    /// No body (a response to HEAD, or 204/304).
    None,
    Length(u64),
    Chunked,
    /// Delimited by the upstream closing the connection.
    Close,
}

/// A parsed upstream response head, already encoded for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// Bytes of the upstream buffer the head took.
    pub len: usize,
    pub body: UpstreamBody,
    /// The upstream allows the connection to carry another request.
    pub reusable: bool,
    /// How the body is framed towards the client.
    pub framing: Framing,
    /// The client connection stays open after this response.
    pub keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParsedResponse {
    Complete(ResponseHead),
    /// A 1xx interim response of this many bytes, to be skipped.
    Interim(usize),
    Incomplete,
    /// Not a valid HTTP/1.x response head (or larger than the buffer allows).
    Invalid,
}

/// What the response head needs to know about the request it answers.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    pub method: &'a Method,
    pub client_version: Version,
    /// The client connection may stay open (as far as the request goes).
    pub keep_alive: bool,
}

const MAX_RESPONSE_HEADERS: usize = 128;
/// Largest response head accepted from an upstream.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Parses a response head from the front of `buf`; when complete, encodes the
/// client's response head into `out` (upstream headers minus hop-by-hop ones,
/// then framing and connection headers).
pub fn response_head(buf: &[u8], answering: &Answering<'_>, out: &mut BytesMut) -> ParsedResponse {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, buf, &mut headers);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_RESPONSE_HEAD => return ParsedResponse::Incomplete,
        Ok(httparse::Status::Partial) | Err(_) => return ParsedResponse::Invalid,
    };
    let (Some(code), Some(minor)) = (res.code, res.version) else {
        return ParsedResponse::Invalid;
    };
    let Ok(status) = StatusCode::from_u16(code) else {
        return ParsedResponse::Invalid;
    };
    if status.is_informational() {
        // 101 would switch protocols, which the gateway never asks for.
        return if code == 101 {
            ParsedResponse::Invalid
        } else {
            ParsedResponse::Interim(len)
        };
    }
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut te = false;
    let mut has_connection = false;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            has_connection = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for v in h.value.split(|&b| b == b',') {
                let Some(n) = parse_length(v) else {
                    return ParsedResponse::Invalid;
                };
                if length.is_some_and(|l| l != n) {
                    return ParsedResponse::Invalid;
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            te = true;
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        }
    }
    let no_body = *answering.method == Method::HEAD || code == 204 || code == 304;
    let body = match (no_body, te, chunked, length) {
        (true, ..) => UpstreamBody::None,
        (false, true, true, _) => UpstreamBody::Chunked,
        // A final coding other than chunked: the body runs to the close.
        (false, true, false, _) => UpstreamBody::Close,
        (false, false, _, Some(n)) => UpstreamBody::Length(n),
        (false, false, _, None) => UpstreamBody::Close,
    };
    // Tokens of the `Connection` headers (rarely present: checked only then).
    let connection = |token: &[u8]| {
        has_connection
            && res
                .headers
                .iter()
                .any(|h| h.name.eq_ignore_ascii_case("connection") && has_token(h.value, token))
    };
    let close = connection(b"close");
    let reusable = body != UpstreamBody::Close && !close && (minor == 1 || connection(b"keep-alive"));
    let framing = framing(
        answering.method,
        status,
        matches!(body, UpstreamBody::Length(_)),
        answering.client_version,
    );
    let keep_alive = answering.keep_alive && framing != Framing::Close;

    status_line(out, status);
    let mut wrote_length = false;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        if is_hop_by_hop(name) || connection(name) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            // Kept once, as the single number it was validated to be, for a
            // length-framed body and for HEAD/204/304.
            let (Some(n), false, false) = (
                length,
                wrote_length,
                matches!(framing, Framing::Chunked | Framing::Close),
            ) else {
                continue;
            };
            wrote_length = true;
            header_line(out, name, itoa::Buffer::new().format(n).as_bytes());
            continue;
        }
        header_line(out, name, h.value);
    }
    if framing == Framing::Chunked {
        out.put_slice(b"transfer-encoding: chunked\r\n");
    }
    if !keep_alive {
        out.put_slice(b"connection: close\r\n");
    } else if answering.client_version == Version::HTTP_10 {
        out.put_slice(b"connection: keep-alive\r\n");
    }
    out.put_slice(b"\r\n");
    ParsedResponse::Complete(ResponseHead {
        status,
        len,
        body,
        reusable,
        framing,
        keep_alive,
    })
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

fn parse_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    v.iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, method: &Method, version: Version) -> (ParsedResponse, String) {
        let mut out = BytesMut::new();
        let answering = Answering {
            method,
            client_version: version,
            keep_alive: true,
        };
        let parsed = response_head(raw.as_bytes(), &answering, &mut out);
        (parsed, String::from_utf8_lossy(&out).into_owned())
    }

    fn complete(raw: &str, method: &Method, version: Version) -> (ResponseHead, String) {
        match parse(raw, method, version) {
            (ParsedResponse::Complete(h), out) => (h, out),
            (other, _) => panic!("{raw:?}: {other:?}"),
        }
    }

    #[test]
    fn upstream_body_framing() {
        let get = Method::GET;
        let v11 = Version::HTTP_11;
        let cases: [(&str, UpstreamBody, bool, Framing); 8] = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                UpstreamBody::Length(5),
                true,
                Framing::Length,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                UpstreamBody::Chunked,
                true,
                Framing::Chunked,
            ),
            // TE wins over CL, and the CL is not forwarded.
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
                UpstreamBody::Chunked,
                true,
                Framing::Chunked,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", UpstreamBody::Close, false, Framing::Chunked),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
                UpstreamBody::Length(5),
                false,
                Framing::Length,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n",
                UpstreamBody::Length(5),
                false,
                Framing::Length,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n",
                UpstreamBody::Length(5),
                true,
                Framing::Length,
            ),
            (
                "HTTP/1.1 204 No Content\r\n\r\n",
                UpstreamBody::None,
                true,
                Framing::NoBody,
            ),
        ];
        for (raw, body, reusable, framing) in cases {
            let (h, _) = complete(raw, &get, v11);
            assert_eq!((h.body, h.reusable, h.framing), (body, reusable, framing), "{raw:?}");
            assert_eq!(h.len, raw.len(), "{raw:?}");
        }
        let (h, out) = complete("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", &Method::HEAD, v11);
        assert_eq!(h.body, UpstreamBody::None);
        assert!(out.contains("content-length: 5\r\n"), "{out}");
    }

    #[test]
    fn client_head_drops_hop_by_hop_headers() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\nConnection: x-secret\r\n\
                   X-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Upstream: a\r\n\r\nok";
        let (h, out) = complete(raw, &Method::GET, Version::HTTP_11);
        assert_eq!(h.len, raw.len() - 2);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Upstream: a\r\n\r\n");
        let (_, out) = complete(
            "HTTP/1.1 200 OK\r\ncontent-length: 3, 3\r\n\r\n",
            &Method::GET,
            Version::HTTP_11,
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\n");
        let (_, out) = complete("HTTP/1.1 200 OK\r\n\r\n", &Method::GET, Version::HTTP_10);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n");
    }

    #[test]
    fn invalid_and_interim_heads() {
        let get = Method::GET;
        for raw in [
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n",
            "HTTX/1.1 200 OK\r\n\r\n",
        ] {
            assert_eq!(parse(raw, &get, Version::HTTP_11).0, ParsedResponse::Invalid, "{raw:?}");
        }
        let interim = "HTTP/1.1 100 Continue\r\n\r\n";
        assert_eq!(
            parse(interim, &get, Version::HTTP_11).0,
            ParsedResponse::Interim(interim.len())
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\ncontent-len", &get, Version::HTTP_11).0,
            ParsedResponse::Incomplete
        );
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
        let mut out = BytesMut::new();
        request_head(
            &mut out,
            &Method::POST,
            &[b"/v1/x", b"?q=1"],
            &h,
            b"127.0.0.1",
            Some(b"api.example.com"),
            BodyKind::Length(3),
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "POST /v1/x?q=1 HTTP/1.1\r\nhost: api.example.com\r\ncontent-length: 3\r\n\
             x-forwarded-for: 10.0.0.1, 10.0.0.2, 127.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: api.example.com\r\n\r\n"
        );
    }
}
