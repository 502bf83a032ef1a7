//! A plan generation: a loaded plan with everything derived from it at load
//! time (runtime indexes, upstream targets, counters, route timeouts, policy
//! modules), shared by every worker until a reload replaces it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use plan::{LogField, Router};

use crate::observe::exchange::HeadFields;
use crate::observe::stats::{Registry, Stats};
use crate::upstream::{Targets, Upstreams};

/// A route's timeouts as the request path uses them (SPEC §7), built once
/// per plan.
#[derive(Debug, Clone, Copy)]
pub struct RouteTimeouts {
    pub read: Duration,
    pub write: Duration,
    pub upstream: Duration,
    pub connect: Duration,
    pub idle: Duration,
    pub tunnel_idle: Duration,
}

impl From<plan::Timeouts> for RouteTimeouts {
    fn from(t: plan::Timeouts) -> Self {
        Self {
            read: Duration::from_millis(t.read_ms),
            write: Duration::from_millis(t.write_ms),
            upstream: Duration::from_millis(t.upstream_ms),
            connect: Duration::from_millis(t.connect_ms),
            idle: Duration::from_millis(t.idle_ms),
            tunnel_idle: Duration::from_millis(t.tunnel_idle_ms),
        }
    }
}

/// A route's header filters (SPEC §4.9) in the form the codec applies.
#[derive(Debug, Clone, Default)]
pub struct RouteFilters {
    pub request: http1::Filter,
    pub response: http1::Filter,
}

impl RouteFilters {
    pub fn of(route: &plan::Route) -> Self {
        let filter = |f: &plan::HeaderFilter| {
            let drop = f
                .set
                .iter()
                .map(|(n, _)| n.as_str())
                .chain(f.remove.iter().map(String::as_str));
            http1::Filter::new(drop, f.written())
        };
        Self {
            request: filter(&route.request_headers),
            response: filter(&route.response_headers),
        }
    }
}

/// Numbers plan generations, so per-worker state built for one (warm policy
/// instances) is never mistaken for another's.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A plan with everything derived from it at load time.
#[derive(Debug)]
pub struct Generation {
    /// Unique in this process, increasing with every load.
    pub id: u64,
    pub router: Router,
    /// Timeouts before a route is known (reading heads, refusals, no route).
    pub defaults: RouteTimeouts,
    /// Each route's timeouts, by route index.
    pub route_timeouts: Vec<RouteTimeouts>,
    /// Each route's header filters, by route index.
    pub route_filters: Vec<RouteFilters>,
    /// Each route's retry budget, for routes with `retry`.
    pub retry_budgets: Vec<Option<std::sync::Arc<crate::upstream::budget::Budget>>>,
    pub targets: Targets,
    pub stats: Stats,
    /// Access-log fields, empty when the log is off.
    pub log_fields: Vec<LogField>,
    /// What each exchange records of its head for those fields.
    pub log_head: HeadFields,
    /// The access-log destination (its number at the sink) lines go to.
    pub log_destination: u64,
    /// First 12 hex digits of the plan digest, for the `plan` log field.
    pub short_digest: String,
    /// Compiled and linked policy modules, when the plan has any.
    pub policies: Option<policy_host::Policies>,
    /// The TLS listener's certificates and configuration, read when this
    /// generation was loaded; new TLS connections start from it.
    pub tls: Option<std::sync::Arc<crate::tls::TlsServer>>,
}

impl Generation {
    /// Everything a plan needs to serve; `threads` sizes the wasm instance pool.
    /// Certificate files are read relative to `base_dir`; any problem with
    /// them fails the load.
    pub fn new(
        router: Router,
        registry: &Registry,
        upstreams: &Upstreams,
        threads: usize,
        base_dir: &std::path::Path,
    ) -> Result<Self, String> {
        let plan = router.plan();
        let tls = match &plan.tls {
            Some(t) => Some(std::sync::Arc::new(crate::tls::TlsServer::load(t, base_dir)?)),
            None => None,
        };
        let id = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        let instances = (threads * plan.policies.len() * 2 + 16).min(10_000) as u32;
        let policies = policy_host::Policies::new(plan, id, instances, |name| registry.policy(name))?;
        let defaults = RouteTimeouts::from(plan.defaults);
        let route_timeouts = plan.routes.iter().map(|r| RouteTimeouts::from(r.timeouts)).collect();
        let route_filters = plan.routes.iter().map(RouteFilters::of).collect();
        let retry_budgets = plan
            .routes
            .iter()
            .map(|r| r.retry.as_ref().map(|_| upstreams.budgets.get(&r.name)))
            .collect();
        let stats = registry.resolve(plan);
        let targets = Targets::new(plan, upstreams, &stats, base_dir)?;
        let log_fields = if plan.access_log.enabled {
            plan.access_log.fields.clone()
        } else {
            Vec::new()
        };
        let short_digest = router.digest().trim_start_matches("sha256:").chars().take(12).collect();
        Ok(Self {
            id,
            router,
            defaults,
            route_timeouts,
            route_filters,
            retry_budgets,
            targets,
            stats,
            log_head: HeadFields::of(&log_fields),
            log_fields,
            log_destination: 0,
            short_digest,
            policies,
            tls,
        })
    }
}
