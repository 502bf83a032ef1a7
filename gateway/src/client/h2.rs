//! The client side of one HTTP/2 stream: its request body as the DATA
//! frames bring it (flow-control window released only as the body is
//! forwarded, so what a stream buffers is bounded by its window), and its
//! response as HEADERS and DATA frames sent within the capacity the client
//! grants (so what a stream queues is bounded by `max_send_buffer_size`).

use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderName, HeaderValue, Response, Version};
use http1::{BodyKind, Framing, RequestHead};

use crate::body::BodyError;
use crate::client::side::Client;
use crate::error::kind::{ErrorKind, Failure};
use crate::stream::{LINGER, Stream};
use crate::timer::Deadline;

/// One HTTP/2 stream, as the client side of an exchange.
pub struct H2Stream {
    /// The connection the stream belongs to (for its TLS details only: the
    /// connection task alone reads and writes it).
    connection: Rc<Stream>,
    body: RecvStream,
    /// Received body data not yet forwarded.
    chunk: Bytes,
    /// The client ended its side of the stream.
    ended: bool,
    /// A declared `Content-Length`, checked against what arrives.
    declared: Option<u64>,
    received: u64,
    max_body: Option<u64>,
    read_timeout: Duration,
    /// The client side's timer: gaps in the body, waits for send capacity.
    timer: Deadline,
    respond: SendResponse<Bytes>,
    send: Option<SendStream<Bytes>>,
    /// The response was sent whole (its last frame said END_STREAM).
    answered: bool,
}

/// What [`H2Stream::discard_rest`] reads at most of a body nobody needs.
const DISCARD_BYTES: usize = 1 << 20;

impl H2Stream {
    pub fn new(connection: Rc<Stream>, body: RecvStream, respond: SendResponse<Bytes>) -> Self {
        Self {
            connection,
            ended: body.is_end_stream(),
            body,
            chunk: Bytes::new(),
            declared: None,
            received: 0,
            max_body: None,
            read_timeout: Duration::from_secs(15),
            timer: Deadline::new(),
            respond,
            send: None,
            answered: false,
        }
    }

    /// After a complete response, reads and drops what is left of a request
    /// body the client is still sending (a `413`, a redirect, an upstream
    /// that answered early), for at most [`LINGER`] and [`DISCARD_BYTES`],
    /// so that the client finishes its request rather than finding the
    /// stream reset in the middle of its upload. The reset that follows
    /// otherwise, `RST_STREAM(NO_ERROR)`, is what RFC 9113 §8.1 allows; but
    /// curl (7.88, Debian 12's) fails the transfer with "Stream error in the
    /// HTTP/2 framing layer" when it arrives while it still has body to send,
    /// and throws away the answer it read (NGINX's 413 meets the same fate).
    pub async fn discard_rest(&mut self) {
        if !self.answered || self.ended || self.body.is_end_stream() {
            return;
        }
        let body = &mut self.body;
        let discarded = async {
            let mut left = DISCARD_BYTES;
            while let Some(Ok(data)) = std::future::poll_fn(|cx| body.poll_data(cx)).await {
                let _ = body.flow_control().release_capacity(data.len());
                left = left.saturating_sub(data.len());
                if left == 0 {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, discarded).await;
    }

    /// Sends `data` within the capacity the client grants, each wait for
    /// capacity bounded by `timeout`; ends the stream with it at `end`.
    async fn send_data(&mut self, mut data: &[u8], end: bool, timeout: Duration) -> Result<(), Failure> {
        let Some(send) = self.send.as_mut() else {
            return Err(ErrorKind::ClientClosed.into());
        };
        if data.is_empty() {
            if end {
                send.send_data(Bytes::new(), true)
                    .map_err(|_| Failure::from(ErrorKind::ClientClosed))?;
                self.answered = true;
            }
            return Ok(());
        }
        while !data.is_empty() {
            send.reserve_capacity(data.len());
            let granted = match send.capacity() {
                0 => {
                    let granted = std::future::poll_fn(|cx| send.poll_capacity(cx));
                    match self.timer.within_for(timeout, granted).await {
                        Ok(Some(Ok(n))) => n,
                        Ok(_) => return Err(ErrorKind::ClientClosed.into()),
                        Err(_) => return Err(ErrorKind::WriteTimeout.into()),
                    }
                }
                n => n,
            };
            let n = granted.min(data.len());
            if n == 0 {
                continue;
            }
            let last = n == data.len();
            send.send_data(Bytes::copy_from_slice(&data[..n]), end && last)
                .map_err(|_| Failure::from(ErrorKind::ClientClosed))?;
            data = &data[n..];
        }
        self.answered = end;
        Ok(())
    }
}

/// The response to send for an HTTP/1.1 head the gateway encoded, and where
/// that head ends in `head` (a whole body may follow it).
fn response(head: &[u8]) -> Option<(Response<()>, usize)> {
    let mut response = Response::new(());
    let (status, len) = http1::response_fields(head, |name, value| {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            response.headers_mut().append(name, value);
        }
    })?;
    *response.status_mut() = status;
    Some((response, len))
}

impl Client for H2Stream {
    fn connection(&self) -> &Stream {
        &self.connection
    }

    fn response_version(&self, _request: Version) -> Version {
        Version::HTTP_11
    }

    fn start_body(&mut self, body: BodyKind, max_body: Option<u64>, read_timeout: Duration) {
        self.declared = match body {
            BodyKind::Length(n) => Some(n),
            BodyKind::None | BodyKind::Chunked => None,
        };
        self.max_body = max_body;
        self.read_timeout = read_timeout;
    }

    fn set_read_timeout(&mut self, read_timeout: Duration) {
        self.read_timeout = read_timeout;
    }

    fn body_done(&self) -> bool {
        self.chunk.is_empty() && (self.ended || self.body.is_end_stream())
    }

    fn buffered(&mut self) -> Result<usize, BodyError> {
        let n = self.chunk.len();
        if self.max_body.is_some_and(|max| self.received + n as u64 > max) {
            return Err(BodyError::TooLarge);
        }
        if self.declared.is_some_and(|d| self.received + n as u64 > d) {
            return Err(BodyError::Malformed("body longer than its Content-Length"));
        }
        Ok(n)
    }

    async fn fill(&mut self) -> Result<usize, BodyError> {
        loop {
            let n = self.buffered()?;
            if n > 0 {
                return Ok(n);
            }
            if self.ended || self.body.is_end_stream() {
                self.ended = true;
                // A declared length the stream ended short of.
                if self.declared.is_some_and(|d| d != self.received) {
                    return Err(BodyError::Closed);
                }
                return Ok(0);
            }
            let data = std::future::poll_fn(|cx| self.body.poll_data(cx));
            match self.timer.within_for(self.read_timeout, data).await {
                Err(_) => return Err(BodyError::Timeout),
                Ok(Some(Ok(data))) => self.chunk = data,
                Ok(Some(Err(_))) => return Err(BodyError::Closed),
                Ok(None) => self.ended = true,
            }
        }
    }

    fn body(&self) -> &[u8] {
        &self.chunk
    }

    fn ends_after(&self, n: usize) -> bool {
        n == self.chunk.len() && (self.ended || self.body.is_end_stream())
    }

    fn consume_through(&mut self, n: usize, _end: bool) {
        self.chunk.advance(n);
        self.received += n as u64;
        // The window reopens only for what was forwarded.
        let _ = self.body.flow_control().release_capacity(n);
    }

    async fn check_body(&mut self, head: &RequestHead, _write_timeout: Duration) -> Result<(), Failure> {
        // A stream the client already cancelled goes no further: a burst of
        // opened-and-reset streams (rapid reset) never reaches an upstream.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if self.respond.poll_reset(&mut cx).is_ready() {
            return Err(ErrorKind::ClientClosed.into());
        }
        if head.expect_continue && head.body.has_body() {
            let mut interim = Response::new(());
            *interim.status_mut() = crate::error::CONTINUE;
            self.respond
                .send_informational(interim)
                .map_err(|_| Failure::from(ErrorKind::ClientClosed))?;
        }
        Ok(())
    }

    async fn closed(&mut self) {
        let _ = std::future::poll_fn(|cx| self.respond.poll_reset(cx)).await;
    }

    async fn write(
        &mut self,
        head: &[u8],
        framing: Framing,
        data: &[u8],
        end: bool,
        timeout: Duration,
    ) -> Result<u64, Failure> {
        let no_body = framing == Framing::NoBody;
        let data = if no_body { &[][..] } else { data };
        let mut sent = 0;
        if !head.is_empty() {
            let (response, len) = response(head).ok_or(ErrorKind::BadResponse)?;
            let inline = if no_body { &[][..] } else { &head[len..] };
            let end_now = end && inline.is_empty() && data.is_empty();
            let stream = self
                .respond
                .send_response(response, end_now)
                .map_err(|_| Failure::from(ErrorKind::ClientClosed))?;
            sent += len as u64;
            if end_now {
                self.answered = true;
                return Ok(sent);
            }
            self.send = Some(stream);
            if !inline.is_empty() {
                let last = end && data.is_empty();
                self.send_data(inline, last, timeout).await?;
                sent += inline.len() as u64;
                if last {
                    return Ok(sent);
                }
            }
        }
        self.send_data(data, end, timeout).await?;
        Ok(sent + data.len() as u64)
    }

    async fn write_trailers(
        &mut self,
        head: &[u8],
        framing: Framing,
        mut trailers: HeaderMap,
        timeout: Duration,
    ) -> Result<u64, Failure> {
        let mut sent = 0;
        if !head.is_empty() {
            sent = self.write(head, framing, &[], false, timeout).await?;
        }
        // What frames a connection has no place in a trailer section.
        for name in http1::headers::HOP_BY_HOP {
            trailers.remove(name);
        }
        let Some(send) = self.send.as_mut() else {
            return Err(ErrorKind::ClientClosed.into());
        };
        send.send_trailers(trailers)
            .map_err(|_| Failure::from(ErrorKind::ClientClosed))?;
        self.answered = true;
        Ok(sent)
    }

    fn tunnel(&mut self) -> Option<(&Stream, &mut BytesMut)> {
        None
    }
}
