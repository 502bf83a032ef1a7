//! The per-thread pool of upstream connections: no lock, no cross-thread
//! traffic, no task per connection; idle connections expire after `idleMs`.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::target::Target;
use crate::error::kind::ErrorKind;
use crate::observe::stats::ClusterStats;

/// One upstream connection: the socket and what has been read from it but not
/// yet consumed. Idle in the pool between exchanges.
#[derive(Debug)]
pub struct UpstreamConn {
    pub stream: TcpStream,
    pub rbuf: BytesMut,
    /// It has carried an exchange before (a failure before any response byte
    /// may then be the upstream closing it while idle, and is retried once).
    pub reused: bool,
    /// While pooled: when it stops being reusable (`idleMs` after checkin).
    expires: Instant,
    stats: Arc<ClusterStats>,
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl UpstreamConn {
    /// Whether the idle connection is still usable: the upstream has neither
    /// closed it nor sent unsolicited bytes. Costs a syscall only when the
    /// reactor has seen the socket become readable.
    fn is_alive(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
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

    /// Advances the coarse clock (the worker's tick).
    pub fn tick(&self, now: Instant) {
        self.now.set(now);
    }

    /// A live idle connection to `target`, if any; dead and expired ones are
    /// dropped on the way.
    pub fn checkout(&self, target: &Target) -> Option<UpstreamConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(target.pool_id)?;
        let now = self.now.get();
        while let Some(mut conn) = list.pop() {
            conn.stats.connections_idle.fetch_sub(1, Ordering::Relaxed);
            if conn.expires > now && conn.is_alive() {
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
            list.retain(|conn| {
                let keep = conn.expires > now;
                if !keep {
                    conn.stats.connections_idle.fetch_sub(1, Ordering::Relaxed);
                }
                keep
            });
        }
    }

    /// Returns a connection whose exchange is complete and that may carry another.
    pub fn checkin(&self, target: &Target, mut conn: UpstreamConn) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() <= target.pool_id {
            idle.resize_with(target.pool_id + 1, Vec::new);
        }
        let list = &mut idle[target.pool_id];
        if list.len() < self.max_idle {
            conn.reused = true;
            conn.expires = self.now.get() + target.idle_timeout;
            conn.stats.connections_idle.fetch_add(1, Ordering::Relaxed);
            list.push(conn);
        }
    }
}

/// Read buffer of an upstream connection (a response head must fit in it).
const UPSTREAM_BUF: usize = 32 * 1024;

/// Opens a connection to `target` within `timeout`.
pub async fn connect(target: &Target, timeout: Duration) -> Result<UpstreamConn, ErrorKind> {
    let connecting = async {
        match target.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(target.authority.as_str()).await,
        }
    };
    let stream = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(ErrorKind::ConnectTimeout),
        Ok(Err(_)) => return Err(ErrorKind::ConnectFailed),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    target.stats.connections_open.fetch_add(1, Ordering::Relaxed);
    Ok(UpstreamConn {
        stream,
        rbuf: BytesMut::with_capacity(UPSTREAM_BUF),
        reused: false,
        expires: Instant::now(),
        stats: target.stats.clone(),
    })
}
