//! An HTTP/2 upstream's response (a status and fields; an upstream is not
//! trusted) rendered as a head for `parse_response`: never panic, and what
//! is accepted says what the fields said. Every field that is not
//! hop-by-hop or framing reaches the client's head with its value, no field
//! appears that the upstream did not send (but the framing the gateway
//! chose), and a body without a declared length is framed chunked.
#![no_main]

use bytes::BytesMut;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use http1::{Answering, Framing, ParsedResponse, parse_response, render_response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, input)) = data.split_first_chunk::<2>() else { return };
    let Ok(status) = StatusCode::from_u16(100 + u16::from_be_bytes(*status) % 500) else { return };
    // Fields: `name:value` lines, as the h2 crate would hand them over (only
    // what `http` accepts as a name and a value).
    let mut fields = HeaderMap::new();
    for line in input.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(&line[colon + 1..])) {
            fields.append(name, value);
        }
    }
    let mut head = BytesMut::new();
    assert!(render_response(&mut head, status, &fields), "a value `http` accepted broke a line");
    let answering = Answering {
        method: &http::Method::GET,
        client_version: http::Version::HTTP_11,
        keep_alive: true,
        filter: http1::Filter::none(),
        websocket: false,
        date: b"",
    };
    let mut out = BytesMut::new();
    let parsed = match parse_response(&head, &answering, &mut out) {
        ParsedResponse::Complete(parsed) => parsed,
        // 1xx never reach here from h2 (it consumes them); too many fields,
        // lengths that disagree: refused.
        ParsedResponse::Interim(_) | ParsedResponse::Invalid | ParsedResponse::Incomplete => return,
    };
    assert_eq!(parsed.status, status);
    assert_eq!(parsed.len, head.len(), "the whole rendered head is the head");
    let declared = fields.contains_key(http::header::CONTENT_LENGTH);
    if !declared && !matches!(status.as_u16(), 204 | 304) {
        assert_eq!(parsed.framing, Framing::Chunked);
    }
    // The client's head, field by field.
    let mut slots = [httparse::EMPTY_HEADER; 512];
    let mut res = httparse::Response::new(&mut slots);
    assert!(matches!(res.parse(&out), Ok(httparse::Status::Complete(n)) if n == out.len()));
    let framing = |name: &str| {
        ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|f| name.eq_ignore_ascii_case(f))
    };
    let sent: Vec<(String, Vec<u8>)> = res
        .headers
        .iter()
        .filter(|h| !framing(h.name))
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let expected: Vec<(String, Vec<u8>)> = fields
        .iter()
        .filter(|(n, _)| !http1::is_hop_by_hop(n.as_str().as_bytes()) && !framing(n.as_str()))
        .map(|(n, v)| (n.as_str().to_owned(), trim(v.as_bytes()).to_vec()))
        .collect();
    assert_eq!(sent, expected, "{:?}", String::from_utf8_lossy(&out));
});

/// A field value as a head carries it: leading and trailing whitespace is
/// not part of it.
fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |e| e + 1);
    &v[start..end]
}
