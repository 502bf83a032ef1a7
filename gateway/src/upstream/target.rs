//! Upstream targets, parsed once per plan: where to connect, the base path
//! to prepend, the pool slot, the process-wide state and the counters of
//! each; and the per-cluster pickers over the available upstreams.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use plan::Plan;

use super::health::{ClusterHealth, UpstreamState};
use crate::observe::stats::{ClusterStats, Stats};
use crate::observe::upstream_log::FailureLog;

/// One upstream, as the hot path needs it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as configured (for logs).
    pub url: String,
    /// `host:port` to connect to.
    pub authority: String,
    /// TLS settings, for an `https://` upstream.
    pub tls: Option<Arc<crate::tls::ClientTls>>,
    /// The host name when it is not an IP literal (re-resolved in the background).
    pub hostname: Option<String>,
    pub port: u16,
    /// Health, ejection, resolved addresses and connection counts.
    pub state: Arc<UpstreamState>,
    /// This upstream's cluster and its index in it.
    pub cluster: u32,
    pub index: usize,
    /// `pool.maxConnections` and `pool.maxRequestsPerConnection`.
    pub max_connections: Option<u32>,
    pub max_requests: Option<u32>,
    /// Path prefix to prepend, without trailing `/` (empty for none).
    pub base_path: String,
    /// Index into every worker's pool; stable across reloads for one authority.
    pub pool_id: usize,
    /// Idle pooled connections are closed after this long (`pool.idleMs`).
    pub idle_timeout: Duration,
    /// The cluster says `protocol: h2`: requests go over a shared HTTP/2
    /// connection (`H2Pool`) rather than a pooled HTTP/1.1 one.
    pub h2: bool,
    pub stats: Arc<ClusterStats>,
    /// Rate-limited `warn` lines for this upstream's failures.
    pub failures: Arc<FailureLog>,
}

/// Process-wide upstream registry: pool ids by authority (so a reloaded plan
/// reuses the pooled connections of upstreams it keeps), each upstream's
/// state by cluster and URL, and each cluster's picker.
#[derive(Debug, Default)]
pub struct Upstreams {
    /// Retry budgets by route name.
    pub budgets: super::budget::Budgets,
    pool_ids: Mutex<HashMap<String, usize>>,
    states: Mutex<HashMap<(String, String), Arc<UpstreamState>>>,
    clusters: Mutex<HashMap<String, Arc<ClusterHealth>>>,
}

/// The addresses `host` has in a hosts-format file (`ADDRESS NAME...` per
/// line, `#` comments), if it is listed there.
fn hosts_file_lookup(file: &str, host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let text = std::fs::read_to_string(file).ok()?;
    let addrs: Vec<SocketAddr> = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let ip: std::net::IpAddr = words.next()?.parse().ok()?;
            words
                .any(|n| n.eq_ignore_ascii_case(host))
                .then_some(SocketAddr::new(ip, port))
        })
        .collect();
    (!addrs.is_empty()).then_some(addrs)
}

/// Resolves `host:port`: first in the hosts-format file named by
/// `GATEWAY_HOSTS_FILE` when set (an operator's override, read again on
/// every resolution), else with the system resolver (`/etc/hosts`, DNS, as
/// `nsswitch.conf` says). Every address, in the order given.
pub fn resolve(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    if let Ok(file) = std::env::var("GATEWAY_HOSTS_FILE")
        && let Some(addrs) = hosts_file_lookup(&file, host, port)
    {
        return Ok(addrs);
    }
    let mut addrs: Vec<SocketAddr> = (host, port).to_socket_addrs()?.collect();
    addrs.dedup();
    Ok(addrs)
}

impl Upstreams {
    fn pool_id(&self, authority: &str) -> usize {
        let mut map = self.pool_ids.lock().unwrap_or_else(|e| e.into_inner());
        let next = map.len();
        *map.entry(authority.to_owned()).or_insert(next)
    }

    /// The state of `url` in `cluster`, kept from an earlier plan or made
    /// (resolving its host now when it is a name).
    fn state(&self, cluster: &str, url: &str, host: &str, port: u16) -> Arc<UpstreamState> {
        let key = (cluster.to_owned(), url.to_owned());
        if let Some(s) = self.states.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return s.clone();
        }
        let endpoints = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => resolve(host, port).unwrap_or_else(|e| {
                tracing::warn!(cluster, upstream = url, error = %e, "upstream host does not resolve yet; retried every dnsRefreshMs");
                Vec::new()
            }),
        };
        let state = Arc::new(UpstreamState::new(cluster, url, endpoints));
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, state.clone());
        state
    }

    /// Forgets the upstreams and clusters that `live` (the `(cluster, url)`
    /// pairs of the plan now serving) does not have, so a registry that sees
    /// upstreams come and go across reloads does not grow. Exchanges of an
    /// older plan still hold theirs.
    pub fn retain<'a>(&self, live: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let live: std::collections::HashSet<(&str, &str)> = live.into_iter().collect();
        self.states
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(cluster, url), _| live.contains(&(cluster.as_str(), url.as_str())));
        let clusters: std::collections::HashSet<&str> = live.iter().map(|(c, _)| *c).collect();
        self.clusters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, _| clusters.contains(name.as_str()));
    }

    /// The picker of `cluster`: the one kept from an earlier plan when its
    /// upstreams, weights and outlier rules are unchanged (the WRR position
    /// carries over), else a new one.
    fn cluster(&self, cluster: &plan::Cluster, states: Vec<Arc<UpstreamState>>) -> Arc<ClusterHealth> {
        let urls: Vec<&str> = cluster.upstreams.iter().map(|u| u.url.as_str()).collect();
        let weights: Vec<u32> = cluster.upstreams.iter().map(|u| u.weight).collect();
        let mut map = self.clusters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map
            .get(&cluster.name)
            .filter(|c| c.same(&urls, &weights, cluster.outlier))
        {
            return c.clone();
        }
        let c = Arc::new(ClusterHealth::new(&cluster.name, states, weights, cluster.outlier));
        map.insert(cluster.name.clone(), c.clone());
        c
    }
}

/// All targets of a plan, addressed by `(cluster, upstream)`.
#[derive(Debug)]
pub struct Targets {
    offsets: Vec<usize>,
    targets: Vec<Target>,
    /// Per cluster: the picker over its available upstreams.
    pub clusters: Vec<Arc<ClusterHealth>>,
}

impl Targets {
    /// A `tls.ca` file is read relative to `base_dir`.
    pub fn new(plan: &Plan, upstreams: &Upstreams, stats: &Stats, base_dir: &std::path::Path) -> Result<Self, String> {
        let mut offsets = Vec::with_capacity(plan.clusters.len());
        let mut targets = Vec::new();
        let mut clusters = Vec::with_capacity(plan.clusters.len());
        for (c, cluster) in plan.clusters.iter().enumerate() {
            offsets.push(targets.len());
            let cluster_stats = stats.clusters.get(c).cloned().ok_or("cluster without counters")?;
            let mut states = Vec::with_capacity(cluster.upstreams.len());
            let tls = match cluster.upstreams.iter().any(|u| u.url.starts_with("https://")) {
                true => Some(
                    crate::tls::client_config(cluster.tls.as_ref(), cluster.protocol, base_dir)
                        .map_err(|e| format!("clusters[{c}].{e}"))?,
                ),
                false => None,
            };
            for (i, u) in cluster.upstreams.iter().enumerate() {
                let mut t = parse_target(&u.url, upstreams, cluster, cluster_stats.clone(), tls.as_ref())?;
                t.cluster = c as u32;
                t.index = i;
                states.push(t.state.clone());
                targets.push(t);
            }
            clusters.push(upstreams.cluster(cluster, states));
        }
        Ok(Self {
            offsets,
            targets,
            clusters,
        })
    }

    /// Every target of the plan.
    pub fn all(&self) -> &[Target] {
        &self.targets
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

fn parse_target(
    url: &str,
    registry: &Upstreams,
    cluster: &plan::Cluster,
    stats: Arc<ClusterStats>,
    client_tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Target, String> {
    let uri: http::Uri = url.parse().map_err(|e| format!("upstream {url:?}: {e}"))?;
    let authority = uri
        .authority()
        .ok_or_else(|| format!("upstream {url:?}: no authority"))?;
    let https = uri.scheme_str() == Some("https");
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let host = authority.host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let hostname = bare.parse::<std::net::IpAddr>().is_err().then(|| bare.to_owned());
    let base_path = uri.path().trim_end_matches('/').to_owned();
    let authority = format!("{host}:{port}");
    let tls = match (https, client_tls) {
        (true, Some(config)) => Some(Arc::new(crate::tls::ClientTls {
            config: config.clone(),
            name: rustls::pki_types::ServerName::try_from(bare.to_owned())
                .map_err(|e| format!("upstream {url:?}: {e}"))?,
        })),
        _ => None,
    };
    // Pooled connections are shared only by upstreams that connect alike: a
    // TLS connection verified under one cluster's settings is not another's.
    // An HTTP/2 connection is never an HTTP/1.1 one.
    let h2 = cluster.protocol == plan::UpstreamProtocol::H2;
    let pool_key = match &cluster.tls {
        _ if !https => authority.clone(),
        Some(t) => format!("https://{authority} ca={:?} insecure={}", t.ca, t.insecure_skip_verify),
        None => format!("https://{authority}"),
    };
    let pool_key = if h2 { format!("h2 {pool_key}") } else { pool_key };
    Ok(Target {
        url: url.to_owned(),
        pool_id: registry.pool_id(&pool_key),
        tls,
        idle_timeout: Duration::from_millis(cluster.pool.idle_ms),
        h2,
        state: registry.state(&cluster.name, url, bare, port),
        authority,
        hostname,
        port,
        cluster: 0,
        index: 0,
        max_connections: cluster.pool.max_connections,
        max_requests: cluster.pool.max_requests_per_connection,
        base_path,
        stats,
        failures: Arc::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_registry_forgets_the_upstreams_a_plan_no_longer_has() {
        let registry = Upstreams::default();
        let a = registry.state("c", "http://127.0.0.1:1", "127.0.0.1", 1);
        let b = registry.state("c", "http://127.0.0.1:2", "127.0.0.1", 2);
        registry.retain([("c", "http://127.0.0.1:1")]);
        let kept = registry.state("c", "http://127.0.0.1:1", "127.0.0.1", 1);
        assert!(Arc::ptr_eq(&a, &kept), "a kept upstream keeps its state");
        let again = registry.state("c", "http://127.0.0.1:2", "127.0.0.1", 2);
        assert!(!Arc::ptr_eq(&b, &again), "a removed upstream was forgotten");
        assert_eq!(registry.states.lock().map(|m| m.len()).unwrap_or(0), 2);
    }
}
