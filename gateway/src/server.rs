//! `gateway run`: load the plan, bind one `SO_REUSEPORT` listener per worker,
//! start the workers, then wait for a signal and drain.

use std::net::SocketAddr;
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::watch;

use crate::load::{LoadError, Source, load};
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

/// Serves until SIGTERM or SIGINT, then drains; returns when every worker ended.
pub fn run(options: RunOptions) -> Result<(), RunError> {
    let loaded = load(&options.source)?;
    for w in &loaded.warnings {
        eprintln!("{w}");
    }
    let plan = loaded.router.plan();
    let listen = match options.listen {
        Some(a) => a,
        None => plan.listen.parse().map_err(|_| RunError::Listen(plan.listen.clone()))?,
    };
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let demo_upstreams = if options.demo {
        crate::demo::free_upstreams(plan)
    } else {
        Vec::new()
    };
    let generation = Generation::new(loaded.router).map_err(RunError::Plan)?;

    let first = bind_reuseport(listen).map_err(|e| RunError::Bind {
        addr: listen,
        source: e,
    })?;
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(bind_reuseport(bound).map_err(|e| RunError::Bind { addr: bound, source: e })?);
    }

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let shared = Arc::new(Shared::new(generation));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
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
    eprintln!("listening on {bound}");
    if options.demo {
        crate::demo::start(&demo_upstreams, shared.current.load().router.plan(), bound)?;
    }

    runtime.block_on(async {
        wait_for_signal().await;
        eprintln!("shutting down: draining connections");
        shared.draining.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = shutdown_tx.send(true);
    });
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("worker failed: {e}"),
            Err(_) => eprintln!("worker panicked"),
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers the process still stops on the default action.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
