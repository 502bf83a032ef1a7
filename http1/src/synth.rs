//! Responses the gateway writes itself: errors (with `x-gateway-error`), and
//! responses a policy or a redirect prepared. They take a status and a kind
//! string; which failure maps to which is the gateway's business.

use bytes::{BufMut, BytesMut};
use http::StatusCode;
use http::header::{HeaderName, HeaderValue};

use crate::encode::{header_line, status_line};
use crate::filter::Filter;
use crate::headers::is_hop_by_hop;

/// A gateway-generated response.
#[derive(Debug, Clone, Copy)]
pub struct Synthesized<'a> {
    pub status: StatusCode,
    /// The `x-gateway-error` value, if any.
    pub kind: Option<&'a str>,
    /// The plain-text body, in pieces written one after another.
    pub body: &'a [&'a str],
    /// Extra headers (`Allow`, `Location`, ...).
    pub extra: &'a [(&'a str, &'a [u8])],
    /// A response to HEAD: the head only.
    pub head_only: bool,
    /// The connection closes after this response.
    pub close: bool,
    /// The route's response-header filter (a route's own responses get it too).
    pub filter: &'a Filter,
    /// The current time as an IMF-fixdate (RFC 9110 §6.6.1); empty for none.
    pub date: &'a [u8],
}

/// Encodes a complete gateway-generated response into `out`.
pub fn encode_synthesized(out: &mut BytesMut, r: &Synthesized<'_>) {
    status_line(out, r.status);
    let mut line = |name: &[u8], value: &[u8]| {
        if !r.filter.drops(name) {
            header_line(out, name, value);
        }
    };
    if !r.date.is_empty() {
        line(b"date", r.date);
    }
    line(b"content-type", b"text/plain; charset=utf-8");
    if let Some(kind) = r.kind {
        line(b"x-gateway-error", kind.as_bytes());
    }
    for (name, value) in r.extra {
        line(name.as_bytes(), value);
    }
    for (name, value) in r.filter.added() {
        header_line(out, name, value);
    }
    let len: usize = r.body.iter().map(|p| p.len()).sum();
    header_line(out, b"content-length", itoa::Buffer::new().format(len).as_bytes());
    if r.close {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
    if !r.head_only {
        for piece in r.body {
            out.put_slice(piece.as_bytes());
        }
    }
}

/// Whether a response with `status` carries a body at all: a `204` or
/// `304` never does (RFC 9110 §15.3.5, §15.4.5), whatever was prepared for
/// it; bytes sent after its head would be read as the next response.
pub fn has_body(status: StatusCode) -> bool {
    status != StatusCode::NO_CONTENT && status != StatusCode::NOT_MODIFIED && !status.is_informational()
}

/// Encodes the head of a response a policy prepared (its body follows as
/// is): its headers minus hop-by-hop ones and any length, then ours.
pub fn encode_prepared_head(
    out: &mut BytesMut,
    status: StatusCode,
    headers: &[(HeaderName, HeaderValue)],
    body_len: usize,
    close: bool,
    filter: &Filter,
    date: &[u8],
) {
    status_line(out, status);
    let mut dated = false;
    for (name, value) in headers {
        let name = name.as_str().as_bytes();
        dated |= name == b"date";
        if is_hop_by_hop(name) || name == b"content-length" || filter.drops(name) {
            continue;
        }
        header_line(out, name, value.as_bytes());
    }
    if !dated && !date.is_empty() && !filter.drops(b"date") {
        header_line(out, b"date", date);
    }
    for (name, value) in filter.added() {
        header_line(out, name, value);
    }
    if has_body(status) {
        header_line(out, b"content-length", itoa::Buffer::new().format(body_len).as_bytes());
    }
    if close {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_kind_and_cause() {
        let mut out = BytesMut::new();
        encode_synthesized(
            &mut out,
            &Synthesized {
                status: StatusCode::BAD_REQUEST,
                kind: Some("bad_request"),
                body: &["bad request: ", "both Content-Length and Transfer-Encoding", "\n"],
                extra: &[],
                head_only: false,
                close: true,
                filter: Filter::none(),
                date: b"",
            },
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\n\
             x-gateway-error: bad_request\r\ncontent-length: 55\r\nconnection: close\r\n\r\n\
             bad request: both Content-Length and Transfer-Encoding\n"
        );
    }
}
