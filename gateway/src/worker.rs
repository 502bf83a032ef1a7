//! One worker thread: a `current_thread` runtime, its own `SO_REUSEPORT`
//! listener, its own upstream pool. Workers share only the plan generation,
//! the WRR positions inside it, counters and the shutdown signal.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use plan::Router;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::stats::Stats;
use crate::upstream::{Pool, Targets};

/// Idle upstream connections each worker keeps per target.
const MAX_IDLE_PER_TARGET: usize = 64;

/// A plan with everything derived from it at load time.
#[derive(Debug)]
pub struct Generation {
    pub router: Router,
    pub targets: Targets,
    pub stats: Stats,
}

impl Generation {
    pub fn new(router: Router) -> Result<Self, String> {
        let targets = Targets::new(router.plan())?;
        let stats = Stats::new(router.plan().clusters.len());
        Ok(Self { router, targets, stats })
    }
}

/// State shared by all workers.
#[derive(Debug)]
pub struct Shared {
    pub current: ArcSwap<Generation>,
    pub connections: AtomicUsize,
    pub rejected_connections: AtomicU64,
    pub draining: AtomicBool,
}

impl Shared {
    pub fn new(generation: Generation) -> Self {
        Self {
            current: ArcSwap::from_pointee(generation),
            connections: AtomicUsize::new(0),
            rejected_connections: AtomicU64::new(0),
            draining: AtomicBool::new(false),
        }
    }
}

/// Per-thread state.
#[derive(Debug)]
pub struct Worker {
    pub shared: Arc<Shared>,
    pub pool: Pool,
    active: Cell<usize>,
    /// Woken when draining starts (idle connections close) and when the last
    /// connection of this worker ends.
    pub events: Notify,
}

impl Worker {
    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }
}

/// Counts a live connection of this worker and of the process.
struct ConnGuard(Rc<Worker>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.shared.connections.fetch_sub(1, Ordering::Relaxed);
        let left = self.0.active.get() - 1;
        self.0.active.set(left);
        if left == 0 {
            self.0.events.notify_waiters();
        }
    }
}

/// Runs one worker until shutdown and drain end.
pub fn run_worker(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener)?;
        let targets = shared.current.load().targets.len();
        let worker = Rc::new(Worker {
            shared: shared.clone(),
            pool: Pool::new(targets, MAX_IDLE_PER_TARGET),
            active: Cell::new(0),
            events: Notify::new(),
        });
        let max_connections = || shared.current.load().router.plan().limits.max_connections as usize;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    if shared.connections.fetch_add(1, Ordering::Relaxed) >= max_connections() {
                        shared.connections.fetch_sub(1, Ordering::Relaxed);
                        shared.rejected_connections.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    worker.active.set(worker.active.get() + 1);
                    let guard = ConnGuard(worker.clone());
                    let w = worker.clone();
                    tokio::task::spawn_local(async move {
                        crate::conn::serve(stream, peer, w).await;
                        drop(guard);
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
        drop(listener);
        drain(&worker, &shared).await;
        Ok(())
    })
}

/// Waits for this worker's connections to finish, up to the plan's `drainMs`.
async fn drain(worker: &Rc<Worker>, shared: &Shared) {
    worker.events.notify_waiters();
    let deadline = Duration::from_millis(shared.current.load().router.plan().drain_ms);
    let _ = tokio::time::timeout(deadline, async {
        loop {
            let ended = worker.events.notified();
            if worker.active.get() == 0 {
                return;
            }
            ended.await;
        }
    })
    .await;
}

/// The peer address as the access log and `X-Forwarded-For` show it.
pub fn client_ip(peer: &SocketAddr) -> String {
    peer.ip().to_canonical().to_string()
}
