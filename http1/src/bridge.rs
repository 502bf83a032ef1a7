//! Messages that cross to or from another framing (an HTTP/2 stream). A
//! request's pseudo-headers and fields are rendered as an HTTP/1.1 head and
//! checked by [`parse_into`], so every rule of a head (host, framing,
//! method, limits) holds for them unchanged; a response head the gateway
//! encoded is read back as a status and the fields that are not specific to
//! an HTTP/1.1 connection.

use std::mem::MaybeUninit;

use bytes::{BufMut as _, BytesMut};
use http::{HeaderMap, Method, StatusCode};

use crate::fields::Fields;
use crate::headers::Known;
use crate::request::{HeadError, Parsed, Partial, parse_into};

/// A request that arrived as fields rather than a head.
#[derive(Debug)]
pub struct Bridged<'a> {
    pub method: &'a Method,
    /// The request target as the client sent it (`:path`; for `CONNECT`, the
    /// authority).
    pub target: &'a [u8],
    /// `:authority`, when the client sent one.
    pub authority: Option<&'a [u8]>,
    pub fields: &'a HeaderMap,
    /// A body follows whose length no `Content-Length` declares: forwarded
    /// chunked.
    pub unsized_body: bool,
}

/// Renders `request` as an HTTP/1.1 head into `buf` (emptied first) and
/// parses it as one, within the same limits. `Host` is the authority (a
/// `Host` field that names another is refused, RFC 9113 §8.3.1); `Cookie`
/// fields are joined into one (RFC 9113 §8.2.3). A byte that could end a
/// line is refused before anything is rendered.
pub fn parse_bridged(
    buf: &mut BytesMut,
    request: &Bridged<'_>,
    max_bytes: usize,
    max_headers: usize,
    fields: Fields,
) -> Parsed {
    let refuse = |e| {
        Parsed::Refused(
            e,
            Partial {
                method: Some(request.method.clone()),
                target: Some(bytes::Bytes::copy_from_slice(request.target)),
            },
        )
    };
    // A value that would break its line, or that starts or ends with
    // whitespace (malformed in HTTP/2, RFC 9113 §8.2.1; an HTTP/1.1 head
    // would trim it silently).
    let malformed_value = |v: &[u8]| {
        v.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0))
            || v.first().is_some_and(|b| matches!(b, b' ' | b'\t'))
            || v.last().is_some_and(|b| matches!(b, b' ' | b'\t'))
    };
    // Bytes a head would read as the end of a token: the target and the
    // authority are one token each.
    let spaced = |v: &[u8]| v.iter().any(|&b| b <= b' ' || b == 0x7f);
    if request.target.is_empty() || spaced(request.target) {
        return refuse(HeadError::Malformed("bad request target"));
    }
    buf.clear();
    buf.put_slice(request.method.as_str().as_bytes());
    buf.put_u8(b' ');
    buf.put_slice(request.target);
    buf.put_slice(b" HTTP/1.1\r\n");
    if let Some(authority) = request.authority {
        if spaced(authority) {
            return refuse(HeadError::BadHost("invalid :authority"));
        }
        line(buf, b"host", authority);
    }
    let mut cookies = 0;
    let mut hosts = 0;
    for (name, value) in request.fields {
        let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
        if malformed_value(value) {
            return refuse(HeadError::Malformed("bad header value"));
        }
        match Known::of(name) {
            Known::Host if request.authority.is_some() => {
                hosts += 1;
                if hosts > 1 {
                    return refuse(HeadError::BadHost("more than one Host header"));
                }
                if Some(value) != request.authority {
                    return refuse(HeadError::BadHost("Host differs from :authority"));
                }
            }
            _ if name == b"cookie" => cookies += 1,
            _ => line(buf, name, value),
        }
    }
    if cookies > 0 {
        buf.put_slice(b"cookie: ");
        for (i, value) in request.fields.get_all(http::header::COOKIE).iter().enumerate() {
            if i > 0 {
                buf.put_slice(b"; ");
            }
            buf.put_slice(value.as_bytes());
        }
        buf.put_slice(b"\r\n");
    }
    if request.unsized_body {
        buf.put_slice(b"transfer-encoding: chunked\r\n");
    }
    buf.put_slice(b"\r\n");
    // Refused as one head would be: more fields than `maxHeaders`, or more
    // bytes than `maxHeaderBytes`.
    match parse_into(buf, max_bytes, max_headers, fields) {
        Parsed::Incomplete => refuse(HeadError::TooLarge),
        parsed => parsed,
    }
}

fn line(buf: &mut BytesMut, name: &[u8], value: &[u8]) {
    buf.put_slice(name);
    buf.put_slice(b": ");
    buf.put_slice(value);
    buf.put_slice(b"\r\n");
}

const MAX_FIELDS: usize = 256;

/// Reads back a response head the gateway encoded (`http1`'s own output):
/// calls `field` with each field that is not specific to an HTTP/1.1
/// connection (the hop-by-hop ones, its framing), and returns the status and
/// where the head ends (a whole body may follow it). `None` if `head` is not
/// a complete response head.
pub fn response_fields(head: &[u8], mut field: impl FnMut(&[u8], &[u8])) -> Option<(StatusCode, usize)> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut res = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut res, head, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let status = StatusCode::from_u16(res.code?).ok()?;
    for h in res.headers.iter() {
        if !Known::of(h.name.as_bytes()).is_hop_by_hop() {
            field(h.name.as_bytes(), h.value);
        }
    }
    Some((status, len))
}

/// Reads back a request head the gateway encoded (`http1`'s own output),
/// for an upstream that speaks another framing: calls `field` with each
/// field that is not specific to an HTTP/1.1 connection (the hop-by-hop
/// ones, its framing), `Host` included, and returns the request target and
/// where the head ends. `None` if `head` is not a complete request head.
pub fn request_fields<'a>(head: &'a [u8], mut field: impl FnMut(&'a [u8], &'a [u8])) -> Option<(&'a [u8], usize)> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_FIELDS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_request_with_uninit_headers(&mut req, head, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    let target = req.path?.as_bytes();
    for h in req.headers.iter() {
        if !Known::of(h.name.as_bytes()).is_hop_by_hop() {
            field(h.name.as_bytes(), h.value);
        }
    }
    Some((target, len))
}

/// Renders a response that arrived as a status and fields (an HTTP/2
/// upstream's) as an HTTP/1.1 head into `buf` (emptied first), for
/// [`crate::parse_response`] to check and re-encode like any upstream's.
/// Hop-by-hop fields are left out; a body whose length no `Content-Length`
/// declares is marked chunked (the framing the client side then chooses
/// from). `false` if a value could end a line.
pub fn render_response(buf: &mut BytesMut, status: StatusCode, fields: &HeaderMap) -> bool {
    buf.clear();
    buf.put_slice(b"HTTP/1.1 ");
    buf.put_slice(status.as_str().as_bytes());
    buf.put_slice(b" \r\n");
    for (name, value) in fields {
        let (name, value) = (name.as_str().as_bytes(), value.as_bytes());
        if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
            return false;
        }
        if !Known::of(name).is_hop_by_hop() {
            line(buf, name, value);
        }
    }
    if !fields.contains_key(http::header::CONTENT_LENGTH) {
        buf.put_slice(b"transfer-encoding: chunked\r\n");
    }
    buf.put_slice(b"\r\n");
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::BodyKind;
    use http::HeaderValue;

    fn bridged(fields: &HeaderMap, authority: Option<&[u8]>, unsized_body: bool) -> Parsed {
        let mut buf = BytesMut::new();
        let request = Bridged {
            method: &Method::POST,
            target: b"/a?b=1",
            authority,
            fields,
            unsized_body,
        };
        parse_bridged(&mut buf, &request, 16_384, 100, Fields::default())
    }

    #[test]
    fn a_bridged_request_is_checked_as_a_head() {
        let mut fields = HeaderMap::new();
        fields.append("cookie", HeaderValue::from_static("a=1"));
        fields.append("cookie", HeaderValue::from_static("b=2"));
        fields.append("x-y", HeaderValue::from_static("z"));
        let Parsed::Complete(head) = bridged(&fields, Some(b"example.com"), true) else {
            panic!("refused")
        };
        assert_eq!(&head.host[..], b"example.com");
        assert_eq!(head.body, BodyKind::Chunked);
        assert_eq!(head.target.path(), "/a");
        let cookies: Vec<&[u8]> = head.headers.get_all(b"cookie").collect();
        assert_eq!(cookies, [&b"a=1; b=2"[..]]);

        // A declared length frames the body; `Host` must agree with `:authority`.
        fields.append("content-length", HeaderValue::from_static("5"));
        assert!(
            matches!(bridged(&fields, Some(b"example.com"), false), Parsed::Complete(h) if h.body == BodyKind::Length(5))
        );
        fields.append("host", HeaderValue::from_static("other.example"));
        assert!(matches!(
            bridged(&fields, Some(b"example.com"), false),
            Parsed::Refused(HeadError::BadHost(_), _)
        ));
        // An authority with a space or a control byte is not a host.
        assert!(matches!(
            bridged(&HeaderMap::new(), Some(b"example.com "), false),
            Parsed::Refused(HeadError::BadHost(_), _)
        ));
        // A value with whitespace around it is malformed (RFC 9113 §8.2.1).
        for value in [" z", "z\t", "z "] {
            let mut fields = HeaderMap::new();
            fields.append("x-y", HeaderValue::from_static(value));
            assert!(
                matches!(
                    bridged(&fields, Some(b"example.com"), false),
                    Parsed::Refused(HeadError::Malformed("bad header value"), _)
                ),
                "{value:?}"
            );
        }
        // Two Host fields, even equal to the authority: as on HTTP/1.1.
        let mut fields = HeaderMap::new();
        fields.append("host", HeaderValue::from_static("example.com"));
        fields.append("host", HeaderValue::from_static("example.com"));
        assert!(matches!(
            bridged(&fields, Some(b"example.com"), false),
            Parsed::Refused(HeadError::BadHost("more than one Host header"), _)
        ));
        // No authority and no Host: as an HTTP/1.1 head without Host.
        assert!(matches!(
            bridged(&HeaderMap::new(), None, false),
            Parsed::Refused(HeadError::BadHost(_), _)
        ));
    }

    #[test]
    fn bridged_limits_are_the_head_limits() {
        let mut fields = HeaderMap::new();
        for i in 0..120 {
            fields.append(
                http::HeaderName::from_bytes(format!("x-{i}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        assert!(matches!(
            bridged(&fields, Some(b"a"), false),
            Parsed::Refused(HeadError::TooLarge, _)
        ));
    }

    #[test]
    fn response_fields_skip_what_frames_an_http1_connection() {
        let head = b"HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\nconnection: close\r\ncontent-length: 3\r\n\r\nabc";
        let mut seen = Vec::new();
        let (status, len) = response_fields(head, |n, v| seen.push((n.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(&head[len..], b"abc");
        let names: Vec<&[u8]> = seen.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(names, [&b"content-type"[..], b"content-length"]);
    }

    #[test]
    fn request_fields_read_back_an_encoded_head() {
        let head = b"POST /a?b=1 HTTP/1.1\r\nhost: up.example\r\nconnection: keep-alive\r\nte: trailers\r\ncontent-length: 2\r\nx-y: z\r\n\r\nhi";
        let mut seen = Vec::new();
        let (target, len) = request_fields(head, |n, v| seen.push((n.to_vec(), v.to_vec()))).unwrap();
        assert_eq!(target, b"/a?b=1");
        assert_eq!(&head[len..], b"hi");
        let names: Vec<&[u8]> = seen.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(names, [&b"host"[..], b"content-length", b"x-y"]);
        assert!(request_fields(b"GET / HTTP/1.1\r\nhost: a\r\n", |_, _| {}).is_none());
    }

    #[test]
    fn a_rendered_response_is_checked_as_an_upstream_head() {
        use crate::{Answering, Filter, Framing, ParsedResponse, parse_response};
        let answering = |method| Answering {
            method,
            client_version: http::Version::HTTP_11,
            keep_alive: true,
            filter: Filter::none(),
            websocket: false,
            date: b"",
        };
        let mut fields = HeaderMap::new();
        fields.append("content-type", HeaderValue::from_static("application/grpc"));
        fields.append("connection", HeaderValue::from_static("close"));
        let (mut buf, mut out) = (BytesMut::new(), BytesMut::new());
        assert!(render_response(&mut buf, StatusCode::OK, &fields));
        let ParsedResponse::Complete(head) = parse_response(&buf, &answering(&Method::POST), &mut out) else {
            panic!("refused: {buf:?}")
        };
        // No length: chunked to an HTTP/1.1 client; hop-by-hop fields gone.
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.keep_alive);
        let out = String::from_utf8_lossy(&out).to_ascii_lowercase();
        assert!(out.starts_with("http/1.1 200"), "{out}");
        assert!(out.contains("content-type: application/grpc\r\n"), "{out}");
        assert!(!out.contains("connection: close"), "{out}");

        fields.append("content-length", HeaderValue::from_static("7"));
        assert!(render_response(&mut buf, StatusCode::NOT_FOUND, &fields));
        let mut out = BytesMut::new();
        let ParsedResponse::Complete(head) = parse_response(&buf, &answering(&Method::GET), &mut out) else {
            panic!("refused: {buf:?}")
        };
        assert_eq!((head.status, head.framing), (StatusCode::NOT_FOUND, Framing::Length));
        // Two lengths that disagree are refused as in any head.
        fields.append("content-length", HeaderValue::from_static("8"));
        assert!(render_response(&mut buf, StatusCode::OK, &fields));
        assert_eq!(
            parse_response(&buf, &answering(&Method::GET), &mut out),
            ParsedResponse::Invalid
        );
    }
}
