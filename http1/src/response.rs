//! Upstream response heads: parsed straight into the head the client gets.
//! An upstream is not trusted: its status must be a real one, its framing is
//! validated, and the client's head carries framing the gateway wrote itself
//! from what it validated (SPEC §6), never a copy of the upstream's.

use std::mem::MaybeUninit;

use bytes::{BufMut, BytesMut};
use http::{Method, StatusCode, Version};

use crate::decoder::Decoder;
use crate::encode::{Framing, header_line, status_line};
use crate::filter::Filter;
use crate::headers::{ConnectionTokens, Known, listed_in, parse_content_length};

/// A parsed upstream response head, already encoded for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: StatusCode,
    /// Bytes of the upstream buffer the head took.
    pub len: usize,
    /// How the upstream frames the body that follows.
    pub body: Decoder,
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
    /// Not a valid HTTP/1.x response head, a status outside 100–599, an
    /// unasked-for 101, invalid framing, or a head larger than allowed.
    Invalid,
}

/// What the response head needs to know about the request it answers.
#[derive(Debug, Clone, Copy)]
pub struct Answering<'a> {
    pub method: &'a Method,
    pub client_version: Version,
    /// The client connection may stay open (as far as the request and the
    /// gateway go).
    pub keep_alive: bool,
    /// The route's response-header filter.
    pub filter: &'a Filter,
    /// The request asked to switch to WebSocket: a `101` that agrees is the
    /// answer (any other `101` is a bad response).
    pub websocket: bool,
    /// The current time as an IMF-fixdate, for a response that carries no
    /// `Date` (RFC 9110 §6.6.1: a proxy with a clock adds one); empty for
    /// none.
    pub date: &'a [u8],
}

const MAX_RESPONSE_HEADERS: usize = 128;
/// Largest response head accepted from an upstream.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// Parses a response head from the front of `buf`; when complete, encodes the
/// client's response head into `out`: the upstream's status and headers minus
/// hop-by-hop ones (and those its `Connection` names), then the framing and
/// connection headers of the gateway's own choosing.
pub fn parse_response(buf: &[u8], answering: &Answering<'_>, out: &mut BytesMut) -> ParsedResponse {
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
    if !(100..=599).contains(&code) {
        return ParsedResponse::Invalid;
    }
    let Ok(status) = StatusCode::from_u16(code) else {
        return ParsedResponse::Invalid;
    };
    let switching = code == 101
        && answering.websocket
        && res
            .headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("upgrade") && crate::headers::has_token(h.value, b"websocket"));
    if status.is_informational() && !switching {
        // A 101 that was not asked for (or to another protocol) would switch
        // to something the gateway cannot frame.
        return if code == 101 {
            ParsedResponse::Invalid
        } else {
            ParsedResponse::Interim(len)
        };
    }
    let mut length: Option<u64> = None;
    let mut te = false;
    let mut connection = ConnectionTokens::default();
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("connection") {
            connection.add(h.value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let Some(n) = parse_content_length(h.value) else {
                return ParsedResponse::Invalid;
            };
            if length.is_some_and(|l| l != n) {
                return ParsedResponse::Invalid;
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only `chunked`, once: the gateway re-frames every body and
            // cannot pass another transfer coding on (the client would get
            // coded bytes labelled as plain), and cannot tell what a repeated
            // or stacked `chunked` meant. As a request's, such a head is refused.
            if te || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return ParsedResponse::Invalid;
            }
            te = true;
        }
    }
    let no_body = *answering.method == Method::HEAD || code == 204 || code == 304 || switching;
    let body = match (no_body, te, length) {
        (true, ..) => Decoder::Done,
        (false, true, _) => Decoder::chunked(),
        (false, false, Some(n)) => Decoder::length(n),
        (false, false, None) => Decoder::Eof,
    };
    let length_framed = !te && length.is_some();
    // Both Content-Length and Transfer-Encoding: Transfer-Encoding wins
    // (RFC 9112 §6.3), but such an upstream connection is not trusted again.
    // After a 101 the connection belongs to the tunnel.
    let untrusted = switching || body == Decoder::Eof || (te && length.is_some()) || connection.close;
    let reusable = !untrusted && (minor == 1 || connection.keep_alive);
    let framing = Framing::choose(answering.method, status, length_framed, answering.client_version);
    // After a 101 the connection is the tunnel's, never another request's.
    let keep_alive = answering.keep_alive && framing != Framing::Close && !switching;

    status_line(out, status);
    let listed = |name: &[u8]| {
        connection.names_headers
            && listed_in(
                res.headers
                    .iter()
                    .filter(|h| h.name.eq_ignore_ascii_case("connection"))
                    .map(|h| h.value),
                name,
            )
    };
    let mut dated = false;
    for h in res.headers.iter() {
        let name = h.name.as_bytes();
        let kind = Known::of(name);
        dated |= kind == Known::Date;
        if kind.is_hop_by_hop() || kind == Known::ContentLength || listed(name) || answering.filter.drops(name) {
            continue;
        }
        // `name: value` as received, one copy (httparse's slices point into `buf`).
        let start = name.as_ptr() as usize - buf.as_ptr() as usize;
        let end = h.value.as_ptr() as usize - buf.as_ptr() as usize + h.value.len();
        match buf.get(start..end) {
            Some(line) if !h.value.is_empty() => {
                out.put_slice(line);
                out.put_slice(b"\r\n");
            }
            _ => header_line(out, name, h.value),
        }
    }
    if !dated && !answering.date.is_empty() && !answering.filter.drops(b"date") {
        header_line(out, b"date", answering.date);
    }
    for (name, value) in answering.filter.added() {
        header_line(out, name, value);
    }
    match (framing, length) {
        // HEAD and 304 may say how long the body would be; 204 never has one.
        (Framing::Length | Framing::NoBody, Some(n)) if code != 204 && !switching => {
            header_line(out, b"content-length", itoa::Buffer::new().format(n).as_bytes());
        }
        (Framing::Chunked, _) => out.put_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if switching {
        out.put_slice(b"connection: upgrade\r\nupgrade: websocket\r\n");
    } else if !keep_alive {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str, method: &Method, version: Version) -> (ParsedResponse, String) {
        let mut out = BytesMut::new();
        let answering = Answering {
            method,
            client_version: version,
            keep_alive: true,
            filter: Filter::none(),
            websocket: false,
            date: b"",
        };
        let parsed = parse_response(raw.as_bytes(), &answering, &mut out);
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
        let cases: [(&str, Decoder, bool, Framing); 9] = [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
                Decoder::Length(5),
                true,
                Framing::Length,
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
                Decoder::Done,
                true,
                Framing::Length,
            ),
            (
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
                Decoder::chunked(),
                true,
                Framing::Chunked,
            ),
            // TE wins over CL, the CL is not forwarded, the connection not reused.
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: Chunked \r\n\r\n",
                Decoder::chunked(),
                false,
                Framing::Chunked,
            ),
            ("HTTP/1.1 200 OK\r\n\r\n", Decoder::Eof, false, Framing::Chunked),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\n",
                Decoder::Length(5),
                false,
                Framing::Length,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n",
                Decoder::Length(5),
                false,
                Framing::Length,
            ),
            (
                "HTTP/1.0 200 OK\r\ncontent-length: 5\r\nconnection: keep-alive\r\n\r\n",
                Decoder::Length(5),
                true,
                Framing::Length,
            ),
            ("HTTP/1.1 204 No Content\r\n\r\n", Decoder::Done, true, Framing::NoBody),
        ];
        for (raw, body, reusable, framing) in cases {
            let (h, _) = complete(raw, &get, v11);
            assert_eq!((h.body, h.reusable, h.framing), (body, reusable, framing), "{raw:?}");
            assert_eq!(h.len, raw.len(), "{raw:?}");
        }
        let (h, out) = complete("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", &Method::HEAD, v11);
        assert_eq!(h.body, Decoder::Done);
        assert!(out.contains("content-length: 5\r\n"), "{out}");
    }

    #[test]
    fn framing_is_written_by_the_gateway() {
        // Regression: `Connection: Content-Length` from an upstream removed the
        // length while the body was still forwarded, unframed.
        let (h, out) = complete(
            "HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\n",
            &Method::GET,
            Version::HTTP_11,
        );
        assert_eq!(h.framing, Framing::Length);
        assert_eq!(out, "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
        let (_, out) = complete(
            "HTTP/1.1 200 OK\r\nConnection: transfer-encoding, x-a\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            &Method::GET,
            Version::HTTP_11,
        );
        assert_eq!(out, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        // A 204 never carries a length, whatever the upstream said.
        let (_, out) = complete(
            "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
            &Method::GET,
            Version::HTTP_11,
        );
        assert_eq!(out, "HTTP/1.1 204 No Content\r\n\r\n");
    }

    #[test]
    fn response_filters_drop_then_add_before_the_framing() {
        let filter = Filter::new(["x-set", "x-remove"], [("X-Set", "mine"), ("X-Add", "b")]);
        let mut out = BytesMut::new();
        let answering = Answering {
            method: &Method::GET,
            client_version: Version::HTTP_11,
            keep_alive: true,
            filter: &filter,
            websocket: false,
            date: b"",
        };
        let raw = "HTTP/1.1 200 OK\r\nX-SET: theirs\r\nX-Add: a\r\nx-remove: 1\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(
            parse_response(raw.as_bytes(), &answering, &mut out),
            ParsedResponse::Complete(_)
        ));
        assert_eq!(
            String::from_utf8_lossy(&out),
            "HTTP/1.1 200 OK\r\nX-Add: a\r\nX-Set: mine\r\nX-Add: b\r\ncontent-length: 0\r\n\r\n"
        );
    }

    /// RFC 9110 §6.6.1: a response without `Date` gets the gateway's; an
    /// upstream's own is kept; a route that removes `date` has none.
    #[test]
    fn a_response_without_date_gets_one() {
        let now = b"Sat, 28 Nov 2026 17:00:00 GMT";
        let mut out = BytesMut::new();
        let mut answering = Answering {
            method: &Method::GET,
            client_version: Version::HTTP_11,
            keep_alive: true,
            filter: Filter::none(),
            websocket: false,
            date: now,
        };
        let mut head = |raw: &str, answering: &Answering<'_>| {
            out.clear();
            assert!(matches!(
                parse_response(raw.as_bytes(), answering, &mut out),
                ParsedResponse::Complete(_)
            ));
            String::from_utf8_lossy(&out).into_owned()
        };
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", &answering),
            "HTTP/1.1 200 OK\r\ndate: Sat, 28 Nov 2026 17:00:00 GMT\r\ncontent-length: 0\r\n\r\n"
        );
        let dated = "HTTP/1.1 200 OK\r\nDATE: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            head(dated, &answering),
            "HTTP/1.1 200 OK\r\nDATE: Mon, 01 Jan 2024 00:00:00 GMT\r\ncontent-length: 0\r\n\r\n"
        );
        let no_date = Filter::new(["date"], []);
        answering.filter = &no_date;
        assert_eq!(
            head("HTTP/1.1 204 No Content\r\n\r\n", &answering),
            "HTTP/1.1 204 No Content\r\n\r\n"
        );
    }

    #[test]
    fn client_head_drops_hop_by_hop_headers() {
        let raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\nConnection: x-secret\r\n\
                   X-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-Upstream: a\r\n\r\nok";
        let (h, out) = complete(raw, &Method::GET, Version::HTTP_11);
        assert_eq!(h.len, raw.len() - 2);
        assert_eq!(out, "HTTP/1.1 200 OK\r\nX-Upstream: a\r\ncontent-length: 2\r\n\r\n");
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
            "HTTP/1.1 600 Nope\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 099 Nope\r\ncontent-length: 0\r\n\r\n",
            "HTTP/1.1 999 Nope\r\ncontent-length: 0\r\n\r\n",
            // Transfer codings the gateway would have to drop undecoded, or
            // could not tell the meaning of.
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: \r\n\r\n",
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
}
