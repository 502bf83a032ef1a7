//! The life of one HTTP/2 client connection (SPEC §14): the `h2` crate
//! speaks the protocol (and enforces its defences: rapid-reset and
//! CONTINUATION floods, header-list size, flow control); every stream is one
//! exchange, run by the same phases as an HTTP/1.1 request
//! ([`crate::proxy::exchange`]) on its own task, logged with `protocol`
//! `"HTTP/2"`. The connection says GOAWAY when it has been idle for `idleMs`,
//! when a stream ends while the gateway is stopping (where an HTTP/1.1
//! response would say `close`), and when the gateway drains; the drain
//! deadline cuts what is left, and each cut stream is still logged.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderValue, Request, Version};
use http1::{Bridged, Fields, Parsed};
use tokio::time::Instant;

use crate::client::h2::H2Stream;
use crate::error::{Failure, Reply, write_error};
use crate::generation::Generation;
use crate::h2heads::HeadWatch;
use crate::lifecycle::{cut_exchange, finish, until_cut};
use crate::observe::exchange::Exchange;
use crate::session::Conn;
use crate::stream::{H2Io, Stream};
use crate::worker::{Worker, client_ip};

/// The HTTP/2 connection preface's first line, which h2c prior knowledge
/// starts with (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A stream's receive window: what one stream may have in flight before its
/// body is forwarded.
const STREAM_WINDOW: u32 = 256 * 1024;
/// The connection's receive window: what all its streams together may.
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// What one stream may queue for sending beyond what the client reads.
const SEND_BUFFER: usize = 64 * 1024;
/// Streams the client may reset before the gateway accepts them (rapid
/// reset, CVE-2023-44487), and streams the gateway may reset for protocol
/// errors, before the connection is closed with `ENHANCE_YOUR_CALM`.
const PENDING_ACCEPT_RESETS: usize = 20;
const LOCAL_ERROR_RESETS: usize = 256;
/// HPACK's per-field overhead (RFC 9113 §6.5.2), allowed on top of
/// `maxHeaderBytes` so that the gateway's own check, which answers 431 and
/// logs it, sees heads slightly over the limit first.
const FIELD_OVERHEAD: u32 = 32;
/// A connection whose client cancelled at least this many streams before
/// their response started, and at least half of all its streams, is closed
/// with `ENHANCE_YOUR_CALM` (rapid reset after the streams were accepted;
/// Envoy's premature-reset rule).
const PREMATURE_RESETS: usize = 100;

/// How long a connection cut at the drain deadline still carries its cut
/// streams' answers (each written within 100 ms; the worker waits 500 ms).
const CUT_ANSWERS: Duration = Duration::from_millis(250);

/// The `closing` deadline after a GOAWAY that waits for the streams: none
/// but the drain deadline's cut.
const UNTIL_STREAMS_END: Duration = Duration::from_secs(86_400);

/// What every stream of a connection shares.
struct Shared {
    stream: Rc<Stream>,
    peer: SocketAddr,
    client_ip: HeaderValue,
    worker: Rc<Worker>,
    /// Streams being served, and when the last one ended.
    open: Cell<usize>,
    last_end: Cell<Instant>,
    /// Woken when the last stream being served ends.
    all_ended: tokio::sync::Notify,
    /// Streams served, and those the client cancelled before any response.
    served: Cell<usize>,
    premature: Cell<usize>,
    /// Woken when the connection earned `ENHANCE_YOUR_CALM`.
    abuse: tokio::sync::Notify,
    /// Woken when a stream ended while the gateway is stopping: the
    /// connection says GOAWAY, as an HTTP/1.1 response then says `close`.
    stopping: tokio::sync::Notify,
}

/// Serves an HTTP/2 connection whose first bytes (`read`, possibly the whole
/// preface) were already read from `stream`.
pub async fn serve(stream: Rc<Stream>, read: BytesMut, peer: SocketAddr, worker: Rc<Worker>) {
    let generation = worker.shared.current.load_full();
    let plan = generation.router.plan();
    let limits = plan.limits;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(plan.http2.max_concurrent_streams)
        .max_header_list_size(
            limits
                .max_header_bytes
                .saturating_add(limits.max_headers.saturating_mul(FIELD_OVERHEAD)),
        )
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_send_buffer_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(Some(LOCAL_ERROR_RESETS));
    let ip = client_ip(&peer);
    let shared = Rc::new(Shared {
        stream: stream.clone(),
        peer,
        client_ip: HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("unknown")),
        worker: worker.clone(),
        open: Cell::new(0),
        last_end: Cell::new(Instant::now()),
        all_ended: tokio::sync::Notify::new(),
        served: Cell::new(0),
        premature: Cell::new(0),
        abuse: tokio::sync::Notify::new(),
        stopping: tokio::sync::Notify::new(),
    });
    let heads = Rc::new(HeadWatch::new());
    let io = H2Io::watching(stream.clone(), read, heads.clone());
    let (read_ms, idle_ms) = (generation.defaults.read, generation.defaults.idle);
    drop(generation);
    // Pinned in place: awaited by value, the block would be stored twice in
    // this future (see `until_cut`).
    let serving = std::pin::pin!(async {
        let handshake = std::pin::pin!(tokio::time::timeout(read_ms, builder.handshake::<_, Bytes>(io)));
        let Some(Ok(Ok(mut h2))) = until_cut_or(&worker, handshake).await else {
            return;
        };
        // Set when GOAWAY was said: the connection ends when its streams
        // have, or at this deadline.
        let mut closing: Option<Instant> = None;
        let timer = tokio::time::sleep(idle_ms);
        tokio::pin!(timer);
        let mut cut = false;
        loop {
            let drain = worker.drain_signal();
            let cut_signal = worker.cut_signal();
            if closing.is_none() && worker.draining() {
                h2.graceful_shutdown();
                closing = Some(Instant::now() + UNTIL_STREAMS_END);
            }
            if !cut && worker.is_cut() {
                // The drain deadline: the streams are cut too (each answers
                // and logs); the connection keeps carrying their answers a
                // moment longer.
                cut = true;
                h2.graceful_shutdown();
                let deadline = Instant::now() + CUT_ANSWERS;
                closing = Some(deadline);
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                accepted = h2.accept() => match accepted {
                    Some(Ok((request, respond))) => {
                        shared.open.set(shared.open.get() + 1);
                        // Boxed before it is spawned: the exchange's future
                        // is several KiB, and spawning moves it by value
                        // through each layer (measured: 15 % of the CPU of
                        // a stream in memmove); a box moves once.
                        tokio::task::spawn_local(Box::pin(exchange(shared.clone(), request, respond)));
                    }
                    Some(Err(e)) => {
                        // h2 has said GOAWAY (a protocol error, or its own
                        // flood limits): make sure the client reads it.
                        tracing::debug!(error = %e, "HTTP/2 connection ended");
                        stream.linger().await;
                        return;
                    }
                    None => return,
                },
                () = drain, if closing.is_none() => {}
                () = cut_signal, if !cut => {}
                () = shared.stopping.notified(), if closing.is_none() => {
                    h2.graceful_shutdown();
                    closing = Some(Instant::now() + UNTIL_STREAMS_END);
                }
                () = heads.opened.notified() => {
                    // A header block opened: it has `readMs` to end.
                    if let Some(since) = heads.open_since() {
                        let deadline = since + read_ms;
                        if deadline < timer.deadline() {
                            timer.as_mut().reset(deadline);
                        }
                    }
                }
                () = shared.abuse.notified() => {
                    tracing::warn!(peer = %shared.peer, "HTTP/2 client cancels most of its streams: connection closed (ENHANCE_YOUR_CALM)");
                    h2.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                    let closed = std::future::poll_fn(|cx| h2.poll_closed(cx));
                    let _ = tokio::time::timeout(crate::stream::LINGER, closed).await;
                    stream.linger().await;
                    return;
                }
                () = &mut timer => {
                    let now = Instant::now();
                    if heads.open_since().is_some_and(|since| now >= since + read_ms) {
                        // A request head (a header block) that did not end
                        // within `readMs`: the connection is closed, as an
                        // HTTP/1.1 one is; nothing else could arrive on it
                        // meanwhile (RFC 9113 §6.10).
                        tracing::debug!(peer = %shared.peer, "HTTP/2 header block not ended within readMs: connection closed");
                        h2.abrupt_shutdown(h2::Reason::NO_ERROR);
                        let closed = std::future::poll_fn(|cx| h2.poll_closed(cx));
                        let _ = tokio::time::timeout(crate::stream::LINGER, closed).await;
                        return;
                    }
                    match closing {
                        Some(deadline) if now >= deadline => return,
                        Some(deadline) => timer.as_mut().reset(deadline),
                        None if shared.open.get() == 0 && now >= shared.last_end.get() + idle_ms => {
                            // Idle: GOAWAY, and the client gets `readMs` to
                            // acknowledge it before the connection is closed.
                            h2.graceful_shutdown();
                            closing = Some(now + read_ms);
                            timer.as_mut().reset(now + read_ms);
                        }
                        None if shared.open.get() == 0 => timer.as_mut().reset(shared.last_end.get() + idle_ms),
                        None => timer.as_mut().reset(now + idle_ms),
                    }
                    if let Some(since) = heads.open_since() {
                        let deadline = timer.deadline().min(since + read_ms);
                        timer.as_mut().reset(deadline);
                    }
                }
            }
        }
    });
    serving.await;
    // Each stream logs its own exchange, also when the drain deadline cuts
    // it: the connection (what the drain waits for) ends after its streams.
    loop {
        let ended = shared.all_ended.notified();
        if shared.open.get() == 0 {
            break;
        }
        ended.await;
    }
    if let Some(tls) = stream.tls() {
        tls.close_notify();
    }
}

/// Runs `fut` unless the drain deadline cuts the worker first (`None`).
async fn until_cut_or<F: std::future::Future>(worker: &Worker, mut fut: std::pin::Pin<&mut F>) -> Option<F::Output> {
    let mut out = None;
    let cut = until_cut(worker, std::pin::pin!(async { out = Some(fut.as_mut().await) })).await;
    if cut { None } else { out }
}

/// One stream: its head checked as any request head is, then the phases.
async fn exchange(shared: Rc<Shared>, request: Request<RecvStream>, respond: SendResponse<Bytes>) {
    let worker = shared.worker.clone();
    let started = std::time::Instant::now();
    // The plan current when the stream opened routes it, whatever reloads
    // happen while it runs.
    let generation: Arc<Generation> = worker.shared.current.load_full();
    let limits = generation.router.plan().limits;
    let (parts, body) = request.into_parts();
    let target = match (&parts.method, parts.uri.path_and_query()) {
        (&http::Method::CONNECT, _) | (_, None) => parts.uri.authority().map_or("", |a| a.as_str()),
        (_, Some(p)) => p.as_str(),
    };
    let unsized_body = !body.is_end_stream() && !parts.headers.contains_key(http::header::CONTENT_LENGTH);
    let mut rendered = BytesMut::new();
    let parsed = http1::parse_bridged(
        &mut rendered,
        &Bridged {
            method: &parts.method,
            target: target.as_bytes(),
            authority: parts.uri.authority().map(|a| a.as_str().as_bytes()),
            fields: &parts.headers,
            unsized_body,
        },
        limits.max_header_bytes as usize,
        limits.max_headers as usize,
        Fields::default(),
    );
    drop(parts);
    let client = H2Stream::new(shared.stream.clone(), body, respond);
    let mut conn = Conn::new(client, shared.peer, shared.client_ip.clone(), worker.clone());
    let mut ex = Exchange::new(started, worker.wall_at(started));
    let in_flight = &worker.shared.registry.global.in_flight;
    in_flight.add(1);
    let run = async {
        match parsed {
            Parsed::Complete(mut head) => {
                head.version = Version::HTTP_2;
                crate::proxy::exchange(&mut conn, &generation, &mut head, &mut ex).await;
            }
            Parsed::Refused(e, partial) => {
                ex.version = Some(Version::HTTP_2);
                ex.record_partial(partial);
                let failure = Failure::from(e);
                ex.record_failure(failure);
                write_error(&mut conn, &mut ex, failure, &Reply::closing(generation.defaults.write)).await;
            }
            Parsed::Incomplete => {}
        }
    };
    if until_cut(&worker, std::pin::pin!(run)).await {
        cut_exchange(&mut conn, &mut ex).await;
    }
    in_flight.add(-1);
    finish(&conn, &generation, &mut ex, std::time::Instant::now());
    drop(generation);
    until_cut(&worker, std::pin::pin!(conn.client.discard_rest())).await;
    shared.open.set(shared.open.get().saturating_sub(1));
    shared.last_end.set(Instant::now());
    if shared.open.get() == 0 {
        shared.all_ended.notify_waiters();
    }
    shared.served.set(shared.served.get() + 1);
    if worker.stopping() {
        shared.stopping.notify_one();
    }
    if ex.bytes_sent == 0 && ex.error == Some(crate::error::ErrorKind::ClientClosed) {
        shared.premature.set(shared.premature.get() + 1);
        if shared.premature.get() >= PREMATURE_RESETS && shared.premature.get() * 2 >= shared.served.get() {
            shared.abuse.notify_one();
        }
    }
}
