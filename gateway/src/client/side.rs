//! The [`Client`] trait: what the phases ask of the client side of an
//! exchange (see the `client` module).

use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, Version};
use http1::{BodyKind, Framing, RequestHead};

use crate::body::BodyError;
use crate::error::kind::Failure;
use crate::stream::Stream;
use crate::tls::TlsStream;

/// The client side of an exchange (see the module documentation).
// `async fn` here is only ever called through generics on one thread: no
// trait object, no `Send` bound wanted.
#[allow(async_fn_in_trait)]
pub trait Client {
    /// The client's connection (read and written only by the client side's
    /// own code: for its TLS details and scheme here).
    fn connection(&self) -> &Stream;

    /// The TLS session the request came over, if any.
    fn tls(&self) -> Option<&TlsStream> {
        self.connection().tls()
    }

    /// `"http"` or `"https"`, for `X-Forwarded-Proto` and redirects.
    fn scheme(&self) -> &'static str {
        self.connection().scheme()
    }

    /// The version the response head is encoded for (HTTP/2 responses are
    /// encoded as HTTP/1.1 heads, then converted).
    fn response_version(&self, request: Version) -> Version;

    /// Prepares for the body of the request whose head was just read.
    fn start_body(&mut self, body: BodyKind, max_body: Option<u64>, read_timeout: Duration);

    /// Bounds each gap in the request body from now on (the route's `readMs`).
    fn set_read_timeout(&mut self, read_timeout: Duration);

    /// The whole request body has been handed out.
    fn body_done(&self) -> bool;

    /// Body data available now, without waiting: its length at the front of
    /// [`Client::body`] (0 when none yet, or the body is done).
    fn buffered(&mut self) -> Result<usize, BodyError>;

    /// Waits (at most `readMs` per gap) until body data is available and
    /// returns its length; 0 when the body is done.
    async fn fill(&mut self) -> Result<usize, BodyError>;

    /// The body data available (its first [`Client::buffered`] bytes).
    fn body(&self) -> &[u8];

    /// Whether the body ends right after its next `n` data bytes.
    fn ends_after(&self, n: usize) -> bool;

    /// Consumes `n` data bytes (and, at `end`, what closes the body).
    fn consume_through(&mut self, n: usize, end: bool);

    /// The check-body phase's client side: answers `Expect: 100-continue` and
    /// validates the framing of what is already buffered.
    async fn check_body(&mut self, head: &RequestHead, write_timeout: Duration) -> Result<(), Failure>;

    /// Resolves when the client went away (or cancelled the request) while
    /// the exchange waits for the upstream. Only asked once the request body
    /// is done.
    async fn closed(&mut self);

    /// Sends `head` (an HTTP/1.1 response head, possibly with a whole body
    /// after it, or empty once sent), then `data` framed as `framing` says,
    /// and ends the response at `end`; each write waits at most `timeout`.
    /// Returns the bytes it counts as sent.
    async fn write(
        &mut self,
        head: &[u8],
        framing: Framing,
        data: &[u8],
        end: bool,
        timeout: Duration,
    ) -> Result<u64, Failure>;

    /// Ends the response with `trailers` (an HTTP/2 upstream's), after
    /// `head` when it has not been sent yet; each write waits at most
    /// `timeout`. Returns the bytes it counts as sent. An HTTP/1.1 client
    /// gets the end of the body without them (as NGINX and Envoy do).
    async fn write_trailers(
        &mut self,
        head: &[u8],
        framing: Framing,
        trailers: HeaderMap,
        timeout: Duration,
    ) -> Result<u64, Failure>;

    /// The raw connection and the bytes read past the request head, for a
    /// WebSocket tunnel; `None` where there is no such connection.
    fn tunnel(&mut self) -> Option<(&Stream, &mut BytesMut)>;
}
