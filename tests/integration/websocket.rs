//! SPEC §14 WebSocket tunnels through the real binary, with a real WebSocket
//! client and server (tokio-tungstenite): the upgrade forwarded and the 101
//! relayed, messages both ways, one log line at close with the bytes,
//! `gateway_tunnels_active`, `tunnelIdleMs`, reloads that leave tunnels
//! alone, a drain that cuts them at its deadline, and other upgrades dropped.

use std::time::{Duration, Instant};

use futures_util::{SinkExt as _, StreamExt as _};
use gateway_tests::websocket::WsUpstream;
use gateway_tests::{Behavior, Client, Gateway, Upstream};
use tokio_tungstenite::tungstenite::Message;

fn config(up_url: &str, extra: &str) -> String {
    format!(
        "{extra}accessLog:\n  json:\n    fields: [method, path, status, upstreamStatus, bytesSent, error]\nroutes:\n  - {{ name: ws, pathPrefix: /, cluster: c }}\nclusters:\n  - {{ name: c, upstreams: [{{ url: \"{up_url}\" }}] }}\n"
    )
}

fn start(yaml: &str) -> Gateway {
    Gateway::start_with(yaml, &["--admin", "127.0.0.1:0", "--threads", "1"])
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(gw: &Gateway, path: &str) -> Ws {
    let (ws, response) = tokio_tungstenite::connect_async(format!("ws://{}{path}", gw.addr))
        .await
        .expect("WebSocket handshake through the gateway");
    assert_eq!(response.status(), 101);
    ws
}

async fn echo(ws: &mut Ws, msg: Message) -> Message {
    ws.send(msg).await.expect("send");
    tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("an answer in time")
        .expect("a message")
        .expect("no error")
}

#[test]
fn messages_flow_both_ways_and_the_tunnel_is_logged_once_at_close() {
    let up = WsUpstream::start();
    let gw = start(&config(&up.url(), ""));
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&gw, "/chat?room=1").await;
        assert_eq!(echo(&mut ws, Message::text("hello")).await, Message::text("hello"));
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(echo(&mut ws, Message::binary(big.clone())).await, Message::binary(big));
        assert_eq!(gw.metric("gateway_tunnels_active"), 1.0);
        assert!(gw.log_lines().is_empty(), "nothing is logged while the tunnel is open");
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
    });
    let lines = gw.wait_log_lines(1, Duration::from_secs(5));
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["status"], 101);
    assert_eq!(line["upstreamStatus"], 101);
    assert_eq!(line["path"], "/chat");
    assert_eq!(line["error"], serde_json::Value::Null);
    assert!(line["bytesSent"].as_u64().unwrap() > 200_000, "{line}");
    assert_eq!(gw.wait_metric_below("gateway_tunnels_active", 0.0), 0.0);

    let handshake = &up.handshakes.lock().unwrap()[0];
    let header = |n: &str| handshake.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    assert_eq!(header("connection"), Some("upgrade"));
    assert_eq!(header("upgrade"), Some("websocket"));
    assert!(header("sec-websocket-key").is_some());
    assert!(header("x-forwarded-for").is_some());
}

#[test]
fn an_idle_tunnel_closes_after_tunnel_idle_ms() {
    let up = WsUpstream::start();
    let gw = start(&config(&up.url(), "defaults:\n  timeouts: { tunnelIdleMs: 300 }\n"));
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&gw, "/idle").await;
        assert_eq!(echo(&mut ws, Message::text("a")).await, Message::text("a"));
        let began = Instant::now();
        // The gateway closes the connection: the stream ends (or errors).
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match ws.next().await {
                    Some(Ok(_)) => {}
                    _ => return,
                }
            }
        })
        .await;
        assert!(end.is_ok(), "the idle tunnel was not closed");
        assert!(began.elapsed() >= Duration::from_millis(250));
    });
    assert_eq!(gw.wait_log_lines(1, Duration::from_secs(5)).len(), 1);
}

#[test]
fn a_reload_leaves_tunnels_alone_and_a_drain_cuts_them_at_its_deadline() {
    let up = WsUpstream::start();
    let yaml = config(&up.url(), "drainMs: 700\n");
    let gw = start(&yaml);
    let rt = runtime();
    rt.block_on(async {
        let mut ws = open(&gw, "/long").await;
        // A reload with a changed config.
        std::fs::write(gw.dir.join("gateway.yaml"), yaml.replace("name: ws,", "name: ws2,")).unwrap();
        let mut admin = Client::connect(gw.admin.unwrap()).unwrap();
        admin
            .send(b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\n\r\n")
            .unwrap();
        assert_eq!(admin.read_response(false).unwrap().status, 200);
        assert_eq!(
            echo(&mut ws, Message::text("still here")).await,
            Message::text("still here")
        );

        let began = Instant::now();
        gw.signal(15);
        // Drain: still relaying until the deadline...
        assert_eq!(
            echo(&mut ws, Message::text("draining")).await,
            Message::text("draining")
        );
        // ...then cut.
        let end = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        assert!(end.is_ok());
        let cut_after = began.elapsed();
        assert!(
            cut_after >= Duration::from_millis(500) && cut_after < Duration::from_secs(4),
            "{cut_after:?}"
        );
    });
    let lines = gw.wait_log_lines(1, Duration::from_secs(5));
    let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(line["status"], 101);
    assert_eq!(line["error"], "shutdown");
}

#[test]
fn other_upgrades_are_dropped_and_a_refused_upgrade_is_an_ordinary_response() {
    // An h2c upgrade is not a tunnel: Upgrade and Connection are hop-by-hop.
    let plain = Upstream::start("plain", Behavior::Echo);
    let gw = start(&config(&plain.url(), ""));
    let mut c = Client::connect(gw.addr).unwrap();
    c.send(b"GET /h2c HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    let seen = &plain.requests()[0];
    assert_eq!(seen.header("upgrade"), None);
    assert_eq!(seen.header("http2-settings"), None);
    assert_eq!(seen.header("connection"), None);
    // A WebSocket upgrade the upstream does not take (an HTTP server answers
    // 200): relayed as it is, and the connection carries the next request.
    c.send(b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
        .unwrap();
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert_eq!(plain.requests()[1].header("upgrade"), Some("websocket"));
    assert_eq!(c.get("h", "/after").unwrap().status, 200);
    // A 101 to a request that did not ask for WebSocket is a bad response.
    let liar = Upstream::start(
        "liar",
        Behavior::Raw {
            response: "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
            close: false,
        },
    );
    let gw = start(&config(&liar.url(), ""));
    let r = Client::connect(gw.addr).unwrap().get("h", "/").unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(r.header("x-gateway-error"), Some("bad_response"));
}

/// wss://: the tunnel runs over a TLS client connection as over a plain one
/// (tungstenite's client over a rustls stream).
#[test]
fn a_tunnel_runs_over_tls() {
    use gateway_tests::certs::self_signed;
    use gateway_tests::{TlsOptions, scratch_dir};
    let up = WsUpstream::start();
    let dir = scratch_dir("wss");
    let site = self_signed(&dir, "site", &["site.test"], 30);
    let yaml = config(
        &up.url(),
        &format!(
            "tls:\n  listen: 127.0.0.1:0\n  certificates: [{{ cert: {}, key: {} }}]\n",
            site.cert, site.key
        ),
    );
    let gw = Gateway::start_in(dir, &yaml, &["--threads", "1"]);
    let tls_addr = gw.tls.unwrap();
    let stream = gateway_tests::client::tls_stream(
        tls_addr,
        &TlsOptions {
            sni: Some("site.test"),
            ..TlsOptions::default()
        },
    )
    .unwrap();
    let url = format!("wss://site.test:{}/secure", tls_addr.port());
    let (mut ws, response) = tokio_tungstenite::tungstenite::client(url.as_str(), stream).expect("wss handshake");
    assert_eq!(response.status(), 101);
    for text in ["one", "two"] {
        ws.send(Message::text(text)).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text));
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let lines = gw.wait_log_lines(1, Duration::from_secs(5));
    assert!(lines[0].contains("\"status\":101"), "{lines:?}");
}
