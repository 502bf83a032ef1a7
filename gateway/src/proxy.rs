//! The phases of one proxied exchange, in order: route → check body → pick
//! upstream → forward → stream back. Each phase's doc says when it runs.

use std::borrow::Cow;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Uri, Version};
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use plan::{PathError, normalize_path};

use crate::conn::{Conn, respond_error};
use crate::error::ErrorKind;
use crate::exchange::Exchange;
use crate::http1::body::{BodyError, ProxyBody, StreamBody};
use crate::http1::head::{BodyKind, RequestHead};
use crate::http1::io::write_all;
use crate::http1::write::{Framing, chunk_header, framing, response_head};
use crate::upstream::{Sender, connect};
use crate::worker::Generation;

/// Runs one exchange whose head has been read; returns whether the client
/// connection can carry another request.
pub async fn handle(conn: &mut Conn, generation: &Generation, mut head: RequestHead, ex: &mut Exchange) -> bool {
    ex.method = Some(head.method.clone());
    ex.target = Some(head.target.clone());
    ex.host = head.headers.get(header::HOST).cloned();
    ex.user_agent = head.headers.get(header::USER_AGENT).cloned();
    ex.request_id = head.headers.get("x-request-id").cloned();
    let head_only = head.method == Method::HEAD;
    let keep_alive = head.keep_alive;

    // Route: normalize the path, look up host + path.
    let target = head.target.clone();
    let routed = route(generation, &head, &target);
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
        match run_policies(conn, generation, route, &mut head, &path, ex) {
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

    // Pick the upstream and build the forwarded request.
    let upstream = generation.router.pick(cluster);
    let id = generation.targets.id(cluster, upstream);
    ex.upstream = Some(id);
    let target_info = generation.targets.get(id);
    let uri = match forward_uri(&target_info.base_path, &path, &head, &target) {
        Ok(u) => u,
        Err(()) => {
            conn.reader = Some(reader);
            respond_error(conn, ex, ErrorKind::BadRequest, head_only, false).await;
            return false;
        }
    };
    let host = match head.headers.get(header::HOST) {
        Some(h) if !head.target.starts_with(b"http") => Some(h.clone()),
        _ => head.host().and_then(|h| HeaderValue::from_str(h).ok()),
    };
    let mut headers = std::mem::take(&mut head.headers);
    forward_headers(&mut headers, &conn.client_ip, host);
    let has_body = head.body != BodyKind::None;
    let body = if has_body {
        conn.handoff.lend();
        let length = match head.body {
            BodyKind::Length(n) => Some(n),
            _ => None,
        };
        ProxyBody::Stream(StreamBody::new(reader, conn.handoff.clone(), length))
    } else {
        conn.reader = Some(reader);
        ProxyBody::Empty
    };
    let mut req = Request::new(body);
    *req.method_mut() = head.method.clone();
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;

    // Forward, then stream the response back.
    let sent = send(conn, generation, id, req, &timeouts, has_body).await;
    let (response, sender) = match sent {
        Ok(ok) => ok,
        Err(kind) => {
            let kind = take_back(conn, has_body)
                .and_then(|e| e.map(body_error_kind))
                .unwrap_or(kind);
            if kind.is_upstream() {
                generation.stats.upstream_failure(cluster, kind);
            }
            let reusable = conn
                .reader
                .as_ref()
                .is_some_and(|r| r.decoder.is_done() && r.error.is_none());
            respond_error(conn, ex, kind, head_only, keep_alive && reusable).await;
            return keep_alive && reusable && !kind.closes_connection();
        }
    };
    let body_returned = !has_body || conn.handoff.is_returned();
    let keep_alive = keep_alive && body_returned && !conn.worker.draining();
    let outcome = stream_response(
        conn,
        ex,
        response,
        &head.method,
        head.version,
        keep_alive,
        timeouts.write_ms,
    )
    .await;
    if let Err(kind) = outcome.upstream_error
        && ex.status == 0
    {
        generation.stats.upstream_failure(cluster, kind);
        respond_error(conn, ex, kind, head_only, false).await;
        let _ = take_back(conn, has_body);
        return false;
    } else if let Err(kind) = outcome.upstream_error {
        generation.stats.upstream_failure(cluster, kind);
        ex.error = Some(kind);
    }
    if outcome.complete {
        conn.worker.pool.checkin(generation.targets.get(id), sender);
    }
    let body_ok = match take_back(conn, has_body) {
        Some(None) => true,
        Some(Some(e)) => {
            // The request body failed after the response had started (e.g. a
            // chunked body grew past maxRequestBodyBytes): the stream is cut.
            ex.error.get_or_insert(body_error_kind(e));
            false
        }
        None => false,
    };
    outcome.keep_alive && outcome.complete && body_ok
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

/// Takes the reader back after an exchange with a body. `None`: the body is
/// still held (the connection cannot be reused); `Some(err)`: the body's error.
fn take_back(conn: &mut Conn, has_body: bool) -> Option<Option<BodyError>> {
    if !has_body {
        return conn.reader.as_ref().map(|r| r.error);
    }
    let reader = conn.handoff.take()?;
    let error = reader
        .error
        .or((!reader.decoder.is_done()).then_some(BodyError::Closed));
    conn.reader = Some(reader);
    Some(error)
}

/// The forwarded request-target: base path + normalized path + query. Borrows
/// the received bytes when nothing changed.
fn forward_uri(base: &str, path: &str, head: &RequestHead, target: &Bytes) -> Result<Uri, ()> {
    let received = head.path_and_query();
    let query = head.query();
    let unchanged = base.is_empty() && received.split_once('?').map_or(received, |(p, _)| p) == path;
    if unchanged {
        let bytes = target.slice_ref(received.as_bytes());
        return Uri::from_maybe_shared(bytes).map_err(|_| ());
    }
    let mut s = String::with_capacity(base.len() + path.len() + query.map_or(0, |q| q.len() + 1));
    s.push_str(base);
    s.push_str(path);
    if let Some(q) = query {
        s.push('?');
        s.push_str(q);
    }
    Uri::from_maybe_shared(Bytes::from(s)).map_err(|_| ())
}

/// Removes hop-by-hop headers and sets the `X-Forwarded-*` family.
fn forward_headers(headers: &mut HeaderMap, client_ip: &HeaderValue, host: Option<HeaderValue>) {
    let listed: Vec<header::HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter_map(|t| header::HeaderName::from_bytes(t.trim_ascii()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    ] {
        headers.remove(name);
    }
    let xff = match headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .fold(None::<String>, |acc, v| {
            Some(acc.map_or_else(|| v.to_owned(), |a| format!("{a}, {v}")))
        }) {
        Some(prior) => {
            let joined = format!("{prior}, {}", client_ip.to_str().unwrap_or(""));
            HeaderValue::from_str(&joined).unwrap_or_else(|_| client_ip.clone())
        }
        None => client_ip.clone(),
    };
    headers.insert("x-forwarded-for", xff);
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    if let Some(host) = host {
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, host.clone());
        }
        headers.insert("x-forwarded-host", host);
    }
}

/// Forward phase: a pooled (or new) connection, the request, the response head
/// within `upstreamMs` of the request body's end. A pooled connection found dead
/// before anything was written is replaced once without failing the request.
async fn send(
    conn: &Conn,
    generation: &Generation,
    id: usize,
    mut req: Request<ProxyBody>,
    timeouts: &plan::Timeouts,
    has_body: bool,
) -> Result<(hyper::Response<Incoming>, Sender), ErrorKind> {
    let target = generation.targets.get(id);
    let connect_ms = Duration::from_millis(timeouts.connect_ms);
    let upstream_ms = Duration::from_millis(timeouts.upstream_ms);
    let handoff = conn.handoff.clone();
    let deadline = async move {
        if has_body {
            handoff.returned().await;
        }
        tokio::time::sleep(upstream_ms).await;
    };
    tokio::pin!(deadline);
    for attempt in 0..2 {
        let mut sender = match conn.worker.pool.checkout(target) {
            Some(s) => s,
            None => connect(target, connect_ms).await?,
        };
        let result = tokio::select! {
            biased;
            r = sender.try_send_request(req) => r,
            () = &mut deadline => return Err(ErrorKind::UpstreamTimeout),
        };
        match result {
            Ok(response) => return Ok((response, sender)),
            Err(mut e) => match e.take_message() {
                Some(back) if attempt == 0 => req = back,
                _ => return Err(upstream_error_kind(e.error())),
            },
        }
    }
    Err(ErrorKind::UpstreamReset)
}

fn upstream_error_kind(e: &hyper::Error) -> ErrorKind {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        ErrorKind::BadResponse
    } else {
        ErrorKind::UpstreamReset
    }
}

struct StreamOutcome {
    /// The upstream response body was read to its end and fully written.
    complete: bool,
    keep_alive: bool,
    upstream_error: Result<(), ErrorKind>,
}

/// Stream-back phase: writes the response head and body to the client as frames
/// arrive. The head is held back for one poll so that a small response leaves
/// in a single write.
async fn stream_response(
    conn: &mut Conn,
    ex: &mut Exchange,
    response: hyper::Response<Incoming>,
    method: &Method,
    version: Version,
    keep_alive: bool,
    write_ms: u64,
) -> StreamOutcome {
    let (parts, mut body) = response.into_parts();
    ex.upstream_status = Some(parts.status.as_u16());
    let has_length = parts.headers.contains_key(header::CONTENT_LENGTH);
    let framing = framing(method, parts.status, has_length, version);
    let keep_alive = keep_alive && framing != Framing::Close;
    conn.wbuf.clear();
    response_head(
        &mut conn.wbuf,
        parts.status,
        &parts.headers,
        framing,
        keep_alive,
        version,
    );
    let write_ms = Duration::from_millis(write_ms);
    let mut head_pending = true;
    let mut outcome = StreamOutcome {
        complete: false,
        keep_alive,
        upstream_error: Ok(()),
    };
    loop {
        let next = if head_pending {
            std::future::poll_fn(|cx| match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(frame) => Poll::Ready(Some(frame)),
                Poll::Pending => Poll::Ready(None),
            })
            .await
        } else {
            Some(body.frame().await)
        };
        let head: &[u8] = if head_pending { &conn.wbuf } else { &[] };
        let (data, end) = match next {
            None => (Bytes::new(), false),
            Some(None) => (Bytes::new(), true),
            Some(Some(Err(_))) => {
                outcome.upstream_error = Err(ErrorKind::UpstreamReset);
                if head_pending {
                    return outcome;
                }
                outcome.keep_alive = false;
                return outcome;
            }
            Some(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => {
                    let end = body.is_end_stream();
                    (data, end)
                }
                Err(_) => continue,
            },
        };
        let data: &[u8] = if framing == Framing::NoBody { &[] } else { &data };
        let chunked = framing == Framing::Chunked && !data.is_empty();
        let (size, size_len) = chunk_header(data.len());
        let terminal: &[u8] = if end && framing == Framing::Chunked {
            b"0\r\n\r\n"
        } else {
            b""
        };
        let mut bufs = [
            IoSlice::new(head),
            IoSlice::new(if chunked { &size[..size_len] } else { &[] }),
            IoSlice::new(data),
            IoSlice::new(if chunked { b"\r\n" } else { &[] }),
            IoSlice::new(terminal),
        ];
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if head_pending {
            ex.status = parts.status.as_u16();
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

    #[test]
    fn forwarded_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("api.example.com"));
        h.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("te", HeaderValue::from_static("trailers"));
        forward_headers(
            &mut h,
            &HeaderValue::from_static("127.0.0.1"),
            Some(HeaderValue::from_static("api.example.com")),
        );
        assert_eq!(
            h.get("x-forwarded-for").map(|v| v.as_bytes()),
            Some(&b"10.0.0.1, 127.0.0.1"[..])
        );
        assert_eq!(h.get("x-forwarded-proto").map(|v| v.as_bytes()), Some(&b"http"[..]));
        assert_eq!(
            h.get("x-forwarded-host").map(|v| v.as_bytes()),
            Some(&b"api.example.com"[..])
        );
        assert_eq!(h.get(header::HOST).map(|v| v.as_bytes()), Some(&b"api.example.com"[..]));
        for gone in ["connection", "x-secret", "keep-alive", "te"] {
            assert!(!h.contains_key(gone), "{gone} was forwarded");
        }
    }
}
