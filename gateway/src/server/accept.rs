//! One worker thread: a `current_thread` runtime with its own `SO_REUSEPORT`
//! listener, accepting until shutdown, then draining its connections until
//! the deadline and cutting what is left.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::observe::accesslog::FLUSH_EVERY;
use crate::stream::Stream;
use crate::worker::{Shared, Worker};

/// How long a worker waits after an `accept` error (out of descriptors, say)
/// before accepting again, instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
/// How often idle upstream connections are checked against `idleMs`.
const POOL_SWEEP: Duration = Duration::from_secs(1);
/// How long connections cut at the deadline get to write their last answer
/// and log line.
const CUT_GRACE: Duration = Duration::from_millis(500);

/// Ends a connection's count when its task ends, however it ends.
struct ConnGuard(Rc<Worker>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// Runs one worker until shutdown and drain end. `shutdown` carries the drain
/// deadline once shutdown starts.
pub fn run_worker(
    listener: std::net::TcpListener,
    tls_listener: Option<std::net::TcpListener>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<Option<Instant>>,
) -> std::io::Result<()> {
    crate::observe::per_worker::enter_worker();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let worker = Rc::new(Worker::new(shared.clone()));
    let w = worker.clone();
    let deadline = local.block_on(&runtime, async move {
        let listener = TcpListener::from_std(listener)?;
        let tls_listener = tls_listener.map(TcpListener::from_std).transpose()?;
        let ticker = w.clone();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(FLUSH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut since_sweep = Duration::ZERO;
            loop {
                tick.tick().await;
                ticker.pool.tick(Instant::now());
                ticker.prune_pools();
                ticker.tick_wall();
                ticker.flush_log();
                since_sweep += FLUSH_EVERY;
                if since_sweep >= POOL_SWEEP {
                    since_sweep = Duration::ZERO;
                    ticker.pool.close_idle(Instant::now());
                    ticker.h2pool.close_idle(Instant::now());
                }
            }
        });
        let max_connections = || shared.current.load().router.plan().limits.max_connections as usize;
        let tls_accept = || async {
            match &tls_listener {
                Some(l) => l.accept().await,
                None => std::future::pending().await,
            }
        };
        let deadline = loop {
            let (accepted, tls) = tokio::select! {
                accepted = listener.accept() => (accepted, false),
                accepted = tls_accept() => (accepted, true),
                changed = shutdown.wait_for(Option::is_some) => {
                    break changed.ok().and_then(|d| *d).unwrap_or_else(Instant::now);
                }
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(_) => {
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            // TLS connections count against the same limit as plain ones.
            if shared.connections.fetch_add(1, Ordering::Relaxed) >= max_connections() {
                shared.connections.fetch_sub(1, Ordering::Relaxed);
                shared
                    .registry
                    .global
                    .connections_rejected
                    .fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            }
            let _ = stream.set_nodelay(true);
            w.connection_opened();
            let guard = ConnGuard(w.clone());
            let conn_worker = w.clone();
            if tls {
                tokio::task::spawn_local(async move {
                    let Some(stream) = handshake(stream, &conn_worker).await else {
                        drop(guard);
                        return;
                    };
                    let stream = Stream::Tls(Box::new(stream));
                    if stream.tls().is_some_and(|t| t.h2) {
                        // HTTP/2's connection future (about 5 KiB) gets a
                        // task of its own: inline, it would size every
                        // HTTP/1.1 connection's task as well.
                        tokio::task::spawn_local(async move {
                            crate::h2conn::serve(Rc::new(stream), bytes::BytesMut::new(), peer, conn_worker).await;
                            drop(guard);
                        });
                        return;
                    }
                    crate::conn::serve(stream, peer, conn_worker).await;
                    drop(guard);
                });
            } else {
                tokio::task::spawn_local(async move {
                    crate::conn::serve(Stream::Plain(stream), peer, conn_worker).await;
                    drop(guard);
                });
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
        let left = deadline.saturating_duration_since(Instant::now());
        log.flush_final(&worker.shared.registry.global, left.max(Duration::from_millis(50)));
    }
    worker.log.borrow_mut().take();
    Ok(())
}

/// Runs the TLS handshake of a new connection under `handshakeMs`, with the
/// certificates of the generation current now; a failure is counted and
/// closes the connection.
async fn handshake(stream: tokio::net::TcpStream, worker: &Worker) -> Option<crate::tls::TlsStream> {
    let server = worker.shared.current.load().tls.clone()?;
    let global = &worker.shared.registry.global;
    let failed = |reason: usize| {
        global.tls_handshake_failures[reason].fetch_add(1, Ordering::Relaxed);
        None
    };
    match tokio::time::timeout(server.handshake, server.accept(stream)).await {
        Ok(Ok(tls)) => {
            global.tls_handshakes.fetch_add(1, Ordering::Relaxed);
            Some(tls)
        }
        Ok(Err(crate::tls::HandshakeError::Closed)) => failed(2),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            failed(0)
        }
        Err(_) => failed(1),
    }
}

/// Waits for this worker's connections to finish until `deadline`, then cuts
/// the rest (each logs its exchange) and waits briefly for them to end.
async fn drain(worker: &Rc<Worker>, deadline: Instant) {
    // Idle keep-alive connections close now.
    worker.close_idle();
    if tokio::time::timeout_at(deadline.into(), worker.idle()).await.is_ok() {
        return;
    }
    worker.cut_all();
    let _ = tokio::time::timeout(CUT_GRACE, worker.idle()).await;
}
