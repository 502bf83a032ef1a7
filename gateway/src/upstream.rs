//! Upstream targets (parsed once per plan) and the per-thread pool of upstream
//! connections: no lock, no cross-thread traffic, no task per connection.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use plan::Plan;
use tokio::net::TcpStream;

use crate::error::ErrorKind;
use crate::stats::{ClusterStats, Stats};

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
    /// Index into every worker's pool; stable across reloads for one authority.
    pub pool_id: usize,
    /// Idle pooled connections are closed after this long (`pool.idleMs`).
    pub idle_timeout: Duration,
    pub stats: Arc<ClusterStats>,
}

/// Pool ids by authority, process-wide, so a reloaded plan reuses the pooled
/// connections of upstreams it keeps.
#[derive(Debug, Default)]
pub struct PoolIds(Mutex<HashMap<String, usize>>);

impl PoolIds {
    fn get(&self, authority: &str) -> usize {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let next = map.len();
        *map.entry(authority.to_owned()).or_insert(next)
    }
}

/// All targets of a plan, addressed by `(cluster, upstream)`.
#[derive(Debug)]
pub struct Targets {
    offsets: Vec<usize>,
    targets: Vec<Target>,
}

impl Targets {
    pub fn new(plan: &Plan, ids: &PoolIds, stats: &Stats) -> Result<Self, String> {
        let mut offsets = Vec::with_capacity(plan.clusters.len());
        let mut targets = Vec::new();
        for (c, cluster) in plan.clusters.iter().enumerate() {
            offsets.push(targets.len());
            let cluster_stats = stats.clusters.get(c).cloned().ok_or("cluster without counters")?;
            let idle_timeout = Duration::from_millis(cluster.pool.idle_ms);
            for u in &cluster.upstreams {
                targets.push(parse_target(&u.url, ids, cluster_stats.clone(), idle_timeout)?);
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

fn parse_target(url: &str, ids: &PoolIds, stats: Arc<ClusterStats>, idle_timeout: Duration) -> Result<Target, String> {
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
    let authority = format!("{host}:{port}");
    Ok(Target {
        url: url.to_owned(),
        pool_id: ids.get(&authority),
        idle_timeout,
        authority,
        addr,
        base_path,
        stats,
    })
}

/// One upstream connection: the socket and what has been read from it but not
/// yet consumed. Idle in the pool between exchanges.
#[derive(Debug)]
pub struct UpstreamConn {
    pub stream: TcpStream,
    pub rbuf: BytesMut,
    /// It has carried an exchange before (a failure before any response byte
    /// may then be the upstream closing it while idle, and is retried once).
    pub reused: bool,
    /// While pooled: when it stops being reusable (`idleMs` after checkin).
    expires: Instant,
    stats: Arc<ClusterStats>,
}

impl Drop for UpstreamConn {
    fn drop(&mut self) {
        self.stats.connections_open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl UpstreamConn {
    /// Whether the idle connection is still usable: the upstream has neither
    /// closed it nor sent unsolicited bytes. Costs a syscall only when the
    /// reactor has seen the socket become readable.
    fn is_alive(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        match self.stream.poll_read_ready(&mut cx) {
            Poll::Pending => true,
            Poll::Ready(Err(_)) => false,
            Poll::Ready(Ok(())) => {
                let mut probe = [0u8; 1];
                matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
        }
    }
}

/// Idle upstream connections of one worker thread, by [`Target::pool_id`].
#[derive(Debug)]
pub struct Pool {
    idle: RefCell<Vec<Vec<UpstreamConn>>>,
    max_idle: usize,
}

impl Pool {
    pub fn new(max_idle: usize) -> Self {
        Self {
            idle: RefCell::new(Vec::new()),
            max_idle,
        }
    }

    /// A live idle connection to `target`, if any; dead and expired ones are
    /// dropped on the way.
    pub fn checkout(&self, target: &Target) -> Option<UpstreamConn> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(target.pool_id)?;
        let now = Instant::now();
        while let Some(mut conn) = list.pop() {
            conn.stats.connections_idle.fetch_sub(1, Ordering::Relaxed);
            if conn.expires > now && conn.is_alive() {
                return Some(conn);
            }
        }
        None
    }

    /// Closes idle connections whose `idleMs` has passed, so no upstream's own
    /// keep-alive timeout races a request on them.
    pub fn close_idle(&self, now: Instant) {
        let mut idle = self.idle.borrow_mut();
        for list in idle.iter_mut() {
            list.retain(|conn| {
                let keep = conn.expires > now;
                if !keep {
                    conn.stats.connections_idle.fetch_sub(1, Ordering::Relaxed);
                }
                keep
            });
        }
    }

    /// Returns a connection whose exchange is complete and that may carry another.
    pub fn checkin(&self, target: &Target, mut conn: UpstreamConn) {
        let mut idle = self.idle.borrow_mut();
        if idle.len() <= target.pool_id {
            idle.resize_with(target.pool_id + 1, Vec::new);
        }
        let list = &mut idle[target.pool_id];
        if list.len() < self.max_idle {
            conn.reused = true;
            conn.expires = Instant::now() + target.idle_timeout;
            conn.stats.connections_idle.fetch_add(1, Ordering::Relaxed);
            list.push(conn);
        }
    }
}

/// Read buffer of an upstream connection (a response head must fit in it).
const UPSTREAM_BUF: usize = 32 * 1024;

/// Opens a connection to `target` within `timeout`.
pub async fn connect(target: &Target, timeout: Duration) -> Result<UpstreamConn, ErrorKind> {
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
    target.stats.connections_open.fetch_add(1, Ordering::Relaxed);
    Ok(UpstreamConn {
        stream,
        rbuf: BytesMut::with_capacity(UPSTREAM_BUF),
        reused: false,
        expires: Instant::now(),
        stats: target.stats.clone(),
    })
}
