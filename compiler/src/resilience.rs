//! Reading what keeps requests flowing when upstreams fail (SPEC §15): a
//! cluster's `pool`, `healthCheck`, `outlier` and `dnsRefreshMs`, and a
//! route's `retry`.

use marked_yaml::Node;
use plan::{HealthCheck, Outlier, PoolSettings, Retry};

use crate::config::MAX_TIMEOUT_MS;
use crate::keys;
use crate::yaml::{Reader, join, loc};

/// Failure kinds a retry may name.
pub const RETRY_KINDS: &[&str] = &[
    "connect_failed",
    "connect_timeout",
    "upstream_reset",
    "upstream_timeout",
    "bad_response",
];

impl Reader<'_> {
    fn ms(&mut self, map: &marked_yaml::types::MarkedMappingNode, path: &str, key: &str, min: i128) -> Option<u64> {
        let v = map.get_node(key)?;
        self.integer(v, &join(path, key), min, MAX_TIMEOUT_MS, " ms")
            .map(|v| v.value)
    }

    fn count(
        &mut self,
        map: &marked_yaml::types::MarkedMappingNode,
        path: &str,
        key: &str,
        min: i128,
        max: i128,
    ) -> Option<u32> {
        let v = map.get_node(key)?;
        self.integer(v, &join(path, key), min, max, "").map(|v| v.value as u32)
    }

    pub(crate) fn pool(&mut self, node: &Node, path: &str) -> PoolSettings {
        let mut pool = PoolSettings::default();
        let Some(map) = self.mapping(node, path, keys::POOL) else {
            return pool;
        };
        if let Some(v) = self.ms(map, path, "idleMs", 1) {
            pool.idle_ms = v;
        }
        pool.max_requests_per_connection = self.count(map, path, "maxRequestsPerConnection", 1, i128::from(u32::MAX));
        pool.max_connections = self.count(map, path, "maxConnections", 1, 1_000_000);
        pool
    }

    pub(crate) fn health_check(&mut self, node: &Node, path: &str) -> Option<HealthCheck> {
        let map = self.mapping(node, path, keys::HEALTH_CHECK)?;
        // Every field is read before giving up, so all their errors show.
        let hc_path = match map.get_node("path") {
            Some(v) => self.string(v, &join(path, "path")).and_then(|s| {
                if !s.value.starts_with('/') || s.value.contains(|c: char| c.is_whitespace() || c.is_control()) {
                    self.diags.error(
                        s.loc,
                        &s.path,
                        format!(
                            "health check path {:?} must start with \"/\" and hold no spaces",
                            s.value
                        ),
                    );
                    return None;
                }
                Some(s.value)
            }),
            None => {
                self.diags
                    .error(loc(node), join(path, "path"), "missing required field");
                None
            }
        };
        let interval = self.ms(map, path, "intervalMs", 100).unwrap_or(5_000);
        let timeout = self.ms(map, path, "timeoutMs", 1).unwrap_or(1_000);
        let healthy_threshold = self.count(map, path, "healthyThreshold", 1, 100).unwrap_or(2);
        let unhealthy_threshold = self.count(map, path, "unhealthyThreshold", 1, 100).unwrap_or(3);
        let hc_path = hc_path?;
        if timeout >= interval {
            self.diags.warning(
                loc(node),
                path,
                format!("timeoutMs ({timeout}) is not below intervalMs ({interval}): a check may still run when the next is due"),
            );
        }
        Some(HealthCheck {
            path: hc_path,
            interval_ms: interval,
            timeout_ms: timeout,
            healthy_threshold,
            unhealthy_threshold,
        })
    }

    pub(crate) fn outlier(&mut self, node: &Node, path: &str) -> Outlier {
        let mut o = Outlier::default();
        let Some(map) = self.mapping(node, path, keys::OUTLIER) else {
            return o;
        };
        if let Some(v) = self.count(map, path, "consecutiveFailures", 0, 1_000) {
            o.consecutive_failures = v;
        }
        if let Some(v) = self.ms(map, path, "ejectMs", 1) {
            o.eject_ms = v;
        }
        if let Some(v) = self.count(map, path, "maxEjectedPercent", 0, 100) {
            o.max_ejected_percent = v;
        }
        o
    }

    pub(crate) fn retry(&mut self, node: &Node, path: &str) -> Option<Retry> {
        let map = self.mapping(node, path, keys::RETRY)?;
        let mut retry = Retry {
            attempts: self.count(map, path, "attempts", 1, 10).unwrap_or(2),
            on_kinds: vec!["connect_failed".into(), "upstream_reset".into()],
            on_status: vec![502, 503, 504],
            backoff_ms: self.ms(map, path, "backoffMs", 0).unwrap_or(25),
            budget_percent: self.count(map, path, "budgetPercent", 0, 100).unwrap_or(20),
        };
        if let Some(v) = map.get_node("on") {
            let op = join(path, "on");
            retry.on_kinds.clear();
            retry.on_status.clear();
            let Some(seq) = self.sequence(v, &op) else {
                return Some(retry);
            };
            if seq.is_empty() {
                self.diags
                    .error(loc(v), &op, "must list at least one failure kind or 5xx status");
            }
            for (i, item) in seq.iter().enumerate() {
                let ip = format!("{op}[{i}]");
                let Some(s) = item.as_scalar() else {
                    self.diags
                        .error(loc(item), &ip, "must be a failure kind or a 5xx status");
                    continue;
                };
                match s.as_str().parse::<u16>() {
                    Ok(code) if (500..=599).contains(&code) => retry.on_status.push(code),
                    Ok(code) => self
                        .diags
                        .error(loc(item), &ip, format!("only 5xx statuses are retried, got {code}")),
                    Err(_) if RETRY_KINDS.contains(&s.as_str()) => retry.on_kinds.push(s.as_str().to_owned()),
                    Err(_) => self.diags.error(
                        loc(item),
                        &ip,
                        format!(
                            "unknown failure kind {:?}{}; retried kinds: {}",
                            s.as_str(),
                            crate::diag::suggestion(s.as_str(), RETRY_KINDS.iter().copied()),
                            RETRY_KINDS.join(", ")
                        ),
                    ),
                }
            }
        }
        Some(retry)
    }
}
