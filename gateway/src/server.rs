//! `gateway run`: load the plan, bind one `SO_REUSEPORT` listener per worker and
//! the admin listener, start the workers, then handle signals: SIGHUP reloads,
//! SIGUSR1 reopens the access log, SIGTERM/SIGINT drain and stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

use crate::accesslog::Sink;
use crate::load::{LoadError, Source, load};
use crate::stats::Registry;
use crate::upstream::PoolIds;
use crate::worker::{Generation, Shared, run_worker};

#[derive(Debug)]
pub struct RunOptions {
    pub source: Source,
    pub listen: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
    pub threads: Option<usize>,
    /// Start echo upstreams on the plan's loopback upstream addresses that are free.
    pub demo: bool,
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

/// Reloads the config or plan the process was started with. The new plan is
/// fully loaded and checked before it replaces the old one; on any error the
/// old plan keeps serving.
pub fn reload(shared: &Shared, source: &Source) -> Result<String, String> {
    let global = &shared.registry.global;
    let old = shared.current.load_full();
    let refused = |text: String| {
        global.reload_failures.fetch_add(1, Ordering::Relaxed);
        eprintln!("{text}");
        eprintln!("reload refused: still serving plan {}", old.router.digest());
        Err(text)
    };
    let loaded = match load(source) {
        Ok(l) => l,
        Err(e) => return refused(e.to_string()),
    };
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let mut router = loaded.router;
    router.adopt_wrr(&old.router);
    let generation = match Generation::new(router, &shared.registry, &shared.pool_ids, shared.threads) {
        Ok(g) => g,
        Err(e) => return refused(e),
    };
    let message = format!(
        "reloaded {}: plan {} -> {}",
        source.path().display(),
        old.router.digest(),
        generation.router.digest()
    );
    shared.current.store(Arc::new(generation));
    global.reloads.fetch_add(1, Ordering::Relaxed);
    eprintln!("{message}");
    Ok(message)
}

/// A started gateway: workers and the admin listener are serving.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub shared: Arc<Shared>,
    pub source: Arc<Source>,
    shutdown: watch::Sender<bool>,
    workers: Vec<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops accepting, lets in-flight exchanges finish (up to `drainMs`),
    /// flushes the access log; returns when all of that is done.
    pub fn stop(self) {
        self.shared.draining.store(true, Ordering::Relaxed);
        let _ = self.shutdown.send(true);
        for w in self.workers {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("worker failed: {e}"),
                Err(_) => eprintln!("worker panicked"),
            }
        }
        if let Some(log) = &self.shared.log {
            log.close();
        }
    }
}

/// Loads the plan, binds the listeners and starts the workers and the admin
/// listener (each on threads of their own).
pub fn start(options: &RunOptions) -> Result<Running, RunError> {
    let loaded = load(&options.source)?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let plan = loaded.router.plan();
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
    let log = if plan.access_log.enabled {
        Some(Sink::start(&plan.access_log.destination, &base_dir, registry.clone()).map_err(RunError::AccessLog)?)
    } else {
        None
    };
    let pool_ids = PoolIds::default();
    let generation = Generation::new(loaded.router, &registry, &pool_ids, threads).map_err(RunError::Plan)?;
    let shared = Arc::new(Shared {
        current: arc_swap::ArcSwap::from_pointee(generation),
        registry,
        pool_ids,
        log,
        base_dir,
        connections: Default::default(),
        draining: Default::default(),
        threads,
    });

    let first = bind_reuseport(listen).map_err(|e| RunError::Bind {
        addr: listen,
        source: e,
    })?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(bind_reuseport(bound).map_err(|e| RunError::Bind { addr: bound, source: e })?);
    }
    let admin_listener = match admin {
        Some(addr) => Some(bind_reuseport(addr).map_err(|e| RunError::Bind { addr, source: e })?),
        None => None,
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut workers = Vec::with_capacity(threads);
    for (i, listener) in listeners.into_iter().enumerate() {
        let shared = shared.clone();
        let rx = shutdown_rx.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("gateway-worker-{i}"))
                .spawn(move || run_worker(listener, shared, rx))?,
        );
    }
    let source = Arc::new(options.source.clone());
    let mut admin_addr = None;
    if let Some(l) = admin_listener {
        admin_addr = Some(l.local_addr()?);
        let (s, src) = (shared.clone(), source.clone());
        let hook: crate::admin::Reload = Arc::new(move || reload(&s, &src));
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("gateway-admin".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                    eprintln!("admin listener: cannot start its runtime");
                    return;
                };
                rt.block_on(async move {
                    match tokio::net::TcpListener::from_std(l) {
                        Ok(listener) => crate::admin::serve(listener, shared, Some(hook)).await,
                        Err(e) => eprintln!("admin listener: {e}"),
                    }
                });
            })?;
    }
    Ok(Running {
        addr: bound,
        admin: admin_addr,
        shared,
        source,
        shutdown,
        workers,
    })
}

/// Serves until SIGTERM or SIGINT, then drains; returns when every worker ended
/// and the access log is flushed.
pub fn run(options: RunOptions) -> Result<(), RunError> {
    let demo_upstreams = if options.demo {
        let loaded = load(&options.source)?;
        crate::demo::free_upstreams(loaded.router.plan())
    } else {
        Vec::new()
    };
    let running = start(&options)?;
    if let Some(addr) = running.admin {
        eprintln!("admin listening on {addr}");
    }
    eprintln!("listening on {}", running.addr);
    if options.demo {
        crate::demo::start(
            &demo_upstreams,
            running.shared.current.load().router.plan(),
            running.addr,
        )?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(signals(&running.shared, &running.source));
    eprintln!("shutting down: draining connections");
    running.stop();
    Ok(())
}

/// Handles signals until SIGTERM or SIGINT.
async fn signals(shared: &Arc<Shared>, source: &Arc<Source>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup), Ok(mut usr1)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
    ) else {
        eprintln!("cannot install signal handlers; stop the gateway with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                let (s, src) = (shared.clone(), source.clone());
                let _ = tokio::task::spawn_blocking(move || reload(&s, &src)).await;
            }
            _ = usr1.recv() => {
                if let Some(log) = &shared.log {
                    log.reopen();
                }
            }
        }
    }
}
