//! The client's read side: the connection's read buffer and the request body's
//! decoder. Body data is handed out in place (a length at the front of the
//! buffer), so forwarding a body copies it once, into the upstream socket.

use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf as _, BytesMut};
use http1::{BodyKind, DecodeError, Decoder};

use crate::stream::Stream;
use crate::timer::Deadline;

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{0}")]
    Malformed(&'static str),
    #[error("client stopped sending the body")]
    Timeout,
    #[error("client closed the connection mid-body")]
    Closed,
    #[error("body exceeds maxRequestBodyBytes")]
    TooLarge,
}

impl From<DecodeError> for BodyError {
    fn from(e: DecodeError) -> Self {
        match e {
            DecodeError::Malformed(why) => BodyError::Malformed(why),
            DecodeError::Truncated => BodyError::Closed,
        }
    }
}

/// The client's read side: socket, buffered bytes and the current body's framing.
#[derive(Debug)]
pub struct ClientReader {
    pub stream: Rc<Stream>,
    pub buf: BytesMut,
    pub decoder: Decoder,
    /// Body bytes handed out so far.
    pub received: u64,
    pub max_body: Option<u64>,
    /// Bounds each gap in the body (`readMs`).
    pub read_timeout: Duration,
    /// The client side's timer: reads of heads and bodies, writes of responses.
    pub timer: Deadline,
}

impl ClientReader {
    pub fn new(stream: Rc<Stream>) -> Self {
        Self {
            stream,
            // Grown by the first read (at least `MIN_READ_ROOM`), then kept.
            buf: BytesMut::new(),
            decoder: Decoder::Done,
            received: 0,
            max_body: None,
            read_timeout: Duration::from_secs(15),
            timer: Deadline::new(),
        }
    }

    /// Prepares for the body of a request whose head was just read.
    pub fn start(&mut self, body: BodyKind, max_body: Option<u64>, read_timeout: Duration) {
        self.decoder = match body {
            BodyKind::None => Decoder::Done,
            BodyKind::Length(n) => Decoder::length(n),
            BodyKind::Chunked => Decoder::chunked(),
        };
        self.received = 0;
        self.max_body = max_body;
        self.read_timeout = read_timeout;
    }

    /// The whole body has been handed out.
    pub fn is_done(&self) -> bool {
        self.decoder.is_done()
    }

    /// Body data available at the front of `buf` without reading the socket:
    /// its length (0 when none is buffered yet, or the body is done).
    pub fn buffered(&mut self) -> Result<usize, BodyError> {
        let framing = self.decoder.skip_framing(&self.buf)?;
        self.buf.advance(framing);
        let n = self.decoder.data_len(self.buf.len());
        if self.max_body.is_some_and(|max| self.received + n as u64 > max) {
            return Err(BodyError::TooLarge);
        }
        Ok(n)
    }

    /// Waits until body data is at the front of `buf` and returns its length;
    /// 0 when the body is done. Each read from the socket waits at most
    /// `read_timeout`. The data stays in place until [`ClientReader::consume`].
    pub async fn fill(&mut self) -> Result<usize, BodyError> {
        loop {
            let n = self.buffered()?;
            if n > 0 || self.decoder.is_done() {
                return Ok(n);
            }
            let read = self.stream.read_buf(&mut self.buf);
            match self.timer.within_for(self.read_timeout, read).await {
                Err(_) => return Err(BodyError::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(BodyError::Closed),
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Drops `n` data bytes (at most what [`ClientReader::fill`] returned) from
    /// the front of the buffer.
    pub fn consume(&mut self, n: usize) {
        self.buf.advance(n);
        self.decoder.consume(n);
        self.received += n as u64;
    }

    /// Checks the framing of everything already buffered without consuming
    /// it, so a malformed chunked body is refused before any upstream sees
    /// the request (as far as the client has sent it).
    pub fn check_buffered(&self) -> Result<(), BodyError> {
        let mut decoder = self.decoder;
        let mut at = 0;
        loop {
            at += decoder.skip_framing(&self.buf[at..])?;
            let n = decoder.data_len(self.buf.len() - at);
            if n == 0 {
                return Ok(());
            }
            decoder.consume(n);
            at += n;
        }
    }

    /// Whether the body ends right after the `n` data bytes at the front of
    /// the buffer: the framing that closes it is already buffered too.
    pub fn ends_after(&self, n: usize) -> bool {
        let mut next = self.decoder;
        next.consume(n);
        next.skip_framing(&self.buf[n..]).is_ok() && next.is_done()
    }

    /// Consumes `n` data bytes and, when `end` (see [`ClientReader::ends_after`]),
    /// the framing that closes the body.
    pub fn consume_through(&mut self, n: usize, end: bool) {
        self.consume(n);
        if end && let Ok(tail) = self.decoder.skip_framing(&self.buf) {
            self.buf.advance(tail);
        }
    }

    /// Reads and discards the rest of the body (bounded by `limit` bytes), so
    /// the connection can carry another request; false if it could not.
    pub async fn discard(&mut self, limit: u64) -> bool {
        let mut left = limit;
        loop {
            match self.fill().await {
                Ok(0) => return true,
                Ok(n) if (n as u64) <= left => {
                    left -= n as u64;
                    self.consume(n);
                }
                _ => return false,
            }
        }
    }
}
