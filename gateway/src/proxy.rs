//! The phases of one proxied exchange, in order: route → check body → pick
//! upstream → forward → stream back. Each phase's doc says when it runs.

use std::borrow::Cow;
use std::io::IoSlice;
use std::task::Poll;
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use http::Method;
use http::header;
use plan::{PathError, normalize_path};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::conn::{Conn, respond_error};
use crate::error::ErrorKind;
use crate::exchange::Exchange;
use crate::http1::body::{BodyError, ClientReader, Decoder};
use crate::http1::head::{BodyKind, RequestHead};
use crate::http1::io::{read_buf, try_read_buf, write_all};
use crate::http1::upstream::{Answering, ParsedResponse, ResponseHead, UpstreamBody, request_head, response_head};
use crate::http1::write::{Framing, chunk_header};
use crate::upstream::{Target, UpstreamConn, connect};
use crate::worker::Generation;

/// Runs one exchange whose head has been read; returns whether the client
/// connection can carry another request.
pub async fn handle(conn: &mut Conn, generation: &Generation, head: &mut RequestHead, ex: &mut Exchange) -> bool {
    ex.method = Some(head.method.clone());
    ex.target = Some(head.target.clone());
    ex.host = head.headers.get(header::HOST).cloned();
    ex.user_agent = head.headers.get(header::USER_AGENT).cloned();
    ex.request_id = head.headers.get("x-request-id").cloned();
    let head_only = head.method == Method::HEAD;
    let keep_alive = head.keep_alive;

    // Route: normalize the path, look up host + path.
    let target = head.target.clone();
    let routed = route(generation, head, &target);
    let (m, path) = match routed {
        Ok(r) => r,
        Err(kind) => {
            let body_left = head.body != BodyKind::None;
            respond_error(conn, ex, kind, head_only, keep_alive && !body_left).await;
            return keep_alive && !body_left && !kind.closes_connection();
        }
    };
    ex.route = Some(m.route);
    ex.cluster = Some(m.cluster);
    let plan = generation.router.plan();
    let route = &plan.routes[m.route as usize];
    let timeouts = route.timeouts;

    // Policy phase: the route's policies in order; the first decision other
    // than continue wins.
    let mut cluster = m.cluster;
    if !route.policies.is_empty() {
        match run_policies(conn, generation, route, head, &path, ex) {
            PolicyOutcome::Continue => {}
            PolicyOutcome::Route(c) => {
                cluster = c;
                ex.cluster = Some(c);
            }
            PolicyOutcome::Deny => {
                let reusable = head.body == BodyKind::None;
                respond_error(conn, ex, ErrorKind::PolicyError, head_only, keep_alive && reusable).await;
                return keep_alive && reusable;
            }
            PolicyOutcome::Respond(prepared) => {
                let keep_alive = keep_alive && head.body == BodyKind::None && !conn.worker.draining();
                return write_prepared(conn, ex, prepared, head_only, keep_alive, timeouts.write_ms).await
                    && keep_alive;
            }
        }
    }

    // Check the body before anything reaches an upstream.
    if let (BodyKind::Length(n), Some(max)) = (head.body, plan.limits.max_request_body_bytes)
        && n > max
    {
        respond_error(conn, ex, ErrorKind::BodyTooLarge, head_only, false).await;
        return false;
    }
    let Some(mut reader) = conn.reader.take() else {
        return false;
    };
    reader.decoder = crate::http1::body::Decoder::new(head.body);
    reader.received = 0;
    reader.error = None;
    reader.max_body = plan.limits.max_request_body_bytes;
    reader.read_timeout = Duration::from_millis(timeouts.read_ms);
    if head.expect_continue && head.body != BodyKind::None {
        let mut bufs = [IoSlice::new(b"HTTP/1.1 100 Continue\r\n\r\n")];
        if write_all(&conn.stream, &mut bufs).await.is_err() {
            ex.error = Some(ErrorKind::ClientClosed);
            return false;
        }
    }
    if head.body == BodyKind::Chunked
        && let Err(e) = prefetch(&mut reader).await
    {
        conn.reader = Some(reader);
        respond_error(conn, ex, body_error_kind(e), head_only, false).await;
        return false;
    }

    // Pick the upstream and encode the forwarded request head.
    let upstream = generation.router.pick(cluster);
    let id = generation.targets.id(cluster, upstream);
    ex.upstream = Some(id);
    let target_info = generation.targets.get(id);
    // Host as received for origin-form; the authority of an absolute-form target.
    let host = match head.headers.get(header::HOST) {
        Some(h) if !head.target.starts_with(b"http") => Some(h.as_bytes()),
        _ => head.host().map(str::as_bytes),
    };
    conn.reqbuf.clear();
    request_head(
        &mut conn.reqbuf,
        &head.method,
        &forward_target(&target_info.base_path, &path, head),
        &head.headers,
        conn.client_ip.as_bytes(),
        host,
        head.body,
    );

    // Forward, then stream the response back.
    let answering = Answering {
        method: &head.method,
        client_version: head.version,
        keep_alive: keep_alive && !conn.worker.draining(),
    };
    let sent = send(conn, target_info, &mut reader, head.body, &answering, &timeouts).await;
    let client_body_done = reader.decoder.is_done() && reader.error.is_none();
    conn.reader = Some(reader);
    let Sent {
        mut up,
        head: response,
        request_complete,
    } = match sent {
        Ok(sent) => sent,
        Err(kind) => {
            if kind.is_upstream() {
                generation.stats.upstream_failure(cluster, kind);
            }
            respond_error(conn, ex, kind, head_only, keep_alive && client_body_done).await;
            return keep_alive && client_body_done && !kind.closes_connection();
        }
    };
    let outcome = stream_response(conn, ex, &mut up, &response, timeouts.write_ms).await;
    if let Err(kind) = outcome.upstream_error {
        generation.stats.upstream_failure(cluster, kind);
        if ex.status == 0 {
            respond_error(conn, ex, kind, head_only, false).await;
            return false;
        }
        ex.error = Some(kind);
    }
    if outcome.complete && request_complete && response.reusable && up.rbuf.is_empty() {
        conn.worker.pool.checkin(target_info, up);
    }
    outcome.keep_alive && outcome.complete && client_body_done
}

enum PolicyOutcome {
    Continue,
    Route(u32),
    Respond(crate::policy::Prepared),
    Deny,
}

/// Policy phase (after routing, before anything reaches an upstream): runs the
/// route's policies on this worker's warm instances. A failed policy marks the
/// exchange `policy_error` and, with `onError: deny`, ends it with 503.
fn run_policies(
    conn: &Conn,
    generation: &Generation,
    route: &plan::Route,
    head: &mut RequestHead,
    path: &str,
    ex: &mut Exchange,
) -> PolicyOutcome {
    use crate::policy::Decision;
    let Some(policies) = &generation.policies else {
        return PolicyOutcome::Continue;
    };
    let mut view = conn.worker.policy_view.borrow_mut();
    view.method.clear();
    view.method.extend_from_slice(head.method.as_str().as_bytes());
    view.authority.clear();
    view.authority.extend_from_slice(head.host().unwrap_or("").as_bytes());
    view.path.clear();
    view.path.extend_from_slice(path.as_bytes());
    match (head.query(), view.query.as_mut()) {
        (Some(q), Some(buf)) => {
            buf.clear();
            buf.extend_from_slice(q.as_bytes());
        }
        (Some(q), None) => view.query = Some(q.as_bytes().to_vec()),
        (None, _) => view.query = None,
    }
    view.client_ip.clear();
    view.client_ip.extend_from_slice(conn.client_ip.as_bytes());
    view.headers = std::mem::take(&mut head.headers);
    let mut warm = conn.worker.warm.borrow_mut();
    let mut outcome = PolicyOutcome::Continue;
    for &p in &route.policies {
        match warm.call(policies, p as usize, &mut view) {
            Ok(Decision::Continue) => {}
            Ok(Decision::Route(c)) => {
                outcome = PolicyOutcome::Route(c);
                break;
            }
            Ok(Decision::Respond(r)) => {
                outcome = PolicyOutcome::Respond(r);
                break;
            }
            Err(_) => {
                ex.error = Some(ErrorKind::PolicyError);
                if policies.on_error(p as usize) == plan::OnError::Deny {
                    outcome = PolicyOutcome::Deny;
                    break;
                }
            }
        }
    }
    head.headers = std::mem::take(&mut view.headers);
    outcome
}

/// Writes a response a policy prepared; false if the client is gone.
async fn write_prepared(
    conn: &mut Conn,
    ex: &mut Exchange,
    prepared: crate::policy::Prepared,
    head_only: bool,
    keep_alive: bool,
    write_ms: u64,
) -> bool {
    let status = http::StatusCode::from_u16(prepared.status).unwrap_or(http::StatusCode::FORBIDDEN);
    conn.wbuf.clear();
    crate::http1::write::prepared_head(
        &mut conn.wbuf,
        status,
        &prepared.headers,
        prepared.body.len(),
        keep_alive,
    );
    ex.status = status.as_u16();
    let body: &[u8] = if head_only { &[] } else { &prepared.body };
    let mut bufs = [IoSlice::new(&conn.wbuf), IoSlice::new(body)];
    let total = conn.wbuf.len() + body.len();
    let ok = matches!(
        tokio::time::timeout(Duration::from_millis(write_ms), write_all(&conn.stream, &mut bufs)).await,
        Ok(Ok(()))
    );
    if ok {
        ex.bytes_sent += total as u64;
    }
    conn.wbuf.clear();
    ok
}

/// Route phase (after the head is read): normalizes the path and finds the route.
fn route<'t>(
    generation: &Generation,
    head: &RequestHead,
    target: &'t Bytes,
) -> Result<(plan::Match, Cow<'t, str>), ErrorKind> {
    let host = head.host().ok_or(ErrorKind::BadRequest)?;
    let raw = std::str::from_utf8(target).map_err(|_| ErrorKind::BadRequest)?;
    let path = path_of(raw);
    let path = normalize_path(path).map_err(|e| match e {
        PathError::EncodedSeparator => ErrorKind::BadPath,
        PathError::NotAbsolute => ErrorKind::BadRequest,
    })?;
    let m = generation.router.lookup(host, &path).ok_or(ErrorKind::NoRoute)?;
    Ok((m, path))
}

/// The path of a request-target (origin- or absolute-form), without query.
fn path_of(target: &str) -> &str {
    let t = match target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        Some(rest) => match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => &rest[i..],
            _ => "/",
        },
        None => target,
    };
    t.split_once('?').map_or(t, |(p, _)| p)
}

/// Reads until the first chunk header of a chunked body has been validated, so
/// a malformed body is refused before any upstream sees the request.
async fn prefetch(reader: &mut crate::http1::body::ClientReader) -> Result<(), BodyError> {
    let timeout = reader.read_timeout;
    let first = tokio::time::timeout(timeout, std::future::poll_fn(|cx| reader.poll_data(cx))).await;
    match first {
        Err(_) => Err(BodyError::Timeout),
        Ok(Err(e)) => Err(e),
        Ok(Ok(data)) => {
            // Counted against maxRequestBodyBytes now; delivered later as is.
            reader.pending = data.filter(|d| !d.is_empty());
            Ok(())
        }
    }
}

fn body_error_kind(e: BodyError) -> ErrorKind {
    match e {
        BodyError::Malformed(_) => ErrorKind::BadRequest,
        BodyError::Timeout => ErrorKind::RequestTimeout,
        BodyError::TooLarge => ErrorKind::BodyTooLarge,
        BodyError::Closed => ErrorKind::ClientClosed,
    }
}

/// The forwarded request-target, in pieces: base path + normalized path +
/// query, or the received path and query when nothing changed.
fn forward_target<'a>(base: &'a str, path: &'a str, head: &'a RequestHead) -> [&'a [u8]; 4] {
    let received = head.path_and_query();
    let unchanged = base.is_empty() && received.split_once('?').map_or(received, |(p, _)| p) == path;
    if unchanged {
        return [received.as_bytes(), b"", b"", b""];
    }
    match head.query() {
        Some(q) => [base.as_bytes(), path.as_bytes(), b"?", q.as_bytes()],
        None => [base.as_bytes(), path.as_bytes(), b"", b""],
    }
}

/// A request sent upstream and the head of its response.
struct Sent {
    up: UpstreamConn,
    head: ResponseHead,
    /// The request body was sent to its end (false when the upstream answered
    /// before reading all of it; the connection then cannot be reused).
    request_complete: bool,
}

/// Why sending the request body stopped.
enum PumpError {
    Client(BodyError),
    Upstream,
    UpstreamTimeout,
}

/// Forward phase: a pooled (or new) connection, the request, the response head
/// within `upstreamMs` of the request's end. A pooled connection that turns out
/// dead (the upstream closed it while idle) is replaced once when the request
/// has no body: when writing fails, or, for an idempotent method, when the
/// upstream closes without a byte of response.
async fn send(
    conn: &mut Conn,
    target: &Target,
    reader: &mut ClientReader,
    body: BodyKind,
    answering: &Answering<'_>,
    timeouts: &plan::Timeouts,
) -> Result<Sent, ErrorKind> {
    let connect_ms = Duration::from_millis(timeouts.connect_ms);
    let upstream_ms = Duration::from_millis(timeouts.upstream_ms);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut up = match conn.worker.pool.checkout(target) {
            Some(c) => c,
            None => connect(target, connect_ms).await?,
        };
        // Nothing of the request reached the upstream when the write fails; when
        // it closes without a byte of answer instead, an idempotent request
        // is safe to send again.
        let retry = up.reused && body == BodyKind::None && attempt == 1;
        let retry_unanswered = retry && answering.method.is_idempotent();
        let mut request_complete = true;
        if body == BodyKind::None {
            let mut bufs = [IoSlice::new(&conn.reqbuf)];
            match tokio::time::timeout(upstream_ms, write_all(&up.stream, &mut bufs)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) if retry => continue,
                Ok(Err(_)) => return Err(ErrorKind::UpstreamReset),
                Err(_) => return Err(ErrorKind::UpstreamTimeout),
            }
        } else {
            let UpstreamConn { stream, rbuf, .. } = &mut up;
            let stream = &*stream;
            let chunked = body == BodyKind::Chunked;
            // The upstream may answer (or close) before it has read the whole
            // body; its response then wins and the rest is not sent.
            tokio::select! {
                biased;
                pumped = pump_body(stream, &conn.reqbuf, reader, chunked, upstream_ms) => match pumped {
                    Ok(()) => {}
                    Err(PumpError::Client(e)) => return Err(body_error_kind(e)),
                    Err(PumpError::UpstreamTimeout) => return Err(ErrorKind::UpstreamTimeout),
                    // A response may already be on its way: read it below.
                    Err(PumpError::Upstream) => request_complete = false,
                },
                _ = read_buf(stream, rbuf) => request_complete = false,
            }
        }
        let deadline = Instant::now() + upstream_ms;
        loop {
            conn.wbuf.clear();
            match response_head(&up.rbuf, answering, &mut conn.wbuf) {
                ParsedResponse::Complete(head) => {
                    up.rbuf.advance(head.len);
                    return Ok(Sent {
                        up,
                        head,
                        request_complete,
                    });
                }
                ParsedResponse::Interim(len) => {
                    up.rbuf.advance(len);
                    continue;
                }
                ParsedResponse::Invalid => return Err(ErrorKind::BadResponse),
                ParsedResponse::Incomplete => {}
            }
            match tokio::time::timeout_at(deadline, read_buf(&up.stream, &mut up.rbuf)).await {
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) if retry_unanswered && up.rbuf.is_empty() => break,
                Ok(_) => return Err(ErrorKind::UpstreamReset),
                Err(_) => return Err(ErrorKind::UpstreamTimeout),
            }
        }
    }
}

/// Writes the request head and streams the request body after it, each piece
/// as it is decoded. `readMs` bounds each gap in the client's body (checked by
/// the reader), `upstreamMs` each write the upstream does not take.
async fn pump_body(
    stream: &TcpStream,
    head: &[u8],
    reader: &mut ClientReader,
    chunked: bool,
    upstream_ms: Duration,
) -> Result<(), PumpError> {
    let mut head = head;
    let read_ms = reader.read_timeout;
    loop {
        let next = if head.is_empty() {
            match tokio::time::timeout(read_ms, std::future::poll_fn(|cx| reader.poll_data(cx))).await {
                Ok(next) => next,
                Err(_) => {
                    reader.error = Some(BodyError::Timeout);
                    Err(BodyError::Timeout)
                }
            }
        } else {
            // Body bytes that came with the head leave in the same write.
            match std::future::poll_fn(|cx| Poll::Ready(reader.poll_data(cx))).await {
                Poll::Ready(next) => next,
                Poll::Pending => Ok(Some(Bytes::new())),
            }
        };
        let (data, end) = match next.map_err(PumpError::Client)? {
            Some(data) => (data, false),
            None => (Bytes::new(), true),
        };
        let size = chunk_header(data.len());
        let mut bufs = write_slices(head, &size, &data, chunked, end);
        match tokio::time::timeout(upstream_ms, write_all(stream, &mut bufs)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(PumpError::Upstream),
            Err(_) => return Err(PumpError::UpstreamTimeout),
        }
        head = &[];
        if end {
            return Ok(());
        }
    }
}

/// The pieces of one vectored write: a head not yet sent (or empty), then
/// `data`, as a chunk when `chunked`, followed at `end` by the last chunk.
fn write_slices<'a>(
    head: &'a [u8],
    size: &'a ([u8; 18], usize),
    data: &'a [u8],
    chunked: bool,
    end: bool,
) -> [IoSlice<'a>; 5] {
    let framed = chunked && !data.is_empty();
    let terminal: &[u8] = if end && chunked { b"0\r\n\r\n" } else { b"" };
    [
        IoSlice::new(head),
        IoSlice::new(if framed { &size.0[..size.1] } else { &[] }),
        IoSlice::new(data),
        IoSlice::new(if framed { b"\r\n" } else { &[] }),
        IoSlice::new(terminal),
    ]
}

struct StreamOutcome {
    /// The upstream response body was read to its end and fully written.
    complete: bool,
    keep_alive: bool,
    upstream_error: Result<(), ErrorKind>,
}

/// What is left of the upstream's response body.
enum Remaining {
    Done,
    Length(u64),
    Chunked(Decoder),
    /// Until the upstream closes; `true` once it has.
    Close(bool),
}

/// Stream-back phase: writes the response head (already encoded in `conn.wbuf`)
/// and the body to the client as it arrives. The head is held back while more
/// of the body is already readable, so a small response leaves in one write.
async fn stream_response(
    conn: &mut Conn,
    ex: &mut Exchange,
    up: &mut UpstreamConn,
    head: &ResponseHead,
    write_ms: u64,
) -> StreamOutcome {
    ex.upstream_status = Some(head.status.as_u16());
    let write_ms = Duration::from_millis(write_ms);
    let framing = head.framing;
    let mut remaining = match head.body {
        UpstreamBody::None | UpstreamBody::Length(0) => Remaining::Done,
        UpstreamBody::Length(n) => Remaining::Length(n),
        UpstreamBody::Chunked => Remaining::Chunked(Decoder::new(BodyKind::Chunked)),
        UpstreamBody::Close => Remaining::Close(false),
    };
    let mut head_pending = true;
    let mut outcome = StreamOutcome {
        complete: false,
        keep_alive: head.keep_alive,
        upstream_error: Ok(()),
    };
    loop {
        // What the buffer holds of the body: `take` bytes from its front, or a
        // decoded chunk; and whether the body ends with it.
        let mut chunk = Bytes::new();
        let (take, end) = match &mut remaining {
            Remaining::Done => (0, true),
            Remaining::Length(left) => {
                let n = (*left).min(up.rbuf.len() as u64);
                *left -= n;
                (n as usize, *left == 0)
            }
            Remaining::Close(closed) => (up.rbuf.len(), *closed),
            Remaining::Chunked(decoder) => match decoder.decode(&mut up.rbuf) {
                Ok(Some(data)) => {
                    chunk = data;
                    (0, false)
                }
                Ok(None) => (0, decoder.is_done()),
                Err(_) => {
                    outcome.upstream_error = Err(ErrorKind::BadResponse);
                    outcome.keep_alive = false;
                    return outcome;
                }
            },
        };
        if take == 0 && chunk.is_empty() && !end {
            // Nothing to write yet: read more. While the head waits, only what
            // is readable right now is taken.
            let read = if head_pending {
                match try_read_buf(&up.stream, &mut up.rbuf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                    other => Some(other),
                }
            } else {
                Some(read_buf(&up.stream, &mut up.rbuf).await)
            };
            match read {
                Some(Ok(0)) | Some(Err(_)) => {
                    if let Remaining::Close(closed) = &mut remaining {
                        *closed = true;
                        continue;
                    }
                    // The upstream cut its body short.
                    outcome.upstream_error = Err(ErrorKind::UpstreamReset);
                    outcome.keep_alive = false;
                    return outcome;
                }
                Some(Ok(_)) => continue,
                None => {}
            }
        }
        let data: &[u8] = if chunk.is_empty() { &up.rbuf[..take] } else { &chunk };
        let headb: &[u8] = if head_pending { &conn.wbuf } else { &[] };
        let data: &[u8] = if framing == Framing::NoBody { &[] } else { data };
        let size = chunk_header(data.len());
        let mut bufs = write_slices(headb, &size, data, framing == Framing::Chunked, end);
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if head_pending {
            ex.status = head.status.as_u16();
        }
        if total > 0 {
            match tokio::time::timeout(write_ms, write_all(&conn.stream, &mut bufs)).await {
                Ok(Ok(())) => ex.bytes_sent += total as u64,
                Ok(Err(_)) => {
                    ex.error = Some(ErrorKind::ClientClosed);
                    outcome.keep_alive = false;
                    return outcome;
                }
                Err(_) => {
                    ex.error = Some(ErrorKind::WriteTimeout);
                    outcome.keep_alive = false;
                    return outcome;
                }
            }
        }
        up.rbuf.advance(take);
        head_pending = false;
        if end {
            outcome.complete = true;
            conn.wbuf.clear();
            return outcome;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_targets() {
        for (target, path) in [
            ("/a/b?x=1", "/a/b"),
            ("/", "/"),
            ("http://h/a?q", "/a"),
            ("http://h", "/"),
            ("http://h?q", "/"),
            ("*", "*"),
        ] {
            assert_eq!(path_of(target), path, "{target}");
        }
    }
}
