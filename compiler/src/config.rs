//! The config as the user wrote it: each value with its location, read from YAML
//! with value-local checks (types, ranges, URL and host syntax). Cross-references
//! are checked by `lower`.

use std::net::SocketAddr;

use marked_yaml::Node;
use plan::{LogField, OnError, split_prefix};

use crate::diag::{Loc, suggestion};
use crate::keys;
use crate::route::RouteCfg;
use crate::yaml::{Reader, Spanned, join, loc, to_json};

/// Largest timeout accepted anywhere: one day.
pub const MAX_TIMEOUT_MS: i128 = 86_400_000;

#[derive(Debug, Default)]
pub struct Config {
    pub listen: Option<Spanned<SocketAddr>>,
    pub admin_listen: Option<Spanned<SocketAddr>>,
    pub limits: LimitsCfg,
    pub drain_ms: Option<u64>,
    pub shutdown_delay_ms: Option<u64>,
    pub defaults: TimeoutsCfg,
    pub routes: Vec<RouteCfg>,
    /// `routes` was present but not a list (already reported).
    pub routes_invalid: bool,
    pub clusters: Vec<ClusterCfg>,
    pub access_log: AccessLogCfg,
    pub policies: Vec<PolicyCfg>,
    pub tls: Option<TlsCfg>,
    pub http2: Http2Cfg,
}

/// The top-level `http2` block (SPEC §14).
#[derive(Debug, Default)]
pub struct Http2Cfg {
    pub max_concurrent_streams: Option<u64>,
    pub cleartext: Option<bool>,
}

/// The top-level `tls` listener (SPEC §14).
#[derive(Debug)]
pub struct TlsCfg {
    pub loc: Loc,
    pub listen: Option<Spanned<SocketAddr>>,
    pub certificates: Vec<CertCfg>,
    pub min_version: plan::TlsVersion,
    pub alpn: Vec<Spanned<String>>,
}

/// One `tls.certificates[]` entry: a certificate chain and its key, by path.
#[derive(Debug)]
pub struct CertCfg {
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
}

/// ALPN protocols the TLS listener can offer, in the default order.
pub const ALPN_SERVED: &[&str] = &["h2", "http/1.1"];

#[derive(Debug, Default)]
pub struct LimitsCfg {
    pub max_header_bytes: Option<u64>,
    pub max_headers: Option<u64>,
    pub max_connections: Option<u64>,
    pub max_request_body_bytes: Option<u64>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct TimeoutsCfg {
    pub read_ms: Option<u64>,
    pub write_ms: Option<u64>,
    pub upstream_ms: Option<u64>,
    pub connect_ms: Option<u64>,
    pub idle_ms: Option<u64>,
    pub handshake_ms: Option<u64>,
    pub tunnel_idle_ms: Option<u64>,
}

#[derive(Debug)]
pub struct ClusterCfg {
    pub loc: Loc,
    pub name: Option<Spanned<String>>,
    pub upstreams: Vec<UpstreamCfg>,
    pub pool: plan::PoolSettings,
    pub health_check: Option<plan::HealthCheck>,
    pub outlier: plan::Outlier,
    pub dns_refresh_ms: Option<u64>,
    pub tls: Option<UpstreamTlsCfg>,
    pub protocol: plan::UpstreamProtocol,
}

/// A cluster's `tls`: how its `https://` upstreams are verified.
#[derive(Debug)]
pub struct UpstreamTlsCfg {
    pub loc: Loc,
    pub ca: Option<Spanned<String>>,
    pub insecure_skip_verify: Option<Spanned<bool>>,
}

#[derive(Debug)]
pub struct UpstreamCfg {
    pub url: String,
    pub weight: u32,
}

#[derive(Debug, Default)]
pub struct AccessLogCfg {
    pub enabled: Option<bool>,
    pub path: Option<String>,
    /// Where `path` was written.
    pub path_loc: Loc,
    pub fields: Option<Vec<LogField>>,
}

#[derive(Debug)]
pub struct PolicyCfg {
    pub loc: Loc,
    pub name: Option<Spanned<String>>,
    pub module: Option<Spanned<String>>,
    pub config: serde_json::Value,
    pub clusters: Vec<Spanned<String>>,
    pub fuel: Option<u64>,
    pub memory_pages: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub on_error: OnError,
}

impl Reader<'_> {
    pub(crate) fn addr(&mut self, node: &Node, path: &str) -> Option<Spanned<SocketAddr>> {
        let s = self.string(node, path)?;
        match s.value.parse::<SocketAddr>() {
            Ok(addr) => Some(Spanned {
                value: addr,
                loc: s.loc,
                path: s.path,
            }),
            Err(_) => {
                self.diags.error(
                    s.loc,
                    path,
                    format!(
                        "invalid address {:?}: expected IP:PORT, e.g. \"127.0.0.1:8080\"",
                        s.value
                    ),
                );
                None
            }
        }
    }

    pub(crate) fn timeouts(&mut self, node: &Node, path: &str, per_route: bool) -> TimeoutsCfg {
        let mut t = TimeoutsCfg::default();
        let Some(map) = self.mapping(node, path, keys::TIMEOUTS) else {
            return t;
        };
        for (key, value) in map.iter() {
            let p = join(path, key.as_str());
            let slot = match key.as_str() {
                "readMs" => &mut t.read_ms,
                "writeMs" => &mut t.write_ms,
                "upstreamMs" => &mut t.upstream_ms,
                "connectMs" => &mut t.connect_ms,
                "idleMs" if per_route => {
                    self.diags.error(
                        loc(value),
                        p,
                        "idleMs applies to client connections, not routes; set it in defaults.timeouts",
                    );
                    continue;
                }
                "idleMs" => &mut t.idle_ms,
                "handshakeMs" if per_route => {
                    self.diags.error(
                        loc(value),
                        p,
                        "handshakeMs applies to TLS connections, before any route is known; set it in defaults.timeouts",
                    );
                    continue;
                }
                "handshakeMs" => &mut t.handshake_ms,
                "tunnelIdleMs" => &mut t.tunnel_idle_ms,
                _ => continue,
            };
            *slot = self.integer(value, &p, 1, MAX_TIMEOUT_MS, " ms").map(|v| v.value);
        }
        t
    }

    fn upstream(&mut self, node: &Node, path: &str) -> Option<UpstreamCfg> {
        let map = self.mapping(node, path, keys::UPSTREAM)?;
        let url = match map.get_node("url") {
            Some(v) => self.string(v, &join(path, "url")).and_then(|u| {
                check_upstream_url(&u.value)
                    .map_err(|e| self.diags.error(u.loc, &u.path, e))
                    .ok()
            }),
            None => {
                self.diags.error(loc(node), join(path, "url"), "missing required field");
                None
            }
        };
        let weight = match map.get_node("weight") {
            Some(v) => self
                .integer(v, &join(path, "weight"), 1, 1_000_000, "")
                .map(|w| w.value as u32),
            None => Some(1),
        };
        Some(UpstreamCfg {
            url: url?,
            weight: weight?,
        })
    }

    fn cluster(&mut self, node: &Node, path: &str) -> Option<ClusterCfg> {
        let map = self.mapping(node, path, keys::CLUSTER)?;
        let mut cluster = ClusterCfg {
            loc: loc(node),
            name: None,
            upstreams: Vec::new(),
            pool: plan::PoolSettings::default(),
            health_check: None,
            outlier: plan::Outlier::default(),
            dns_refresh_ms: None,
            tls: None,
            protocol: plan::UpstreamProtocol::Http1,
        };
        if let Some(v) = map.get_node("tls") {
            cluster.tls = self.upstream_tls(v, &join(path, "tls"));
        }
        if let Some(v) = map.get_node("pool") {
            cluster.pool = self.pool(v, &join(path, "pool"));
        }
        if let Some(v) = map.get_node("healthCheck") {
            cluster.health_check = self.health_check(v, &join(path, "healthCheck"));
        }
        if let Some(v) = map.get_node("outlier") {
            cluster.outlier = self.outlier(v, &join(path, "outlier"));
        }
        if let Some(v) = map.get_node("protocol")
            && let Some(c) = self.choice(v, &join(path, "protocol"), &["http1", "h2"])
            && c.value == "h2"
        {
            cluster.protocol = plan::UpstreamProtocol::H2;
        }
        if let Some(v) = map.get_node("dnsRefreshMs") {
            cluster.dns_refresh_ms = self
                .integer(v, &join(path, "dnsRefreshMs"), 100, MAX_TIMEOUT_MS, " ms")
                .map(|v| v.value);
        }
        match map.get_node("name") {
            Some(v) => cluster.name = self.string(v, &join(path, "name")),
            None => self
                .diags
                .error(cluster.loc, join(path, "name"), "missing required field"),
        }
        if let Some(v) = map.get_node("lb") {
            self.choice(v, &join(path, "lb"), &["wrr"]);
        }
        let p = join(path, "upstreams");
        match map.get_node("upstreams") {
            Some(v) => {
                if let Some(seq) = self.sequence(v, &p) {
                    if seq.is_empty() {
                        self.diags.error(loc(v), &p, "must list at least one upstream");
                    }
                    let mut first_at: std::collections::HashMap<String, u32> = std::collections::HashMap::new();
                    for (i, item) in seq.iter().enumerate() {
                        if let Some(u) = self.upstream(item, &format!("{p}[{i}]")) {
                            let at = loc(item);
                            match first_at.get(&u.url) {
                                // One upstream under two entries: one health,
                                // one pool, its picks the two weights added.
                                Some(line) => self.diags.warning(
                                    at,
                                    format!("{p}[{i}]"),
                                    format!(
                                        "{:?} is listed twice in this cluster (first at line {line}); it is one upstream, picked by the two weights added",
                                        u.url
                                    ),
                                ),
                                None => {
                                    first_at.insert(u.url.clone(), at.line);
                                }
                            }
                            cluster.upstreams.push(u);
                        }
                    }
                } else {
                    self.diags.error(loc(v), &p, "must list at least one upstream");
                }
            }
            None => self.diags.error(cluster.loc, &p, "missing required field"),
        }
        Some(cluster)
    }

    fn access_log(&mut self, node: &Node, path: &str) -> AccessLogCfg {
        let mut log = AccessLogCfg::default();
        let Some(map) = self.mapping(node, path, keys::ACCESS_LOG) else {
            return log;
        };
        if let Some(v) = map.get_node("enabled") {
            log.enabled = self.boolean(v, &join(path, "enabled"));
        }
        if let Some(v) = map.get_node("path") {
            log.path_loc = loc(v);
            log.path = self.string(v, &join(path, "path")).map(|s| s.value);
        }
        if let Some(v) = map.get_node("json") {
            let jp = join(path, "json");
            if let Some(json) = self.mapping(v, &jp, keys::ACCESS_LOG_JSON)
                && let Some(fv) = json.get_node("fields")
            {
                let fp = join(&jp, "fields");
                if let Some(seq) = self.sequence(fv, &fp) {
                    let mut fields = Vec::new();
                    for (i, item) in seq.iter().enumerate() {
                        let ip = format!("{fp}[{i}]");
                        let Some(name) = self.string(item, &ip) else { continue };
                        match LogField::from_name(&name.value) {
                            Some(f) if fields.contains(&f) => {
                                self.diags
                                    .error(name.loc, &ip, format!("field {:?} is listed twice", name.value));
                            }
                            Some(f) => fields.push(f),
                            None => self.diags.error(
                                name.loc,
                                &ip,
                                format!(
                                    "unknown access-log field {:?}{}",
                                    name.value,
                                    suggestion(&name.value, LogField::ALL.iter().map(|f| f.name()))
                                ),
                            ),
                        }
                    }
                    if fields.is_empty() && seq.is_empty() {
                        self.diags.error(loc(fv), &fp, "must list at least one field");
                    }
                    log.fields = Some(fields);
                }
            }
        }
        log
    }

    fn policy(&mut self, node: &Node, path: &str) -> Option<PolicyCfg> {
        let map = self.mapping(node, path, keys::POLICY)?;
        let mut policy = PolicyCfg {
            loc: loc(node),
            name: None,
            module: None,
            config: serde_json::Value::Null,
            clusters: Vec::new(),
            fuel: None,
            memory_pages: None,
            timeout_ms: None,
            on_error: OnError::Deny,
        };
        for key in ["name", "module"] {
            match map.get_node(key) {
                Some(v) => {
                    let s = self.string(v, &join(path, key));
                    if key == "name" {
                        policy.name = s;
                    } else {
                        policy.module = s;
                    }
                }
                None => self.diags.error(policy.loc, join(path, key), "missing required field"),
            }
        }
        if let Some(v) = map.get_node("config") {
            policy.config = to_json(v);
        }
        if let Some(v) = map.get_node("clusters") {
            let cp = join(path, "clusters");
            if let Some(seq) = self.sequence(v, &cp) {
                for (i, item) in seq.iter().enumerate() {
                    if let Some(name) = self.string(item, &format!("{cp}[{i}]")) {
                        policy.clusters.push(name);
                    }
                }
            }
        }
        if let Some(v) = map.get_node("limits") {
            let lp = join(path, "limits");
            if let Some(limits) = self.mapping(v, &lp, keys::POLICY_LIMITS) {
                if let Some(f) = limits.get_node("fuel") {
                    policy.fuel = self
                        .integer(f, &join(&lp, "fuel"), 1, i128::from(u64::MAX >> 1), "")
                        .map(|v| v.value);
                }
                if let Some(m) = limits.get_node("memoryPages") {
                    policy.memory_pages = self
                        .integer(m, &join(&lp, "memoryPages"), 1, 65_536, " pages")
                        .map(|v| v.value);
                }
                if let Some(t) = limits.get_node("timeoutMs") {
                    policy.timeout_ms = self
                        .integer(t, &join(&lp, "timeoutMs"), 1, 60_000, " ms")
                        .map(|v| v.value);
                }
            }
        }
        if let Some(v) = map.get_node("onError") {
            policy.on_error = match self.choice(v, &join(path, "onError"), &["deny", "allow"]) {
                Some(s) if s.value == "allow" => OnError::Allow,
                _ => OnError::Deny,
            };
        }
        Some(policy)
    }

    /// Reads the whole document.
    pub fn config(&mut self, root: &Node) -> Config {
        let mut cfg = Config::default();
        let Some(map) = self.mapping(root, "", keys::TOP) else {
            return cfg;
        };
        for (key, value) in map.iter() {
            let k = key.as_str();
            match k {
                "listen" => cfg.listen = self.addr(value, k),
                "admin" => {
                    if let Some(admin) = self.mapping(value, k, keys::ADMIN)
                        && let Some(l) = admin.get_node("listen")
                    {
                        cfg.admin_listen = self.addr(l, "admin.listen");
                    }
                }
                "limits" => {
                    if let Some(limits) = self.mapping(value, k, keys::LIMITS) {
                        for (lk, lv) in limits.iter() {
                            let p = join(k, lk.as_str());
                            match lk.as_str() {
                                "maxHeaderBytes" => {
                                    cfg.limits.max_header_bytes =
                                        self.integer(lv, &p, 1024, 1_048_576, " bytes").map(|v| v.value);
                                }
                                "maxHeaders" => {
                                    cfg.limits.max_headers = self.integer(lv, &p, 1, 10_000, "").map(|v| v.value);
                                }
                                "maxConnections" => {
                                    cfg.limits.max_connections =
                                        self.integer(lv, &p, 1, 1_000_000, "").map(|v| v.value);
                                }
                                "maxRequestBodyBytes" => {
                                    cfg.limits.max_request_body_bytes =
                                        self.integer(lv, &p, 0, i128::from(u64::MAX), "").map(|v| v.value);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                "drainMs" => cfg.drain_ms = self.integer(value, k, 0, 3_600_000, " ms").map(|v| v.value),
                "shutdownDelayMs" => {
                    cfg.shutdown_delay_ms = self.integer(value, k, 0, 3_600_000, " ms").map(|v| v.value);
                }
                "defaults" => {
                    if let Some(d) = self.mapping(value, k, keys::DEFAULTS)
                        && let Some(t) = d.get_node("timeouts")
                    {
                        cfg.defaults = self.timeouts(t, "defaults.timeouts", false);
                    }
                }
                "routes" => {
                    cfg.routes_invalid = value.as_sequence().is_none();
                    if let Some(seq) = self.sequence(value, k) {
                        cfg.routes = seq
                            .iter()
                            .enumerate()
                            .filter_map(|(i, r)| self.route(r, &format!("routes[{i}]")))
                            .collect();
                    }
                }
                "clusters" => {
                    if let Some(seq) = self.sequence(value, k) {
                        cfg.clusters = seq
                            .iter()
                            .enumerate()
                            .filter_map(|(i, c)| self.cluster(c, &format!("clusters[{i}]")))
                            .collect();
                    }
                }
                "accessLog" => cfg.access_log = self.access_log(value, k),
                "tls" => cfg.tls = self.tls(value, k),
                "http2" => cfg.http2 = self.http2(value, k),
                "policies" => {
                    if let Some(seq) = self.sequence(value, k) {
                        cfg.policies = seq
                            .iter()
                            .enumerate()
                            .filter_map(|(i, p)| self.policy(p, &format!("policies[{i}]")))
                            .collect();
                    }
                }
                _ => {}
            }
        }
        cfg
    }
}

/// Two listen addresses one process cannot bind both of: the same port
/// (not 0, which the system chooses) on the same address, or on any address
/// of the family when either is its unspecified one (`0.0.0.0`, `::`); `::`
/// takes IPv4 addresses too (Linux binds it dual-stack).
pub fn addresses_collide(a: SocketAddr, b: SocketAddr) -> bool {
    if a.port() != b.port() || a.port() == 0 {
        return false;
    }
    if a.is_ipv4() == b.is_ipv4() {
        a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified()
    } else {
        [a, b].iter().any(|s| s.is_ipv6() && s.ip().is_unspecified())
    }
}

/// Checks `http://host[:port][/base]` and returns it without a trailing `/`.
pub fn check_upstream_url(raw: &str) -> Result<String, String> {
    let uri: http::Uri = raw.parse().map_err(|e| format!("invalid upstream URL {raw:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "invalid upstream URL {raw:?}: scheme {other:?} is not supported (use \"http://\" or \"https://\")"
            ));
        }
        None => return Err(format!("invalid upstream URL {raw:?}: expected \"http://host:port\"")),
    }
    let Some(authority) = uri.authority() else {
        return Err(format!("invalid upstream URL {raw:?}: missing host"));
    };
    if authority.as_str().contains('@') {
        return Err(format!("invalid upstream URL {raw:?}: credentials are not supported"));
    }
    if authority.host().is_empty() {
        return Err(format!("invalid upstream URL {raw:?}: missing host"));
    }
    if authority.as_str().ends_with(':') {
        return Err(format!("invalid upstream URL {raw:?}: empty port"));
    }
    if authority.port_u16() == Some(0) {
        return Err(format!("invalid upstream URL {raw:?}: port 0 cannot be connected to"));
    }
    if uri.query().is_some() || raw.contains('#') {
        return Err(format!(
            "invalid upstream URL {raw:?}: a query or fragment is not allowed"
        ));
    }
    if let Err(e) = split_prefix(uri.path()) {
        return Err(format!("invalid upstream URL {raw:?}: base path: {e}"));
    }
    Ok(raw.strip_suffix('/').unwrap_or(raw).to_owned())
}

#[cfg(test)]
mod tests {
    use super::addresses_collide;

    #[test]
    fn listen_addresses_collide_on_a_port_and_overlapping_addresses() {
        let c = |a: &str, b: &str| match (a.parse(), b.parse()) {
            (Ok(a), Ok(b)) => addresses_collide(a, b),
            _ => panic!("{a} {b}"),
        };
        assert!(c("127.0.0.1:80", "127.0.0.1:80"));
        assert!(c("0.0.0.0:80", "127.0.0.1:80"));
        assert!(c("[::]:80", "127.0.0.1:80"), "dual-stack");
        assert!(c("[::1]:80", "[::]:80"));
        assert!(!c("127.0.0.1:80", "127.0.0.2:80"));
        assert!(!c("0.0.0.0:80", "[::1]:80"));
        assert!(!c("127.0.0.1:80", "127.0.0.1:81"));
        assert!(!c("127.0.0.1:0", "127.0.0.1:0"), "the system chooses both");
    }
}
