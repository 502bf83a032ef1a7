//! The state of the gateway's threads: what all workers share ([`Shared`]:
//! the current plan generation, counters, the log writer, the stop flags)
//! and what each worker thread owns ([`Worker`]: its upstream pool, log
//! batch, warm policy instances, connection count and drain signals).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::stream::Stream;
use arc_swap::ArcSwap;
use tokio::sync::Notify;

use crate::generation::Generation;
use crate::observe::accesslog::{Sink, WorkerLog};
use crate::observe::stats::Registry;
use crate::upstream::h2::H2Pool;
use crate::upstream::{Pool, Upstreams};

/// Idle upstream connections each worker keeps per upstream. Below the number
/// of concurrent requests a worker serves, the excess connections are closed
/// after each response and reopened for the next (measured: at 256 clients a
/// bound of 64 cost a third of the throughput).
const MAX_IDLE_PER_TARGET: usize = 512;

/// State shared by all workers.
#[derive(Debug)]
pub struct Shared {
    pub current: ArcSwap<Generation>,
    pub registry: Arc<Registry>,
    pub upstreams: Upstreams,
    /// The access-log writer (its destination follows reloads).
    pub log: Arc<Sink>,
    /// Where relative paths of the plan resolve from.
    pub base_dir: PathBuf,
    pub connections: AtomicUsize,
    /// SIGTERM arrived: `/ready` answers 503 and every response says
    /// `Connection: close`; the listeners still accept (`shutdownDelayMs`).
    pub stopping: AtomicBool,
    /// The listeners are closed: idle connections close, in-flight exchanges
    /// have until the drain deadline.
    pub draining: AtomicBool,
    /// Worker threads (sizes the wasm instance pool on reload).
    pub threads: usize,
}

/// Per-thread state.
#[derive(Debug)]
pub struct Worker {
    pub shared: Arc<Shared>,
    pub pool: Pool,
    /// Its HTTP/2 connections to `protocol: h2` upstreams.
    pub h2pool: H2Pool,
    pub log: RefCell<Option<WorkerLog>>,
    /// Warm policy instances of this thread.
    pub warm: RefCell<policy_host::WarmSet>,
    /// Reused request view handed to policies.
    pub policy_view: RefCell<policy_host::RequestView>,
    /// Open client connections of this worker.
    active: Cell<usize>,
    /// Woken when draining starts (idle connections close) and when the last
    /// connection of this worker ends.
    pub events: Notify,
    /// The drain deadline passed: connections still open are cut.
    cut: Cell<bool>,
    cut_events: Notify,
    /// Woken when draining starts: HTTP/2 connections say GOAWAY.
    drain_events: Notify,
    /// Connections waiting for their next request: a drain closes them.
    idle: RefCell<IdleSet>,
    /// A wall-clock reading and the monotonic instant it was taken at,
    /// renewed every tick: log timestamps derive from it, no clock read each.
    wall: Cell<(std::time::SystemTime, std::time::Instant)>,
    /// The plan generation its pools were last matched against.
    pools_generation: Cell<u64>,
    /// The `Date` of responses (IMF-fixdate), rewritten when the second
    /// changes (at a tick): no clock read or formatting per response.
    date: Cell<([u8; DATE_LEN], u64)>,
}

/// An IMF-fixdate's length: `Sun, 06 Nov 1994 08:49:37 GMT`.
const DATE_LEN: usize = 29;

/// `now` as an IMF-fixdate, formatted without allocating.
fn imf_fixdate(now: std::time::SystemTime) -> [u8; DATE_LEN] {
    use std::io::Write as _;
    let mut out = [b' '; DATE_LEN];
    let _ = write!(&mut out[..], "{}", httpdate::HttpDate::from(now));
    out
}

fn unix_second(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Idle connections' sockets, in reused slots (no allocation per request).
#[derive(Debug, Default)]
struct IdleSet {
    slots: Vec<Option<Rc<Stream>>>,
    free: Vec<usize>,
}

/// A connection's place in its worker's idle set, left when dropped.
#[derive(Debug)]
pub struct IdleGuard<'a> {
    worker: &'a Worker,
    slot: usize,
}

impl Drop for IdleGuard<'_> {
    fn drop(&mut self) {
        let mut idle = self.worker.idle.borrow_mut();
        if let Some(slot) = idle.slots.get_mut(self.slot) {
            *slot = None;
            idle.free.push(self.slot);
        }
    }
}

impl Worker {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self {
            log: RefCell::new(WorkerLog::new(shared.log.clone())),
            pool: Pool::new(MAX_IDLE_PER_TARGET),
            h2pool: H2Pool::default(),
            warm: RefCell::default(),
            policy_view: RefCell::default(),
            active: Cell::new(0),
            events: Notify::new(),
            cut: Cell::new(false),
            cut_events: Notify::new(),
            drain_events: Notify::new(),
            idle: RefCell::default(),
            wall: Cell::new((std::time::SystemTime::now(), std::time::Instant::now())),
            pools_generation: Cell::new(shared.current.load().id),
            date: {
                let now = std::time::SystemTime::now();
                Cell::new((imf_fixdate(now), unix_second(now)))
            },
            shared,
        }
    }

    /// After a reload (seen at the worker's tick), closes the idle upstream
    /// connections to upstreams the new plan no longer has.
    pub fn prune_pools(&self) {
        let generation = self.shared.current.load();
        if generation.id == self.pools_generation.get() {
            return;
        }
        self.pools_generation.set(generation.id);
        let targets = generation.targets.all();
        let mut live = vec![false; targets.iter().map(|t| t.pool_id + 1).max().unwrap_or(0)];
        for t in targets {
            live[t.pool_id] = true;
        }
        self.pool.retain_live(&live);
        self.h2pool.retain_live(&live);
    }

    /// Renews the wall-clock reading (the worker's tick).
    pub fn tick_wall(&self) {
        let now = std::time::SystemTime::now();
        self.wall.set((now, std::time::Instant::now()));
        let second = unix_second(now);
        if second != self.date.get().1 {
            self.date.set((imf_fixdate(now), second));
        }
    }

    /// The current second as an IMF-fixdate, for responses' `Date`.
    pub fn date(&self) -> [u8; DATE_LEN] {
        self.date.get().0
    }

    /// The wall-clock time of a monotonic `instant` (within a tick of now).
    pub fn wall_at(&self, instant: std::time::Instant) -> std::time::SystemTime {
        let (wall, at) = self.wall.get();
        match instant.checked_duration_since(at) {
            Some(after) => wall + after,
            None => wall - at.duration_since(instant),
        }
    }

    /// Marks a connection as waiting for its next request until the guard drops.
    pub fn idle_enter(&self, stream: &Rc<Stream>) -> IdleGuard<'_> {
        let mut idle = self.idle.borrow_mut();
        let slot = match idle.free.pop() {
            Some(slot) => {
                idle.slots[slot] = Some(stream.clone());
                slot
            }
            None => {
                idle.slots.push(Some(stream.clone()));
                idle.slots.len() - 1
            }
        };
        IdleGuard { worker: self, slot }
    }

    /// Closes the read side of every idle connection: each one's pending read
    /// ends at once, and the connection with it (draining).
    pub fn close_idle(&self) {
        self.drain_events.notify_waiters();
        for stream in self.idle.borrow().slots.iter().flatten() {
            let _ = socket2::SockRef::from(stream.tcp()).shutdown(std::net::Shutdown::Read);
        }
    }

    pub fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Relaxed)
    }

    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// Counts a connection this worker accepted.
    pub fn connection_opened(&self) {
        self.active.set(self.active.get() + 1);
    }

    /// Counts a connection that ended (here and process-wide).
    pub fn connection_closed(&self) {
        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        let left = self.active.get().saturating_sub(1);
        self.active.set(left);
        if left == 0 {
            self.events.notify_waiters();
        }
    }

    /// Resolves when this worker has no connection left.
    pub async fn idle(&self) {
        loop {
            let ended = self.events.notified();
            if self.active.get() == 0 {
                return;
            }
            ended.await;
        }
    }

    /// Cuts every connection still open (the drain deadline passed).
    pub fn cut_all(&self) {
        self.cut.set(true);
        self.cut_events.notify_waiters();
    }

    /// Resolves when draining starts after this was created (check
    /// [`Worker::draining`] after creating it).
    pub fn drain_signal(&self) -> tokio::sync::futures::Notified<'_> {
        self.drain_events.notified()
    }

    /// Whether the drain deadline cut this worker's connections.
    pub fn is_cut(&self) -> bool {
        self.cut.get()
    }

    /// Resolves when [`Worker::cut_all`] is called after this was created.
    pub fn cut_signal(&self) -> tokio::sync::futures::Notified<'_> {
        self.cut_events.notified()
    }

    pub fn flush_log(&self) {
        if let Some(log) = self.log.borrow_mut().as_mut() {
            log.flush(&self.shared.registry.global);
        }
    }
}

/// The peer address as the access log and `X-Forwarded-For` show it.
pub fn client_ip(peer: &SocketAddr) -> String {
    peer.ip().to_canonical().to_string()
}
