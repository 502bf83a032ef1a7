//! The keys of every mapping in `gateway.yaml`, in one place: the readers
//! accept exactly these (others are "unknown field" errors) and `gateway
//! schema` describes exactly these, so the two cannot drift.

pub const TOP: &[&str] = &[
    "listen",
    "admin",
    "limits",
    "defaults",
    "routes",
    "clusters",
    "accessLog",
    "policies",
    "shutdownDelayMs",
    "drainMs",
    "tls",
    "http2",
];
pub const HTTP2: &[&str] = &["maxConcurrentStreams", "cleartext"];
pub const TLS: &[&str] = &["listen", "certificates", "minVersion", "alpn"];
pub const TLS_CERTIFICATE: &[&str] = &["cert", "key"];
pub const ADMIN: &[&str] = &["listen"];
pub const LIMITS: &[&str] = &["maxHeaderBytes", "maxHeaders", "maxConnections", "maxRequestBodyBytes"];
pub const DEFAULTS: &[&str] = &["timeouts"];
pub const TIMEOUTS: &[&str] = &[
    "readMs",
    "writeMs",
    "upstreamMs",
    "connectMs",
    "idleMs",
    "handshakeMs",
    "tunnelIdleMs",
];
pub const ROUTE: &[&str] = &[
    "name",
    "host",
    "hosts",
    "pathPrefix",
    "path",
    "pathRegex",
    "methods",
    "headers",
    "query",
    "cluster",
    "backends",
    "redirect",
    "requestHeaders",
    "responseHeaders",
    "rewrite",
    "timeouts",
    "retry",
    "policies",
];
pub const RETRY: &[&str] = &["attempts", "on", "backoffMs", "budgetPercent"];
pub const CONDITION: &[&str] = &["name", "value", "regex"];
pub const BACKEND: &[&str] = &["cluster", "weight"];
pub const REDIRECT: &[&str] = &["scheme", "host", "port", "path", "pathPrefix", "status"];
pub const FILTER: &[&str] = &["set", "add", "remove"];
pub const REWRITE: &[&str] = &["host", "path", "pathPrefix"];
pub const CLUSTER: &[&str] = &[
    "name",
    "lb",
    "upstreams",
    "pool",
    "healthCheck",
    "outlier",
    "dnsRefreshMs",
    "tls",
    "protocol",
];
pub const UPSTREAM_TLS: &[&str] = &["ca", "insecureSkipVerify"];
pub const HEALTH_CHECK: &[&str] = &[
    "path",
    "intervalMs",
    "timeoutMs",
    "healthyThreshold",
    "unhealthyThreshold",
];
pub const OUTLIER: &[&str] = &["consecutiveFailures", "ejectMs", "maxEjectedPercent"];
pub const UPSTREAM: &[&str] = &["url", "weight"];
pub const POOL: &[&str] = &["idleMs", "maxRequestsPerConnection", "maxConnections"];
pub const ACCESS_LOG: &[&str] = &["enabled", "path", "json"];
pub const ACCESS_LOG_JSON: &[&str] = &["fields"];
pub const POLICY: &[&str] = &["name", "module", "config", "clusters", "limits", "onError"];
pub const POLICY_LIMITS: &[&str] = &["fuel", "memoryPages", "timeoutMs"];
