//! Request body framing: `Content-Length` and chunked decoding (RFC 9112 §7.1),
//! strict about sizes and line endings. Depends on `bytes` only, so the fuzz
//! targets can include it as is.

use bytes::{Buf, Bytes, BytesMut};

use super::head::BodyKind;

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("bad chunked encoding: {0}")]
    Malformed(&'static str),
    #[error("client stopped sending the body")]
    Timeout,
    #[error("client closed the connection mid-body")]
    Closed,
    #[error("body exceeds maxRequestBodyBytes")]
    TooLarge,
}

const MAX_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
}

/// Body framing state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Length(u64),
    Chunked(Chunk),
    Done,
}

impl Decoder {
    pub fn new(kind: BodyKind) -> Self {
        match kind {
            BodyKind::None | BodyKind::Length(0) => Decoder::Done,
            BodyKind::Length(n) => Decoder::Length(n),
            BodyKind::Chunked => Decoder::Chunked(Chunk::Size),
        }
    }

    pub fn is_done(&self) -> bool {
        *self == Decoder::Done
    }

    /// Decodes from the front of `buf`: `Ok(Some(data))`, or `Ok(None)` when more
    /// bytes are needed (or the body is done).
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, BodyError> {
        loop {
            match *self {
                Decoder::Done => return Ok(None),
                Decoder::Length(remaining) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    *self = if n == remaining {
                        Decoder::Done
                    } else {
                        Decoder::Length(remaining - n)
                    };
                    return Ok(Some(data));
                }
                Decoder::Chunked(Chunk::Size) => {
                    let Some(line) = take_line(buf)? else { return Ok(None) };
                    let size = parse_chunk_size(&line)?;
                    *self = Decoder::Chunked(if size == 0 {
                        Chunk::Trailers(0)
                    } else {
                        Chunk::Data(size)
                    });
                }
                Decoder::Chunked(Chunk::Data(remaining)) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let n = remaining.min(buf.len() as u64);
                    let data = buf.split_to(n as usize).freeze();
                    *self = Decoder::Chunked(if n == remaining {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(remaining - n)
                    });
                    return Ok(Some(data));
                }
                Decoder::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(BodyError::Malformed("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    *self = Decoder::Chunked(Chunk::Size);
                }
                Decoder::Chunked(Chunk::Trailers(seen)) => {
                    let Some(line) = take_line(buf)? else { return Ok(None) };
                    if line.is_empty() {
                        *self = Decoder::Done;
                        return Ok(None);
                    }
                    let seen = seen + line.len() + 2;
                    if seen > MAX_TRAILERS {
                        return Err(BodyError::Malformed("trailer section too large"));
                    }
                    *self = Decoder::Chunked(Chunk::Trailers(seen));
                }
            }
        }
    }
}

/// Takes one CRLF-terminated line (without the CRLF) off the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Result<Option<BytesMut>, BodyError> {
    match buf.iter().take(MAX_LINE + 2).position(|&b| b == b'\n') {
        Some(i) => {
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(BodyError::Malformed("line not terminated by CRLF"));
            }
            let mut line = buf.split_to(i + 1);
            line.truncate(i - 1);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(BodyError::Malformed("chunk line too long")),
        None => Ok(None),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, BodyError> {
    let end = line
        .iter()
        .position(|&b| b == b';' || b == b' ' || b == b'\t')
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(end);
    if digits.is_empty() || digits.len() > 15 {
        return Err(BodyError::Malformed("bad chunk size"));
    }
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(BodyError::Malformed("bad chunk size"));
    }
    let mut size = 0u64;
    for &d in digits {
        let v = (d as char).to_digit(16).ok_or(BodyError::Malformed("bad chunk size"))?;
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(kind: BodyKind, input: &[u8]) -> Result<(Vec<u8>, bool, usize), BodyError> {
        let mut d = Decoder::new(kind);
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(data) = d.decode(&mut buf)? {
            out.extend_from_slice(&data);
        }
        Ok((out, d.is_done(), buf.len()))
    }

    #[test]
    fn chunked_decoding() {
        let ok = |input: &[u8], body: &[u8], done: bool, left: usize| {
            assert_eq!(
                decode_all(BodyKind::Chunked, input),
                Ok((body.to_vec(), done, left)),
                "{input:?}"
            );
        };
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
        let bad = |input: &[u8]| {
            assert!(
                matches!(decode_all(BodyKind::Chunked, input), Err(BodyError::Malformed(_))),
                "{input:?}"
            );
        };
        bad(b"zz\r\nhello\r\n");
        bad(b"\r\n");
        bad(b"5\r\nhelloXX0\r\n\r\n");
        bad(b"-5\r\nhello\r\n");
        bad(b"5\nhello\r\n");
        bad(b"1111111111111111\r\n");
    }

    #[test]
    fn length_decoding_stops_at_the_boundary() {
        assert_eq!(
            decode_all(BodyKind::Length(3), b"abcGET"),
            Ok((b"abc".to_vec(), true, 3))
        );
        assert_eq!(decode_all(BodyKind::Length(5), b"abc"), Ok((b"abc".to_vec(), false, 0)));
    }
}
