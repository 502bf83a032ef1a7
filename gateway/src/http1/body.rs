//! Request bodies: the framing decoder, and the streaming body handed to the
//! upstream request. The body owns the client's read side while it streams and
//! hands it back to the connection when it ends or is dropped.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::head::BodyKind;
use super::io::poll_read_buf;

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

/// The client's read side: socket, buffered bytes and the current body's framing.
#[derive(Debug)]
pub struct ClientReader {
    pub stream: Rc<TcpStream>,
    pub buf: BytesMut,
    pub decoder: Decoder,
    /// Data decoded ahead (while checking a chunked body before forwarding).
    pub pending: Option<Bytes>,
    pub error: Option<BodyError>,
    pub received: u64,
    pub max_body: Option<u64>,
    pub read_timeout: Duration,
}

impl ClientReader {
    /// The next piece of body data, reading from the socket as needed;
    /// `Ready(Ok(None))` at the end of the body.
    pub fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, BodyError>> {
        if let Some(data) = self.pending.take() {
            return Poll::Ready(Ok(Some(data)));
        }
        loop {
            let decoded = self
                .decoder
                .decode(&mut self.buf)
                .inspect_err(|&e| self.error = Some(e))?;
            if let Some(data) = decoded {
                self.received += data.len() as u64;
                if self.max_body.is_some_and(|max| self.received > max) {
                    self.error = Some(BodyError::TooLarge);
                    return Poll::Ready(Err(BodyError::TooLarge));
                }
                return Poll::Ready(Ok(Some(data)));
            }
            if self.decoder.is_done() {
                return Poll::Ready(Ok(None));
            }
            match std::task::ready!(poll_read_buf(&self.stream, cx, &mut self.buf)) {
                Ok(0) | Err(_) => {
                    self.error = Some(BodyError::Closed);
                    return Poll::Ready(Err(BodyError::Closed));
                }
                Ok(_) => {}
            }
        }
    }
}

/// Where a body returns the reader; one per connection, reused by each request.
#[derive(Default)]
pub struct Handoff {
    reader: Cell<Option<ClientReader>>,
    returned: Cell<bool>,
    notify: Notify,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("returned", &self.returned.get())
            .finish()
    }
}

impl Handoff {
    pub fn put(&self, reader: ClientReader) {
        self.reader.set(Some(reader));
        self.returned.set(true);
        self.notify.notify_waiters();
    }

    /// Takes the reader back (after the exchange), if the body has returned it.
    pub fn take(&self) -> Option<ClientReader> {
        self.reader.take()
    }

    /// Marks the start of a new body.
    pub fn lend(&self) {
        self.returned.set(false);
    }

    pub fn is_returned(&self) -> bool {
        self.returned.get()
    }

    /// Resolves once the current body has handed its reader back (ended or dropped).
    pub async fn returned(&self) {
        let notified = self.notify.notified();
        if self.returned.get() {
            return;
        }
        notified.await;
    }
}

/// The body of a forwarded request.
#[derive(Debug)]
pub enum ProxyBody {
    Empty,
    Stream(StreamBody),
}

#[derive(Debug)]
pub struct StreamBody {
    reader: Option<ClientReader>,
    handoff: Rc<Handoff>,
    length: Option<u64>,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl StreamBody {
    pub fn new(reader: ClientReader, handoff: Rc<Handoff>, length: Option<u64>) -> Self {
        Self {
            reader: Some(reader),
            handoff,
            length,
            deadline: None,
        }
    }

    fn give_back(&mut self) {
        if let Some(reader) = self.reader.take() {
            self.handoff.put(reader);
        }
    }
}

impl Drop for StreamBody {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl http_body::Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = match self.get_mut() {
            ProxyBody::Empty => return Poll::Ready(None),
            ProxyBody::Stream(s) => s,
        };
        let Some(reader) = this.reader.as_mut() else {
            return Poll::Ready(None);
        };
        match reader.poll_data(cx) {
            Poll::Ready(Ok(Some(data))) => {
                this.deadline = None;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Ok(None)) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Ready(Err(e)) => {
                this.give_back();
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => {
                // readMs bounds each gap between body reads.
                let timeout = reader.read_timeout;
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
                if deadline.as_mut().poll(cx).is_ready() {
                    if let Some(r) = this.reader.as_mut() {
                        r.error = Some(BodyError::Timeout);
                    }
                    this.give_back();
                    return Poll::Ready(Some(Err(BodyError::Timeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Empty => true,
            ProxyBody::Stream(s) => s.reader.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Empty => SizeHint::with_exact(0),
            ProxyBody::Stream(StreamBody { length: Some(n), .. }) => SizeHint::with_exact(*n),
            ProxyBody::Stream(_) => SizeHint::default(),
        }
    }
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
