//! The benchmark upstream: answers every request with `--body-bytes` bytes.
//! `bench-upstream --listen 127.0.0.1:9001 --body-bytes 1024 --threads 1`;
//! with `--h2`, it speaks HTTP/2 with prior knowledge (the `h2` crate's
//! server) instead of HTTP/1.1.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

fn main() {
    let listen: SocketAddr = bench::arg("--listen", "127.0.0.1:9001")
        .parse()
        .unwrap_or_else(|_| ([127, 0, 0, 1], 9001).into());
    let size: usize = bench::arg("--body-bytes", "16").parse().unwrap_or(16);
    let threads: usize = bench::arg("--threads", "1").parse().unwrap_or(1);
    let h2 = std::env::args().any(|a| a == "--h2");
    let body = Bytes::from(vec![b'x'; size]);
    let listeners: Vec<_> = (0..threads).filter_map(|_| bench::listener(listen).ok()).collect();
    let listeners = std::sync::Arc::new(std::sync::Mutex::new(listeners));
    eprintln!("upstream listening on {listen}");
    bench::per_thread(threads, move |_| {
        let body = body.clone();
        let listener = listeners.lock().ok().and_then(|mut l| l.pop());
        async move {
            let Some(listener) = listener.and_then(|l| tokio::net::TcpListener::from_std(l).ok()) else {
                return;
            };
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let body = body.clone();
                if h2 {
                    tokio::task::spawn_local(serve_h2(stream, body));
                    continue;
                }
                tokio::task::spawn_local(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let body = body.clone();
                        async move {
                            // Drain any request body so the connection stays reusable.
                            let _ = req.into_body().collect().await;
                            Ok::<_, Infallible>(hyper::Response::new(Full::new(body)))
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    });
}

/// One HTTP/2 connection: every stream's body drained, then answered with
/// `body` and its length.
async fn serve_h2(stream: tokio::net::TcpStream, body: Bytes) {
    let Ok(mut conn) = h2::server::handshake(stream).await else {
        return;
    };
    while let Some(Ok((req, mut respond))) = conn.accept().await {
        let body = body.clone();
        tokio::task::spawn_local(async move {
            let mut incoming = req.into_body();
            while let Some(Ok(chunk)) = incoming.data().await {
                let _ = incoming.flow_control().release_capacity(chunk.len());
            }
            let mut response = hyper::Response::new(());
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_LENGTH, body.len().into());
            if let Ok(mut send) = respond.send_response(response, body.is_empty()) {
                let _ = send.send_data(body, true);
            }
        });
    }
}
