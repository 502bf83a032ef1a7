//! One worker thread: a `current_thread` runtime, its own `SO_REUSEPORT`
//! listener, its own upstream pool and access-log batch. Workers share only the
//! plan generation (with the WRR positions inside it), counters, the log writer
//! and the shutdown signal.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// A route's timeouts as the request path uses them (SPEC §7), built once
/// per plan.
#[derive(Debug, Clone, Copy)]
pub struct RouteTimeouts {
    pub read: Duration,
    pub write: Duration,
    pub upstream: Duration,
    pub connect: Duration,
    pub idle: Duration,
}

impl From<plan::Timeouts> for RouteTimeouts {
    fn from(t: plan::Timeouts) -> Self {
        Self {
            read: Duration::from_millis(t.read_ms),
            write: Duration::from_millis(t.write_ms),
            upstream: Duration::from_millis(t.upstream_ms),
            connect: Duration::from_millis(t.connect_ms),
            idle: Duration::from_millis(t.idle_ms),
        }
    }
}

/// Numbers plan generations, so per-worker state built for one (warm policy
/// instances) is never mistaken for another's.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A plan with everything derived from it at load time.
#[derive(Debug)]
pub struct Generation {
    /// Unique in this process, increasing with every load.
    pub id: u64,
    pub router: Router,
    /// Timeouts before a route is known (reading heads, refusals, no route).
    pub defaults: RouteTimeouts,
    /// Each route's timeouts, by route index.
    pub route_timeouts: Vec<RouteTimeouts>,
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
        let id = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        let instances = (threads * plan.policies.len() * 2 + 16).min(10_000) as u32;
        let policies = crate::policy::Policies::new(plan, id, instances, |name| registry.policy(name))?;
        let defaults = RouteTimeouts::from(plan.defaults);
        let route_timeouts = plan.routes.iter().map(|r| RouteTimeouts::from(r.timeouts)).collect();
        let stats = registry.resolve(plan);
        let targets = Targets::new(plan, pool_ids, &stats)?;
        let log_fields = if plan.access_log.enabled {
            plan.access_log.fields.clone()
        } else {
            Vec::new()
        };
        let short_digest = router.digest().trim_start_matches("sha256:").chars().take(12).collect();
        Ok(Self {
            id,
            router,
            defaults,
            route_timeouts,
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
    pub log: RefCell<Option<WorkerLog>>,
    /// Warm policy instances of this thread.
    pub warm: RefCell<crate::policy::WarmSet>,
    /// Reused request view handed to policies.
    pub policy_view: RefCell<crate::policy::RequestView>,
    active: Cell<usize>,
    /// Woken when draining starts (idle connections close) and when the last
    /// connection of this worker ends.
    pub events: Notify,
    /// The drain deadline passed: connections still open are cut.
    cut: Cell<bool>,
    cut_events: Notify,
}

impl Worker {
    pub fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::Relaxed)
    }

    pub fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    /// Resolves when the drain deadline cuts this worker's connections.
    pub async fn cut(&self) {
        loop {
            // Registered before the flag is read: no wakeup can be missed.
            let cut = self.cut_events.notified();
            if self.cut.get() {
                return;
            }
            cut.await;
        }
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

/// How long a worker waits after an `accept` error (out of descriptors, say)
/// before accepting again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// How often idle upstream connections are checked against `idleMs`.
const POOL_SWEEP: Duration = Duration::from_secs(1);

/// Runs one worker until shutdown and drain end. `deadline` is when the
/// drain ends (set when shutdown starts).
pub fn run_worker(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<Option<std::time::Instant>>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let worker = Rc::new(Worker {
        shared: shared.clone(),
        pool: Pool::new(MAX_IDLE_PER_TARGET),
        log: RefCell::new(WorkerLog::new(shared.log.clone())),
        warm: RefCell::default(),
        policy_view: RefCell::default(),
        active: Cell::new(0),
        events: Notify::new(),
        cut: Cell::new(false),
        cut_events: Notify::new(),
    });
    let w = worker.clone();
    let deadline = local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener)?;
        let ticker = w.clone();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut since_sweep = Duration::ZERO;
            loop {
                tick.tick().await;
                ticker.flush_log();
                since_sweep += FLUSH_EVERY;
                if since_sweep >= POOL_SWEEP {
                    since_sweep = Duration::ZERO;
                    ticker.pool.close_idle(std::time::Instant::now());
                }
            }
        });
        let max_connections = || shared.current.load().router.plan().limits.max_connections as usize;
        let deadline = loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(_) => {
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
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
                changed = shutdown.wait_for(Option::is_some) => {
                    break changed.ok().and_then(|d| *d).unwrap_or_else(std::time::Instant::now);
                }
            }
        };
        drop(listener);
        drain(&w, deadline).await;
        Ok::<_, std::io::Error>(deadline)
    })?;
    // Every exchange of this worker has finished (or was cut and logged):
    // hand the last lines to the writer, waiting for room no longer than the
    // drain deadline allows.
    if let Some(log) = worker.log.borrow_mut().as_mut() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        log.flush_final(&worker.shared.registry.global, left.max(Duration::from_millis(50)));
    }
    worker.log.borrow_mut().take();
    Ok(())
}

/// How long connections cut at the deadline get to write their last answer
/// and log line.
const CUT_GRACE: Duration = Duration::from_millis(500);

/// Waits for this worker's connections to finish until `deadline`, then cuts
/// the rest (each logs its exchange) and waits briefly for them to end.
async fn drain(worker: &Rc<Worker>, deadline: std::time::Instant) {
    worker.events.notify_waiters();
    let until_idle = async {
        loop {
            let ended = worker.events.notified();
            if worker.active.get() == 0 {
                return;
            }
            ended.await;
        }
    };
    if tokio::time::timeout_at(deadline.into(), until_idle).await.is_ok() {
        return;
    }
    worker.cut.set(true);
    worker.cut_events.notify_waiters();
    let _ = tokio::time::timeout(CUT_GRACE, async {
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
