//! `/metrics`: the counters of `stats.rs` encoded with `prometheus-client` at
//! scrape time (a `Collector` reads the atomics; nothing is registered per
//! request), in OpenMetrics text when the scraper asks for it and in the
//! Prometheus text format 0.0.4 otherwise (SPEC §9).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::error::kind::ErrorKind;
use crate::observe::stats::Histogram;
use crate::worker::Shared;

/// A label value from the config (a route, cluster or policy name, an
/// upstream URL), written with the escapes both text formats require (`\\`,
/// `\"`, a line feed as `\n`): `prometheus-client` writes values as they
/// are, and one `"` in a name would make the whole scrape unparseable.
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// The exposition formats `/metrics` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    /// Prometheus text format 0.0.4.
    Text,
}

impl Format {
    /// OpenMetrics when `accept` asks for it, the 0.0.4 text format otherwise.
    pub fn negotiate(accept: &[u8]) -> Format {
        let wants = accept
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii_start().starts_with(b"application/openmetrics-text"));
        if wants { Format::OpenMetrics } else { Format::Text }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

#[derive(Debug)]
struct Gateway(Arc<Shared>);

struct HistogramView<'a>(&'a Histogram);

impl std::fmt::Debug for HistogramView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistogramView")
    }
}

impl EncodeMetric for HistogramView<'_> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (sum, count, buckets) = self.0.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(value);
    c.encode(encoder.encode_descriptor(name, help, None, c.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let g = ConstGauge::new(value);
    g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for Gateway {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        let registry = &shared.registry;
        let global = &registry.global;

        {
            let mut m = encoder.encode_descriptor(
                "gateway_requests",
                "Requests answered, by route, cluster and status (route and cluster empty when none matched)",
                None,
                MetricType::Counter,
            )?;
            let mut routes = registry.all_routes();
            routes.push(registry.unrouted.clone());
            for r in routes {
                for (status, n) in r.counts() {
                    let status = if status == 0 {
                        "other".to_owned()
                    } else {
                        status.to_string()
                    };
                    let labels = [
                        ("route", Escaped(&r.route)),
                        ("cluster", Escaped(&r.cluster)),
                        ("status", Escaped(&status)),
                    ];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
        }

        let clusters = registry.all_clusters();
        {
            let mut m = encoder.encode_descriptor(
                "gateway_upstream_timeouts",
                "Upstream timeouts by cluster and kind",
                None,
                MetricType::Counter,
            )?;
            for c in &clusters {
                for (i, kind) in [ErrorKind::ConnectTimeout, ErrorKind::UpstreamTimeout]
                    .into_iter()
                    .enumerate()
                {
                    let labels = [("cluster", Escaped(&c.name)), ("kind", Escaped(kind.as_str()))];
                    ConstCounter::new(c.upstream_timeouts[i].load(Ordering::Relaxed))
                        .encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_proxy_errors",
                "Failed upstream exchanges by cluster and x-gateway-error kind",
                None,
                MetricType::Counter,
            )?;
            for c in &clusters {
                for kind in ErrorKind::ALL {
                    let n = c.errors[kind.index()].load(Ordering::Relaxed);
                    if n > 0 || (kind.is_upstream() && !kind.is_timeout()) {
                        let labels = [("cluster", Escaped(&c.name)), ("kind", Escaped(kind.as_str()))];
                        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        let generation = shared.current.load();
        let targets = generation.targets.all();
        let now = crate::upstream::now_ms();
        {
            let mut m = encoder.encode_descriptor(
                "gateway_upstream_connections",
                "Upstream connections by cluster, upstream and state (active: in use; idle: pooled)",
                None,
                MetricType::Gauge,
            )?;
            for t in targets {
                for (state, v) in [("active", &t.state.active), ("idle", &t.state.idle)] {
                    let labels = [
                        ("cluster", Escaped(&t.state.cluster)),
                        ("upstream", Escaped(&t.url)),
                        ("state", Escaped(state)),
                    ];
                    ConstGauge::new(v.load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_upstream_healthy",
                "1 when the upstream takes traffic (healthy and not ejected), else 0",
                None,
                MetricType::Gauge,
            )?;
            for t in targets {
                let up = t.state.is_healthy() && !t.state.is_ejected(now);
                let labels = [("cluster", Escaped(&t.state.cluster)), ("upstream", Escaped(&t.url))];
                ConstGauge::new(i64::from(up)).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_upstream_ejections",
                "Passive outlier ejections by cluster and upstream",
                None,
                MetricType::Counter,
            )?;
            for t in targets {
                let labels = [("cluster", Escaped(&t.state.cluster)), ("upstream", Escaped(&t.url))];
                ConstCounter::new(t.state.ejections_total.load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
            }
        }
        let budgets = shared.upstreams.budgets.all();
        {
            let mut m = encoder.encode_descriptor(
                "gateway_retries",
                "Retries by route and the failure retried (a kind, or the upstream's status)",
                None,
                MetricType::Counter,
            )?;
            for (route, b) in &budgets {
                let by_reason = b.by_reason.lock().unwrap_or_else(|e| e.into_inner()).clone();
                for (reason, n) in by_reason {
                    let labels = [("route", Escaped(route)), ("reason", Escaped(reason.as_str()))];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_retry_budget_exhausted",
                "Retries not made because the route's retry budget was spent",
                None,
                MetricType::Counter,
            )?;
            for (route, b) in &budgets {
                let labels = [("route", Escaped(route))];
                ConstCounter::new(b.exhausted.load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
            }
        }
        let policies = registry.all_policies();
        {
            let mut m = encoder.encode_descriptor(
                "gateway_policy_calls",
                "Policy calls by policy",
                None,
                MetricType::Counter,
            )?;
            for p in &policies {
                let labels = [("policy", Escaped(&p.name))];
                ConstCounter::new(p.calls.load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_policy_errors",
                "Policy failures by policy and kind",
                None,
                MetricType::Counter,
            )?;
            for p in &policies {
                for f in policy_host::Failure::ALL {
                    let labels = [("policy", Escaped(&p.name)), ("kind", Escaped(f.as_str()))];
                    ConstCounter::new(p.failures_of(f)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_request_duration_seconds",
                "From the first byte of the request head to the last byte of the response, by route (empty when none matched)",
                None,
                MetricType::Histogram,
            )?;
            let mut routes = registry.all_routes();
            routes.push(registry.unrouted.clone());
            for r in routes {
                let labels = [("route", Escaped(&r.route))];
                HistogramView(&r.duration).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_upstream_duration_seconds",
                "From the request sent upstream to the response head received, by cluster",
                None,
                MetricType::Histogram,
            )?;
            for c in &clusters {
                let labels = [("cluster", Escaped(&c.name))];
                HistogramView(&c.upstream_duration).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let generation = shared.current.load();
            let mut m = encoder.encode_descriptor(
                "gateway_plan_info",
                "The plan being served (value 1)",
                None,
                MetricType::Gauge,
            )?;
            let labels = [
                ("digest", generation.router.digest()),
                ("source_digest", generation.router.source_digest()),
            ];
            ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_build_info",
                "The gateway build (value 1)",
                None,
                MetricType::Gauge,
            )?;
            let labels = [("version", env!("CARGO_PKG_VERSION"))];
            ConstGauge::new(1i64).encode(m.encode_family(&labels)?)?;
        }
        gauge(
            &mut encoder,
            "gateway_reload_last_success_timestamp_seconds",
            "Unix time of the last successful plan load (start or reload)",
            global.reload_last_success.load(Ordering::Relaxed) as i64,
        )?;
        counter(
            &mut encoder,
            "gateway_admin_connections_rejected",
            "Admin connections closed at once because the admin connection cap was reached",
            global.admin_connections_rejected.load(Ordering::Relaxed),
        )?;
        crate::observe::process::encode(&mut encoder)?;
        gauge(
            &mut encoder,
            "gateway_in_flight_requests",
            "Requests being handled",
            global.in_flight.get(),
        )?;
        gauge(
            &mut encoder,
            "gateway_tunnels_active",
            "WebSocket tunnels open now",
            global.tunnels_active.load(Ordering::Relaxed),
        )?;
        gauge(
            &mut encoder,
            "gateway_client_connections",
            "Open client connections",
            shared.connections.load(Ordering::Relaxed) as i64,
        )?;
        counter(
            &mut encoder,
            "gateway_client_connections_rejected",
            "Client connections closed at once because maxConnections was reached",
            global.connections_rejected.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "gateway_tls_handshakes",
            "TLS handshakes completed on the TLS listener",
            global.tls_handshakes.load(Ordering::Relaxed),
        )?;
        {
            let mut m = encoder.encode_descriptor(
                "gateway_tls_handshake_failures",
                "TLS handshakes that failed (error), took longer than handshakeMs (timeout) or were abandoned by the client (closed)",
                None,
                MetricType::Counter,
            )?;
            for (reason, count) in crate::observe::stats::TLS_FAILURES
                .iter()
                .zip(&global.tls_handshake_failures)
            {
                ConstCounter::new(count.load(Ordering::Relaxed)).encode(m.encode_family(&[("reason", *reason)])?)?;
            }
        }
        counter(
            &mut encoder,
            "gateway_request_body_limit_exceeded",
            "Requests refused (413) or cut for exceeding maxRequestBodyBytes",
            global.body_limit_exceeded.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "gateway_access_log_dropped",
            "Access-log lines dropped because the writer fell behind",
            global.access_log_dropped.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "gateway_log_dropped",
            "Lines of the gateway's own log dropped because stderr did not take them",
            crate::observe::logging::dropped_lines(),
        )?;
        counter(
            &mut encoder,
            "gateway_access_log_written",
            "Access-log lines written",
            global.access_log_written.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "gateway_reloads",
            "Successful plan reloads",
            global.reloads.load(Ordering::Relaxed),
        )?;
        counter(
            &mut encoder,
            "gateway_reload_failures",
            "Refused plan reloads",
            global.reload_failures.load(Ordering::Relaxed),
        )?;
        Ok(())
    }
}

/// The whole exposition in `format`.
pub fn render(shared: &Arc<Shared>, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Gateway(shared.clone())));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    match format {
        Format::OpenMetrics => out,
        Format::Text => to_text_format(&out),
    }
}

/// Rewrites OpenMetrics text as Prometheus text 0.0.4: a counter family is
/// named after its samples (`x_total`, not `x`), and OpenMetrics-only lines
/// (`# EOF`, `# UNIT`) go. Everything else is the same in both formats.
fn to_text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut lines = openmetrics.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            let counter = lines
                .peek()
                .is_some_and(|next| next.strip_prefix("# TYPE ") == Some(&format!("{name} counter")));
            let suffix = if counter { "_total" } else { "" };
            out.push_str(&format!("# HELP {name}{suffix} {help}\n"));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            out.push_str(&format!("# TYPE {name}_total counter\n"));
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(Format::negotiate(b""), Format::Text);
        assert_eq!(Format::negotiate(b"text/plain;version=0.0.4"), Format::Text);
        assert_eq!(
            Format::negotiate(b"application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::negotiate(b"text/plain, application/openmetrics-text"),
            Format::OpenMetrics
        );
    }

    #[test]
    fn counters_are_renamed_for_the_text_format() {
        let om = "# HELP a_b Things.\n# TYPE a_b counter\na_b_total{x=\"1\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP a_b_total Things.\n# TYPE a_b_total counter\na_b_total{x=\"1\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
