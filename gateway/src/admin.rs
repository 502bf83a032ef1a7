//! The admin listener: `GET /metrics`, `GET /ready`, `GET /plan` and
//! `POST /reload`. Separate from the proxy listener; it never proxies. It is
//! not a soft target (SPEC §9): heads must arrive within `readMs`, idle
//! connections close after `idleMs`, at most [`MAX_CONNECTIONS`] are served at
//! once (more are closed at once), and bodies over 64 KiB are refused. It
//! speaks HTTP/1.1 through the same `http1` crate as the proxy.

use std::io::IoSlice;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut as _, BytesMut};
use http::{Method, StatusCode};
use http1::{Parsed, RequestHead};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::body::ClientReader;
use crate::stream::Stream;
use crate::worker::Shared;

/// Hook the admin listener calls for `POST /reload`: `Ok` with a message, or
/// `Err` with the errors.
pub type Reload = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Admin connections served at once; beyond, new ones are closed at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Largest request body the admin listener reads.
pub const MAX_BODY: u64 = 64 * 1024;

/// A response of the admin listener.
struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    allow: Option<&'static str>,
}

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
    Reply {
        status,
        content_type,
        body: body.into(),
        allow: None,
    }
}

/// `/plan`, in the order SPEC §9 promises (identity first).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanView<'a> {
    digest: &'a str,
    source_digest: &'a str,
    format_version: u32,
    routes: Vec<RouteView<'a>>,
    clusters: Vec<ClusterView<'a>>,
    source: &'a str,
    policies: Vec<PolicyView<'a>>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RouteView<'a> {
    name: &'a str,
    hosts: &'a [String],
    /// `pathPrefix`, `path` or `pathRegex`.
    path_kind: &'static str,
    path: &'a str,
    /// The cluster of a `cluster` action.
    cluster: Option<&'a str>,
    /// The clusters and weights of a `backends` split.
    backends: Option<Vec<(&'a str, u32)>>,
    /// The status of a `redirect`.
    redirect: Option<u16>,
    policies: Vec<&'a str>,
    line: u32,
}

#[derive(serde::Serialize)]
struct ClusterView<'a> {
    name: &'a str,
    upstreams: Vec<UpstreamView<'a>>,
}

#[derive(serde::Serialize)]
struct UpstreamView<'a> {
    url: &'a str,
    weight: u32,
}

#[derive(serde::Serialize)]
struct PolicyView<'a> {
    name: &'a str,
    module: &'a str,
    sha256: &'a str,
}

/// `/upstreams`: each upstream as the running gateway sees it (SPEC §15).
pub fn upstreams_json(shared: &Shared) -> String {
    let generation = shared.current.load();
    let plan = generation.router.plan();
    let now = crate::upstream::now_ms();
    let list: Vec<serde_json::Value> = generation
        .targets
        .all()
        .iter()
        .map(|t| {
            let s = &t.state;
            let cluster = &plan.clusters[t.cluster as usize];
            let ejected_for = s.ejected_for(now);
            serde_json::json!({
                "cluster": s.cluster,
                "url": t.url,
                "weight": cluster.upstreams[t.index].weight,
                "addresses": s.endpoints.load().iter().map(ToString::to_string).collect::<Vec<_>>(),
                "healthy": s.is_healthy(),
                "ejected": ejected_for.is_some(),
                "ejectedForMs": ejected_for,
                "takesTraffic": s.is_healthy() && ejected_for.is_none(),
                "healthChecked": cluster.health_check.is_some(),
                "counters": {
                    "ejections": s.ejections_total.load(Ordering::Relaxed),
                    "checksOk": s.checks_ok.load(Ordering::Relaxed),
                    "checksFailed": s.checks_failed.load(Ordering::Relaxed),
                    "connectionsActive": s.active.load(Ordering::Relaxed),
                    "connectionsIdle": s.idle.load(Ordering::Relaxed),
                },
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}

/// `/plan`: identity and a readable summary of the plan being served.
pub fn plan_json(shared: &Shared) -> String {
    let generation = shared.current.load();
    let router = &generation.router;
    let plan = router.plan();
    let view = PlanView {
        digest: router.digest(),
        source_digest: router.source_digest(),
        format_version: plan::FORMAT_VERSION,
        routes: plan
            .routes
            .iter()
            .map(|r| RouteView {
                name: &r.name,
                hosts: &r.hosts,
                path_kind: r.path.key(),
                path: r.path.as_str(),
                cluster: r
                    .cluster()
                    .and_then(|c| plan.clusters.get(c as usize))
                    .map(|c| c.name.as_str()),
                backends: match &r.action {
                    plan::Action::Backends { backends, .. } => Some(
                        backends
                            .iter()
                            .filter_map(|b| {
                                plan.clusters
                                    .get(b.cluster as usize)
                                    .map(|c| (c.name.as_str(), b.weight))
                            })
                            .collect(),
                    ),
                    _ => None,
                },
                redirect: match &r.action {
                    plan::Action::Redirect(rd) => Some(rd.status),
                    _ => None,
                },
                policies: r
                    .policies
                    .iter()
                    .filter_map(|&p| plan.policies.get(p as usize).map(|p| p.name.as_str()))
                    .collect(),
                line: r.line,
            })
            .collect(),
        clusters: plan
            .clusters
            .iter()
            .map(|c| ClusterView {
                name: &c.name,
                upstreams: c
                    .upstreams
                    .iter()
                    .map(|u| UpstreamView {
                        url: &u.url,
                        weight: u.weight,
                    })
                    .collect(),
            })
            .collect(),
        source: &plan.source,
        policies: plan
            .policies
            .iter()
            .map(|p| PolicyView {
                name: &p.name,
                module: &p.module,
                sha256: &p.sha256,
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&view).unwrap_or_default();
    text.push('\n');
    text
}

/// The endpoints and the methods each allows.
fn allowed(path: &str) -> Option<&'static str> {
    match path {
        "/metrics" | "/ready" | "/plan" | "/upstreams" => Some("GET, HEAD"),
        "/reload" => Some("POST"),
        _ => None,
    }
}

async fn handle(head: &RequestHead, shared: &Arc<Shared>, reload: &Option<Reload>) -> Reply {
    let path = head.target.path();
    let method = &head.method;
    let get = *method == Method::GET || *method == Method::HEAD;
    match (path, get) {
        ("/metrics", true) => {
            let accept = head.headers.get(b"accept").unwrap_or(b"");
            let format = crate::observe::metrics::Format::negotiate(accept);
            reply(
                StatusCode::OK,
                format.content_type(),
                crate::observe::metrics::render(shared, format),
            )
        }
        ("/ready", true) => {
            if shared.stopping.load(Ordering::Relaxed) {
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
            } else {
                reply(StatusCode::OK, "text/plain", "ready\n")
            }
        }
        ("/plan", true) => reply(StatusCode::OK, "application/json", plan_json(shared)),
        ("/upstreams", true) => reply(StatusCode::OK, "application/json", upstreams_json(shared)),
        ("/reload", _) if *method == Method::POST => match reload.clone() {
            Some(reload) => match tokio::task::spawn_blocking(move || reload()).await {
                Ok(Ok(msg)) => reply(StatusCode::OK, "text/plain", msg + "\n"),
                Ok(Err(errors)) => reply(StatusCode::UNPROCESSABLE_ENTITY, "text/plain", errors + "\n"),
                Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "reload failed\n"),
            },
            None => reply(StatusCode::NOT_FOUND, "text/plain", "reload is not available\n"),
        },
        _ => match allowed(path) {
            Some(allow) => Reply {
                allow: Some(allow),
                ..reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n")
            },
            None => reply(
                StatusCode::NOT_FOUND,
                "text/plain",
                "admin endpoints: /metrics /ready /plan /reload\n",
            ),
        },
    }
}

/// Serves the admin endpoints on `listener` until the task is dropped; runs
/// inside a `LocalSet`.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, reload: Option<Reload>) {
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, say: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            shared
                .registry
                .global
                .admin_connections_rejected
                .fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        }
        let (shared, reload, open) = (shared.clone(), reload.clone(), open.clone());
        tokio::task::spawn_local(async move {
            serve_connection(stream, &shared, &reload).await;
            open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// One admin connection: heads under `readMs`, idle gaps under `idleMs`.
async fn serve_connection(stream: TcpStream, shared: &Arc<Shared>, reload: &Option<Reload>) {
    let _ = stream.set_nodelay(true);
    let stream = Rc::new(Stream::Plain(stream));
    let mut reader = ClientReader::new(stream.clone());
    let mut out = BytesMut::with_capacity(4096);
    loop {
        let (limits, read_ms, idle_ms) = {
            let generation = shared.current.load();
            (
                generation.router.plan().limits,
                generation.defaults.read,
                generation.defaults.idle,
            )
        };
        // Idle until the first byte, then the whole head within readMs.
        let mut deadline = Instant::now() + idle_ms;
        let mut started = !reader.buf.is_empty();
        if started {
            deadline = Instant::now() + read_ms;
        }
        let head = loop {
            if started {
                match http1::parse(
                    &mut reader.buf,
                    limits.max_header_bytes as usize,
                    limits.max_headers as usize,
                ) {
                    Parsed::Complete(h) => break h,
                    Parsed::Refused(..) => {
                        let _ = respond(
                            &stream,
                            &mut out,
                            reply(StatusCode::BAD_REQUEST, "text/plain", "bad request\n"),
                            false,
                            true,
                        )
                        .await;
                        return;
                    }
                    Parsed::Incomplete => {}
                }
            }
            match tokio::time::timeout_at(deadline, stream.read_buf(&mut reader.buf)).await {
                Ok(Ok(n)) if n > 0 => {
                    if !started {
                        started = true;
                        deadline = Instant::now() + read_ms;
                    }
                }
                _ => return,
            }
        };
        let declared = match head.body {
            http1::BodyKind::Length(n) => n,
            _ => 0,
        };
        if declared > MAX_BODY {
            let r = reply(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "request body too large\n");
            let _ = respond(&stream, &mut out, r, head.method == Method::HEAD, true).await;
            return;
        }
        reader.start(head.body, Some(MAX_BODY), read_ms);
        if !reader.discard(MAX_BODY).await {
            let r = reply(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "request body too large\n");
            let _ = respond(&stream, &mut out, r, head.method == Method::HEAD, true).await;
            return;
        }
        let r = handle(&head, shared, reload).await;
        let close = !head.keep_alive;
        if !respond(&stream, &mut out, r, head.method == Method::HEAD, close).await || close {
            return;
        }
    }
}

/// Writes `r`; false if the client is gone or does not read.
async fn respond(stream: &Stream, out: &mut BytesMut, r: Reply, head_only: bool, close: bool) -> bool {
    out.clear();
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(r.status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(r.status.canonical_reason().unwrap_or("").as_bytes());
    out.put_slice(b"\r\ndate: ");
    out.put_slice(httpdate::fmt_http_date(std::time::SystemTime::now()).as_bytes());
    out.put_slice(b"\r\ncontent-type: ");
    out.put_slice(r.content_type.as_bytes());
    out.put_slice(b"\r\ncontent-length: ");
    out.put_slice(itoa::Buffer::new().format(r.body.len()).as_bytes());
    if let Some(allow) = r.allow {
        out.put_slice(b"\r\nallow: ");
        out.put_slice(allow.as_bytes());
    }
    if close {
        out.put_slice(b"\r\nconnection: close");
    }
    out.put_slice(b"\r\n\r\n");
    let body: &[u8] = if head_only { &[] } else { &r.body };
    let mut bufs = [IoSlice::new(out), IoSlice::new(body)];
    matches!(
        tokio::time::timeout(Duration::from_secs(15), stream.write_all(&mut bufs)).await,
        Ok(Ok(()))
    )
}
