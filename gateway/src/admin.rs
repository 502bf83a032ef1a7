//! The admin listener: `GET /metrics`, `GET /ready`, `GET /plan` (and
//! `POST /reload`). Separate from the proxy listener; it never proxies.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::worker::Shared;

/// Hook the admin listener calls for `POST /reload`: `Ok` with a message, or
/// `Err` with the errors.
pub type Reload = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// `/plan`: identity and a readable summary of the plan being served.
pub fn plan_json(shared: &Shared) -> String {
    let generation = shared.current.load();
    let router = &generation.router;
    let plan = router.plan();
    let routes: Vec<serde_json::Value> = plan
        .routes
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "host": r.host,
                "pathPrefix": r.path_prefix,
                "cluster": plan.clusters.get(r.cluster as usize).map(|c| c.name.as_str()),
                "policies": r.policies.iter().filter_map(|&p| plan.policies.get(p as usize).map(|p| p.name.as_str())).collect::<Vec<_>>(),
                "line": r.line,
            })
        })
        .collect();
    let clusters: Vec<serde_json::Value> = plan
        .clusters
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "upstreams": c.upstreams.iter().map(|u| serde_json::json!({"url": u.url, "weight": u.weight})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let body = serde_json::json!({
        "formatVersion": plan::FORMAT_VERSION,
        "digest": router.digest(),
        "sourceDigest": router.source_digest(),
        "source": plan.source,
        "routes": routes,
        "clusters": clusters,
        "policies": plan.policies.iter().map(|p| serde_json::json!({"name": p.name, "module": p.module, "sha256": p.sha256})).collect::<Vec<_>>(),
    });
    let mut text = serde_json::to_string_pretty(&body).unwrap_or_default();
    text.push('\n');
    text
}

async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    reload: Option<Reload>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    Ok(match (req.method(), path) {
        (&Method::GET, "/metrics") => reply(
            StatusCode::OK,
            crate::metrics::CONTENT_TYPE,
            crate::metrics::render(&shared),
        ),
        (&Method::GET, "/ready") => {
            if shared.draining.load(Ordering::Relaxed) {
                reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
            } else {
                reply(StatusCode::OK, "text/plain", "ready\n")
            }
        }
        (&Method::GET, "/plan") => reply(StatusCode::OK, "application/json", plan_json(&shared)),
        (&Method::POST, "/reload") => match reload {
            Some(reload) => match tokio::task::spawn_blocking(move || reload()).await {
                Ok(Ok(msg)) => reply(StatusCode::OK, "text/plain", msg + "\n"),
                Ok(Err(errors)) => reply(StatusCode::UNPROCESSABLE_ENTITY, "text/plain", errors + "\n"),
                Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "reload failed\n"),
            },
            None => reply(StatusCode::NOT_FOUND, "text/plain", "reload is not available\n"),
        },
        (_, "/metrics" | "/ready" | "/plan" | "/reload") => {
            reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n")
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "admin endpoints: /metrics /ready /plan /reload\n",
        ),
    })
}

/// Serves the admin endpoints on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, reload: Option<Reload>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (shared, reload) = (shared.clone(), reload.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(req, shared.clone(), reload.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
