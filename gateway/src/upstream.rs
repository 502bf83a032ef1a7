//! Upstream targets (parsed once per plan) and the per-thread connection pool on
//! hyper's client connection API: no lock, no cross-thread traffic.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use plan::Plan;
use tokio::net::TcpStream;

use crate::error::ErrorKind;
use crate::http1::body::ProxyBody;

/// One upstream, as the hot path needs it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured (for logs).
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// Resolved when the host is an IP literal; names resolve at connect time.
    pub addr: Option<SocketAddr>,
    /// Path prefix to prepend, without trailing `/` (empty for none).
    pub base_path: String,
}

/// All targets of a plan, addressed by `(cluster, upstream)`.
#[derive(Debug)]
pub struct Targets {
    offsets: Vec<usize>,
    targets: Vec<Target>,
}

impl Targets {
    pub fn new(plan: &Plan) -> Result<Self, String> {
        let mut offsets = Vec::with_capacity(plan.clusters.len());
        let mut targets = Vec::new();
        for cluster in &plan.clusters {
            offsets.push(targets.len());
            for u in &cluster.upstreams {
                targets.push(parse_target(&u.url)?);
            }
        }
        Ok(Self { offsets, targets })
    }

    /// Flat index of `(cluster, upstream)`, the pool's key.
    pub fn id(&self, cluster: u32, upstream: usize) -> usize {
        self.offsets[cluster as usize] + upstream
    }

    pub fn get(&self, id: usize) -> &Target {
        &self.targets[id]
    }

    pub fn len(&self) -> usize {
        self.targets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }
}

fn parse_target(url: &str) -> Result<Target, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("upstream {url:?}: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("upstream {url:?}: no authority"))?;
    let port = authority.port_u16().unwrap_or(80);
    let host = authority.host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addr = bare
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| SocketAddr::new(ip, port));
    let base_path = uri.path().trim_end_matches('/').to_owned();
    Ok(Target {
        url: url.to_owned(),
        authority: format!("{host}:{port}"),
        addr,
        base_path,
    })
}

pub type Sender = SendRequest<ProxyBody>;

/// Idle upstream connections of one worker thread, per target.
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<Vec<Vec<Sender>>>,
    max_idle: usize,
}

impl Pool {
    pub fn new(targets: usize, max_idle: usize) -> Self {
        Self {
            idle: RefCell::new((0..targets).map(|_| Vec::new()).collect()),
            max_idle,
        }
    }

    /// A live idle connection to `id`, if any; dead ones are dropped on the way.
    pub fn checkout(&self, id: usize) -> Option<Sender> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(id)?;
        while let Some(sender) = list.pop() {
            if sender.is_ready() && !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Returns a connection whose exchange is complete.
    pub fn checkin(&self, id: usize, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.borrow_mut();
        if let Some(list) = idle.get_mut(id)
            && list.len() < self.max_idle
        {
            list.push(sender);
        }
    }

    /// Idle connections currently held, for the pool gauge.
    pub fn idle_count(&self) -> usize {
        self.idle.borrow().iter().map(Vec::len).sum()
    }
}

/// Opens a connection to `target` within `timeout` and starts its hyper driver
/// on this thread.
pub async fn connect(target: &Target, timeout: Duration) -> Result<Sender, ErrorKind> {
    let connecting = async {
        match target.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(target.authority.as_str()).await,
        }
    };
    let stream = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => return Err(ErrorKind::ConnectTimeout),
        Ok(Err(_)) => return Err(ErrorKind::ConnectFailed),
        Ok(Ok(s)) => s,
    };
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|_| ErrorKind::ConnectFailed)?;
    tokio::task::spawn_local(async move {
        // The driver ends when the connection closes; its error, if any, has
        // already reached the request that was using it.
        let _ = conn.await;
    });
    Ok(sender)
}
