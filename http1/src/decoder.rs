//! Body framing on the read side, for both directions: `Content-Length`,
//! chunked (RFC 9112 §7.1, strictly: chunk extensions and trailer lines must
//! follow the grammar exactly), and close-delimited (responses only).

use bytes::{Buf as _, Bytes, BytesMut};

use crate::headers::{is_tchar, is_token};

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("bad chunked encoding: {0}")]
    Malformed(&'static str),
    #[error("the body ended before its declared length")]
    Truncated,
}

/// Longest chunk-size line (with extensions) and trailer line accepted.
const MAX_LINE: usize = 4096;
/// Largest trailer section accepted.
const MAX_TRAILERS: usize = 16 * 1024;

/// Where a chunked body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    /// Trailer lines, with the bytes of trailer section seen so far.
    Trailers(usize),
}

/// Body framing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Length(u64),
    Chunked(Chunk),
    /// Until the peer closes the connection (a response without length).
    Eof,
    Done,
}

impl Decoder {
    pub fn length(n: u64) -> Self {
        if n == 0 { Decoder::Done } else { Decoder::Length(n) }
    }

    pub fn chunked() -> Self {
        Decoder::Chunked(Chunk::Size)
    }

    pub fn is_done(&self) -> bool {
        *self == Decoder::Done
    }

    /// The peer closed the connection: fine for a close-delimited body (which
    /// is then done), a truncation for any other that is not done.
    pub fn eof(&mut self) -> Result<(), DecodeError> {
        match self {
            Decoder::Done => Ok(()),
            Decoder::Eof => {
                *self = Decoder::Done;
                Ok(())
            }
            _ => Err(DecodeError::Truncated),
        }
    }

    /// Skips the framing at the front of `buf` (chunk-size lines, the CRLF
    /// after a chunk's data, trailer lines) and returns how many bytes it
    /// took. It stops at body data, at the end of the body, or where more
    /// bytes are needed; the caller drops the returned count from its buffer.
    pub fn skip_framing(&mut self, buf: &[u8]) -> Result<usize, DecodeError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match *self {
                Decoder::Done | Decoder::Eof | Decoder::Length(_) | Decoder::Chunked(Chunk::Data(_)) => {
                    return Ok(at);
                }
                Decoder::Chunked(Chunk::Size) => {
                    let Some((line, used)) = line(rest)? else { return Ok(at) };
                    let size = parse_chunk_line(line)?;
                    at += used;
                    *self = Decoder::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    });
                }
                Decoder::Chunked(Chunk::DataEnd) => {
                    if rest.len() < 2 {
                        return Ok(at);
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(DecodeError::Malformed("chunk data not followed by CRLF"));
                    }
                    at += 2;
                    *self = Decoder::Chunked(Chunk::Size);
                }
                Decoder::Chunked(Chunk::Trailers(seen)) => {
                    let Some((line, used)) = line(rest)? else { return Ok(at) };
                    at += used;
                    if line.is_empty() {
                        *self = Decoder::Done;
                        return Ok(at);
                    }
                    let seen = seen + used;
                    if seen > MAX_TRAILERS {
                        return Err(DecodeError::Malformed("trailer section too large"));
                    }
                    check_trailer_line(line)?;
                    *self = Decoder::Chunked(Chunk::Trailers(seen));
                }
            }
        }
    }

    /// How many of the `available` bytes at the front of the buffer (after
    /// [`Decoder::skip_framing`]) are body data.
    pub fn data_len(&self, available: usize) -> usize {
        match *self {
            Decoder::Length(n) | Decoder::Chunked(Chunk::Data(n)) => n.min(available as u64) as usize,
            Decoder::Eof => available,
            Decoder::Done | Decoder::Chunked(_) => 0,
        }
    }

    /// Records that `n` data bytes (at most [`Decoder::data_len`]) were consumed.
    pub fn consume(&mut self, n: usize) {
        let n = n as u64;
        *self = match *self {
            Decoder::Length(left) if n >= left => Decoder::Done,
            Decoder::Length(left) => Decoder::Length(left - n),
            Decoder::Chunked(Chunk::Data(left)) if n >= left => Decoder::Chunked(Chunk::DataEnd),
            Decoder::Chunked(Chunk::Data(left)) => Decoder::Chunked(Chunk::Data(left - n)),
            other => other,
        };
    }

    /// Decodes from the front of `buf`: `Ok(Some(data))` (never empty), or
    /// `Ok(None)` when more bytes are needed or the body is done.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, DecodeError> {
        let framing = self.skip_framing(buf)?;
        buf.advance(framing);
        let n = self.data_len(buf.len());
        if n == 0 {
            return Ok(None);
        }
        self.consume(n);
        Ok(Some(buf.split_to(n).freeze()))
    }
}

/// One CRLF-terminated line at the front of `buf`: the line without its CRLF,
/// and the bytes it took with it.
fn line(buf: &[u8]) -> Result<Option<(&[u8], usize)>, DecodeError> {
    match buf.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') {
        Some(i) => {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(DecodeError::Malformed("line not terminated by CRLF"));
            }
            Ok(Some((&buf[..i - 1], i + 1)))
        }
        None if buf.len() > MAX_LINE => Err(DecodeError::Malformed("chunk line too long")),
        None => Ok(None),
    }
}

const BAD_SIZE: DecodeError = DecodeError::Malformed("bad chunk size");
const BAD_EXT: DecodeError = DecodeError::Malformed("bad chunk extension");

/// `chunk-size [ chunk-ext ]` (RFC 9112 §7.1.1):
/// `chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
/// Whitespace is allowed only around `;` and `=`, never at the end of the
/// line; control and non-ASCII bytes nowhere.
fn parse_chunk_line(line: &[u8]) -> Result<u64, DecodeError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 15 {
        return Err(BAD_SIZE);
    }
    let size = line[..digits]
        .iter()
        .fold(0u64, |n, &d| n * 16 + u64::from((d as char).to_digit(16).unwrap_or(0)));
    let mut rest = &line[digits..];
    let mut seen_ext = false;
    let skip_ws = |s: &mut &[u8]| -> bool {
        let n = s.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        *s = &s[n..];
        n > 0
    };
    loop {
        let spaced = skip_ws(&mut rest);
        let Some((&first, after)) = rest.split_first() else {
            // Trailing whitespace is what a lenient front end reads differently.
            return if spaced { Err(BAD_SIZE) } else { Ok(size) };
        };
        if first != b';' {
            return Err(if seen_ext { BAD_EXT } else { BAD_SIZE });
        }
        seen_ext = true;
        rest = after;
        skip_ws(&mut rest);
        let name = rest.iter().take_while(|&&b| is_tchar(b)).count();
        if name == 0 {
            return Err(BAD_EXT);
        }
        rest = &rest[name..];
        let mut look = rest;
        skip_ws(&mut look);
        if look.first() == Some(&b'=') {
            rest = &look[1..];
            skip_ws(&mut rest);
            rest = ext_value(rest)?;
        }
    }
}

/// Consumes a `token` or `quoted-string` (ASCII only) from the front of `s`.
fn ext_value(s: &[u8]) -> Result<&[u8], DecodeError> {
    if s.first() == Some(&b'"') {
        let mut i = 1;
        while i < s.len() {
            match s[i] {
                b'"' => return Ok(&s[i + 1..]),
                b'\\' => {
                    let escaped = *s.get(i + 1).ok_or(BAD_EXT)?;
                    if !(escaped == b'\t' || (0x20..=0x7e).contains(&escaped)) {
                        return Err(BAD_EXT);
                    }
                    i += 2;
                }
                b'\t' | 0x20..=0x7e => i += 1,
                _ => return Err(BAD_EXT),
            }
        }
        return Err(BAD_EXT);
    }
    let n = s.iter().take_while(|&&b| is_tchar(b)).count();
    if n == 0 {
        return Err(BAD_EXT);
    }
    Ok(&s[n..])
}

/// A trailer line must be a field line: `name ":" OWS value OWS`, no
/// obs-fold, no control bytes. Anything else (a request line smuggled as a
/// trailer, say) is refused.
fn check_trailer_line(line: &[u8]) -> Result<(), DecodeError> {
    let bad = DecodeError::Malformed("bad trailer field");
    let colon = line.iter().position(|&b| b == b':').ok_or(bad)?;
    if !is_token(&line[..colon]) {
        return Err(bad);
    }
    let value = &line[colon + 1..];
    if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(bad);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(mut d: Decoder, input: &[u8]) -> Result<(Vec<u8>, bool, usize), DecodeError> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(data) = d.decode(&mut buf)? {
            assert!(!data.is_empty());
            out.extend_from_slice(&data);
        }
        Ok((out, d.is_done(), buf.len()))
    }

    fn ok(input: &[u8], body: &[u8], done: bool, left: usize) {
        assert_eq!(
            decode_all(Decoder::chunked(), input),
            Ok((body.to_vec(), done, left)),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }

    fn bad(input: &[u8]) {
        assert!(
            matches!(decode_all(Decoder::chunked(), input), Err(DecodeError::Malformed(_))),
            "accepted {:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn chunked_decoding() {
        ok(b"5\r\nhello\r\n0\r\n\r\n", b"hello", true, 0);
        ok(
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET",
            b"hello world",
            true,
            3,
        );
        ok(b"A\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n", b"0123456789", true, 0);
        ok(b"5\r\nhel", b"hel", false, 0);
        ok(b"0\r\n\r\n", b"", true, 0);
        ok(b"000005\r\nhello\r\n0\r\n\r\n", b"hello", true, 0);
        bad(b"zz\r\nhello\r\n");
        bad(b"\r\n");
        bad(b"5\r\nhelloXX0\r\n\r\n");
        bad(b"-5\r\nhello\r\n");
        bad(b"5\nhello\r\n");
        bad(b"1111111111111111\r\n");
        bad(b"0x5\r\nhello\r\n");
    }

    #[test]
    fn chunk_extensions_follow_the_grammar() {
        for line in [
            "5;a",
            "5;a=b",
            "5 ;a=b",
            "5\t; a = b",
            "5;a=\"quoted; \\\" value\"",
            "5;a=b;c;d=\"\"",
        ] {
            ok(format!("{line}\r\nhello\r\n0\r\n\r\n").as_bytes(), b"hello", true, 0);
        }
        // Each of these was accepted and re-chunked before: a front end that
        // reads the line differently desyncs from us.
        for line in [
            &b"5 "[..],
            b"5\t",
            b"5;",
            b"5; ",
            b"5;=b",
            b"5;a=",
            b"5;a=b ",
            b"5;a=b;",
            b"5 a",
            b"5;a\rb",
            b"5;a=\x01",
            b"5;a=\"\x01\"",
            b"5;a=\"\xc3\xa9\"",
            b"5;\xc3\xa9",
            b"5;a=\"unterminated",
            b"5;a b",
        ] {
            let mut input = line.to_vec();
            input.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            bad(&input);
        }
    }

    #[test]
    fn trailers_must_be_field_lines() {
        ok(b"0\r\nX-A: 1\r\nX-B:\r\n\r\n", b"", true, 0);
        // Regression: a smuggled request line was swallowed as a trailer.
        bad(b"0\r\nGET /second HTTP/1.1\r\nHost: a\r\n\r\n");
        bad(b"0\r\n: no name\r\n\r\n");
        bad(b"0\r\nX A: 1\r\n\r\n");
        bad(b"0\r\n folded\r\n\r\n");
        bad(b"0\r\nX-A: a\x00b\r\n\r\n");
    }

    #[test]
    fn length_and_eof_bodies() {
        assert_eq!(
            decode_all(Decoder::length(3), b"abcGET"),
            Ok((b"abc".to_vec(), true, 3))
        );
        assert_eq!(decode_all(Decoder::length(5), b"abc"), Ok((b"abc".to_vec(), false, 0)));
        assert_eq!(decode_all(Decoder::Eof, b"abc"), Ok((b"abc".to_vec(), false, 0)));
        let mut d = Decoder::Eof;
        assert_eq!(d.eof(), Ok(()));
        assert!(d.is_done());
        let mut d = Decoder::length(5);
        assert_eq!(d.eof(), Err(DecodeError::Truncated));
    }
}
