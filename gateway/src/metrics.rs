//! `/metrics`: the counters of `stats.rs` encoded with `prometheus-client` at
//! scrape time (a `Collector` reads the atomics; nothing is registered per
//! request).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::error::ErrorKind;
use crate::stats::Histogram;
use crate::worker::Shared;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
                        ("route", r.route.as_str()),
                        ("cluster", r.cluster.as_str()),
                        ("status", status.as_str()),
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
                    let labels = [("cluster", c.name.as_str()), ("kind", kind.as_str())];
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
                    if n > 0 || kind.is_upstream() {
                        let labels = [("cluster", c.name.as_str()), ("kind", kind.as_str())];
                        ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                    }
                }
            }
        }
        {
            let mut m = encoder.encode_descriptor(
                "gateway_upstream_connections",
                "Upstream connections by cluster and state (open includes idle)",
                None,
                MetricType::Gauge,
            )?;
            for c in &clusters {
                for (state, v) in [("open", &c.connections_open), ("idle", &c.connections_idle)] {
                    let labels = [("cluster", c.name.as_str()), ("state", state)];
                    ConstGauge::new(v.load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
                }
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
                let labels = [("policy", p.name.as_str())];
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
                for (i, f) in crate::policy::Failure::ALL.iter().enumerate() {
                    let labels = [("policy", p.name.as_str()), ("kind", f.as_str())];
                    ConstCounter::new(p.failures[i].load(Ordering::Relaxed)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let h = HistogramView(&global.duration);
            h.encode(encoder.encode_descriptor(
                "gateway_request_duration_seconds",
                "From the first byte of the request head to the last byte of the response",
                None,
                h.metric_type(),
            )?)?;
        }
        gauge(
            &mut encoder,
            "gateway_in_flight_requests",
            "Requests being handled",
            global.in_flight.load(Ordering::Relaxed),
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

/// The whole exposition, OpenMetrics text format.
pub fn render(shared: &Arc<Shared>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Gateway(shared.clone())));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}
