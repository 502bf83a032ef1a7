//! The plan's data model: flat arrays with integer indices, serialized as JSON.
//!
//! Everything here is what the compiler validated; nothing here is what the user
//! wrote (that is `compiler::config`). Indices (`u32`) point into sibling arrays;
//! [`NONE`] marks an absent index. `Router::new` checks every index before use.

use serde::{Deserialize, Serialize};

use crate::Route;

/// Marks an absent index in the flat arrays.
pub const NONE: u32 = u32::MAX;

/// A validated routing plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Plan {
    /// File name (no directory) of the config this plan was compiled from.
    pub source: String,
    pub listen: String,
    pub admin: Option<String>,
    pub limits: Limits,
    /// After SIGTERM: how long to keep accepting while `/ready` says 503.
    pub shutdown_delay_ms: u64,
    pub drain_ms: u64,
    /// Default timeouts (routes hold their own merged copies); the client head
    /// read and idle keep-alive use these, since no route is known yet.
    pub defaults: Timeouts,
    pub access_log: AccessLog,
    /// The TLS listener, when the config has one (SPEC §14).
    pub tls: Option<TlsListener>,
    /// HTTP/2 on the client side (SPEC §14).
    #[serde(default)]
    pub http2: Http2,
    pub routes: Vec<Route>,
    pub clusters: Vec<Cluster>,
    pub policies: Vec<Policy>,
    /// Host trie over reversed labels; node 0 is the root (empty label).
    pub hosts: Vec<HostNode>,
    /// The catch-all host's table, or [`NONE`].
    pub catch_all: u32,
    /// One table per host pattern that routes use.
    pub tables: Vec<Table>,
    /// All prefix trees, one arena; roots have `parent == NONE`.
    pub paths: Vec<PathNode>,
    /// Every compiled regex: path regexes of the tables, header and query
    /// regexes of the routes' conditions.
    pub regexes: Vec<RegexDfa>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    pub max_header_bytes: u32,
    pub max_headers: u32,
    pub max_connections: u32,
    pub max_request_body_bytes: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_bytes: 16_384,
            max_headers: 100,
            max_connections: 10_000,
            max_request_body_bytes: None,
        }
    }
}

/// Timeouts in milliseconds, already merged (defaults + per-route overrides).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    pub read_ms: u64,
    pub write_ms: u64,
    pub upstream_ms: u64,
    pub connect_ms: u64,
    pub idle_ms: u64,
    /// A WebSocket tunnel closes after this long without a byte either way.
    pub tunnel_idle_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            read_ms: 15_000,
            write_ms: 15_000,
            upstream_ms: 20_000,
            connect_ms: 5_000,
            idle_ms: 60_000,
            tunnel_idle_ms: 300_000,
        }
    }
}

/// The TLS listener. Certificates are referenced by path (relative to the
/// config's directory, resolved by the gateway at start and reload), never
/// embedded: the plan holds no private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsListener {
    pub listen: String,
    /// In config order; the first is served when the SNI matches none.
    pub certificates: Vec<CertificateFiles>,
    pub min_version: TlsVersion,
    /// ALPN protocol names offered, in preference order.
    pub alpn: Vec<String>,
    /// TCP accept → handshake done; a slower handshake is cut.
    pub handshake_ms: u64,
}

/// HTTP/2 on the client side: offered by ALPN on the TLS listener (when
/// `tls.alpn` lists `h2`), and as h2c prior knowledge on `listen` when
/// `cleartext`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Http2 {
    /// Streams one connection may have open at once (SETTINGS).
    pub max_concurrent_streams: u32,
    pub cleartext: bool,
}

impl Default for Http2 {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 128,
            cleartext: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateFiles {
    /// PEM certificate chain, leaf first.
    pub cert: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[serde(rename = "1.3")]
    Tls13,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessLog {
    pub enabled: bool,
    pub destination: LogDestination,
    pub fields: Vec<LogField>,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            enabled: true,
            destination: LogDestination::Stdout,
            fields: LogField::DEFAULT.to_vec(),
        }
    }
}

/// TLS to a cluster's `https://` upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpstreamTls {
    /// PEM file of the CAs that upstream certificates must chain to (relative
    /// to the config's directory), instead of the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Accept any certificate (the connection is encrypted, not authenticated).
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Where access-log lines go. A file path is relative to the config's directory
/// and is resolved by the gateway at load time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum LogDestination {
    Stdout,
    Stderr,
    File(String),
}

/// One access-log field (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LogField {
    Timestamp,
    #[serde(rename = "clientIP")]
    ClientIp,
    Method,
    Path,
    Status,
    DurationMs,
    Route,
    Cluster,
    #[serde(rename = "upstreamURL")]
    UpstreamUrl,
    Error,
    BytesSent,
    UpstreamStatus,
    Host,
    Query,
    UserAgent,
    RequestId,
    Plan,
    Protocol,
    UpstreamDurationMs,
    Attempts,
    /// The TLS version of the client connection, or null.
    Tls,
    /// The server name the client sent in its TLS hello, or null.
    Sni,
}

impl LogField {
    pub const DEFAULT: [LogField; 9] = [
        LogField::Timestamp,
        LogField::ClientIp,
        LogField::Method,
        LogField::Path,
        LogField::Status,
        LogField::DurationMs,
        LogField::Route,
        LogField::Cluster,
        LogField::UpstreamUrl,
    ];

    pub const ALL: [LogField; 22] = [
        LogField::Timestamp,
        LogField::ClientIp,
        LogField::Method,
        LogField::Path,
        LogField::Status,
        LogField::DurationMs,
        LogField::Route,
        LogField::Cluster,
        LogField::UpstreamUrl,
        LogField::Error,
        LogField::BytesSent,
        LogField::UpstreamStatus,
        LogField::Host,
        LogField::Query,
        LogField::UserAgent,
        LogField::RequestId,
        LogField::Plan,
        LogField::Protocol,
        LogField::UpstreamDurationMs,
        LogField::Attempts,
        LogField::Tls,
        LogField::Sni,
    ];

    /// The key as written in config and in the log line.
    pub fn name(self) -> &'static str {
        match self {
            LogField::Timestamp => "timestamp",
            LogField::ClientIp => "clientIP",
            LogField::Method => "method",
            LogField::Path => "path",
            LogField::Status => "status",
            LogField::DurationMs => "durationMs",
            LogField::Route => "route",
            LogField::Cluster => "cluster",
            LogField::UpstreamUrl => "upstreamURL",
            LogField::Error => "error",
            LogField::BytesSent => "bytesSent",
            LogField::UpstreamStatus => "upstreamStatus",
            LogField::Host => "host",
            LogField::Query => "query",
            LogField::UserAgent => "userAgent",
            LogField::RequestId => "requestId",
            LogField::Plan => "plan",
            LogField::Protocol => "protocol",
            LogField::UpstreamDurationMs => "upstreamDurationMs",
            LogField::Attempts => "attempts",
            LogField::Tls => "tls",
            LogField::Sni => "sni",
        }
    }

    pub fn from_name(name: &str) -> Option<LogField> {
        LogField::ALL.into_iter().find(|f| f.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cluster {
    pub name: String,
    pub upstreams: Vec<Upstream>,
    /// The smooth-WRR sequence (indices into `upstreams`) over weights reduced by
    /// their GCD; empty when the reduced total weight exceeds
    /// [`crate::MAX_TABLE_LEN`] (then the gateway runs smooth WRR live).
    pub wrr: Vec<u32>,
    pub pool: PoolSettings,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    pub outlier: Outlier,
    /// How `https://` upstreams are verified (system roots when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<UpstreamTls>,
    /// Upstream host names are resolved again this often.
    pub dns_refresh_ms: u64,
    /// What the cluster's upstreams speak (absent in the artifact: HTTP/1.1).
    #[serde(default, skip_serializing_if = "UpstreamProtocol::is_http1")]
    pub protocol: UpstreamProtocol,
}

/// The protocol a cluster's upstreams speak (SPEC §14).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    #[default]
    Http1,
    /// HTTP/2: ALPN `h2` over TLS, prior knowledge over cleartext.
    H2,
}

impl UpstreamProtocol {
    pub fn is_http1(&self) -> bool {
        *self == UpstreamProtocol::Http1
    }
}

/// How upstream connections of a cluster are pooled (SPEC §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolSettings {
    /// Idle upstream connections are closed after this long.
    pub idle_ms: u64,
    /// A connection is not reused after this many requests (`None`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_requests_per_connection: Option<u32>,
    /// Connections per upstream per process, idle ones included (`None`: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            idle_ms: 60_000,
            max_requests_per_connection: None,
            max_connections: None,
        }
    }
}

/// Active health checks of a cluster's upstreams (SPEC §15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheck {
    pub path: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// Passive outlier ejection (SPEC §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Outlier {
    /// Failures in a row that eject an upstream; 0 turns ejection off.
    pub consecutive_failures: u32,
    pub eject_ms: u64,
    pub max_ejected_percent: u32,
}

impl Default for Outlier {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            eject_ms: 30_000,
            max_ejected_percent: 50,
        }
    }
}

/// A route's retry policy (SPEC §15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Tries including the first.
    pub attempts: u32,
    /// Failure kinds (`connect_failed`, ...) that are retried.
    pub on_kinds: Vec<String>,
    /// Upstream statuses (5xx) that are retried.
    pub on_status: Vec<u16>,
    pub backoff_ms: u64,
    pub budget_percent: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Upstream {
    /// Validated `http://host:port[/base]`, as written minus a trailing `/`.
    pub url: String,
    pub weight: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    /// The module path as written in the config (relative to it).
    pub module: String,
    /// `sha256:<hex>` of the module bytes.
    pub sha256: String,
    /// The module bytes, base64 (standard alphabet, padded): the plan is self-contained.
    pub wasm: String,
    /// The policy's `config`, as canonical JSON bytes handed to the module.
    pub config: String,
    /// Clusters this policy may route to (decision `2 + i` picks `clusters[i]`).
    pub clusters: Vec<u32>,
    pub limits: PolicyLimits,
    pub on_error: OnError,
}

impl Policy {
    /// The embedded module bytes.
    pub fn module_bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.wasm)
            .map_err(|e| format!("module is not valid base64: {e}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyLimits {
    pub fuel: Option<u64>,
    pub memory_pages: u32,
    pub timeout_ms: u64,
}

impl Default for PolicyLimits {
    fn default() -> Self {
        Self {
            fuel: None,
            memory_pages: 16,
            timeout_ms: 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OnError {
    Deny,
    Allow,
}

/// A node of the host trie. Children are found through `(parent, label)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostNode {
    pub parent: u32,
    /// Lowercase DNS label; empty for the root.
    pub label: String,
    /// Table of the exact host spelled by the path to this node, or [`NONE`].
    pub exact: u32,
    /// Table of `*.` + the host spelled by the path to this node, or [`NONE`].
    pub wildcard: u32,
}

/// The routes of one host pattern: exact and prefix routes on a prefix tree,
/// regex routes in DFAs. Every candidate list is in precedence order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Table {
    /// Root of the prefix tree.
    pub root: u32,
    /// Regex routes, most precedent first: one set, or several when one DFA
    /// would be too large.
    pub regex: Vec<RegexSet>,
}

/// Regex routes walked in one pass: pattern `i` of DFA `dfa` is `routes[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexSet {
    pub dfa: u32,
    pub routes: Vec<u32>,
}

/// A compiled regex DFA (one or many patterns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegexDfa {
    /// The sources, pattern `i` first: for `explain` and for checking.
    pub patterns: Vec<String>,
    /// `regex-automata` dense DFA, little-endian, base64.
    pub dfa: String,
}

impl RegexDfa {
    /// The DFA bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.dfa)
            .map_err(|e| format!("DFA is not valid base64: {e}"))
    }
}

/// A node of a prefix tree. Children are found through `(parent, segment)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathNode {
    pub parent: u32,
    pub segment: String,
    /// Routes whose exact path ends here, in precedence order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exact: Vec<u32>,
    /// Routes whose prefix ends here, in precedence order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<u32>,
}
