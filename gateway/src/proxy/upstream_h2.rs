//! The forward and stream-back phases over HTTP/2, for a cluster that says
//! `protocol: h2` (SPEC §14; what gRPC needs). The request head the gateway
//! encoded (route filters, `X-Forwarded-*`, rewrites applied) is read back
//! into HTTP/2 fields, so both protocols forward the same request; the
//! response's status and fields are rendered as an HTTP/1.1 head and checked
//! and re-encoded by the same `http1` code as an HTTP/1.1 upstream's. Its
//! DATA frames are the body; its trailers (gRPC's `grpc-status`) end the
//! response, and `grpc-status` is the exchange's `upstreamStatus`.
//!
//! The same timeouts hold as over HTTP/1.1: `connectMs` for a connection
//! (and a stream slot on it), `upstreamMs` for each wait on the upstream,
//! `writeMs` for each write to the client.

use std::time::Duration;

use bytes::Bytes;
use h2::{Reason, RecvStream, SendStream};
use http::header::{CONTENT_LENGTH, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use http1::{Answering, Framing, Known, ParsedResponse, RequestHead, ResponseHead};
use tokio::time::Instant;

use crate::body::BodyError;
use crate::client::side::Client;
use crate::error::kind::{ErrorKind, Failure};
use crate::observe::exchange::Exchange;
use crate::session::Session;
use crate::upstream::Target;

/// A request sent to an HTTP/2 upstream and the head of its response.
#[derive(Debug)]
pub struct SentH2 {
    pub head: ResponseHead,
    body: RecvStream,
    /// The request stream, while its body is still being sent (the response
    /// began first: a bidirectional stream, as gRPC's).
    request: Option<SendStream<Bytes>>,
    /// Request sent → response head received.
    pub waited: Duration,
    /// The response's `Content-Length`, held against its DATA frames.
    declared: Option<u64>,
    grpc_status: Option<u16>,
}

/// Why sending the request body stopped.
enum PumpError {
    Client(BodyError),
    /// The upstream reset the stream or the connection ended.
    Upstream,
    UpstreamTimeout,
}

/// Forward phase over HTTP/2: the request (head from `reqbuf`, body from the
/// client) as a stream on the worker's connection to `target`, then the
/// response head. A stream the upstream refused unprocessed (`REFUSED_STREAM`,
/// or beyond a graceful GOAWAY) is sent again once on a fresh connection
/// when it has no body.
pub async fn send<C: Client>(s: &mut Session<'_, C>, target: &Target, head: &RequestHead) -> Result<SentH2, Failure> {
    let connect_ms = s.timeouts.connect;
    let upstream_ms = s.timeouts.upstream;
    let has_body = head.body.has_body();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let request = request(&s.conn.reqbuf, head, target)?;
        let connect_deadline = Instant::now() + connect_ms;
        let mut leased = s.conn.worker.h2pool.sender(target, connect_ms).await?;
        let (response, mut stream) = match leased.send.send_request(request, !has_body) {
            Ok(sent) => sent,
            Err(_) => {
                leased.retire();
                if attempt == 1 {
                    continue;
                }
                return Err(ErrorKind::UpstreamReset.into());
            }
        };
        // At the upstream's SETTINGS_MAX_CONCURRENT_STREAMS, `h2` queues the
        // stream until one ends: that wait is bounded by what connectMs left
        // (and the stream, never sent, is dropped with its handles).
        let opened = std::future::poll_fn(|cx| leased.send.poll_ready(cx));
        match tokio::time::timeout_at(connect_deadline, opened).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => {
                leased.retire();
                if attempt == 1 {
                    continue;
                }
                return Err(ErrorKind::UpstreamReset.into());
            }
            Err(_) => return Err(ErrorKind::UpstreamOverloaded.into()),
        }
        tokio::pin!(response);
        let mut early = None;
        // The body still to send once the response has begun.
        let mut unsent = false;
        if has_body {
            // The upstream may answer before it has the whole body: the rest
            // is then sent beside the response (a bidirectional stream).
            tokio::select! {
                biased;
                pumped = pump(&mut stream, &mut s.conn.client, upstream_ms) => match pumped {
                    Ok(()) | Err(PumpError::Upstream) => {}
                    Err(PumpError::Client(e)) => {
                        stream.send_reset(Reason::CANCEL);
                        return Err(e.into());
                    }
                    Err(PumpError::UpstreamTimeout) => {
                        stream.send_reset(Reason::CANCEL);
                        return Err(ErrorKind::UpstreamTimeout.into());
                    }
                },
                answered = &mut response => {
                    early = Some(answered);
                    unsent = true;
                }
            }
        }
        let sent_at = Instant::now();
        let answered = match early {
            Some(answered) => answered,
            None => {
                // Only a client whose request is complete can be watched:
                // anything it sends now belongs to its next request.
                let watch_client = s.conn.client.body_done();
                let deadline = sent_at + upstream_ms;
                tokio::select! {
                    biased;
                    answered = s.conn.upstream_timer.within(|| deadline, &mut response) => match answered {
                        Ok(answered) => answered,
                        Err(_) => {
                            stream.send_reset(Reason::CANCEL);
                            return Err(ErrorKind::UpstreamTimeout.into());
                        }
                    },
                    () = s.conn.client.closed(), if watch_client => {
                        stream.send_reset(Reason::CANCEL);
                        return Err(ErrorKind::ClientClosed.into());
                    }
                }
            }
        };
        let response = match answered {
            Ok(response) => response,
            Err(e) => {
                let unprocessed = e.reason() == Some(Reason::REFUSED_STREAM)
                    || (e.is_go_away() && e.reason() == Some(Reason::NO_ERROR));
                if e.is_go_away() || e.is_io() {
                    leased.retire();
                }
                if unprocessed && attempt == 1 && !has_body {
                    continue;
                }
                return Err(ErrorKind::UpstreamReset.into());
            }
        };
        let request_complete = s.conn.client.body_done();
        let (parts, body) = response.into_parts();
        let date = s.conn.worker.date();
        let answering = Answering {
            method: &head.method,
            client_version: s.conn.client.response_version(head.version),
            keep_alive: request_complete && s.may_keep_alive(),
            filter: s.response_filter,
            // Never over HTTP/2 (RFC 9113 §8.6): any 101 is a bad response.
            websocket: false,
            date: &date,
        };
        if !http1::render_response(&mut s.conn.reqbuf, parts.status, &parts.headers) {
            return Err(ErrorKind::BadResponse.into());
        }
        s.conn.wbuf.clear();
        let ParsedResponse::Complete(response_head) =
            http1::parse_response(&s.conn.reqbuf, &answering, &mut s.conn.wbuf)
        else {
            return Err(ErrorKind::BadResponse.into());
        };
        return Ok(SentH2 {
            head: response_head,
            body,
            request: unsent.then_some(stream),
            waited: sent_at.elapsed(),
            declared: parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| http1::headers::parse_content_length(v.as_bytes())),
            grpc_status: grpc_status(&parts.headers),
        });
    }
}

/// The HTTP/2 request for the head the gateway encoded into `reqbuf`: its
/// `Host` becomes `:authority`, the scheme is the upstream's, hop-by-hop
/// fields stay behind except `TE: trailers` (gRPC asks for it, and it is the
/// one `TE` HTTP/2 allows).
fn request(reqbuf: &[u8], head: &RequestHead, target: &Target) -> Result<Request<()>, Failure> {
    // The head is the gateway's own encoding: a failure here is a bug, and
    // the request is refused rather than sent wrong.
    let refused = || Failure::from(ErrorKind::BadRequest);
    let mut fields = HeaderMap::new();
    let mut authority = None;
    let mut valid = true;
    let (path, _) = http1::request_fields(reqbuf, |name, value| {
        if Known::of(name) == Known::Host {
            authority = Some(value);
            return;
        }
        match (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) {
            (Ok(name), Ok(value)) => {
                fields.append(name, value);
            }
            _ => valid = false,
        }
    })
    .ok_or_else(refused)?;
    if !valid {
        return Err(refused());
    }
    if head
        .headers
        .get_known(Known::Te)
        .is_some_and(|te| http1::headers::has_token(te, b"trailers"))
    {
        fields.insert(TE, HeaderValue::from_static("trailers"));
    }
    let uri = Uri::builder()
        .scheme(if target.tls.is_some() { "https" } else { "http" })
        .authority(authority.ok_or_else(refused)?)
        .path_and_query(path)
        .build()
        .map_err(|_| refused())?;
    let mut request = Request::new(());
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = fields;
    Ok(request)
}

/// `grpc-status`, when the fields carry one.
fn grpc_status(fields: &HeaderMap) -> Option<u16> {
    fields.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// Streams the request body into `stream` (see [`pump_step`]).
async fn pump<C: Client>(
    stream: &mut SendStream<Bytes>,
    client: &mut C,
    upstream_ms: Duration,
) -> Result<(), PumpError> {
    while !pump_step(stream, client, upstream_ms).await? {}
    Ok(())
}

/// Sends the next piece of the request body within the capacity the
/// upstream grants; `true` once the body has ended. `readMs` bounds each gap
/// in the client's body (checked by the client side), `upstreamMs` each wait
/// for capacity. Data is consumed only once handed to the stream, so a step
/// dropped while waiting loses nothing.
async fn pump_step<C: Client>(
    stream: &mut SendStream<Bytes>,
    client: &mut C,
    upstream_ms: Duration,
) -> Result<bool, PumpError> {
    let n = client.fill().await.map_err(PumpError::Client)?;
    let k = if n == 0 {
        0
    } else {
        stream.reserve_capacity(n);
        let granted = match stream.capacity() {
            0 => {
                let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx));
                match tokio::time::timeout(upstream_ms, granted).await {
                    Ok(Some(Ok(g))) => g,
                    Ok(_) => return Err(PumpError::Upstream),
                    Err(_) => return Err(PumpError::UpstreamTimeout),
                }
            }
            g => g,
        };
        granted.min(n)
    };
    if k == 0 && n > 0 {
        return Ok(false);
    }
    // A body that is done (n == 0) ends here whatever its reader says.
    let end = n == 0 || client.ends_after(k);
    let data = Bytes::copy_from_slice(&client.body()[..k]);
    stream.send_data(data, end).map_err(|_| PumpError::Upstream)?;
    client.consume_through(k, end);
    Ok(end)
}

/// [`pump_step`] on the request stream while it is still being sent; never
/// resolves when it is not.
async fn pump_next<C: Client>(
    request: &mut Option<SendStream<Bytes>>,
    client: &mut C,
    upstream_ms: Duration,
) -> Option<Result<bool, PumpError>> {
    match request {
        Some(stream) => Some(pump_step(stream, client, upstream_ms).await),
        None => std::future::pending().await,
    }
}

/// Stream-back phase over HTTP/2: the response head (encoded into `wbuf` by
/// [`send`]), then each DATA frame as it comes, then the trailers. The head
/// is held back only while a DATA frame is already there. A body longer or
/// shorter than its `Content-Length` is a bad or cut response.
pub async fn stream<C: Client>(s: &mut Session<'_, C>, ex: &mut Exchange, sent: SentH2) -> Result<(), Failure> {
    let SentH2 {
        head,
        mut body,
        mut request,
        waited,
        declared,
        grpc_status: grpc,
    } = sent;
    ex.upstream_status = Some(grpc.unwrap_or(head.status.as_u16()));
    ex.upstream_duration = Some(waited);
    if !head.keep_alive {
        s.ka.disable();
    }
    let upstream_ms = s.timeouts.upstream;
    let write_ms = s.timeouts.write;
    let framing = head.framing;
    // What the upstream says about the length holds only where a body may be.
    let declared = if framing == Framing::NoBody { None } else { declared };
    let short = |received: u64| declared.is_some_and(|d| d != received);
    let status = head.status.as_u16();
    let mut head_pending = true;
    let mut received = 0u64;
    loop {
        let headb: &[u8] = if head_pending { &s.conn.wbuf } else { &[] };
        // No body can follow (HEAD, 204, 304): whatever the stream still
        // carries is not read.
        if body.is_end_stream() || framing == Framing::NoBody {
            if short(received) {
                return Err(ErrorKind::UpstreamReset.into());
            }
            starting(ex, headb, status);
            ex.bytes_sent += s.conn.client.write(headb, framing, &[], true, write_ms).await?;
            break;
        }
        let polled = if head_pending {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match body.poll_data(&mut cx) {
                std::task::Poll::Ready(polled) => polled,
                std::task::Poll::Pending => {
                    starting(ex, headb, status);
                    ex.bytes_sent += s.conn.client.write(headb, framing, &[], false, write_ms).await?;
                    head_pending = false;
                    continue;
                }
            }
        } else {
            // The next frame, within `upstreamMs` of the last traffic either
            // way, sending the rest of the request body meanwhile.
            let data = std::future::poll_fn(|cx| body.poll_data(cx));
            let timer = &mut s.conn.upstream_timer;
            tokio::select! {
                biased;
                data = timer.within_for(upstream_ms, data) => match data {
                    Ok(polled) => polled,
                    Err(_) => return Err(ErrorKind::UpstreamTimeout.into()),
                },
                Some(step) = pump_next(&mut request, &mut s.conn.client, upstream_ms) => {
                    match step {
                        Ok(false) => {}
                        // The upstream stopped reading (or the body is sent).
                        Ok(true) | Err(PumpError::Upstream) => request = None,
                        Err(PumpError::Client(e)) => return Err(e.into()),
                        Err(PumpError::UpstreamTimeout) => return Err(ErrorKind::UpstreamTimeout.into()),
                    }
                    continue;
                }
            }
        };
        match polled {
            Some(Ok(data)) => {
                received += data.len() as u64;
                if declared.is_some_and(|d| received > d) {
                    return Err(ErrorKind::BadResponse.into());
                }
                let end = body.is_end_stream();
                if end && short(received) {
                    return Err(ErrorKind::UpstreamReset.into());
                }
                if !data.is_empty() || head_pending || end {
                    starting(ex, headb, status);
                    ex.bytes_sent += s.conn.client.write(headb, framing, &data, end, write_ms).await?;
                }
                head_pending = false;
                let _ = body.flow_control().release_capacity(data.len());
                if end {
                    break;
                }
            }
            Some(Err(_)) => return Err(ErrorKind::UpstreamReset.into()),
            None => {
                if short(received) {
                    return Err(ErrorKind::UpstreamReset.into());
                }
                let trailers = std::future::poll_fn(|cx| body.poll_trailers(cx));
                let trailers = match s.conn.upstream_timer.within_for(upstream_ms, trailers).await {
                    Ok(Ok(trailers)) => trailers,
                    Ok(Err(_)) => return Err(ErrorKind::UpstreamReset.into()),
                    Err(_) => return Err(ErrorKind::UpstreamTimeout.into()),
                };
                let headb: &[u8] = if head_pending { &s.conn.wbuf } else { &[] };
                starting(ex, headb, status);
                ex.bytes_sent += match trailers {
                    Some(trailers) if !trailers.is_empty() => {
                        if let Some(status) = grpc_status(&trailers) {
                            ex.upstream_status = Some(status);
                        }
                        s.conn.client.write_trailers(headb, framing, trailers, write_ms).await?
                    }
                    _ => s.conn.client.write(headb, framing, &[], true, write_ms).await?,
                };
                break;
            }
        }
    }
    s.conn.wbuf.clear();
    Ok(())
}

/// Marks the response under way when its head is about to be written: a
/// failure from then on cuts it rather than answering (see `error::fail`).
fn starting(ex: &mut Exchange, head: &[u8], status: u16) {
    if !head.is_empty() {
        ex.status = status;
    }
}
