//! Response encoding: status line, filtered headers and body framing.

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderName};
use http::{Method, StatusCode, Version};

use crate::error::ErrorKind;

/// Hop-by-hop headers (RFC 9110 §7.6.1) never forwarded in either direction;
/// `name` in any case.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: [&[u8]; 7] = [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// How the response body is framed towards the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes follow (HEAD, 1xx, 204, 304).
    NoBody,
    /// The upstream's `Content-Length` is forwarded as is.
    Length,
    Chunked,
    /// HTTP/1.0 client, unknown length: the body ends when the connection closes.
    Close,
}

/// Chooses the framing for a response to `method` with `status`.
pub fn framing(method: &Method, status: StatusCode, has_length: bool, version: Version) -> Framing {
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

/// Encodes a complete gateway-generated error response.
pub fn error_response(out: &mut BytesMut, kind: ErrorKind, head_only: bool, keep_alive: bool) {
    let body = kind.body();
    status_line(out, kind.status());
    out.put_slice(b"content-type: text/plain; charset=utf-8\r\n");
    header_line(out, b"x-gateway-error", kind.as_str().as_bytes());
    let mut len = itoa::Buffer::new();
    header_line(out, b"content-length", len.format(body.len()).as_bytes());
    if !keep_alive {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    if !head_only {
        out.put_slice(body.as_bytes());
    }
}

/// Encodes the head of a response a policy prepared (its body follows as is).
pub fn prepared_head(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &[(HeaderName, http::HeaderValue)],
    body_len: usize,
    keep_alive: bool,
) {
    status_line(out, status);
    for (name, value) in headers {
        if is_hop_by_hop(name.as_str().as_bytes()) || *name == header::CONTENT_LENGTH {
            continue;
        }
        header_line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let mut len = itoa::Buffer::new();
    header_line(out, b"content-length", len.format(body_len).as_bytes());
    if !keep_alive {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
}

/// The chunk-size line for a chunk of `len` bytes.
pub fn chunk_header(len: usize) -> ([u8; 18], usize) {
    let mut buf = [0u8; 18];
    let digits = format_hex(len, &mut buf);
    (buf, digits)
}

fn format_hex(mut n: usize, buf: &mut [u8; 18]) -> usize {
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
    buf[..digits].copy_from_slice(&tmp[i..]);
    buf[digits] = b'\r';
    buf[digits + 1] = b'\n';
    digits + 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_headers() {
        for (len, expected) in [(0, "0\r\n"), (5, "5\r\n"), (255, "ff\r\n"), (65_536, "10000\r\n")] {
            let (buf, n) = chunk_header(len);
            assert_eq!(&buf[..n], expected.as_bytes());
        }
    }

    #[test]
    fn error_responses_carry_the_kind() {
        let mut out = BytesMut::new();
        error_response(&mut out, ErrorKind::NoRoute, false, true);
        let text = String::from_utf8(out.to_vec()).unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\n"), "{text}");
        assert!(text.contains("x-gateway-error: no_route\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nno route for this host and path\n"), "{text}");
    }
}
