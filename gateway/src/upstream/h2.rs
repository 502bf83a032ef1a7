//! HTTP/2 connections to the upstreams of `protocol: h2` clusters (SPEC §14):
//! each worker thread keeps one connection per upstream and multiplexes its
//! exchanges over it as streams. A connection is opened once for the
//! exchanges that want it at the same time (they wait for the one being
//! opened), replaced when it closes, when its upstream's addresses change or
//! after `maxRequestsPerConnection` streams, and let go after `idleMs`
//! without a new stream (it closes when its last stream ends).
//!
//! The `h2` crate speaks the protocol and enforces its limits (flow control,
//! the upstream's `SETTINGS_MAX_CONCURRENT_STREAMS`, which an exchange waits
//! for within `connectMs`, CONTINUATION and header-list limits).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use h2::client::SendRequest;
use tokio::sync::Notify;

use super::pool::connect;
use super::target::Target;
use crate::error::kind::ErrorKind;
use crate::stream::H2Io;

/// A stream's receive window: what one response may have in flight before
/// the client takes it.
const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window: what all its responses together may.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// What one request stream may queue for sending beyond what the upstream reads.
const SEND_BUFFER: usize = 64 * 1024;
/// The largest response (or trailer) header list accepted from an upstream,
/// as HPACK counts it; the response head must also fit the HTTP/1.1 head
/// limits it is checked against.
const MAX_HEADER_LIST: u32 = 64 * 1024;

/// One upstream's connection in a worker's [`H2Pool`].
enum Entry {
    /// Being opened by one exchange; the others wait for it.
    Opening(Rc<Notify>),
    Open(Conn),
}

struct Conn {
    send: SendRequest<Bytes>,
    /// Streams opened on it (`maxRequestsPerConnection`).
    requests: u32,
    /// When it is let go without a new stream (`idleMs`).
    expires: Instant,
    /// The upstream's address list it was opened under.
    endpoints_version: u64,
    /// Set by its task when the connection has ended, or by an exchange
    /// that retired it ([`Leased::retire`]).
    ended: Rc<Cell<bool>>,
}

/// A worker's HTTP/2 upstream connections, by [`Target::pool_id`].
#[derive(Default)]
pub struct H2Pool {
    entries: RefCell<Vec<Option<Entry>>>,
}

impl std::fmt::Debug for H2Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Pool").finish_non_exhaustive()
    }
}

/// A handle on one upstream connection, for one stream.
pub struct Leased {
    pub send: SendRequest<Bytes>,
    /// The connection's `ended` flag.
    ended: Rc<Cell<bool>>,
}

impl Leased {
    /// This connection takes no new stream (it said GOAWAY, or failed): the
    /// next exchange opens another. Streams already on it run to their end.
    pub fn retire(&self) {
        self.ended.set(true);
    }
}

/// What [`H2Pool::lookup`] found.
enum Found {
    Ready(Leased),
    Wait(Rc<Notify>),
    Open(Rc<Notify>),
}

impl H2Pool {
    /// A handle on `target`'s connection, ready for a new stream: the open
    /// one, or one opened now (or by another exchange meanwhile). Waiting for
    /// a connection and for a stream slot on it counts against `timeout`
    /// (`connectMs`).
    pub async fn sender(&self, target: &Target, timeout: Duration) -> Result<Leased, ErrorKind> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let leased = match self.lookup(target) {
                Found::Ready(leased) => leased,
                Found::Wait(opened) => {
                    let notified = opened.notified();
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(ErrorKind::ConnectTimeout);
                    }
                    continue;
                }
                Found::Open(opening) => {
                    let mut opening = Opening {
                        pool: self,
                        id: target.pool_id,
                        notify: opening,
                    };
                    match tokio::time::timeout_at(deadline, open(target)).await {
                        Ok(Ok((send, ended))) => opening.opened(Conn {
                            send,
                            requests: 0,
                            expires: Instant::now() + target.idle_timeout,
                            endpoints_version: target.state.endpoints_version.load(Ordering::Relaxed),
                            ended,
                        }),
                        Ok(Err(kind)) => return Err(kind),
                        Err(_) => return Err(ErrorKind::ConnectTimeout),
                    }
                    continue;
                }
            };
            let Leased { send, ended } = leased;
            match tokio::time::timeout_at(deadline, send.ready()).await {
                Ok(Ok(send)) => return Ok(Leased { send, ended }),
                // The connection ended: the next turn opens another.
                Ok(Err(_)) => ended.set(true),
                Err(_) => return Err(ErrorKind::UpstreamOverloaded),
            }
        }
    }

    fn lookup(&self, target: &Target) -> Found {
        let mut entries = self.entries.borrow_mut();
        if entries.len() <= target.pool_id {
            entries.resize_with(target.pool_id + 1, || None);
        }
        let slot = &mut entries[target.pool_id];
        if let Some(Entry::Open(conn)) = slot {
            let current = conn.endpoints_version == target.state.endpoints_version.load(Ordering::Relaxed);
            let spent = target.max_requests.is_some_and(|max| conn.requests >= max);
            if conn.ended.get() || !current || spent {
                *slot = None;
            }
        }
        match slot {
            Some(Entry::Open(conn)) => {
                conn.requests += 1;
                conn.expires = Instant::now() + target.idle_timeout;
                Found::Ready(Leased {
                    send: conn.send.clone(),
                    ended: conn.ended.clone(),
                })
            }
            Some(Entry::Opening(opened)) => Found::Wait(opened.clone()),
            None => {
                let opening = Rc::new(Notify::new());
                *slot = Some(Entry::Opening(opening.clone()));
                Found::Open(opening)
            }
        }
    }

    /// Lets go of the connections to upstreams that `live` (by pool id) no
    /// longer has (a reload removed them): each closes once its last stream
    /// ends.
    pub fn retain_live(&self, live: &[bool]) {
        for (id, slot) in self.entries.borrow_mut().iter_mut().enumerate() {
            if matches!(slot, Some(Entry::Open(_))) && !live.get(id).copied().unwrap_or(false) {
                *slot = None;
            }
        }
    }

    /// Lets go of connections that carried no new stream for `idleMs` (or
    /// ended): each closes once its last stream ends.
    pub fn close_idle(&self, now: Instant) {
        for slot in self.entries.borrow_mut().iter_mut() {
            if let Some(Entry::Open(conn)) = slot
                && (conn.expires <= now || conn.ended.get())
            {
                *slot = None;
            }
        }
    }
}

/// The opening of one upstream's connection by one exchange. However it
/// ends (opened, failed, or the exchange dropped while waiting), the
/// exchanges waiting for it are woken; unless it opened, the slot is empty
/// again for the next one to try.
struct Opening<'a> {
    pool: &'a H2Pool,
    id: usize,
    notify: Rc<Notify>,
}

impl Opening<'_> {
    fn opened(&mut self, conn: Conn) {
        self.pool.entries.borrow_mut()[self.id] = Some(Entry::Open(conn));
    }
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.pool.entries.borrow_mut().get_mut(self.id)
            && matches!(slot, Some(Entry::Opening(_)))
        {
            *slot = None;
        }
        self.notify.notify_waiters();
    }
}

/// Opens an HTTP/2 connection to `target` (TCP, then TLS with ALPN `h2`, or
/// prior knowledge over cleartext) and starts its task, which holds the
/// connection's slot under `maxConnections` until it ends.
async fn open(target: &Target) -> Result<(SendRequest<Bytes>, Rc<Cell<bool>>), ErrorKind> {
    // `sender` bounds the whole opening by `connectMs`.
    let up = connect(target, Duration::from_secs(86_400)).await?;
    if let Some(tls) = up.stream.tls()
        && !tls.h2
    {
        target.failures.h2(
            &target.stats.name,
            &target.url,
            &"the upstream did not select h2 in ALPN (the cluster says protocol: h2)",
        );
        return Err(ErrorKind::ConnectFailed);
    }
    let io = H2Io::new(up.stream.clone(), BytesMut::new());
    let (send, connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(SEND_BUFFER)
        .max_header_list_size(MAX_HEADER_LIST)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| {
            target.failures.h2(&target.stats.name, &target.url, &e);
            ErrorKind::ConnectFailed
        })?;
    let ended = Rc::new(Cell::new(false));
    let flag = ended.clone();
    tokio::task::spawn_local(async move {
        // The connection's slot and gauges live as long as it does.
        let _up = up;
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "upstream HTTP/2 connection ended");
        }
        flag.set(true);
    });
    Ok((send, ended))
}
