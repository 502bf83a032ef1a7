//! How an exchange ends, whatever carried it: the log phase ([`finish`]:
//! counters, histograms, one access-log line) and the drain deadline's cut
//! ([`until_cut`], [`cut_exchange`]), shared by HTTP/1.1 connections and
//! HTTP/2 streams.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::client::side::Client;
use crate::error::{ErrorKind, Failure, Reply, write_error};
use crate::generation::Generation;
use crate::observe::accesslog::{LineContext, format_line};
use crate::observe::exchange::Exchange;
use crate::session::Conn;
use crate::worker::Worker;

/// Runs `serving` to its end (`false`) or until the drain deadline cuts the
/// worker's connections (`true`). The cut signal is registered once, on the
/// first poll; later wakeups only read the worker's flag, so a connection's
/// many polls cost no lock each.
///
/// `serving` is pinned by the caller (`std::pin::pin!`): taken by value, it
/// would be stored twice in this future (as the argument and as the pinned
/// local), and this future is most of a connection's memory.
pub async fn until_cut<F: std::future::Future<Output = ()>>(
    worker: &Worker,
    mut serving: std::pin::Pin<&mut F>,
) -> bool {
    let mut cut = std::pin::pin!(worker.cut_signal());
    let mut registered = false;
    std::future::poll_fn(|cx| {
        if serving.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(false);
        }
        if worker.is_cut() {
            return std::task::Poll::Ready(true);
        }
        if !registered {
            registered = true;
            if cut.as_mut().poll(cx).is_ready() {
                return std::task::Poll::Ready(true);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// The drain deadline cut this exchange: a `503 shutdown` if nothing was
/// sent yet (without waiting on a client that does not read), else the
/// status sent, with error `shutdown`.
pub async fn cut_exchange<C: Client>(conn: &mut Conn<C>, ex: &mut Exchange) {
    let failure = Failure::from(ErrorKind::Shutdown);
    if ex.status == 0 {
        write_error(conn, ex, failure, &Reply::closing(Duration::from_millis(100))).await;
    }
    ex.record_failure(failure);
}

/// Log phase (after the last response byte, or after the client went away):
/// counters, duration histogram and the access-log line.
/// Ends the exchange at `now`, which the caller read (and keeps, for the
/// next idle deadline).
pub fn finish<C: Client>(conn: &Conn<C>, generation: &Generation, ex: &mut Exchange, now: std::time::Instant) {
    let duration = now.saturating_duration_since(ex.started);
    let registry = &conn.worker.shared.registry;
    if ex.status == 0 {
        // Nothing reached the client: logged as NGINX does, 499.
        ex.status = ErrorKind::ClientClosed.status().as_u16();
        ex.error.get_or_insert(ErrorKind::ClientClosed);
    }
    if let (Some(d), Some(c)) = (ex.upstream_duration, ex.cluster)
        && let Some(stats) = generation.stats.clusters.get(c as usize)
    {
        stats.upstream_duration.observe(d);
    }
    if ex.error == Some(ErrorKind::BodyTooLarge) {
        registry.global.body_limit_exceeded.fetch_add(1, Ordering::Relaxed);
    }
    match ex.route.and_then(|r| generation.stats.route(r, ex.cluster)) {
        Some(r) => r.record(ex.status, duration),
        None => registry.unrouted.record(ex.status, duration),
    }
    if generation.log_fields.is_empty() {
        return;
    }
    let mut log = conn.worker.log.borrow_mut();
    let Some(log) = log.as_mut() else { return };
    let plan = generation.router.plan();
    let route = ex.route.and_then(|r| plan.routes.get(r as usize));
    let ctx = LineContext {
        client_ip: conn.client_ip.as_bytes(),
        route: route.map(|r| r.name.as_str()),
        cluster: ex
            .cluster
            .and_then(|c| plan.clusters.get(c as usize))
            .map(|c| c.name.as_str()),
        upstream_url: ex.upstream.map(|id| generation.targets.get(id).url.as_str()),
        plan: &generation.short_digest,
        duration,
        tls: conn.client.tls().map(|t| t.version),
        sni: conn.client.tls().and_then(|t| t.sni.as_deref()),
    };
    format_line(
        log.buffer(generation.log_destination, &registry.global),
        &generation.log_fields,
        ex,
        &ctx,
    );
    log.line_done(&registry.global);
}
