//! Header rules shared by both directions: the hop-by-hop list, `Connection`
//! token matching, `Content-Length` and `Transfer-Encoding` parsing, and the
//! `uri-host` syntax of `Host`. One definition of each, so the request and the
//! response side cannot disagree.

/// The header names the gateway acts on, recognized once per field by
/// length first and then by a case-insensitive compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Host,
    Date,
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
    ProxyConnection,
    Te,
    Trailer,
    Upgrade,
    Http2Settings,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    UserAgent,
    XRequestId,
    Other,
}

impl Known {
    pub fn of(name: &[u8]) -> Known {
        let is = |known: &[u8]| name.eq_ignore_ascii_case(known);
        match name.len() {
            2 if is(b"te") => Known::Te,
            4 if is(b"host") => Known::Host,
            4 if is(b"date") => Known::Date,
            6 if is(b"expect") => Known::Expect,
            7 if is(b"trailer") => Known::Trailer,
            7 if is(b"upgrade") => Known::Upgrade,
            10 if is(b"connection") => Known::Connection,
            10 if is(b"keep-alive") => Known::KeepAlive,
            10 if is(b"user-agent") => Known::UserAgent,
            12 if is(b"x-request-id") => Known::XRequestId,
            14 if is(b"content-length") => Known::ContentLength,
            14 if is(b"http2-settings") => Known::Http2Settings,
            15 if is(b"x-forwarded-for") => Known::XForwardedFor,
            16 if is(b"proxy-connection") => Known::ProxyConnection,
            16 if is(b"x-forwarded-host") => Known::XForwardedHost,
            17 if is(b"transfer-encoding") => Known::TransferEncoding,
            17 if is(b"x-forwarded-proto") => Known::XForwardedProto,
            _ => Known::Other,
        }
    }

    /// Hop-by-hop (RFC 9110 §7.6.1): never forwarded in either direction.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Known::Connection
                | Known::KeepAlive
                | Known::ProxyConnection
                | Known::Te
                | Known::Trailer
                | Known::TransferEncoding
                | Known::Upgrade
                | Known::Http2Settings
        )
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), lowercase: never forwarded in either
/// direction. `Transfer-Encoding` is here because the gateway writes its own.
pub const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Whether `name` (any case) is a hop-by-hop header.
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    Known::of(name).is_hop_by_hop()
}

/// Headers a `Connection` token can never remove: they frame or address the
/// message, and the gateway writes its own (SPEC §6).
pub fn is_protected(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"content-length")
        || name.eq_ignore_ascii_case(b"transfer-encoding")
        || name.eq_ignore_ascii_case(b"host")
}

/// The comma-separated tokens of one header value, trimmed, empty ones skipped.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Whether `token` (any case) is one of the tokens of `value`.
pub fn has_token(value: &[u8], token: &[u8]) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token))
}

/// What the `Connection` headers of a message say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionTokens {
    pub close: bool,
    pub keep_alive: bool,
    pub upgrade: bool,
    /// Some token names another header (to be dropped when forwarding).
    pub names_headers: bool,
}

impl ConnectionTokens {
    /// Adds the tokens of one `Connection` value.
    pub fn add(&mut self, value: &[u8]) {
        for t in tokens(value) {
            if t.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if t.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else {
                self.upgrade |= t.eq_ignore_ascii_case(b"upgrade");
                self.names_headers = true;
            }
        }
    }
}

/// Whether a header named `name` is listed by one of the `Connection` values
/// (and is not one a `Connection` token may not remove).
pub fn listed_in<'a>(mut connection: impl Iterator<Item = &'a [u8]>, name: &[u8]) -> bool {
    !is_protected(name) && connection.any(|v| has_token(v, name))
}

/// One `Content-Length` value: decimal digits only, at most 19 of them (so the
/// number fits a `u64`), possibly a list of equal numbers (`3, 3`, which RFC
/// 9110 §8.6 lets a recipient read as `3`). `None` when invalid.
pub fn parse_content_length(value: &[u8]) -> Option<u64> {
    let mut length = None;
    for part in value.split(|&b| b == b',') {
        let n = parse_decimal(part.trim_ascii())?;
        if length.is_some_and(|l| l != n) {
            return None;
        }
        length = Some(n);
    }
    length
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits
        .iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add(u64::from(d - b'0')))
}

/// Whether `value` is a valid `Host` (RFC 9110 §7.2: `uri-host [ ":" port ]`):
/// a bracketed IP literal or a registered name (unreserved, percent-encoded
/// and sub-delimiter characters), then an optional decimal port. Refuses what
/// SPEC §4.1 names: empty, space, `/`, `@`, `"`, `\` and control bytes.
pub fn valid_host(value: &[u8]) -> bool {
    let (host, port) = split_port(value);
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    port_ok && valid_uri_host(host)
}

/// `host[:port]` → (`host`, `port`); an IP literal keeps its brackets.
pub fn split_port(value: &[u8]) -> (&[u8], Option<&[u8]>) {
    if value.starts_with(b"[") {
        return match value.iter().position(|&b| b == b']') {
            Some(end) => match &value[end + 1..] {
                [] => (&value[..=end], None),
                [b':', port @ ..] => (&value[..=end], Some(port)),
                // Junk after the literal: keep it in the host, which then fails.
                _ => (value, None),
            },
            None => (value, None),
        };
    }
    match value.iter().rposition(|&b| b == b':') {
        Some(i) => (&value[..i], Some(&value[i + 1..])),
        None => (value, None),
    }
}

/// Bytes a registered name may hold besides `%HH` escapes: unreserved and
/// sub-delimiter characters (RFC 3986 §3.2.2).
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
            );
        b += 1;
    }
    t
};

fn valid_uri_host(host: &[u8]) -> bool {
    if let [b'[', inner @ .., b']'] = host {
        return !inner.is_empty() && inner.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    if host.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < host.len() {
        let b = host[i];
        if REG_NAME[b as usize] {
            i += 1;
        } else if b == b'%'
            && host
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            i += 3;
        } else {
            return false;
        }
    }
    true
}

/// Whether `name` is a valid field name (RFC 9110 §5.1: a token).
pub fn is_token(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| is_tchar(b))
}

/// `tchar` of RFC 9110 §5.6.2.
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
        )
}

/// Whether `value` is a valid field value: visible ASCII, spaces and tabs
/// inside, `obs-text`; no control bytes, no leading or trailing whitespace.
pub fn is_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
        && value.first().is_none_or(|b| !b.is_ascii_whitespace())
        && value.last().is_none_or(|b| !b.is_ascii_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_lengths() {
        for (value, expected) in [
            (&b"0"[..], Some(0)),
            (b"42", Some(42)),
            (b" 7 ", Some(7)),
            (b"3, 3", Some(3)),
            (b"3,3,3", Some(3)),
            (b"3, 4", None),
            (b"", None),
            (b",", None),
            (b"-1", None),
            (b"+1", None),
            (b"0x10", None),
            (b"1 2", None),
            (b"99999999999999999999", None),
            (b"18446744073709551615", None),
            (b"9999999999999999999", Some(9_999_999_999_999_999_999)),
        ] {
            assert_eq!(
                parse_content_length(value),
                expected,
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn hosts() {
        for (value, ok) in [
            (&b"example.com"[..], true),
            (b"Example.COM:8080", true),
            (b"127.0.0.1", true),
            (b"[::1]:443", true),
            (b"[::1]", true),
            (b"a_b.example", true),
            (b"xn--bcher-kva.example", true),
            (b"h%41st", true),
            (b"", false),
            (b":80", false),
            (b"a b", false),
            (b"a/b", false),
            (b"user@host", false),
            (b"\"host\"", false),
            (b"a\\b", false),
            (b"a\x01b", false),
            (b"host:port", false),
            (b"host:123456", false),
            (b"[::1]x", false),
            (b"[]", false),
            (b"h%4", false),
        ] {
            assert_eq!(valid_host(value), ok, "{:?}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn connection_tokens_never_remove_framing_or_host() {
        let values: [&[u8]; 2] = [b"keep-alive, Content-Length", b"x-secret, HOST, transfer-encoding"];
        for name in [&b"content-length"[..], b"Content-Length", b"host", b"transfer-encoding"] {
            assert!(!listed_in(values.iter().copied(), name), "{name:?}");
        }
        assert!(listed_in(values.iter().copied(), b"x-secret"));
        let mut t = ConnectionTokens::default();
        t.add(b"Keep-Alive, Upgrade");
        t.add(b"close");
        assert_eq!(
            t,
            ConnectionTokens {
                close: true,
                keep_alive: true,
                upgrade: true,
                names_headers: true
            }
        );
    }

    #[test]
    fn known_names_in_any_case() {
        for name in HOP_BY_HOP {
            assert!(Known::of(name.as_bytes()).is_hop_by_hop(), "{name}");
            assert!(
                Known::of(name.to_ascii_uppercase().as_bytes()).is_hop_by_hop(),
                "{name}"
            );
        }
        assert_eq!(Known::of(b"Content-Length"), Known::ContentLength);
        assert_eq!(Known::of(b"X-Forwarded-For"), Known::XForwardedFor);
        assert_eq!(Known::of(b"x-forwarded-fox"), Known::Other);
        assert!(!Known::of(b"content-type").is_hop_by_hop());
    }
}
