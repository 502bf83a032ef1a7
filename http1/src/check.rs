//! The framing rule as a check (feature `check`), for the property test and
//! the fuzz target: whatever head and body the gateway accepts, the bytes it
//! forwards parse (httparse + the same decoder) to exactly one request, with
//! the same body, one framing header, one `Host`, and nothing after it.

use bytes::BytesMut;

use crate::{BodyKind, ChunkSize, Decoder, Forward, Framing, Parsed, encode_request, parse};

/// Decodes one whole body from the front of `buf`; `None` if it is incomplete
/// or malformed.
pub fn decode_body(decoder: &mut Decoder, buf: &mut BytesMut) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        match decoder.decode(buf) {
            Ok(Some(data)) => out.extend_from_slice(&data),
            Ok(None) if decoder.is_done() => return Some(out),
            Ok(None) | Err(_) => return None,
        }
    }
}

/// The head the gateway forwards for `head` (no filter, no rewrite).
fn forward(head: &crate::RequestHead, proto: &[u8]) -> BytesMut {
    let mut forwarded = BytesMut::new();
    encode_request(
        &mut forwarded,
        &Forward {
            method: &head.method,
            target: [head.target.path().as_bytes(), b"", b"", b""],
            headers: &head.headers,
            host: &head.host,
            forwarded_host: &head.host,
            client_ip: b"127.0.0.1",
            proto,
            body: head.body,
            filter: crate::Filter::none(),
            websocket: head.websocket,
        },
    );
    forwarded
}

/// Runs a client's bytes through the gateway's parse → decode → encode →
/// re-frame (in two writes, as the pump does) and reads the result as an
/// upstream would. `Ok(None)`: not accepted (nothing to check);
/// `Ok(Some(body))`: forwarded faithfully; `Err`: the rule is broken.
pub fn forwarded_once(input: &[u8], max_bytes: usize, max_headers: usize) -> Result<Option<Vec<u8>>, String> {
    let mut buf = BytesMut::from(input);
    let Parsed::Complete(head) = parse(&mut buf, max_bytes, max_headers) else {
        return Ok(None);
    };
    let mut decoder = match head.body {
        BodyKind::None => Decoder::Done,
        BodyKind::Length(n) => Decoder::length(n),
        BodyKind::Chunked => Decoder::chunked(),
    };
    let Some(body) = decode_body(&mut decoder, &mut buf) else {
        return Ok(None);
    };
    let forwarded = forward(&head, b"http");
    let framing = Framing::from(head.body);
    let (a, b) = body.split_at(body.len() / 2);
    let mut wire = Vec::new();
    for (i, piece) in [a, b].into_iter().enumerate() {
        let size = ChunkSize::new(piece.len());
        let first: &[u8] = if i == 0 { &forwarded } else { &[] };
        for s in framing.frame(first, &size, piece, i == 1) {
            wire.extend_from_slice(&s);
        }
    }
    let shown = || String::from_utf8_lossy(&wire).into_owned();
    let mut headers = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(len)) = req.parse(&wire) else {
        return Err(format!("forwarded head does not parse: {}", shown()));
    };
    let count = |name: &str| req.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)).count();
    let (lengths, chunked) = (count("content-length"), count("transfer-encoding"));
    if lengths + chunked > 1 {
        return Err(format!("two framings: {}", shown()));
    }
    if count("host") != 1 {
        return Err(format!("not exactly one Host: {}", shown()));
    }
    if req.method != Some(head.method.as_str()) {
        return Err(format!("method changed: {}", shown()));
    }
    let mut upstream = if chunked == 1 {
        Decoder::chunked()
    } else if let Some(h) = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        let n = std::str::from_utf8(h.value).ok().and_then(|v| v.parse().ok());
        Decoder::length(n.ok_or_else(|| format!("unreadable length: {}", shown()))?)
    } else {
        Decoder::Done
    };
    let mut rest = BytesMut::from(&wire[len..]);
    if decode_body(&mut upstream, &mut rest).as_deref() != Some(&body[..]) {
        return Err(format!("the upstream reads another body: {}", shown()));
    }
    if !rest.is_empty() {
        return Err(format!("bytes after the request: {:?}", String::from_utf8_lossy(&rest)));
    }
    Ok(Some(body))
}

/// An HTTP/2 request's parts as the `h2` crate hands them over (already
/// valid `http` types) through [`crate::parse_bridged`] and the forwarded
/// head's encoder: if accepted, the upstream reads exactly one request with
/// the same method, one `Host` (the authority when one was given), and no
/// field that was not among the client's (besides the gateway's own
/// `X-Forwarded-*`, `Cookie` joined into one). `Ok(false)`: refused.
pub fn bridged_once(
    method: &http::Method,
    target: &[u8],
    authority: Option<&[u8]>,
    fields: &http::HeaderMap,
    unsized_body: bool,
) -> Result<bool, String> {
    let mut rendered = BytesMut::new();
    let request = crate::Bridged {
        method,
        target,
        authority,
        fields,
        unsized_body,
    };
    let Parsed::Complete(head) = crate::parse_bridged(&mut rendered, &request, 64 * 1024, 200, Default::default())
    else {
        return Ok(false);
    };
    let forwarded = forward(&head, b"https");
    let shown = || String::from_utf8_lossy(&forwarded).into_owned();
    let mut slots = [httparse::EMPTY_HEADER; 256];
    let mut req = httparse::Request::new(&mut slots);
    match req.parse(&forwarded) {
        Ok(httparse::Status::Complete(len)) if len == forwarded.len() => {}
        _ => return Err(format!("forwarded head is not exactly one head: {}", shown())),
    }
    if req.method != Some(method.as_str()) {
        return Err(format!("method changed: {}", shown()));
    }
    let hosts: Vec<&[u8]> = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("host"))
        .map(|h| h.value)
        .collect();
    if hosts.len() != 1 || authority.is_some_and(|a| hosts[0] != a) {
        return Err(format!("Host is not the authority: {}", shown()));
    }
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let own = matches!(
            name.as_str(),
            "host"
                | "content-length"
                | "transfer-encoding"
                | "x-forwarded-for"
                | "x-forwarded-proto"
                | "x-forwarded-host"
        );
        if !own && !fields.contains_key(name.as_str()) {
            return Err(format!("a field the client did not send: {}: {}", h.name, shown()));
        }
    }
    Ok(true)
}
