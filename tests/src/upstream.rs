//! Upstream servers for tests: hyper on `127.0.0.1:0`, recording every request
//! they see and every connection they accept.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

/// What an upstream does with each request.
#[derive(Debug, Clone)]
pub enum Behavior {
    /// 200 with `x-upstream: NAME` and a body `NAME METHOD URI bytes=N sum=S`.
    Echo,
    /// Wait, then behave as `Echo`.
    Delay(Duration),
    /// Accept the connection and close it without answering.
    Reset,
    /// Answer with this status and an empty body.
    Status(u16),
    /// A chunked response of `chunks` chunks of `size` bytes of a repeating pattern.
    Stream { chunks: usize, size: usize },
    /// Send the head and part of a declared body, then close.
    CutBody,
    /// Answer each request on a keep-alive connection, then close the
    /// connection after it has been idle this long (an upstream idle timeout).
    IdleClose(Duration),
    /// Accept the connection and never read from it (nor answer).
    Stall,
    /// Read each request head (never a body), answer with these exact bytes,
    /// then close the connection if `close`, else wait for the next head;
    /// count the connection in `closed` when the peer closes it.
    Raw { response: &'static str, close: bool },
    /// Read one request head, record it, never answer; count the connection
    /// in `closed` when the peer closes it.
    Hold,
    /// Every other request (the first included) gets this status, the
    /// others an echo.
    Flaky(u16),
}

/// A request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
    pub body_sum: u64,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A running upstream; stopped when dropped.
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub name: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<AtomicUsize>,
    /// Connections the peer (the gateway) closed, as `Hold` and `Raw` saw them.
    pub closed: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Upstream {
    pub fn start(name: &str, behavior: Behavior) -> Upstream {
        Self::start_at(name, "127.0.0.1:0".parse().expect("addr"), behavior).expect("bind upstream")
    }

    /// As [`Upstream::start`] on a given address (to restart one in place).
    pub fn start_at(name: &str, addr: SocketAddr, behavior: Behavior) -> std::io::Result<Upstream> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let (s, c, n, k) = (seen.clone(), connections.clone(), name.to_owned(), closed.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            c.fetch_add(1, Ordering::SeqCst);
                            if matches!(behavior, Behavior::Reset) {
                                drop(stream);
                                continue;
                            }
                            let (s, n, b, k) = (s.clone(), n.clone(), behavior.clone(), k.clone());
                            tokio::spawn(async move {
                                if let Behavior::Hold = b {
                                    hold(stream, &s, &k).await;
                                    return;
                                }
                                if let Behavior::CutBody = b {
                                    cut_body(stream).await;
                                    return;
                                }
                                if let Behavior::Stall = b {
                                    // Held open, unread, until the upstream stops.
                                    let _held = stream;
                                    std::future::pending::<()>().await;
                                    return;
                                }
                                if let Behavior::Raw { response, close } = b {
                                    raw(stream, response, close, &k).await;
                                    return;
                                }
                                if let Behavior::IdleClose(idle) = b {
                                    idle_close(stream, idle, &n, &s).await;
                                    return;
                                }
                                let service = service_fn(move |req| handle(req, s.clone(), n.clone(), b.clone()));
                                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                            });
                        }
                        _ = &mut rx => return,
                    }
                }
            });
        });
        Ok(Upstream {
            addr,
            name: name.to_owned(),
            seen,
            connections,
            closed,
            shutdown: Some(tx),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().map(|s| s.len()).unwrap_or(0)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The byte at offset `i` of the streamed pattern.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    name: String,
    behavior: Behavior,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let mut len = 0usize;
    let mut sum = 0u64;
    let mut body = body;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            len += data.len();
            sum = data
                .iter()
                .fold(sum, |s, &b| s.wrapping_mul(31).wrapping_add(u64::from(b)));
        }
    }
    let record = Seen {
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body_len: len,
        body_sum: sum,
    };
    if let Ok(mut s) = seen.lock() {
        s.push(record);
    }
    let echo = |name: &str| {
        let text = format!("{name} {} {} bytes={len} sum={sum}", parts.method, parts.uri);
        Response::builder()
            .header("x-upstream", name)
            .body(Full::new(Bytes::from(text)).boxed())
            .unwrap_or_default()
    };
    Ok(match behavior {
        Behavior::Echo
        | Behavior::Reset
        | Behavior::CutBody
        | Behavior::IdleClose(_)
        | Behavior::Raw { .. }
        | Behavior::Hold
        | Behavior::Stall => echo(&name),
        Behavior::Delay(d) => {
            tokio::time::sleep(d).await;
            echo(&name)
        }
        Behavior::Flaky(code) if seen.lock().map(|s| s.len() % 2 == 1).unwrap_or(false) => Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
            .header("x-upstream", name.as_str())
            .body(Full::new(Bytes::new()).boxed())
            .unwrap_or_default(),
        Behavior::Flaky(_) => echo(&name),
        Behavior::Status(code) => Response::builder()
            .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
            .header("x-upstream", name.as_str())
            .body(Full::new(Bytes::new()).boxed())
            .unwrap_or_default(),
        Behavior::Stream { chunks, size } => Response::builder()
            .header("x-upstream", name.as_str())
            .body(
                Chunks {
                    left: chunks,
                    size,
                    offset: 0,
                }
                .boxed(),
            )
            .unwrap_or_default(),
    })
}

/// A body of `left` frames of `size` pattern bytes, produced lazily.
struct Chunks {
    left: usize,
    size: usize,
    offset: usize,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        self.left -= 1;
        let start = self.offset;
        let data: Vec<u8> = (start..start + self.size).map(pattern_byte).collect();
        self.offset += self.size;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from(data)))))
    }
}

async fn raw(mut stream: tokio::net::TcpStream, response: &str, close: bool, closed: &AtomicUsize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    loop {
        while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            got.drain(..end + 4);
            if stream.write_all(response.as_bytes()).await.is_err() || close {
                return;
            }
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

async fn cut_body(stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial")
        .await;
    let _ = stream.flush().await;
}

async fn idle_close(stream: tokio::net::TcpStream, idle: Duration, name: &str, seen: &Mutex<Vec<Seen>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = stream;
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    loop {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            match tokio::time::timeout(idle, stream.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => return, // idle too long (or EOF): close
            }
        }
        let end = got.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |i| i + 4);
        let head = String::from_utf8_lossy(&got[..end]).into_owned();
        got.drain(..end);
        let mut line = head.split(' ');
        let (method, uri) = (
            line.next().unwrap_or("").to_owned(),
            line.next().unwrap_or("").to_owned(),
        );
        if let Ok(mut s) = seen.lock() {
            s.push(Seen {
                method: method.clone(),
                uri: uri.clone(),
                headers: Vec::new(),
                body_len: 0,
                body_sum: 0,
            });
        }
        let body = format!("{name} {method} {uri} bytes=0 sum=0");
        let response = format!(
            "HTTP/1.1 200 OK\r\nx-upstream: {name}\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if stream.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn hold(stream: tokio::net::TcpStream, seen: &Mutex<Vec<Seen>>, closed: &AtomicUsize) {
    use tokio::io::AsyncReadExt;
    let mut stream = stream;
    let mut buf = vec![0u8; 16 * 1024];
    let mut got = Vec::new();
    let mut recorded = false;
    loop {
        if !recorded && let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let mut line = head.split(' ');
            if let Ok(mut s) = seen.lock() {
                s.push(Seen {
                    method: line.next().unwrap_or("").to_owned(),
                    uri: line.next().unwrap_or("").to_owned(),
                    headers: Vec::new(),
                    body_len: 0,
                    body_sum: 0,
                });
            }
            recorded = true;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                closed.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}
