//! `gateway run`: load the plan, bind one `SO_REUSEPORT` listener per worker and
//! the admin listener, start the workers, then handle signals: SIGHUP reloads,
//! SIGUSR1 reopens the access log, SIGTERM/SIGINT drain and stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

use crate::generation::Generation;
use crate::load::{LoadError, Source, load};
use crate::observe::accesslog::{Output, Sink};
use crate::observe::stats::Registry;
use crate::reload::{Fixed, reload, unix_seconds};
use crate::upstream::Upstreams;
use crate::worker::Shared;

mod accept;
mod upstreams;
use accept::run_worker;

#[derive(Debug)]
pub struct RunOptions {
    pub source: Source,
    pub listen: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub threads: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("invalid listen address {0:?}")]
    Listen(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot open the access log: {0}")]
    AccessLog(std::io::Error),
    #[error("{0}")]
    Plan(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Binds a listener with `SO_REUSEPORT`, so every worker can own one.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

/// Fails with `AddrInUse` when anything else listens on `addr`. `SO_REUSEPORT`
/// lets a second process bind an address in use and silently share its
/// traffic; a socket without it cannot bind beside any listener, so it tells.
pub fn ensure_free(addr: SocketAddr) -> std::io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())
}

/// Binds `addr` for `count` workers: one `SO_REUSEPORT` listener each, after
/// checking that no other process serves the address.
fn bind_workers(addr: SocketAddr, count: usize) -> Result<Vec<std::net::TcpListener>, RunError> {
    let bind_error = |addr, e| RunError::Bind { addr, source: e };
    ensure_free(addr).map_err(|e| bind_error(addr, e))?;
    let first = bind_reuseport(addr).map_err(|e| bind_error(addr, e))?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_reuseport(bound).map_err(|e| bind_error(bound, e))?);
    }
    Ok(listeners)
}

/// A started gateway: workers and the admin listener are serving.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    /// Where the TLS listener is bound, when the plan has one.
    pub tls_addr: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    pub source: Arc<Source>,
    pub fixed: Fixed,
    shutdown: watch::Sender<Option<Instant>>,
    workers: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops as SPEC §12 says: `/ready` answers 503 and responses say
    /// `Connection: close` at once; the listeners keep accepting for
    /// `shutdownDelayMs`; then they close and in-flight exchanges get up to
    /// `drainMs`; exchanges still running then are cut (and logged); the
    /// access log is flushed within the same deadline. Returns when done.
    pub fn stop(self) {
        let plan_times = {
            let generation = self.shared.current.load();
            let plan = generation.router.plan();
            (
                Duration::from_millis(plan.shutdown_delay_ms),
                Duration::from_millis(plan.drain_ms),
            )
        };
        let (delay, drain) = plan_times;
        self.shared.stopping.store(true, Ordering::Relaxed);
        if !delay.is_zero() {
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "stopping: /ready answers 503, still accepting"
            );
            std::thread::sleep(delay);
        }
        tracing::info!(drain_ms = drain.as_millis() as u64, "draining connections");
        let deadline = Instant::now() + drain;
        self.shared.draining.store(true, Ordering::Relaxed);
        let _ = self.shutdown.send(Some(deadline));
        for w in self.workers {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "worker failed"),
                Err(_) => tracing::error!("worker panicked"),
            }
        }
        // Room for the writer to finish what it holds, never past the deadline
        // by more than a moment.
        let lost = self.shared.log.close(
            deadline.max(Instant::now() + Duration::from_millis(200)),
            &self.shared.registry.global,
        );
        if lost > 0 {
            tracing::warn!(
                lines = lost,
                "access log: lines not written before the drain deadline were dropped"
            );
        }
    }
}

/// Loads the plan, binds the listeners and starts the workers and the admin
/// listener (each on threads of their own).
pub fn start(options: &RunOptions) -> Result<Running, RunError> {
    let loaded = load(&options.source)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let plan = loaded.router.plan();
    let needed = crate::observe::process::descriptors_needed(plan.limits.max_connections);
    if let Some(limit) = crate::observe::process::raise_descriptor_limit()
        && limit < needed
    {
        tracing::warn!(
            limit,
            max_connections = plan.limits.max_connections,
            needed,
            "the open-descriptor limit is below what limits.maxConnections may use: \
             raise the hard limit (LimitNOFILE=, ulimit -Hn) or lower limits.maxConnections"
        );
    }
    let listen = match options.listen {
        Some(a) => a,
        None => plan.listen.parse().map_err(|_| RunError::Listen(plan.listen.clone()))?,
    };
    let admin = match (options.admin, &plan.admin) {
        (Some(a), _) => Some(a),
        (None, Some(a)) => Some(a.parse().map_err(|_| RunError::Listen(a.clone()))?),
        (None, None) => None,
    };
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let base_dir = options.source.base_dir();
    let registry = Arc::new(Registry::new());
    let (output, destination) = if plan.access_log.enabled {
        let dest = plan.access_log.destination.clone();
        (Output::open(&dest, &base_dir).map_err(RunError::AccessLog)?, Some(dest))
    } else {
        (Output::Stderr, None)
    };
    let log = Sink::start(output, destination, registry.clone()).map_err(RunError::AccessLog)?;
    registry
        .global
        .reload_last_success
        .store(unix_seconds(), Ordering::Relaxed);
    let upstreams = Upstreams::default();
    let tls_listen = match &plan.tls {
        Some(t) => Some(
            t.listen
                .parse::<SocketAddr>()
                .map_err(|_| RunError::Listen(t.listen.clone()))?,
        ),
        None => None,
    };
    let generation =
        Generation::new(loaded.router, &registry, &upstreams, threads, &base_dir).map_err(RunError::Plan)?;
    let shared = Arc::new(Shared {
        current: arc_swap::ArcSwap::from_pointee(generation),
        registry,
        upstreams,
        log,
        base_dir,
        connections: Default::default(),
        stopping: Default::default(),
        draining: Default::default(),
        threads,
    });

    upstreams::spawn(shared.clone())?;
    let listeners = bind_workers(listen, threads)?;
    let bound = listeners.first().map(|l| l.local_addr()).transpose()?.unwrap_or(listen);
    let mut tls_listeners: Vec<Option<std::net::TcpListener>> = match tls_listen {
        Some(addr) => bind_workers(addr, threads)?.into_iter().map(Some).collect(),
        None => (0..threads).map(|_| None).collect(),
    };
    let tls_bound = tls_listeners
        .first()
        .and_then(Option::as_ref)
        .map(|l| l.local_addr())
        .transpose()?;
    let admin_listener = match admin {
        Some(addr) => {
            ensure_free(addr).map_err(|e| RunError::Bind { addr, source: e })?;
            Some(bind_reuseport(addr).map_err(|e| RunError::Bind { addr, source: e })?)
        }
        None => None,
    };

    let (shutdown, shutdown_rx) = watch::channel(None);
    let mut workers = Vec::with_capacity(threads);
    for (i, listener) in listeners.into_iter().enumerate() {
        let shared = shared.clone();
        let rx = shutdown_rx.clone();
        let tls = tls_listeners.get_mut(i).and_then(Option::take);
        workers.push(
            std::thread::Builder::new()
                .name(format!("gateway-worker-{i}"))
                .spawn(move || run_worker(listener, tls, shared, rx))?,
        );
    }
    let source = Arc::new(options.source.clone());
    let fixed = Fixed {
        listen: options.listen,
        admin: options.admin,
    };
    let mut admin_addr = None;
    if let Some(l) = admin_listener {
        admin_addr = Some(l.local_addr()?);
        let (s, src) = (shared.clone(), source.clone());
        let hook: crate::admin::Reload = Arc::new(move || reload(&s, &src, &fixed));
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("gateway-admin".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    tracing::error!("admin listener: cannot start its runtime");
                    return;
                };
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, async move {
                    match tokio::net::TcpListener::from_std(l) {
                        Ok(listener) => crate::admin::serve(listener, shared, Some(hook)).await,
                        Err(e) => tracing::error!(error = %e, "admin listener"),
                    }
                });
            })?;
    }
    Ok(Running {
        addr: bound,
        tls_addr: tls_bound,
        admin: admin_addr,
        shared,
        source,
        fixed,
        shutdown,
        workers,
    })
}

/// Serves until SIGTERM or SIGINT, then drains; returns when every worker ended
/// and the access log is flushed.
pub fn run(options: RunOptions) -> Result<(), RunError> {
    serve(start(&options)?)
}

/// Announces a started gateway (`listening on ADDR`), then serves until
/// SIGTERM or SIGINT, then drains. The signal handlers are installed before
/// the announcement: a script that sends SIGHUP as soon as it reads
/// `listening on` gets a reload, not the default action (the end of the
/// process).
pub fn serve(running: Running) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handlers = {
        let _in = runtime.enter();
        Signals::install()
    };
    {
        let generation = running.shared.current.load();
        tracing::info!(
            version = %env!("CARGO_PKG_VERSION"),
            source = %running.source.path().display(),
            plan = %generation.router.digest(),
            workers = running.workers.len(),
            "started"
        );
    }
    if let Some(addr) = running.admin {
        crate::observe::logging::announce(&format!("admin listening on {addr}"));
    }
    // Not "TLS listening on": a script that takes the first line containing
    // `listening on` that is not the admin's must get the plain listener.
    if let Some(addr) = running.tls_addr {
        crate::observe::logging::announce(&format!("TLS listener on {addr}"));
    }
    crate::observe::logging::announce(&format!("listening on {}", running.addr));
    let interrupt = runtime.block_on(signals(handlers, &running.shared, &running.source, running.fixed));
    tracing::info!("shutting down");
    // While draining, an interrupt (a second Ctrl-C) stops at once, as Caddy's
    // does: whoever presses it again does not want to wait up to `drainMs`.
    if let Some(mut interrupt) = interrupt {
        let shared = running.shared.clone();
        let _ = std::thread::Builder::new()
            .name("gateway-interrupt".into())
            .spawn(move || {
                runtime.block_on(interrupt.recv());
                tracing::warn!("interrupted while draining: stopping without finishing the exchanges in flight");
                // What the writer already holds still gets a moment to be written.
                let global = &shared.registry.global;
                shared.log.close(Instant::now() + Duration::from_millis(500), global);
                crate::observe::logging::flush();
                std::process::exit(130);
            });
    }
    running.stop();
    Ok(())
}

/// The signals the gateway handles, installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers (inside a runtime); `None` if the system refused.
    fn install() -> Option<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Some(Signals {
            term: signal(SignalKind::terminate()).ok()?,
            int: signal(SignalKind::interrupt()).ok()?,
            hup: signal(SignalKind::hangup()).ok()?,
            usr1: signal(SignalKind::user_defined1()).ok()?,
        })
    }
}

/// Handles signals until SIGTERM or SIGINT; returns the SIGINT handler, for
/// the drain to watch.
async fn signals(
    handlers: Option<Signals>,
    shared: &Arc<Shared>,
    source: &Arc<Source>,
    fixed: Fixed,
) -> Option<tokio::signal::unix::Signal> {
    let Some(Signals {
        mut term,
        mut int,
        mut hup,
        mut usr1,
    }) = handlers
    else {
        tracing::error!("cannot install signal handlers; stop the gateway with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return Some(int),
            _ = int.recv() => return Some(int),
            _ = hup.recv() => {
                let (s, src) = (shared.clone(), source.clone());
                let _ = tokio::task::spawn_blocking(move || reload(&s, &src, &fixed)).await;
            }
            _ = usr1.recv() => shared.log.reopen(),
        }
    }
}
