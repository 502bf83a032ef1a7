//! The client side of an exchange: the connection's state between exchanges
//! ([`Conn`]), and what one exchange owns of it ([`Session`]), with the
//! keep-alive decision as a one-way ratchet ([`KeepAlive`]).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use http::HeaderValue;

use crate::client::side::Client;
use crate::generation::{Generation, RouteTimeouts};
use crate::timer::Deadline;
use crate::worker::Worker;

/// What an exchange needs of its client's connection, besides the client
/// side itself (`C`: an HTTP/1.1 connection or an HTTP/2 stream).
pub struct Conn<C> {
    pub client: C,
    /// Reused buffer for encoding response heads.
    pub wbuf: BytesMut,
    /// Reused buffer for encoding the forwarded request head.
    pub reqbuf: BytesMut,
    /// Reused buffer for a rewritten path or a redirect's `Location`.
    pub scratch: String,
    pub peer: SocketAddr,
    pub client_ip: HeaderValue,
    pub worker: Rc<Worker>,
    /// The upstream side's timer (the client side's is the client's own).
    pub upstream_timer: Deadline,
}

impl<C> Conn<C> {
    pub fn new(client: C, peer: SocketAddr, client_ip: HeaderValue, worker: Rc<Worker>) -> Self {
        Self {
            client,
            // Grown by the first exchange (and kept): a connection that never
            // sends a request (an idle TLS session, say) holds none.
            wbuf: BytesMut::new(),
            reqbuf: BytesMut::new(),
            scratch: String::new(),
            peer,
            client_ip,
            worker,
            upstream_timer: Deadline::new(),
        }
    }
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
pub struct Session<'a, C> {
    pub conn: &'a mut Conn<C>,
    pub generation: &'a Generation,
    pub ka: KeepAlive,
    /// The route's timeouts (the defaults until a route is known).
    pub timeouts: &'a RouteTimeouts,
    /// A response to HEAD carries no body.
    pub head_only: bool,
    /// The route's response-header filter (none until a route is known).
    pub response_filter: &'a http1::Filter,
}

impl<C: Client> Session<'_, C> {
    /// Whether the response now being written may leave the connection open:
    /// the exchange allows it, the whole request body was read, and the
    /// gateway is not stopping (while it is, every response says `close`).
    pub fn may_keep_alive(&self) -> bool {
        self.ka.get() && self.conn.client.body_done() && !self.conn.worker.stopping()
    }

    pub fn write_timeout(&self) -> Duration {
        self.timeouts.write
    }
}
