//! Stream-back phase: the response head (encoded into `wbuf` by the forward
//! phase) and the body, as it arrives, to the client. Also the responses a
//! policy prepared.

use bytes::Buf as _;
use http1::Framing;

use crate::client::side::Client;

use crate::error::kind::{ErrorKind, Failure};
use crate::observe::exchange::Exchange;
use crate::proxy::forward::Sent;
use crate::session::Session;
use crate::upstream::Target;
use http1::RequestHead;
use plan::{Action, PathMatch, PathReplace, Redirect, host_without_port_bytes, replace_prefix};
use policy_host::Prepared;

/// Streams the response to the client. The head is held back while more of
/// the body is already readable, so a small response leaves in one write.
/// `upstreamMs` bounds each gap in the upstream's body, `writeMs` each write
/// to the client. A connection whose exchange completed goes back to the pool.
pub async fn stream<C: Client>(
    s: &mut Session<'_, C>,
    ex: &mut Exchange,
    sent: Sent,
    target: &Target,
) -> Result<(), Failure> {
    let Sent {
        mut up,
        head,
        request_complete,
        waited,
    } = sent;
    ex.upstream_status = Some(head.status.as_u16());
    ex.upstream_duration = Some(waited);
    if !head.keep_alive {
        s.ka.disable();
    }
    let upstream_ms = s.timeouts.upstream;
    let write_ms = s.timeouts.write;
    let mut decoder = head.body;
    let mut head_pending = true;
    loop {
        let framing = decoder.skip_framing(&up.rbuf).map_err(|_| ErrorKind::BadResponse)?;
        up.rbuf.advance(framing);
        let n = decoder.data_len(up.rbuf.len());
        // Whether the body ends with these `n` bytes (its closing framing
        // already read): then the whole rest leaves in this write.
        let mut next = decoder;
        next.consume(n);
        let tail = next.skip_framing(&up.rbuf[n..]).map_err(|_| ErrorKind::BadResponse)?;
        let end = next.is_done();
        if n == 0 && !end {
            let read = if head_pending {
                // While the head waits, only what is readable right now is taken.
                match up.stream.try_read_buf(&mut up.rbuf) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
                    other => Some(other),
                }
            } else {
                let read = up.stream.read_buf(&mut up.rbuf);
                match s.conn.upstream_timer.within_for(upstream_ms, read).await {
                    Ok(r) => Some(r),
                    Err(_) => return Err(ErrorKind::UpstreamTimeout.into()),
                }
            };
            match read {
                Some(Ok(0)) => {
                    // The end of a close-delimited body; any other is cut short.
                    decoder.eof().map_err(|_| ErrorKind::UpstreamReset)?;
                    continue;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) => return Err(ErrorKind::UpstreamReset.into()),
                None => {}
            }
        }
        let headb: &[u8] = if head_pending { &s.conn.wbuf } else { &[] };
        if head_pending {
            ex.status = head.status.as_u16();
        }
        let data = &up.rbuf[..n];
        ex.bytes_sent += s.conn.client.write(headb, head.framing, data, end, write_ms).await?;
        head_pending = false;
        up.rbuf.advance(n);
        if end {
            up.rbuf.advance(tail);
            break;
        }
        decoder.consume(n);
    }
    s.conn.wbuf.clear();
    if request_complete && head.reusable && up.rbuf.is_empty() {
        s.conn.worker.pool.checkin(target, up);
    }
    Ok(())
}

/// The `Location` of a redirect (SPEC §4.8, Gateway API's rules), written
/// into `out`: scheme and host as given or as the request came (the request's
/// scheme is `request_scheme`); the port as
/// given, else the default of a given scheme, else the port the request
/// arrived on (its `Host`'s), left out when it is the scheme's default; the
/// path replaced as configured; the query kept.
pub fn location(
    out: &mut String,
    redirect: &Redirect,
    route: &plan::Route,
    host: &[u8],
    path: &str,
    query: Option<&str>,
    request_scheme: &str,
) {
    use std::fmt::Write as _;
    let scheme = redirect.scheme.as_deref().unwrap_or(request_scheme);
    let name = host_without_port_bytes(host);
    let request_port = host
        .get(name.len()..)
        .and_then(|rest| rest.strip_prefix(b":"))
        .and_then(|p| std::str::from_utf8(p).ok())
        .and_then(|p| p.parse::<u16>().ok());
    let default = if scheme == "https" { 443 } else { 80 };
    let port = match (redirect.port, &redirect.scheme) {
        (Some(p), _) => p,
        (None, Some(_)) => default,
        (None, None) => request_port.unwrap_or(default),
    };
    out.push_str(scheme);
    out.push_str("://");
    match &redirect.host {
        Some(h) => out.push_str(h),
        None => out.push_str(&String::from_utf8_lossy(name)),
    }
    if port != default {
        let _ = write!(out, ":{port}");
    }
    match (&redirect.path, &route.path) {
        (None, _) => out.push_str(path),
        (Some(PathReplace::Prefix(with)), PathMatch::Prefix(prefix)) => replace_prefix(path, prefix, with, out),
        (Some(PathReplace::Full(with) | PathReplace::Prefix(with)), _) => out.push_str(with),
    }
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
}

/// Answers a redirect route: no upstream is contacted.
pub async fn redirect<C: Client>(
    s: &mut Session<'_, C>,
    ex: &mut Exchange,
    head: &RequestHead,
    route: u32,
    path: &str,
) -> Result<(), Failure> {
    let plan_route = &s.generation.router.plan().routes[route as usize];
    let Action::Redirect(redirect) = &plan_route.action else {
        return Err(ErrorKind::NoRoute.into());
    };
    let status = crate::error::redirect_status(redirect.status);
    s.conn.scratch.clear();
    location(
        &mut s.conn.scratch,
        redirect,
        plan_route,
        &head.host,
        path,
        head.target.query(),
        s.conn.client.scheme(),
    );
    let close = !s.may_keep_alive();
    if close {
        s.ka.disable();
    }
    let date = s.conn.worker.date();
    s.conn.wbuf.clear();
    http1::encode_synthesized(
        &mut s.conn.wbuf,
        &http1::Synthesized {
            status,
            kind: None,
            body: &[],
            extra: &[("location", s.conn.scratch.as_bytes())],
            head_only: s.head_only,
            close,
            filter: s.response_filter,
            date: &date,
        },
    );
    ex.status = status.as_u16();
    send_head(s, ex, &[]).await
}

/// Writes a response a policy prepared; the request is not forwarded.
pub async fn prepared<C: Client>(s: &mut Session<'_, C>, ex: &mut Exchange, prepared: Prepared) -> Result<(), Failure> {
    let status = crate::error::prepared_status(prepared.status);
    let close = !s.may_keep_alive();
    if close {
        s.ka.disable();
    }
    let date = s.conn.worker.date();
    s.conn.wbuf.clear();
    http1::encode_prepared_head(
        &mut s.conn.wbuf,
        status,
        &prepared.headers,
        prepared.body.len(),
        close,
        s.response_filter,
        &date,
    );
    ex.status = status.as_u16();
    // A 204 or 304 has no body: one a policy gave it would be read as the
    // next response on the connection.
    let body: &[u8] = if s.head_only || !http1::has_body(status) {
        &[]
    } else {
        &prepared.body
    };
    send_head(s, ex, body).await
}

/// Writes the response head encoded in `wbuf`, then `body`, in one write
/// under `writeMs`, and counts what was sent.
pub async fn send_head<C: Client>(s: &mut Session<'_, C>, ex: &mut Exchange, body: &[u8]) -> Result<(), Failure> {
    let write_timeout = s.write_timeout();
    let written = s
        .conn
        .client
        .write(&s.conn.wbuf, Framing::Length, body, true, write_timeout)
        .await;
    s.conn.wbuf.clear();
    ex.bytes_sent += written?;
    Ok(())
}
