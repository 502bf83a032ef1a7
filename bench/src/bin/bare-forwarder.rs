//! The floor of our stack: hyper server + hyper-util client, no routing, no
//! logging, no metrics. `--runtime current` (one `current_thread` runtime per
//! thread, `SO_REUSEPORT`) or `--runtime multi` (tokio's multi-thread runtime).
//! `bare-forwarder --listen 127.0.0.1:8081 --upstream 127.0.0.1:9001 --threads 1`

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Incoming>;

async fn serve(listener: tokio::net::TcpListener, client: Upstream, upstream: String, local: bool) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (client, upstream) = (client.clone(), upstream.clone());
        let conn = async move {
            let service = service_fn(move |mut req: Request<Incoming>| {
                let client = client.clone();
                let pq = req.uri().path_and_query().map_or("/", |p| p.as_str());
                let uri: Uri = format!("http://{upstream}{pq}").parse().unwrap_or_default();
                *req.uri_mut() = uri;
                async move { client.request(req).await }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        };
        if local {
            tokio::task::spawn_local(conn);
        } else {
            tokio::spawn(conn);
        }
    }
}

fn client() -> Upstream {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build(connector)
}

fn main() {
    let listen: SocketAddr = bench::arg("--listen", "127.0.0.1:8081")
        .parse()
        .unwrap_or_else(|_| ([127, 0, 0, 1], 8081).into());
    let upstream = bench::arg("--upstream", "127.0.0.1:9001");
    let threads: usize = bench::arg("--threads", "1").parse().unwrap_or(1);
    let runtime = bench::arg("--runtime", "current");
    eprintln!("bare forwarder ({runtime}) listening on {listen}");
    if runtime == "multi" {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(l) = bench::listener(listen).and_then(tokio::net::TcpListener::from_std) else {
                return;
            };
            serve(l, client(), upstream, false).await;
        });
        return;
    }
    let listeners: Vec<_> = (0..threads).filter_map(|_| bench::listener(listen).ok()).collect();
    let listeners = std::sync::Arc::new(std::sync::Mutex::new(listeners));
    bench::per_thread(threads, move |_| {
        let upstream = upstream.clone();
        let listener = listeners.lock().ok().and_then(|mut l| l.pop());
        async move {
            let Some(listener) = listener.and_then(|l| tokio::net::TcpListener::from_std(l).ok()) else {
                return;
            };
            serve(listener, client(), upstream, true).await;
        }
    });
}
