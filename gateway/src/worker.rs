//! One worker thread: a `current_thread` runtime, its own `SO_REUSEPORT`
//! listener, its own upstream pool and access-log batch. Workers share only the
//! plan generation (with the WRR positions inside it), counters, the log writer
//! and the shutdown signal.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use plan::{LogField, Router};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use crate::accesslog::{FLUSH_EVERY, Sink, WorkerLog};
use crate::stats::{Registry, Stats};
use crate::upstream::{Pool, PoolIds, Targets};

/// Idle upstream connections each worker keeps per upstream. Below the number
/// of concurrent requests a worker serves, the excess connections are closed
/// after each response and reopened for the next (measured: at 256 clients a
/// bound of 64 cost a third of the throughput).
const MAX_IDLE_PER_TARGET: usize = 512;

/// A plan with everything derived from it at load time.
#[derive(Debug)]
pub struct Generation {
    pub router: Router,
    pub targets: Targets,
    pub stats: Stats,
    /// Access-log fields, empty when the log is off.
    pub log_fields: Vec<LogField>,
    /// First 12 hex digits of the plan digest, for the `plan` log field.
    pub short_digest: String,
    /// Compiled and linked policy modules, when the plan has any.
    pub policies: Option<crate::policy::Policies>,
}

impl Generation {
    /// Everything a plan needs to serve; `threads` sizes the wasm instance pool.
    pub fn new(router: Router, registry: &Registry, pool_ids: &PoolIds, threads: usize) -> Result<Self, String> {
        let plan = router.plan();
        let instances = (threads * plan.policies.len() * 2 + 16).min(10_000) as u32;
        let policies = crate::policy::Policies::new(plan, instances, |name| registry.policy(name))?;
        let stats = registry.resolve(plan);
        let targets = Targets::new(plan, pool_ids, &stats)?;
        let log_fields = if plan.access_log.enabled {
            plan.access_log.fields.clone()
        } else {
            Vec::new()
        };
        let short_digest = router.digest().trim_start_matches("sha256:").chars().take(12).collect();
        Ok(Self {
            router,
            targets,
            stats,
            log_fields,
            short_digest,
            policies,
        })
    }
}

/// State shared by all workers.
#[derive(Debug)]
pub struct Shared {
    pub current: ArcSwap<Generation>,
    pub registry: Arc<Registry>,
    pub pool_ids: PoolIds,
    /// The access-log writer, when the log is on at startup.
    pub log: Option<Arc<Sink>>,
    /// Where relative paths of the plan resolve from.
    pub base_dir: PathBuf,
    pub connections: AtomicUsize,
    pub draining: AtomicBool,
    /// Worker threads (sizes the wasm instance pool on reload).
    pub threads: usize,
}

/// Per-thread state.
#[derive(Debug)]
pub struct Worker {
    pub shared: Arc<Shared>,
    pub pool: Pool,
    pub log: RefCell<Option<WorkerLog>>,
    /// Warm policy instances of this thread.
    pub warm: RefCell<crate::policy::WarmSet>,
    /// Reused request view handed to policies.
    pub policy_view: RefCell<crate::policy::RequestView>,
    active: Cell<usize>,
    /// Woken when draining starts (idle connections close) and when the last
    /// connection of this worker ends.
    pub events: Notify,
}

impl Worker {
    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    fn flush_log(&self) {
        if let Some(log) = self.log.borrow_mut().as_mut() {
            log.flush(&self.shared.registry.global);
        }
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
    let worker = Rc::new(Worker {
        shared: shared.clone(),
        pool: Pool::new(MAX_IDLE_PER_TARGET),
        log: RefCell::new(shared.log.clone().and_then(WorkerLog::new)),
        warm: RefCell::default(),
        policy_view: RefCell::default(),
        active: Cell::new(0),
        events: Notify::new(),
    });
    let w = worker.clone();
    let result = local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener)?;
        if w.log.borrow().is_some() {
            let ticker = w.clone();
            tokio::task::spawn_local(async move {
                let mut tick = tokio::time::interval(FLUSH_EVERY);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    ticker.flush_log();
                }
            });
        }
        let max_connections = || shared.current.load().router.plan().limits.max_connections as usize;
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    if shared.connections.fetch_add(1, Ordering::Relaxed) >= max_connections() {
                        shared.connections.fetch_sub(1, Ordering::Relaxed);
                        shared.registry.global.connections_rejected.fetch_add(1, Ordering::Relaxed);
                        drop(stream);
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    w.active.set(w.active.get() + 1);
                    let guard = ConnGuard(w.clone());
                    let conn_worker = w.clone();
                    tokio::task::spawn_local(async move {
                        crate::conn::serve(stream, peer, conn_worker).await;
                        drop(guard);
                    });
                }
                _ = shutdown.changed() => break,
            }
        }
        drop(listener);
        drain(&w, &shared).await;
        Ok(())
    });
    // Every exchange of this worker has finished (or the drain deadline passed):
    // hand the last lines to the writer.
    if let Some(log) = worker.log.borrow_mut().as_mut() {
        log.flush_final(&worker.shared.registry.global, Duration::from_secs(5));
    }
    worker.log.borrow_mut().take();
    result
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
