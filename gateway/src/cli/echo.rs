//! A small echo upstream: answers every request with a JSON description of what
//! it received. `gateway demo` runs it behind the example config so a fresh
//! machine sees proxied responses; benchmarks use it as the upstream.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::observe::json;

async fn echo(addr: SocketAddr, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body_bytes = body.collect().await.map(|b| b.to_bytes().len()).unwrap_or(0);
    let mut text = Vec::with_capacity(512);
    text.extend_from_slice(b"{\"upstream\":");
    json::push_str(&mut text, &addr.to_string());
    text.extend_from_slice(b",\"method\":");
    json::push_str(&mut text, parts.method.as_str());
    text.extend_from_slice(b",\"uri\":");
    json::push_str(&mut text, &parts.uri.to_string());
    text.extend_from_slice(b",\"headers\":{");
    for (i, (k, v)) in parts.headers.iter().enumerate() {
        if i > 0 {
            text.push(b',');
        }
        json::push_str(&mut text, k.as_str());
        text.push(b':');
        json::push_bytes(&mut text, v.as_bytes());
    }
    text.extend_from_slice(format!("}},\"bodyBytes\":{body_bytes}}}\n").as_bytes());
    Ok(Response::builder()
        .header("content-type", "application/json")
        .header("x-upstream", addr.to_string())
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_default())
}

/// Serves echo on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener) {
    let Ok(addr) = listener.local_addr() else { return };
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(move |req| echo(addr, req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
