//! A WebSocket echo upstream (tokio-tungstenite, a real WebSocket server
//! library) on `127.0.0.1:0`, recording each opening handshake's headers.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// Each opening handshake's headers (lowercase names), in arrival order.
pub type Handshakes = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// A running WebSocket echo server: every text or binary message comes back.
#[derive(Debug)]
pub struct WsUpstream {
    pub addr: SocketAddr,
    /// The headers of each opening handshake, lowercase names.
    pub handshakes: Handshakes,
}

impl WsUpstream {
    pub fn start() -> WsUpstream {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let handshakes: Handshakes = Arc::default();
        let seen = handshakes.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                while let Ok((stream, _)) = listener.accept().await {
                    let seen = seen.clone();
                    tokio::spawn(async move {
                        // The callback's error type is tungstenite's, not ours.
                        #[allow(clippy::result_large_err)]
                        let record = |req: &Request, resp: Response| {
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(n, v)| {
                                    (
                                        n.as_str().to_owned(),
                                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                    )
                                })
                                .collect();
                            if let Ok(mut s) = seen.lock() {
                                s.push(headers);
                            }
                            Ok(resp)
                        };
                        let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, record).await else {
                            return;
                        };
                        while let Some(Ok(msg)) = ws.next().await {
                            let echo = match msg {
                                Message::Text(_) | Message::Binary(_) => msg,
                                Message::Close(_) => break,
                                _ => continue,
                            };
                            if ws.send(echo).await.is_err() {
                                break;
                            }
                        }
                        let _ = ws.close(None).await;
                    });
                }
            });
        });
        WsUpstream { addr, handshakes }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
