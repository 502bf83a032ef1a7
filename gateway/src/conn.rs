//! The life of one client connection: read a head, run the exchange, repeat while
//! keep-alive allows. See ARCHITECTURE.md for the phase diagram.

use std::io::IoSlice;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::BytesMut;
use http::{HeaderMap, HeaderValue};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::accesslog::{LineContext, format_line};
use crate::error::ErrorKind;
use crate::exchange::Exchange;
use crate::http1::body::{ClientReader, Decoder};
use crate::http1::head::{self, HeadError, Parsed, RequestHead};
use crate::http1::io::{read_buf, write_all};
use crate::http1::write::error_response;
use crate::worker::{Generation, Worker, client_ip};

/// A client connection's state between exchanges.
pub struct Conn {
    pub stream: Rc<TcpStream>,
    /// The read side; lent to the request body while it streams.
    pub reader: Option<ClientReader>,
    /// Reused buffer for encoding response heads.
    pub wbuf: BytesMut,
    /// Reused buffer for encoding the forwarded request head.
    pub reqbuf: BytesMut,
    /// The last request's header map, emptied and reused by the next head.
    pub spare_headers: HeaderMap,
    pub peer: SocketAddr,
    pub client_ip: HeaderValue,
    pub worker: Rc<Worker>,
}

/// How reading a head ended.
enum HeadRead {
    Head(RequestHead, Instant),
    /// Clean end: EOF or idle timeout between requests, or draining.
    Closed,
    Refused(ErrorKind, head::Partial, Instant),
}

/// Serves `stream` until the client or the gateway ends the connection.
pub async fn serve(stream: TcpStream, peer: SocketAddr, worker: Rc<Worker>) {
    let stream = Rc::new(stream);
    let ip = client_ip(&peer);
    let mut conn = Conn {
        reader: Some(ClientReader {
            stream: stream.clone(),
            buf: BytesMut::with_capacity(8 * 1024),
            decoder: Decoder::Done,
            pending: None,
            error: None,
            received: 0,
            max_body: None,
            read_timeout: Duration::from_secs(15),
        }),
        stream,
        reqbuf: BytesMut::with_capacity(4 * 1024),
        spare_headers: HeaderMap::new(),
        wbuf: BytesMut::with_capacity(4 * 1024),
        peer,
        client_ip: HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("unknown")),
        worker,
    };
    let mut first = true;
    loop {
        let read = read_head(&mut conn, first).await;
        first = false;
        // The plan current when the head arrived routes it, even if the
        // connection sat idle across a reload.
        let generation = conn.worker.shared.current.load_full();
        let keep_alive = match read {
            HeadRead::Closed => return,
            HeadRead::Refused(kind, partial, started) => {
                let mut ex = Exchange::new(started.into_std());
                ex.method = partial.method;
                ex.target = partial.target;
                respond_error(&mut conn, &mut ex, kind, false, false).await;
                finish(&conn, &generation, &mut ex);
                return;
            }
            HeadRead::Head(mut head, started) => {
                let mut ex = Exchange::new(started.into_std());
                let worker = conn.worker.clone();
                let in_flight = &worker.shared.registry.global.in_flight;
                in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let keep_alive = crate::proxy::handle(&mut conn, &generation, &mut head, &mut ex).await;
                // Emptied now, so that no header value keeps the read
                // buffer's storage shared while the next head is read.
                head.headers.clear();
                conn.spare_headers = std::mem::take(&mut head.headers);
                in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                finish(&conn, &generation, &mut ex);
                keep_alive
            }
        };
        if !keep_alive || conn.worker.draining() {
            return;
        }
    }
}

/// Log phase (after the last response byte, or after the client went away):
/// counters, duration histogram and the access-log line.
fn finish(conn: &Conn, generation: &Generation, ex: &mut Exchange) {
    let duration = ex.started.elapsed();
    let registry = &conn.worker.shared.registry;
    if ex.status == 0 {
        // Nothing reached the client: logged as NGINX does, 499.
        ex.status = ErrorKind::ClientClosed.status().as_u16();
    }
    registry.global.duration.observe(duration);
    if ex.error == Some(ErrorKind::BodyTooLarge) {
        registry
            .global
            .body_limit_exceeded
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    match ex.route.and_then(|r| generation.stats.routes.get(r as usize)) {
        Some(r) => r.record(ex.status),
        None => registry.unrouted.record(ex.status),
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
    };
    format_line(log.buffer(), &generation.log_fields, ex, &ctx);
    log.line_done(&registry.global);
}

/// Reads the next request head under the idle and read deadlines.
async fn read_head(conn: &mut Conn, first: bool) -> HeadRead {
    let (limits, read_ms, idle_ms) = {
        let generation = conn.worker.shared.current.load();
        let plan = generation.router.plan();
        (
            plan.limits,
            Duration::from_millis(plan.defaults.read_ms),
            Duration::from_millis(plan.defaults.idle_ms),
        )
    };
    let Some(reader) = conn.reader.as_mut() else {
        return HeadRead::Closed;
    };
    let mut started = (!reader.buf.is_empty()).then(Instant::now);
    let idle_deadline = Instant::now() + if first { read_ms } else { idle_ms };
    loop {
        if let Some(t) = started {
            match head::parse_into(
                &mut reader.buf,
                limits.max_header_bytes as usize,
                limits.max_headers as usize,
                std::mem::take(&mut conn.spare_headers),
            ) {
                Parsed::Complete(h) => return HeadRead::Head(h, t),
                Parsed::Refused(HeadError::TooLarge, p) => return HeadRead::Refused(ErrorKind::HeadersTooLarge, p, t),
                Parsed::Refused(HeadError::Malformed(_), p) => return HeadRead::Refused(ErrorKind::BadRequest, p, t),
                Parsed::Incomplete => {}
            }
        }
        let deadline = started.map_or(idle_deadline, |t| t + read_ms);
        let waiting_idle = started.is_none();
        let worker = conn.worker.clone();
        let drain = worker.events.notified();
        if waiting_idle && worker.draining() {
            return HeadRead::Closed;
        }
        let result = tokio::select! {
            r = tokio::time::timeout_at(deadline, read_buf(&reader.stream, &mut reader.buf)) => r,
            _ = drain, if waiting_idle => return HeadRead::Closed,
        };
        match result {
            Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Closed,
            Ok(Ok(_)) => {
                started.get_or_insert_with(Instant::now);
            }
            Err(_) => {
                return match started {
                    Some(t) => HeadRead::Refused(ErrorKind::RequestTimeout, head::Partial::default(), t),
                    None => HeadRead::Closed,
                };
            }
        }
    }
}

/// Writes a gateway-generated error response and records it.
pub async fn respond_error(conn: &mut Conn, ex: &mut Exchange, kind: ErrorKind, head_only: bool, keep_alive: bool) {
    let keep_alive = keep_alive && !kind.closes_connection();
    ex.error = Some(kind);
    ex.status = kind.status().as_u16();
    conn.wbuf.clear();
    error_response(&mut conn.wbuf, kind, head_only, keep_alive);
    let write_ms = Duration::from_millis(conn.worker.shared.current.load().router.plan().defaults.write_ms);
    let mut bufs = [IoSlice::new(&conn.wbuf)];
    // If the client is gone or not reading, the exchange keeps its original kind.
    if let Ok(Ok(())) = tokio::time::timeout(write_ms, write_all(&conn.stream, &mut bufs)).await {
        ex.bytes_sent += conn.wbuf.len() as u64;
    }
    conn.wbuf.clear();
}
