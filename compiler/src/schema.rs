//! `gateway schema`: a JSON Schema (draft 2020-12) of `gateway.yaml`, for
//! editors (the YAML language server) and CI linters. Every object's
//! properties are the key lists the readers accept (`keys.rs`), so the schema
//! cannot offer a key the compiler refuses or miss one it accepts; the types
//! and descriptions are written here, and a test checks every key has one.

use serde_json::{Value, json};

use crate::keys;

fn duration(what: &str) -> Value {
    json!({ "type": "integer", "minimum": 1, "maximum": 86_400_000, "description": what })
}

fn string(what: &str) -> Value {
    json!({ "type": "string", "minLength": 1, "description": what })
}

fn value_condition() -> Value {
    json!({ "$ref": "#/$defs/condition" })
}

/// The schema of one key of one object; `Null` for a key this file forgot
/// (the test fails on any).
fn property(object: &str, key: &str) -> Value {
    match (object, key) {
        ("top", "listen") => string("IP:PORT the gateway serves on (default 0.0.0.0:8080)"),
        ("top", "admin") => json!({ "$ref": "#/$defs/admin" }),
        ("top", "limits") => json!({ "$ref": "#/$defs/limits" }),
        ("top", "defaults") => json!({ "$ref": "#/$defs/defaults" }),
        ("top", "routes") => json!({ "type": "array", "items": { "$ref": "#/$defs/route" } }),
        ("top", "clusters") => json!({ "type": "array", "items": { "$ref": "#/$defs/cluster" } }),
        ("top", "accessLog") => json!({ "$ref": "#/$defs/accessLog" }),
        ("top", "policies") => json!({ "type": "array", "items": { "$ref": "#/$defs/policy" } }),
        ("top", "shutdownDelayMs") => {
            json!({ "type": "integer", "minimum": 0, "maximum": 3_600_000, "description": "after SIGTERM: keep serving this long while /ready says 503 (default 0)" })
        }
        ("top", "drainMs") => {
            json!({ "type": "integer", "minimum": 0, "maximum": 3_600_000, "description": "how long in-flight requests may finish after the gateway stops accepting (default 30000)" })
        }
        ("top", "tls") => json!({ "$ref": "#/$defs/tls" }),
        ("top", "http2") => json!({ "$ref": "#/$defs/http2" }),
        ("http2", "maxConcurrentStreams") => {
            json!({ "type": "integer", "minimum": 1, "maximum": 10000, "default": 128 })
        }
        ("http2", "cleartext") => {
            json!({ "type": "boolean", "default": false, "description": "h2c prior knowledge on listen" })
        }
        ("cluster", "protocol") => {
            json!({ "enum": ["http1", "h2"], "default": "http1", "description": "h2: HTTP/2 to the upstreams (ALPN h2 over TLS, prior knowledge over cleartext); needed for gRPC" })
        }
        ("tls", "listen") => string("IP:PORT of the TLS listener (HTTPS)"),
        ("tls", "certificates") => {
            json!({ "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/tlsCertificate" }, "description": "chosen by SNI; the first when none matches" })
        }
        ("tls", "minVersion") => json!({ "enum": ["1.2", "1.3"], "default": "1.2" }),
        ("tls", "alpn") => {
            json!({ "type": "array", "minItems": 1, "items": { "enum": ["h2", "http/1.1"] }, "description": "protocols offered in ALPN, in preference order" })
        }
        ("tlsCertificate", "cert") => string("PEM certificate chain, leaf first (relative to the config)"),
        ("tlsCertificate", "key") => string("PEM private key: PKCS#8, PKCS#1 or SEC1 (relative to the config)"),
        ("timeouts", "tunnelIdleMs") => {
            duration("a WebSocket tunnel closes after this long without traffic either way (default 300000)")
        }
        ("timeouts", "handshakeMs") => duration("TLS: accept → handshake done (defaults.timeouts only; default 10000)"),
        ("admin", "listen") => string("IP:PORT of the admin listener (/metrics, /ready, /plan, POST /reload)"),
        ("limits", "maxHeaderBytes") => {
            json!({ "type": "integer", "minimum": 1024, "maximum": 1_048_576, "default": 16384 })
        }
        ("limits", "maxHeaders") => json!({ "type": "integer", "minimum": 1, "maximum": 10_000, "default": 100 }),
        ("limits", "maxConnections") => {
            json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 10000 })
        }
        ("limits", "maxRequestBodyBytes") => json!({ "type": "integer", "minimum": 0 }),
        ("defaults", "timeouts") => json!({ "$ref": "#/$defs/timeouts" }),
        ("timeouts", "readMs") => duration("client: the whole request head, and each gap in its body (default 15000)"),
        ("timeouts", "writeMs") => duration("client: each write of the response (default 15000)"),
        ("timeouts", "upstreamMs") => {
            duration("request sent → response head, and each gap in the response body (default 20000)")
        }
        ("timeouts", "connectMs") => duration("upstream TCP connect (default 5000)"),
        ("timeouts", "idleMs") => {
            duration("idle keep-alive client connections (defaults.timeouts only; default 60000)")
        }
        ("route", "name") => string("unique; the route label in logs and metrics"),
        ("route", "host") => string("exact host, *.suffix, or * (any); case-insensitive, no port"),
        ("route", "hosts") => {
            json!({ "type": "array", "minItems": 1, "items": { "type": "string" }, "description": "several host patterns (exclusive with host)" })
        }
        ("route", "pathPrefix") => string("segment-wise prefix, starting with /"),
        ("route", "path") => string("the whole normalized path, exactly"),
        ("route", "pathRegex") => string("a regex (Rust syntax) matching the whole normalized path"),
        ("route", "methods") => json!({ "type": "array", "minItems": 1, "items": { "type": "string" } }),
        ("route", "headers") => json!({ "type": "array", "items": value_condition() }),
        ("route", "query") => json!({ "type": "array", "items": value_condition() }),
        ("route", "cluster") => string("the cluster this route forwards to"),
        ("route", "backends") => json!({ "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/backend" } }),
        ("route", "redirect") => json!({ "$ref": "#/$defs/redirect" }),
        ("route", "requestHeaders") => json!({ "$ref": "#/$defs/filter" }),
        ("route", "responseHeaders") => json!({ "$ref": "#/$defs/filter" }),
        ("route", "rewrite") => json!({ "$ref": "#/$defs/rewrite" }),
        ("route", "timeouts") => json!({ "$ref": "#/$defs/timeouts" }),
        ("route", "retry") => json!({ "$ref": "#/$defs/retry" }),
        ("retry", "attempts") => {
            json!({ "type": "integer", "minimum": 1, "maximum": 10, "default": 2, "description": "tries including the first" })
        }
        ("retry", "on") => json!({ "type": "array", "minItems": 1, "items": { "anyOf": [
            { "enum": crate::resilience::RETRY_KINDS },
            { "type": "integer", "minimum": 500, "maximum": 599 }
        ] } }),
        ("retry", "backoffMs") => json!({ "type": "integer", "minimum": 0, "default": 25 }),
        ("retry", "budgetPercent") => json!({ "type": "integer", "minimum": 0, "maximum": 100, "default": 20 }),
        ("cluster", "healthCheck") => json!({ "$ref": "#/$defs/healthCheck" }),
        ("cluster", "outlier") => json!({ "$ref": "#/$defs/outlier" }),
        ("cluster", "tls") => json!({ "$ref": "#/$defs/upstreamTls" }),
        ("upstreamTls", "ca") => {
            string("PEM file of the CAs https:// upstreams must chain to, instead of the system roots")
        }
        ("upstreamTls", "insecureSkipVerify") => {
            json!({ "type": "boolean", "default": false, "description": "accept any upstream certificate (a warning)" })
        }
        ("cluster", "dnsRefreshMs") => duration("upstream host names are resolved again this often (default 30000)"),
        ("healthCheck", "path") => string("GET this path; 2xx or 3xx within timeoutMs is a success"),
        ("healthCheck", "intervalMs") => json!({ "type": "integer", "minimum": 100, "default": 5000 }),
        ("healthCheck", "timeoutMs") => duration("default 1000"),
        ("healthCheck", "healthyThreshold") => json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 2 }),
        ("healthCheck", "unhealthyThreshold") => {
            json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 3 })
        }
        ("outlier", "consecutiveFailures") => {
            json!({ "type": "integer", "minimum": 0, "maximum": 1000, "default": 5, "description": "0 turns ejection off" })
        }
        ("outlier", "ejectMs") => duration("first ejection; doubles on each repeat, up to 10x (default 30000)"),
        ("outlier", "maxEjectedPercent") => json!({ "type": "integer", "minimum": 0, "maximum": 100, "default": 50 }),
        ("pool", "maxRequestsPerConnection") => json!({ "type": "integer", "minimum": 1 }),
        ("pool", "maxConnections") => json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000 }),
        ("route", "policies") => json!({ "type": "array", "items": { "type": "string" } }),
        ("condition", "name") => string("header name (case-insensitive) or query parameter name"),
        ("condition", "value") => json!({ "type": "string", "description": "exact value" }),
        ("condition", "regex") => string("regex the whole value must match"),
        ("backend", "cluster") => string("a cluster name"),
        ("backend", "weight") => json!({ "type": "integer", "minimum": 0, "maximum": 1_000_000, "default": 1 }),
        ("redirect", "scheme") => json!({ "enum": ["http", "https"] }),
        ("redirect", "host") => string("hostname of the Location"),
        ("redirect", "port") => json!({ "type": "integer", "minimum": 1, "maximum": 65535 }),
        ("redirect", "path") => string("replaces the whole path"),
        ("redirect", "pathPrefix") => string("replaces the matched prefix (pathPrefix routes only)"),
        ("redirect", "status") => json!({ "enum": [301, 302, 303, 307, 308], "default": 302 }),
        ("filter", "set") => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        ("filter", "add") => json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        ("filter", "remove") => json!({ "type": "array", "minItems": 1, "items": { "type": "string" } }),
        ("rewrite", "host") => string("the forwarded Host"),
        ("rewrite", "path") => string("replaces the whole forwarded path"),
        ("rewrite", "pathPrefix") => string("replaces the matched prefix (pathPrefix routes only)"),
        ("cluster", "name") => string("unique cluster name"),
        ("cluster", "lb") => json!({ "enum": ["wrr"], "default": "wrr" }),
        ("cluster", "upstreams") => json!({ "type": "array", "minItems": 1, "items": { "$ref": "#/$defs/upstream" } }),
        ("cluster", "pool") => json!({ "$ref": "#/$defs/pool" }),
        ("upstream", "url") => string("http://host:port[/base] or https://host:port[/base]"),
        ("upstream", "weight") => json!({ "type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1 }),
        ("pool", "idleMs") => duration("idle upstream connections are closed after this long (default 60000)"),
        ("accessLog", "enabled") => json!({ "type": "boolean", "default": true }),
        ("accessLog", "path") => string("stdout, stderr, or a file path (relative to the config)"),
        ("accessLog", "json") => json!({ "$ref": "#/$defs/accessLogJson" }),
        ("accessLogJson", "fields") => json!({
            "type": "array",
            "minItems": 1,
            "items": { "enum": plan::LogField::ALL.iter().map(|f| f.name()).collect::<Vec<_>>() }
        }),
        ("policy", "name") => string("unique policy name"),
        ("policy", "module") => string("path of the .wasm module, relative to the config"),
        ("policy", "config") => json!({ "description": "handed to the module as JSON" }),
        ("policy", "clusters") => json!({ "type": "array", "items": { "type": "string" } }),
        ("policy", "limits") => json!({ "$ref": "#/$defs/policyLimits" }),
        ("policy", "onError") => json!({ "enum": ["deny", "allow"], "default": "deny" }),
        ("policyLimits", "fuel") => json!({ "type": "integer", "minimum": 1 }),
        ("policyLimits", "memoryPages") => json!({ "type": "integer", "minimum": 1, "maximum": 65536, "default": 16 }),
        ("policyLimits", "timeoutMs") => json!({ "type": "integer", "minimum": 1, "maximum": 60000, "default": 5 }),
        _ => Value::Null,
    }
}

/// The objects of the schema: name and accepted keys.
pub(crate) const OBJECTS: &[(&str, &[&str])] = &[
    ("top", keys::TOP),
    ("admin", keys::ADMIN),
    ("tls", keys::TLS),
    ("http2", keys::HTTP2),
    ("tlsCertificate", keys::TLS_CERTIFICATE),
    ("limits", keys::LIMITS),
    ("defaults", keys::DEFAULTS),
    ("timeouts", keys::TIMEOUTS),
    ("route", keys::ROUTE),
    ("condition", keys::CONDITION),
    ("backend", keys::BACKEND),
    ("redirect", keys::REDIRECT),
    ("filter", keys::FILTER),
    ("rewrite", keys::REWRITE),
    ("cluster", keys::CLUSTER),
    ("upstream", keys::UPSTREAM),
    ("upstreamTls", keys::UPSTREAM_TLS),
    ("pool", keys::POOL),
    ("healthCheck", keys::HEALTH_CHECK),
    ("outlier", keys::OUTLIER),
    ("retry", keys::RETRY),
    ("accessLog", keys::ACCESS_LOG),
    ("accessLogJson", keys::ACCESS_LOG_JSON),
    ("policy", keys::POLICY),
    ("policyLimits", keys::POLICY_LIMITS),
];

fn object(name: &str, keys: &[&str]) -> Value {
    let properties: serde_json::Map<String, Value> =
        keys.iter().map(|k| ((*k).to_owned(), property(name, k))).collect();
    let mut obj = json!({ "type": "object", "additionalProperties": false, "properties": properties });
    let one_of = |sets: &[&[&str]]| -> Value { Value::Array(sets.iter().map(|s| json!({ "required": s })).collect()) };
    match name {
        "route" => {
            obj["required"] = json!(["name"]);
            obj["allOf"] = json!([
                { "oneOf": one_of(&[&["pathPrefix"], &["path"], &["pathRegex"]]) },
                { "oneOf": one_of(&[&["cluster"], &["backends"], &["redirect"]]) },
                { "not": { "required": ["host", "hosts"] } }
            ]);
        }
        "condition" => {
            obj["required"] = json!(["name"]);
            obj["oneOf"] = one_of(&[&["value"], &["regex"]]);
        }
        "cluster" => obj["required"] = json!(["name", "upstreams"]),
        "upstream" => obj["required"] = json!(["url"]),
        "backend" => obj["required"] = json!(["cluster"]),
        "policy" => obj["required"] = json!(["name", "module"]),
        "healthCheck" => obj["required"] = json!(["path"]),
        "tls" => obj["required"] = json!(["listen", "certificates"]),
        "tlsCertificate" => obj["required"] = json!(["cert", "key"]),
        "redirect" | "rewrite" => obj["not"] = json!({ "required": ["path", "pathPrefix"] }),
        _ => {}
    }
    obj
}

/// The JSON Schema of `gateway.yaml`.
pub fn schema() -> Value {
    let defs: serde_json::Map<String, Value> = OBJECTS
        .iter()
        .filter(|(name, _)| *name != "top")
        .map(|(name, keys)| ((*name).to_owned(), object(name, keys)))
        .collect();
    let mut root = object("top", keys::TOP);
    root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    root["$id"] = json!("https://gateway.example/schema/gateway.yaml.json");
    root["title"] = json!("gateway.yaml");
    root["description"] = json!("The gateway's configuration (docs/configuration.md).");
    root["$defs"] = Value::Object(defs);
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_the_compiler_reads_is_described() {
        for (name, keys) in OBJECTS {
            for key in *keys {
                assert!(!property(name, key).is_null(), "{name}.{key} has no schema");
            }
        }
        let s = schema();
        assert_eq!(
            s["$defs"]["route"]["properties"].as_object().map(|p| p.len()),
            Some(keys::ROUTE.len())
        );
    }
}
