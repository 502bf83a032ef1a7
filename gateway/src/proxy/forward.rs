//! Check-body and forward phases: the request body is checked before any
//! upstream is contacted, then the request goes to a pooled (or new) upstream
//! connection and the response head comes back within `upstreamMs`.

use std::io::IoSlice;
use std::time::Duration;

use bytes::Buf as _;
use http1::{Answering, BodyKind, ChunkSize, Forward, Framing, ParsedResponse, RequestHead, ResponseHead};

use tokio::time::Instant;

use crate::body::BodyError;
use crate::client::side::Client;
use plan::{PathMatch, PathReplace, replace_prefix};

use crate::error::kind::{ErrorKind, Failure};
use crate::generation::Generation;
use crate::proxy::route::Routed;
use crate::session::{Conn, Session};
use crate::stream::Stream;
use crate::timer::Deadline;
use crate::upstream::{Target, UpstreamConn};

/// Check-body phase: a declared length over `maxRequestBodyBytes` is refused
/// (413), `100-continue` is answered, and a chunked body's first chunk line is
/// validated, all before any upstream sees the request.
pub async fn check_body<C: Client>(s: &mut Session<'_, C>, head: &RequestHead) -> Result<(), Failure> {
    let limits = s.generation.router.plan().limits;
    if let (BodyKind::Length(n), Some(max)) = (head.body, limits.max_request_body_bytes)
        && n > max
    {
        return Err(ErrorKind::BodyTooLarge.into());
    }
    let write_timeout = s.write_timeout();
    s.conn.client.check_body(head, write_timeout).await
}

/// Encodes the forwarded request head into the connection's `reqbuf`: the
/// upstream's base path, the normalized (or rewritten) path and the query,
/// with the route's request filter and `rewrite.host` applied.
pub fn encode_head<C: Client>(
    conn: &mut Conn<C>,
    head: &RequestHead,
    target: &Target,
    routed: &Routed<'_>,
    generation: &Generation,
) {
    let route = &generation.router.plan().routes[routed.route as usize];
    let path: &str = match &route.rewrite.path {
        None => &routed.path,
        Some(replace) => {
            conn.scratch.clear();
            match (replace, &route.path) {
                (PathReplace::Prefix(with), PathMatch::Prefix(prefix)) => {
                    replace_prefix(&routed.path, prefix, with, &mut conn.scratch);
                }
                (PathReplace::Full(with) | PathReplace::Prefix(with), _) => conn.scratch.push_str(with),
            }
            &conn.scratch
        }
    };
    let host = route.rewrite.host.as_deref().map_or(&head.host[..], str::as_bytes);
    let query = head.target.query();
    conn.reqbuf.clear();
    http1::encode_request(
        &mut conn.reqbuf,
        &Forward {
            method: &head.method,
            target: [
                target.base_path.as_bytes(),
                path.as_bytes(),
                if query.is_some() { b"?" } else { b"" },
                query.unwrap_or("").as_bytes(),
            ],
            headers: &head.headers,
            host,
            forwarded_host: &head.host,
            client_ip: conn.client_ip.as_bytes(),
            proto: conn.client.scheme().as_bytes(),
            body: head.body,
            filter: &generation.route_filters[routed.route as usize].request,
            websocket: head.websocket,
        },
    );
}

/// A request sent upstream and the head of its response.
#[derive(Debug)]
pub struct Sent {
    pub up: UpstreamConn,
    pub head: ResponseHead,
    /// The request body was sent to its end (false when the upstream answered
    /// before reading all of it; the connection then cannot be reused).
    pub request_complete: bool,
    /// Request sent → response head received.
    pub waited: Duration,
}

/// Why sending the request body stopped.
enum PumpError {
    Client(BodyError),
    /// Writing upstream failed; `sent` says whether any byte had left.
    Upstream {
        sent: bool,
    },
    UpstreamTimeout,
}

/// How waiting for the response head ended, short of a head.
enum WaitError {
    /// A reused connection closed without a byte of answer to an idempotent,
    /// bodiless request: safe to send again on a fresh connection.
    RetryUnanswered,
    Failed(Failure),
}

/// Forward phase: the request (head from `reqbuf`, body from the client) to
/// `target`, then the response head, parsed and re-encoded into `wbuf`.
///
/// A pooled connection the upstream closed while idle is replaced once: when
/// writing fails before any byte of the request left, or, for an idempotent
/// request without a body, when it closes without a byte of answer. While
/// waiting for the head, a client that goes away abandons the exchange (499).
pub async fn send<C: Client>(s: &mut Session<'_, C>, target: &Target, head: &RequestHead) -> Result<Sent, Failure> {
    let connect_ms = s.timeouts.connect;
    let upstream_ms = s.timeouts.upstream;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut up = match s.conn.worker.pool.checkout(target) {
            Some(c) => c,
            None => s.conn.worker.pool.acquire(target, connect_ms).await?,
        };
        up.requests += 1;
        let may_retry = up.reused && attempt == 1;
        let mut request_complete = true;
        if !head.body.has_body() {
            let mut bufs = [IoSlice::new(&s.conn.reqbuf)];
            let written = up.stream.write_all(&mut bufs);
            match s.conn.upstream_timer.within_for(upstream_ms, written).await {
                Ok(Ok(())) => {}
                // The upstream never saw a whole request: send it again.
                Ok(Err(_)) if may_retry => continue,
                Ok(Err(_)) => return Err(ErrorKind::UpstreamReset.into()),
                Err(_) => return Err(ErrorKind::UpstreamTimeout.into()),
            }
        } else {
            let UpstreamConn { stream, rbuf, .. } = &mut up;
            let stream = &*stream;
            let framing = Framing::from(head.body);
            // The upstream may answer (or close) before it has read the whole
            // body; its response then wins and the rest is not sent.
            tokio::select! {
                biased;
                pumped = pump_body(stream, &s.conn.reqbuf, &mut s.conn.client, &mut s.conn.upstream_timer, framing, upstream_ms) => match pumped {
                    Ok(()) => {}
                    Err(PumpError::Client(e)) => return Err(e.into()),
                    Err(PumpError::UpstreamTimeout) => return Err(ErrorKind::UpstreamTimeout.into()),
                    // Nothing of the request left and nothing of the body was
                    // consumed: the whole request can go to a fresh connection.
                    Err(PumpError::Upstream { sent: false }) if may_retry => continue,
                    // A response may already be on its way: read it below.
                    Err(PumpError::Upstream { .. }) => request_complete = false,
                },
                _ = stream.read_buf(rbuf) => request_complete = false,
            }
        }
        let sent_at = Instant::now();
        let retry_unanswered = may_retry && !head.body.has_body() && head.method.is_idempotent();
        let date = s.conn.worker.date();
        let answering = Answering {
            method: &head.method,
            client_version: s.conn.client.response_version(head.version),
            keep_alive: request_complete && s.may_keep_alive(),
            filter: s.response_filter,
            websocket: head.websocket,
            date: &date,
        };
        // upstreamMs counts from the moment the whole request left.
        match wait_head(s.conn, &mut up, &answering, sent_at + upstream_ms, retry_unanswered).await {
            Ok(response) => {
                return Ok(Sent {
                    up,
                    head: response,
                    request_complete,
                    waited: sent_at.elapsed(),
                });
            }
            Err(WaitError::RetryUnanswered) => continue,
            Err(WaitError::Failed(f)) => return Err(f),
        }
    }
}

/// Reads the response head within `upstream_ms`, skipping 1xx heads, and
/// encodes the client's head into `conn.wbuf`. A client that closes its
/// connection meanwhile ends the wait (`client_closed`).
async fn wait_head<C: Client>(
    conn: &mut Conn<C>,
    up: &mut UpstreamConn,
    answering: &Answering<'_>,
    deadline: Instant,
    retry_unanswered: bool,
) -> Result<ResponseHead, WaitError> {
    // Only a client whose request is complete can be watched: anything it
    // sends now belongs to its next request.
    let watch_client = conn.client.body_done();
    loop {
        conn.wbuf.clear();
        match http1::parse_response(&up.rbuf, answering, &mut conn.wbuf) {
            ParsedResponse::Complete(head) => {
                up.rbuf.advance(head.len);
                return Ok(head);
            }
            ParsedResponse::Interim(len) => {
                up.rbuf.advance(len);
                continue;
            }
            ParsedResponse::Invalid => return Err(WaitError::Failed(ErrorKind::BadResponse.into())),
            ParsedResponse::Incomplete => {}
        }
        let read = up.stream.read_buf(&mut up.rbuf);
        let at = || deadline;
        tokio::select! {
            biased;
            read = conn.upstream_timer.within(at, read) => match read {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) if retry_unanswered && up.rbuf.is_empty() => return Err(WaitError::RetryUnanswered),
                Ok(_) => return Err(WaitError::Failed(ErrorKind::UpstreamReset.into())),
                Err(_) => return Err(WaitError::Failed(ErrorKind::UpstreamTimeout.into())),
            },
            () = conn.client.closed(), if watch_client => {
                return Err(WaitError::Failed(ErrorKind::ClientClosed.into()));
            }
        }
    }
}

/// Writes the request head and streams the request body after it. Body bytes
/// already buffered leave in the same write as the head; `readMs` bounds each
/// gap in the client's body (checked by the reader), `upstreamMs` each write
/// the upstream does not take. Body data is consumed only once written, so a
/// write that sends nothing leaves the body whole for a retry.
async fn pump_body<C: Client>(
    stream: &Stream,
    head: &[u8],
    reader: &mut C,
    timer: &mut Deadline,
    framing: Framing,
    upstream_ms: Duration,
) -> Result<(), PumpError> {
    let mut head = head;
    let mut sent = false;
    loop {
        let n = if head.is_empty() {
            reader.fill().await
        } else {
            reader.buffered()
        }
        .map_err(PumpError::Client)?;
        // The body ends with this write when the reader is done after `n`.
        let end = reader.ends_after(n);
        let size = ChunkSize::new(n);
        let mut bufs = framing.frame(head, &size, &reader.body()[..n], end);
        match timer.within_for(upstream_ms, stream.write_all(&mut bufs)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(PumpError::Upstream {
                    sent: sent || e.written > 0,
                });
            }
            Err(_) => return Err(PumpError::UpstreamTimeout),
        }
        sent = true;
        head = &[];
        reader.consume_through(n, end);
        if end {
            return Ok(());
        }
    }
}
