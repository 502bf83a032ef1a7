//! The per-thread pool of upstream connections: no lock, no cross-thread
//! traffic, no task per connection; idle connections expire after `idleMs`.
//!
//! `pool.maxConnections` is per process while pools are per worker. A
//! request that finds the cap reached waits, within `connectMs`, for a
//! connection of its own worker to be handed over as it is returned, or for
//! any connection to the upstream to close; while it waits, the other
//! workers close their idle ones to free slots.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

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

/// Idle upstream connections of one worker thread, by [`Target::pool_id`],
/// and its requests waiting for one under `maxConnections`.
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<Vec<Vec<UpstreamConn>>>,
    /// Per target, in arrival order; a sender whose request gave up is
    /// skipped (its receiver is gone).
    waiting: RefCell<Vec<VecDeque<oneshot::Sender<UpstreamConn>>>>,
    max_idle: usize,
    /// The worker's coarse clock (its 10 ms tick): idle expiry needs no more.
    now: Cell<Instant>,
}

impl Pool {
    pub fn new(max_idle: usize) -> Self {
        Self {
            idle: RefCell::new(Vec::new()),
            waiting: RefCell::new(Vec::new()),
            max_idle,
            now: Cell::new(Instant::now()),
        }
    }

    /// Advances the coarse clock (the worker's tick). While requests wait for
    /// a slot of an upstream (on any worker), closes one of this worker's idle
    /// connections to it per tick.
    pub fn tick(&self, now: Instant) {
        self.now.set(now);
        for list in self.idle.borrow_mut().iter_mut() {
            if list.last().is_some_and(|conn| conn.state.waiting() > 0) {
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

    /// Closes the idle connections to upstreams that `live` (by pool id) no
    /// longer has: after a reload removed them, nothing would take them
    /// again, and the upstream (being retired, often) should not wait
    /// `idleMs` for them to go.
    pub fn retain_live(&self, live: &[bool]) {
        for (id, list) in self.idle.borrow_mut().iter_mut().enumerate() {
            if !live.get(id).copied().unwrap_or(false) {
                list.clear();
            }
        }
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
    /// another: to a request of this worker waiting for one, else closed
    /// when a request of another worker waits for a slot, else pooled.
    pub fn checkin(&self, target: &Target, mut conn: UpstreamConn) {
        let spent = target.max_requests.is_some_and(|max| conn.requests >= max);
        let stale = conn.endpoints_version != conn.state.endpoints_version.load(Ordering::Relaxed);
        if spent || stale {
            return;
        }
        conn.reused = true;
        if let Some(list) = self.waiting.borrow_mut().get_mut(target.pool_id) {
            while let Some(waiter) = list.pop_front() {
                match waiter.send(conn) {
                    Ok(()) => return,
                    // That request gave up meanwhile.
                    Err(back) => conn = back,
                }
            }
        }
        if conn.state.waiting() > 0 {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if idle.len() <= target.pool_id {
            idle.resize_with(target.pool_id + 1, Vec::new);
        }
        let list = &mut idle[target.pool_id];
        if list.len() < self.max_idle {
            conn.expires = self.now.get() + target.idle_timeout;
            conn.pooled = true;
            conn.state.active.fetch_sub(1, Ordering::Relaxed);
            conn.state.idle.fetch_add(1, Ordering::Relaxed);
            list.push(conn);
        }
    }

    /// A connection to `target`: an idle one, a new one under
    /// `maxConnections`, or, with the cap reached, one handed over or a slot
    /// freed within `timeout` (`upstream_overloaded` when none is). The
    /// wait and the connect share `timeout` (`connectMs`).
    pub async fn acquire(&self, target: &Target, timeout: Duration) -> Result<UpstreamConn, ErrorKind> {
        let deadline = tokio::time::Instant::now() + timeout;
        let state = &target.state;
        let Some(max) = target.max_connections else {
            state.open.fetch_add(1, Ordering::Relaxed);
            return open(target, deadline).await;
        };
        let mut waiting = None;
        loop {
            let released = state.released.notified();
            if let Some(conn) = self.checkout(target) {
                return Ok(conn);
            }
            if take_slot(state, max) {
                drop(waiting);
                return open(target, deadline).await;
            }
            waiting.get_or_insert_with(|| Waiting::enter(state));
            let (send, handed) = oneshot::channel();
            {
                let mut lists = self.waiting.borrow_mut();
                if lists.len() <= target.pool_id {
                    lists.resize_with(target.pool_id + 1, VecDeque::new);
                }
                let list = &mut lists[target.pool_id];
                list.retain(|w| !w.is_closed());
                list.push_back(send);
            }
            tokio::select! {
                handed = handed => if let Ok(conn) = handed {
                    return Ok(conn);
                },
                () = released => {}
                () = tokio::time::sleep_until(deadline) => return Err(ErrorKind::UpstreamOverloaded),
            }
        }
    }
}

/// A request waiting for a slot of an upstream, counted while it waits.
struct Waiting<'a>(&'a UpstreamState);

impl<'a> Waiting<'a> {
    fn enter(state: &'a UpstreamState) -> Self {
        state.wait_started();
        Waiting(state)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.wait_ended();
    }
}

/// Read buffer of an upstream connection (a response head must fit in it).
const UPSTREAM_BUF: usize = 32 * 1024;

/// Takes a slot under `max` open connections, if one is free.
fn take_slot(state: &UpstreamState, max: u32) -> bool {
    state
        .open
        .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |open| {
            (open < max).then_some(open + 1)
        })
        .is_ok()
}

/// Takes a connection slot of `target` under `pool.maxConnections`, waiting
/// until `deadline` for one to free; `upstream_overloaded` when none does.
/// (An HTTP/2 upstream's connections are shared, never pooled or handed
/// over: [`Pool::acquire`] is for HTTP/1.1 ones.)
async fn slot(target: &Target, deadline: tokio::time::Instant) -> Result<(), ErrorKind> {
    let state = &target.state;
    let Some(max) = target.max_connections else {
        state.open.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    loop {
        let released = state.released.notified();
        if take_slot(state, max) {
            return Ok(());
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
    open(target, deadline).await
}

/// Opens a connection to `target` by `deadline` in a slot already taken
/// (given back if it fails).
async fn open(target: &Target, deadline: tokio::time::Instant) -> Result<UpstreamConn, ErrorKind> {
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
