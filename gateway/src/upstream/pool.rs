//! The per-thread pool of upstream connections: no lock, no cross-thread
//! traffic, no task per connection; idle connections expire after `idleMs`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::health::UpstreamState;
use super::target::Target;
use crate::error::kind::ErrorKind;
use crate::stream::Stream;

/// One upstream connection: the socket and what has been read from it but not
/// yet consumed. Idle in the pool between exchanges.
#[derive(Debug)]
pub struct UpstreamConn {
    /// Shared only with an HTTP/2 connection's codec (the `h2` module).
    pub stream: Rc<Stream>,
    pub rbuf: BytesMut,
    /// It has carried an exchange before (a failure before any response byte
    /// may then be the upstream closing it while idle, and is retried once).
    pub reused: bool,
    /// Exchanges it has carried (`pool.maxRequestsPerConnection`).
    pub requests: u32,
    /// The upstream's address list it was opened under (see `endpoints_version`).
    endpoints_version: u64,
    /// While pooled: when it stops being reusable (`idleMs` after checkin).
    expires: Instant,
    /// In a pool (counted idle) rather than in use (counted active).
    pooled: bool,
    state: Arc<UpstreamState>,
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        let gauge = if self.pooled {
            &self.state.idle
        } else {
            &self.state.active
        };
        gauge.fetch_sub(1, Ordering::Relaxed);
        self.state.open.fetch_sub(1, Ordering::Relaxed);
        self.state.released.notify_one();
    }
}

impl UpstreamConn {
    /// Whether the idle connection is still usable: the upstream has neither
    /// closed it nor sent unsolicited bytes. Costs a syscall only when the
    /// reactor has seen the socket become readable.
    fn is_alive(&mut self) -> bool {
        self.stream.is_alive(&mut self.rbuf) && self.rbuf.is_empty()
    }
}

/// Idle upstream connections of one worker thread, by [`Target::pool_id`].
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<Vec<Vec<UpstreamConn>>>,
    max_idle: usize,
    /// The worker's coarse clock (its 10 ms tick): idle expiry needs no more.
    now: Cell<Instant>,
}

impl Pool {
    pub fn new(max_idle: usize) -> Self {
        Self {
            idle: RefCell::new(Vec::new()),
            max_idle,
            now: Cell::new(Instant::now()),
        }
    }

    /// Advances the coarse clock (the worker's tick), and closes an idle
    /// connection for each ask of a request waiting for a slot under
    /// `maxConnections`, on this worker or another.
    pub fn tick(&self, now: Instant) {
        self.now.set(now);
        for list in self.idle.borrow_mut().iter_mut() {
            while list.last().is_some_and(|conn| conn.state.take_reclaim()) {
                list.pop();
            }
        }
    }

    /// A live idle connection to `target`, if any; dead and expired ones are
    /// dropped on the way.
    pub fn checkout(&self, target: &Target) -> Option<UpstreamConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(target.pool_id)?;
        let now = self.now.get();
        while let Some(mut conn) = list.pop() {
            let current = conn.endpoints_version == conn.state.endpoints_version.load(Ordering::Relaxed);
            if conn.expires > now && current && conn.is_alive() {
                conn.pooled = false;
                conn.state.idle.fetch_sub(1, Ordering::Relaxed);
                conn.state.active.fetch_add(1, Ordering::Relaxed);
                return Some(conn);
            }
        }
        None
    }

    /// Closes idle connections whose `idleMs` has passed, so no upstream's own
    /// keep-alive timeout races a request on them.
    pub fn close_idle(&self, now: Instant) {
        let mut idle = self.idle.borrow_mut();
        for list in idle.iter_mut() {
            list.retain(|conn| conn.expires > now);
        }
    }

    /// Returns a connection whose exchange is complete and that may carry
    /// another. It is closed instead when a request waits for its slot.
    pub fn checkin(&self, target: &Target, mut conn: UpstreamConn) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() <= target.pool_id {
            idle.resize_with(target.pool_id + 1, Vec::new);
        }
        let list = &mut idle[target.pool_id];
        let spent = target.max_requests.is_some_and(|max| conn.requests >= max);
        if list.len() < self.max_idle && !spent && !conn.state.take_reclaim() {
            conn.reused = true;
            conn.expires = self.now.get() + target.idle_timeout;
            conn.pooled = true;
            conn.state.active.fetch_sub(1, Ordering::Relaxed);
            conn.state.idle.fetch_add(1, Ordering::Relaxed);
            list.push(conn);
        }
    }
}

/// Read buffer of an upstream connection (a response head must fit in it).
const UPSTREAM_BUF: usize = 32 * 1024;

/// Takes a connection slot of `target` under `pool.maxConnections`, waiting
/// until `deadline` for one to free; `upstream_overloaded` when none does.
/// While it waits it asks for an idle connection to be closed: the next
/// checkin, or the next tick of a worker that holds one, frees its slot.
async fn slot(target: &Target, deadline: tokio::time::Instant) -> Result<(), ErrorKind> {
    let state = &target.state;
    let Some(max) = target.max_connections else {
        state.open.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    loop {
        let released = state.released.notified();
        let open = state.open.load(Ordering::Relaxed);
        if open < max {
            if state
                .open
                .compare_exchange(open, open + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(());
            }
            continue;
        }
        // An HTTP/2 upstream's connections are never idle in a `Pool`.
        if !target.h2 {
            state.ask_reclaim(max);
        }
        if tokio::time::timeout_at(deadline, released).await.is_err() {
            return Err(ErrorKind::UpstreamOverloaded);
        }
    }
}

/// Opens a connection to `target` within `timeout` (waiting for a slot
/// under `maxConnections` counts against it), to the next of its resolved
/// addresses.
pub async fn connect(target: &Target, timeout: Duration) -> Result<UpstreamConn, ErrorKind> {
    let deadline = tokio::time::Instant::now() + timeout;
    slot(target, deadline).await?;
    let state = &target.state;
    let endpoints_version = state.endpoints_version.load(Ordering::Relaxed);
    // A refused address hands over to the next one the name resolved to
    // (`localhost` may be ::1 first while the upstream listens on 127.0.0.1).
    let tries = state.endpoints.load().len().max(1);
    let mut opened = Err(ErrorKind::ConnectFailed);
    for _ in 0..tries {
        let Some(addr) = state.endpoint() else { break };
        opened = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
            Err(_) => Err(ErrorKind::ConnectTimeout),
            Ok(Err(_)) => Err(ErrorKind::ConnectFailed),
            Ok(Ok(s)) => Ok(s),
        };
        if !matches!(opened, Err(ErrorKind::ConnectFailed)) {
            break;
        }
    }
    let opened = match opened {
        Ok(tcp) => {
            let _ = tcp.set_nodelay(true);
            match &target.tls {
                None => Ok(Stream::Plain(tcp)),
                // connectMs covers the TCP connect and the TLS handshake.
                Some(tls) => match tokio::time::timeout_at(
                    deadline,
                    crate::tls::connect(tcp, tls.config.clone(), tls.name.clone()),
                )
                .await
                {
                    Err(_) => Err(ErrorKind::ConnectTimeout),
                    Ok(Err(e)) => {
                        target.failures.tls(&target.stats.name, &target.url, &e);
                        Err(ErrorKind::ConnectFailed)
                    }
                    Ok(Ok(s)) => Ok(Stream::Tls(Box::new(s))),
                },
            }
        }
        Err(kind) => Err(kind),
    };
    let stream = match opened {
        Ok(s) => s,
        Err(kind) => {
            state.open.fetch_sub(1, Ordering::Relaxed);
            state.released.notify_one();
            return Err(kind);
        }
    };
    state.active.fetch_add(1, Ordering::Relaxed);
    Ok(UpstreamConn {
        stream: Rc::new(stream),
        rbuf: BytesMut::with_capacity(UPSTREAM_BUF),
        reused: false,
        requests: 0,
        endpoints_version,
        expires: Instant::now(),
        pooled: false,
        state: state.clone(),
    })
}
