//! Request bodies: the framing decoder, and the streaming body handed to the
//! upstream request. The body owns the client's read side while it streams and
//! hands it back to the connection when it ends or is dropped.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

pub use super::chunked::{BodyError, Decoder};
use super::io::poll_read_buf;

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
