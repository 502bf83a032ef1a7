//! Integration tests through the real gateway binary, real upstreams and real
//! sockets. One test binary; one module per area.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed expectation is a failed test

mod conformance;
mod grpc;
mod hardening;
mod http2;
mod language;
mod malformed;
mod observability;
mod policies;
mod proxying;
mod reliability;
mod resilience;
mod routing;
mod streaming;
mod timeouts;
mod tls;
mod upstream_h2;
mod upstream_tls;
mod websocket;
mod wrr;

use gateway_tests::Upstream;

/// A cluster entry: `- name: NAME` with the given upstreams and weights.
pub fn cluster(name: &str, upstreams: &[(&Upstream, u32)]) -> String {
    let mut y = format!("  - name: {name}\n    upstreams:\n");
    for (u, w) in upstreams {
        y.push_str(&format!("      - {{ url: \"{}\", weight: {w} }}\n", u.url()));
    }
    y
}

/// A whole config from route and cluster YAML fragments, access log off.
pub fn config(routes: &str, clusters: &[String]) -> String {
    format!(
        "accessLog: {{ enabled: false }}\nroutes:\n{routes}clusters:\n{}",
        clusters.concat()
    )
}
