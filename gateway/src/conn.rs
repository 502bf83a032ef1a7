//! The life of one client connection: read a head, run the exchange, repeat
//! while keep-alive allows; at the drain deadline, whatever is in flight is
//! cut and still logged. See ARCHITECTURE.md for the phase diagram.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use http::HeaderValue;
use http1::{Parsed, Partial, RequestHead};
use tokio::time::Instant;

use crate::client::h1::H1;
use crate::client::side::Client;
use crate::error::{ErrorKind, Failure, Reply, write_error};
use crate::generation::Generation;
use crate::lifecycle::{cut_exchange, finish, until_cut};
use crate::observe::exchange::Exchange;
use crate::session::Conn;
use crate::stream::Stream;
use crate::worker::{Worker, client_ip};

/// How reading a head ended.
enum HeadRead {
    Head(RequestHead, Instant),
    /// Clean end: EOF or idle timeout between requests, or draining.
    Closed,
    Refused(Failure, Partial, Instant),
    /// The connection opened with the HTTP/2 preface (h2c prior knowledge,
    /// `http2.cleartext`).
    Http2,
}

/// How serving requests on a connection ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// The client or the gateway ended it between requests.
    Done,
    /// It opened with the HTTP/2 preface.
    Http2,
    /// It closes while the client may still be sending (a refused head, a
    /// body not read to its end): the close lingers.
    Linger,
}

/// The exchange in progress, kept outside the connection's future so that
/// the drain deadline, which drops that future, can still log it.
struct InFlight {
    ex: Exchange,
    generation: Arc<Generation>,
}

/// Serves `stream` as HTTP/1.1 (or, with `http2.cleartext`, as HTTP/2 once
/// it opens with the preface) until the client or the gateway ends the
/// connection. A TLS connection that chose `h2` never comes here: the accept
/// loop runs it on `h2conn` as a task of its own.
pub async fn serve(stream: Stream, peer: SocketAddr, worker: Rc<Worker>) {
    let stream = Rc::new(stream);
    let ip = client_ip(&peer);
    let ip = HeaderValue::from_str(&ip).unwrap_or(HeaderValue::from_static("unknown"));
    let mut conn = Conn::new(H1::new(stream), peer, ip, worker.clone());
    let mut in_flight: Option<InFlight> = None;
    let mut ending = Ending::Done;
    let cut = {
        let serving = std::pin::pin!(serve_requests(&mut conn, &mut in_flight, &mut ending));
        until_cut(&worker, serving).await
    };
    if ending == Ending::Http2 && !cut {
        let read = std::mem::take(&mut conn.client.reader.buf);
        let stream = conn.client.stream.clone();
        drop(conn);
        // Boxed, once per connection: HTTP/2's connection future (about 5
        // KiB) inline would size every HTTP/1.1 connection's task as well.
        return Box::pin(crate::h2conn::serve(stream, read, peer, worker)).await;
    }
    if cut && let Some(InFlight { mut ex, generation }) = in_flight.take() {
        cut_exchange(&mut conn, &mut ex).await;
        worker.shared.registry.global.in_flight.add(-1);
        finish(&conn, &generation, &mut ex, std::time::Instant::now());
    }
    if ending == Ending::Linger && !cut {
        // Says `close_notify` on TLS first, as below.
        return conn.client.stream.linger().await;
    }
    if let Some(tls) = conn.client.tls() {
        tls.close_notify();
    }
}

async fn serve_requests(conn: &mut Conn<H1>, in_flight: &mut Option<InFlight>, ending: &mut Ending) {
    let mut first = true;
    let mut last_end: Option<Instant> = None;
    loop {
        let read = read_head(conn, first, last_end).await;
        first = false;
        // The plan current when the head arrived routes it, even if the
        // connection sat idle across a reload.
        let generation = conn.worker.shared.current.load_full();
        match read {
            HeadRead::Closed => return,
            HeadRead::Http2 => {
                *ending = Ending::Http2;
                return;
            }
            HeadRead::Refused(failure, partial, started) => {
                let mut ex = Exchange::new(started.into_std(), conn.worker.wall_at(started.into_std()));
                ex.record_partial(partial);
                ex.record_failure(failure);
                write_error(conn, &mut ex, failure, &Reply::closing(generation.defaults.write)).await;
                finish(conn, &generation, &mut ex, std::time::Instant::now());
                // A client that timed out is not sending.
                if failure.kind != ErrorKind::RequestTimeout {
                    *ending = Ending::Linger;
                }
                return;
            }
            HeadRead::Head(mut head, started) => {
                conn.worker.shared.registry.global.in_flight.add(1);
                let InFlight { ex, generation } = in_flight.insert(InFlight {
                    ex: Exchange::new(started.into_std(), conn.worker.wall_at(started.into_std())),
                    generation,
                });
                let keep_alive = crate::proxy::exchange(conn, generation, &mut head, ex).await;
                // Emptied now, so that no field keeps the read buffer's
                // storage shared while the next head is read.
                head.headers.clear();
                conn.client.spare_fields = std::mem::take(&mut head.headers);
                if let Some(InFlight { mut ex, generation }) = in_flight.take() {
                    conn.worker.shared.registry.global.in_flight.add(-1);
                    let now = std::time::Instant::now();
                    finish(conn, &generation, &mut ex, now);
                    last_end = Some(Instant::from_std(now));
                }
                if !keep_alive {
                    if !conn.client.body_done() || !conn.client.reader.buf.is_empty() {
                        *ending = Ending::Linger;
                    }
                    return;
                }
            }
        }
    }
}

/// Reads the next request head under the idle and read deadlines. While it
/// waits for a first byte the connection is in its worker's idle set, so a
/// drain can close it at once.
async fn read_head(conn: &mut Conn<H1>, first: bool, last_end: Option<Instant>) -> HeadRead {
    let (limits, read_ms, idle_ms, h2c) = {
        let generation = conn.worker.shared.current.load();
        let plan = generation.router.plan();
        (
            plan.limits,
            generation.defaults.read,
            generation.defaults.idle,
            first && plan.http2.cleartext,
        )
    };
    let reader = &mut conn.client.reader;
    let mut started = (!reader.buf.is_empty()).then(Instant::now);
    let idle_for = if first { read_ms } else { idle_ms };
    loop {
        if let Some(t) = started {
            if h2c
                && crate::h2conn::PREFACE.starts_with(&reader.buf[..reader.buf.len().min(crate::h2conn::PREFACE.len())])
            {
                if reader.buf.len() >= crate::h2conn::PREFACE.len() {
                    return HeadRead::Http2;
                }
            } else {
                match http1::parse_into(
                    &mut reader.buf,
                    limits.max_header_bytes as usize,
                    limits.max_headers as usize,
                    std::mem::take(&mut conn.client.spare_fields),
                ) {
                    Parsed::Complete(h) => return HeadRead::Head(h, t),
                    Parsed::Refused(e, p) => {
                        return HeadRead::Refused(Failure::from(e), p, t);
                    }
                    Parsed::Incomplete => {}
                }
            }
        }
        let idle = match started {
            None if conn.worker.draining() => return HeadRead::Closed,
            None => Some(conn.worker.idle_enter(&reader.stream)),
            Some(_) => None,
        };
        let read = reader.stream.read_buf(&mut reader.buf);
        let result = match started {
            Some(t) => reader.timer.within(|| t + read_ms, read).await,
            // Idle counts from the end of the last response (read then anyway).
            None => match last_end {
                Some(end) => reader.timer.within(|| end + idle_for, read).await,
                None => reader.timer.within_for(idle_for, read).await,
            },
        };
        drop(idle);
        match result {
            Ok(Ok(0)) | Ok(Err(_)) => return HeadRead::Closed,
            Ok(Ok(_)) => {
                started.get_or_insert_with(Instant::now);
            }
            Err(_) => {
                return match started {
                    Some(t) => HeadRead::Refused(ErrorKind::RequestTimeout.into(), Partial::default(), t),
                    None => HeadRead::Closed,
                };
            }
        }
    }
}
