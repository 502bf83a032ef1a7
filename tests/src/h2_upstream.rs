//! An HTTP/2 upstream (the `h2` crate's server, prior knowledge on
//! `127.0.0.1:0`) whose answer each request's path chooses, including the
//! hostile ones a gateway must survive: lengths that lie, resets, stalls,
//! oversized heads. It records each request and its connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{HeaderMap, HeaderValue, Request, Response};

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct H2Seen {
    pub method: String,
    /// `:scheme://:authority:path`, as sent.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
struct State {
    seen: Mutex<Vec<H2Seen>>,
    connections: AtomicUsize,
    open: AtomicUsize,
    refused: AtomicUsize,
    /// Set by `/goaway`: the connection that carried it says GOAWAY.
    goaway: tokio::sync::Notify,
}

/// The running upstream; stops with the test process.
#[derive(Debug, Clone)]
pub struct H2Upstream {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl H2Upstream {
    /// Paths and what they answer:
    /// - `/refuse-once`: `REFUSED_STREAM` the first time, then as `/ok`;
    /// - `/reset`: `RST_STREAM(INTERNAL_ERROR)` before any head;
    /// - `/long`: says `content-length: 3`, sends 10 bytes;
    /// - `/short`: says `content-length: 10`, sends 3 bytes and ends;
    /// - `/stall`: a head and 2 bytes, then nothing for 5 s;
    /// - `/stall/read`: never reads the request body nor answers (5 s);
    /// - `/slow`: an empty 200 after 1 s;
    /// - `/goaway`: as `/ok`, and its connection then says GOAWAY;
    /// - `/huge-head`: a 100 KB response field;
    /// - `/trailers`: a body, then trailers with `grpc-status: 7`;
    /// - `/echo`: the request body back, no length declared;
    /// - anything else: `200`, `content-length: 5`, `hello`, with
    ///   `x-seen-te` saying the request's `te`.
    pub fn start() -> H2Upstream {
        Self::start_with(None)
    }

    /// As [`H2Upstream::start`], announcing `SETTINGS_MAX_CONCURRENT_STREAMS`
    /// when given; `/slow` then answers after 1 s.
    pub fn start_with(max_streams: Option<u32>) -> H2Upstream {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = shared.clone();
                    tokio::spawn(async move {
                        state.connections.fetch_add(1, Ordering::SeqCst);
                        state.open.fetch_add(1, Ordering::SeqCst);
                        let mut builder = h2::server::Builder::new();
                        if let Some(n) = max_streams {
                            builder.max_concurrent_streams(n);
                        }
                        if let Ok(mut conn) = builder.handshake(tcp).await {
                            loop {
                                tokio::select! {
                                    accepted = conn.accept() => match accepted {
                                        Some(Ok((req, respond))) => {
                                            tokio::spawn(answer(state.clone(), req, respond));
                                        }
                                        _ => break,
                                    },
                                    () = state.goaway.notified() => conn.graceful_shutdown(),
                                }
                            }
                        }
                        state.open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        });
        H2Upstream { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<H2Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Connections still open.
    pub fn open(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }
}

async fn read_body(body: &mut RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    out
}

fn head(status: u16, fields: &[(&str, &str)]) -> Response<()> {
    let mut r = Response::builder().status(status);
    for (n, v) in fields {
        r = r.header(*n, *v);
    }
    r.body(()).unwrap()
}

async fn answer(state: Arc<State>, req: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let (parts, mut body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let te = parts
        .headers
        .get("te")
        .cloned()
        .unwrap_or(HeaderValue::from_static("-"));
    let echo = path == "/echo";
    let unread = echo || path.starts_with("/stall");
    let data = if unread { Vec::new() } else { read_body(&mut body).await };
    state.seen.lock().unwrap().push(H2Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts.headers.clone(),
        body: data,
    });
    match path.as_str() {
        "/refuse-once" if state.refused.fetch_add(1, Ordering::SeqCst) == 0 => {
            respond.send_reset(Reason::REFUSED_STREAM);
        }
        "/reset" => respond.send_reset(Reason::INTERNAL_ERROR),
        "/long" => {
            if let Ok(mut s) = respond.send_response(head(200, &[("content-length", "3")]), false) {
                let _ = s.send_data(Bytes::from_static(b"0123456789"), true);
            }
        }
        "/short" => {
            if let Ok(mut s) = respond.send_response(head(200, &[("content-length", "10")]), false) {
                let _ = s.send_data(Bytes::from_static(b"012"), true);
            }
        }
        "/stall" => {
            if let Ok(mut s) = respond.send_response(head(200, &[]), false) {
                let _ = s.send_data(Bytes::from_static(b"ab"), false);
                tokio::time::sleep(Duration::from_secs(5)).await;
                let _ = s.send_data(Bytes::from_static(b"cd"), true);
            }
        }
        "/stall/read" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop((respond, body));
        }
        "/goaway" => {
            if let Ok(mut s) = respond.send_response(head(200, &[("content-length", "5")]), false) {
                let _ = s.send_data(Bytes::from_static(b"hello"), true);
            }
            state.goaway.notify_one();
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = respond.send_response(head(200, &[("content-length", "0")]), true);
        }
        "/huge-head" => {
            let big = "v".repeat(100_000);
            let _ = respond.send_response(head(200, &[("x-big", &big)]), true);
        }
        "/trailers" => {
            if let Ok(mut s) = respond.send_response(head(200, &[("content-type", "application/grpc")]), false) {
                let _ = s.send_data(Bytes::from_static(b"payload"), false);
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", HeaderValue::from_static("7"));
                trailers.insert("grpc-message", HeaderValue::from_static("denied"));
                let _ = s.send_trailers(trailers);
            }
        }
        "/echo" => {
            if let Ok(mut s) = respond.send_response(head(200, &[]), false) {
                while let Some(Ok(chunk)) = body.data().await {
                    let _ = body.flow_control().release_capacity(chunk.len());
                    s.reserve_capacity(chunk.len());
                    let _ = std::future::poll_fn(|cx| s.poll_capacity(cx)).await;
                    if s.send_data(chunk, false).is_err() {
                        return;
                    }
                }
                let _ = s.send_data(Bytes::new(), true);
            }
        }
        _ => {
            let te = te.to_str().unwrap_or("?").to_owned();
            if let Ok(mut s) = respond.send_response(head(200, &[("content-length", "5"), ("x-seen-te", &te)]), false) {
                let _ = s.send_data(Bytes::from_static(b"hello"), true);
            }
        }
    }
}
