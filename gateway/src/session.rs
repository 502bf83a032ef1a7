//! The client side of an exchange: the connection's state between exchanges
//! ([`Conn`]), and what one exchange owns of it ([`Session`]), with the
//! keep-alive decision as a one-way ratchet ([`KeepAlive`]).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::stream::Stream;
use bytes::BytesMut;
use http::HeaderValue;
use http1::Fields;

use crate::body::ClientReader;
use crate::generation::{Generation, RouteTimeouts};
use crate::timer::Deadline;
use crate::worker::Worker;

/// A client connection's state between exchanges.
pub struct Conn {
    pub stream: Rc<Stream>,
    /// The read side: buffer and the current request body's decoder.
    pub reader: ClientReader,
    /// Reused buffer for encoding response heads.
    pub wbuf: BytesMut,
    /// Reused buffer for encoding the forwarded request head.
    pub reqbuf: BytesMut,
    /// Reused buffer for a rewritten path or a redirect's `Location`.
    pub scratch: String,
    /// The last request's header fields, emptied and reused by the next head.
    pub spare_fields: Fields,
    pub peer: SocketAddr,
    pub client_ip: HeaderValue,
    pub worker: Rc<Worker>,
    /// The upstream side's timer (the client side's is the reader's).
    pub upstream_timer: Deadline,
}

/// Whether the client connection can carry another request: starts as the
/// request allows and only ever goes from yes to no (hyper's `KA`).
#[derive(Debug, Clone, Copy)]
pub struct KeepAlive(bool);

impl KeepAlive {
    pub fn new(allowed: bool) -> Self {
        Self(allowed)
    }

    pub fn disable(&mut self) {
        self.0 = false;
    }

    pub fn get(self) -> bool {
        self.0
    }
}

/// The client side of one exchange: the connection, the plan generation that
/// routes it, and what the exchange has decided about the connection so far.
pub struct Session<'a> {
    pub conn: &'a mut Conn,
    pub generation: &'a Generation,
    pub ka: KeepAlive,
    /// The route's timeouts (the defaults until a route is known).
    pub timeouts: &'a RouteTimeouts,
    /// A response to HEAD carries no body.
    pub head_only: bool,
    /// The route's response-header filter (none until a route is known).
    pub response_filter: &'a http1::Filter,
}

impl Session<'_> {
    /// Whether the response now being written may leave the connection open:
    /// the exchange allows it, the whole request body was read, and the
    /// gateway is not stopping (while it is, every response says `close`).
    pub fn may_keep_alive(&self) -> bool {
        self.ka.get() && self.conn.reader.is_done() && !self.conn.worker.stopping()
    }

    pub fn write_timeout(&self) -> Duration {
        self.timeouts.write
    }
}
