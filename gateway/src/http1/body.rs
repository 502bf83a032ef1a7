//! Request bodies: the client's read side and the framing decoder that yields
//! the body piece by piece as it is forwarded.

use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;

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
