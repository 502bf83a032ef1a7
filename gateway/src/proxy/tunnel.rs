//! WebSocket tunnels (SPEC §14). After the upstream's `101`, bytes are relayed
//! both ways as they come, until the upstream closes, the client closes and
//! the upstream has said what it had to, or `tunnelIdleMs` passes without a
//! byte either way. The exchange is logged once, when the tunnel closes, with
//! its whole duration and the bytes sent to the client. A reload never
//! touches a tunnel (it holds its own generation); a drain waits for it until
//! the deadline, then cuts it like any exchange in flight.

use std::io::IoSlice;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::client::side::Client;
use crate::error::kind::{ErrorKind, Failure};
use crate::observe::exchange::Exchange;
use crate::proxy::forward::Sent;
use crate::session::Session;
use crate::upstream::UpstreamConn;

/// Counts a tunnel in `gateway_tunnels_active` for as long as it lives,
/// however it ends (a drain cut drops it).
struct Active<'a>(&'a AtomicI64);

impl<'a> Active<'a> {
    fn enter(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What one wait of the relay brought.
enum Event {
    Client(std::io::Result<usize>),
    Upstream(std::io::Result<usize>),
    Idle,
}

/// Sends the `101` head (encoded in `wbuf`) and what the upstream sent after
/// it, then relays until the tunnel ends. The client connection closes with
/// the tunnel.
pub async fn relay<C: Client>(s: &mut Session<'_, C>, ex: &mut Exchange, sent: Sent) -> Result<(), Failure> {
    let Sent { mut up, waited, .. } = sent;
    ex.upstream_status = Some(101);
    ex.upstream_duration = Some(waited);
    s.ka.disable();
    let worker = s.conn.worker.clone();
    let _active = Active::enter(&worker.shared.registry.global.tunnels_active);
    let idle = s.timeouts.tunnel_idle;
    crate::proxy::respond::send_head(s, ex, &up.rbuf).await?;
    ex.status = 101;
    up.rbuf.clear();
    let Some((client, client_buf)) = s.conn.client.tunnel() else {
        return Err(ErrorKind::BadResponse.into());
    };

    // What the client sent after its request head is the tunnel's first bytes.
    if !client_buf.is_empty() && !to_upstream(&up, client_buf, idle).await {
        return Ok(());
    }
    let mut client_open = true;
    loop {
        let event = tokio::select! {
            read = client.read_buf(client_buf), if client_open => Event::Client(read),
            read = up.stream.read_buf(&mut up.rbuf) => Event::Upstream(read),
            () = tokio::time::sleep(idle) => Event::Idle,
        };
        match event {
            Event::Client(Ok(n)) if n > 0 => {
                if !to_upstream(&up, client_buf, idle).await {
                    return Ok(());
                }
            }
            Event::Client(_) => {
                // The client is done sending: the upstream hears so, and may
                // still answer (a WebSocket close handshake).
                client_open = false;
                up.stream.shutdown_write();
            }
            Event::Upstream(Ok(n)) if n > 0 => {
                let mut bufs = [IoSlice::new(&up.rbuf)];
                match tokio::time::timeout(idle, client.write_all(&mut bufs)).await {
                    Ok(Ok(())) => ex.bytes_sent += n as u64,
                    _ => return Ok(()),
                }
                up.rbuf.clear();
            }
            Event::Upstream(_) | Event::Idle => return Ok(()),
        }
    }
}

/// Writes the client's bytes to the upstream (each write bounded by the idle
/// time); `false` when the upstream no longer takes them.
async fn to_upstream(up: &UpstreamConn, buf: &mut bytes::BytesMut, idle: Duration) -> bool {
    let mut bufs = [IoSlice::new(buf)];
    let sent = matches!(
        tokio::time::timeout(idle, up.stream.write_all(&mut bufs)).await,
        Ok(Ok(()))
    );
    buf.clear();
    sent
}
