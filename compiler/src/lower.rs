//! Cross-reference checks and lowering from [`Config`] (what the user wrote) to
//! [`Plan`] (what was validated).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use plan::{
    AccessLog, Cluster, Limits, LogDestination, Plan, PlanBuilder, Policy, PolicyLimits, PoolSettings, Route, Timeouts,
    Upstream, sha256_hex, smooth_wrr_sequence,
};

use crate::config::{Config, TimeoutsCfg};
use crate::diag::{Diagnostics, Loc, suggestion};

fn merge(base: Timeouts, over: &TimeoutsCfg) -> Timeouts {
    Timeouts {
        read_ms: over.read_ms.unwrap_or(base.read_ms),
        write_ms: over.write_ms.unwrap_or(base.write_ms),
        upstream_ms: over.upstream_ms.unwrap_or(base.upstream_ms),
        connect_ms: over.connect_ms.unwrap_or(base.connect_ms),
        idle_ms: over.idle_ms.unwrap_or(base.idle_ms),
    }
}

/// Names declared in one list, with where each was first declared.
fn index_names<'a>(
    diags: &mut Diagnostics,
    what: &str,
    items: impl Iterator<Item = Option<&'a crate::yaml::Spanned<String>>>,
) -> HashMap<&'a str, (u32, Loc)> {
    let mut names: HashMap<&str, (u32, Loc)> = HashMap::new();
    for (i, name) in items.enumerate() {
        let Some(name) = name else { continue };
        match names.get(name.value.as_str()) {
            Some(&(_, first)) => diags.error(
                name.loc,
                &name.path,
                format!(
                    "duplicate {what} name {:?} (first defined at line {})",
                    name.value, first.line
                ),
            ),
            None => {
                names.insert(&name.value, (i as u32, name.loc));
            }
        }
    }
    names
}

/// Looks `name` up among the declared `names`, marking it used; an unknown name
/// is an error at its location, with the closest declared name suggested.
fn resolve(
    diags: &mut Diagnostics,
    what: &str,
    names: &HashMap<&str, (u32, Loc)>,
    used: &mut [bool],
    name: &crate::yaml::Spanned<String>,
) -> Option<u32> {
    match names.get(name.value.as_str()) {
        Some(&(idx, _)) => {
            used[idx as usize] = true;
            Some(idx)
        }
        None => {
            diags.error(
                name.loc,
                &name.path,
                format!(
                    "unknown {what} {:?}{}",
                    name.value,
                    suggestion(&name.value, names.keys().copied())
                ),
            );
            None
        }
    }
}

/// Checks references and builds the plan; `None` when any error was reported.
pub fn lower(cfg: &Config, diags: &mut Diagnostics, source_name: &str, base_dir: &Path) -> Option<Plan> {
    let clusters = index_names(diags, "cluster", cfg.clusters.iter().map(|c| c.name.as_ref()));
    let policies = index_names(diags, "policy", cfg.policies.iter().map(|p| p.name.as_ref()));
    let route_names = index_names(diags, "route", cfg.routes.iter().map(|r| r.name.as_ref()));
    let _ = route_names;

    let defaults = merge(Timeouts::default(), &cfg.defaults);
    let mut builder = PlanBuilder::new();
    let mut used_clusters = vec![false; cfg.clusters.len()];
    let mut used_policies = vec![false; cfg.policies.len()];
    let mut routes = Vec::with_capacity(cfg.routes.len());
    for (i, r) in cfg.routes.iter().enumerate() {
        let cluster = r
            .cluster
            .as_ref()
            .and_then(|c| resolve(diags, "cluster", &clusters, &mut used_clusters, c));
        let mut route_policies = Vec::with_capacity(r.policies.len());
        for p in &r.policies {
            if let Some(idx) = resolve(diags, "policy", &policies, &mut used_policies, p) {
                route_policies.push(idx);
            }
        }
        if let (Some(host), Some(prefix)) = (&r.host, &r.prefix)
            && let Err(other) = builder.insert(host, &prefix.value, i as u32)
        {
            let other = &cfg.routes[other as usize];
            diags.error(
                prefix.loc,
                &prefix.path,
                format!(
                    "route has the same host {:?} and pathPrefix {:?} as route {:?} (line {}) after normalization",
                    host.to_plan_string(),
                    prefix.value,
                    other.name.as_ref().map_or("?", |n| n.value.as_str()),
                    other.loc.line,
                ),
            );
        }
        if let (Some(name), Some(host), Some(prefix), Some(cluster)) = (&r.name, &r.host, &r.prefix, cluster) {
            routes.push(Route {
                name: name.value.clone(),
                host: host.to_plan_string(),
                path_prefix: prefix.value.clone(),
                cluster,
                timeouts: merge(defaults, &r.timeouts),
                policies: route_policies,
                line: r.loc.line,
                column: r.loc.col,
            });
        }
    }
    let mut plan_policies = Vec::with_capacity(cfg.policies.len());
    for p in &cfg.policies {
        let mut allowed = Vec::with_capacity(p.clusters.len());
        for c in &p.clusters {
            if let Some(idx) = resolve(diags, "cluster", &clusters, &mut used_clusters, c) {
                allowed.push(idx);
            }
        }
        let Some(module) = &p.module else { continue };
        if Path::new(&module.value).is_absolute() {
            diags.error(
                module.loc,
                &module.path,
                format!("module path {:?} must be relative to the config file", module.value),
            );
            continue;
        }
        let file = base_dir.join(&module.value);
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                diags.error(
                    module.loc,
                    &module.path,
                    format!(
                        "cannot read module {:?} (relative to the config's directory): {e}",
                        module.value
                    ),
                );
                continue;
            }
        };
        if !bytes.starts_with(b"\0asm") {
            diags.error(
                module.loc,
                &module.path,
                format!("{:?} is not a WebAssembly module (no \\0asm header)", module.value),
            );
            continue;
        }
        let problems = crate::wasm::check_module(&bytes);
        for problem in &problems {
            diags.error(module.loc, &module.path, format!("module {:?} {problem}", module.value));
        }
        if !problems.is_empty() {
            continue;
        }
        let defaults = PolicyLimits::default();
        plan_policies.push(Policy {
            name: p.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
            module: module.value.clone(),
            sha256: sha256_hex(&bytes),
            wasm: base64::engine::general_purpose::STANDARD.encode(&bytes),
            config: p.config.to_string(),
            clusters: allowed,
            limits: PolicyLimits {
                fuel: p.fuel,
                memory_pages: p.memory_pages.map_or(defaults.memory_pages, |v| v as u32),
                timeout_ms: p.timeout_ms.unwrap_or(defaults.timeout_ms),
            },
            on_error: p.on_error,
        });
    }

    if cfg.routes.is_empty() && !cfg.routes_invalid {
        diags.warning(
            Loc { line: 1, col: 1 },
            "routes",
            "no routes: every request will be answered 404",
        );
    }
    for (i, (c, used)) in cfg.clusters.iter().zip(&used_clusters).enumerate() {
        let first =
            |n: &crate::yaml::Spanned<String>| clusters.get(n.value.as_str()).is_some_and(|&(f, _)| f as usize == i);
        if let (Some(name), false) = (&c.name, used)
            && first(name)
        {
            diags.warning(
                name.loc,
                &name.path,
                format!("cluster {:?} is not used by any route", name.value),
            );
        }
    }
    for (i, (p, used)) in cfg.policies.iter().zip(&used_policies).enumerate() {
        let first =
            |n: &crate::yaml::Spanned<String>| policies.get(n.value.as_str()).is_some_and(|&(f, _)| f as usize == i);
        if let (Some(name), false) = (&p.name, used)
            && first(name)
        {
            diags.warning(
                name.loc,
                &name.path,
                format!("policy {:?} is not used by any route", name.value),
            );
        }
    }

    if diags.has_errors() {
        return None;
    }
    let clusters = cfg
        .clusters
        .iter()
        .map(|c| {
            let weights: Vec<u32> = c.upstreams.iter().map(|u| u.weight).collect();
            Cluster {
                name: c.name.as_ref().map(|n| n.value.clone()).unwrap_or_default(),
                upstreams: c
                    .upstreams
                    .iter()
                    .map(|u| Upstream {
                        url: u.url.clone(),
                        weight: u.weight,
                    })
                    .collect(),
                wrr: smooth_wrr_sequence(&weights).unwrap_or_default(),
                pool: PoolSettings {
                    idle_ms: c.pool_idle_ms.unwrap_or(PoolSettings::default().idle_ms),
                },
            }
        })
        .collect();
    let (hosts, catch_all, paths) = builder.finish();
    let limits = Limits::default();
    let log = AccessLog::default();
    Some(Plan {
        source: source_name.to_owned(),
        listen: cfg
            .listen
            .as_ref()
            .map_or_else(|| "0.0.0.0:8080".to_owned(), |l| l.value.to_string()),
        admin: cfg.admin_listen.as_ref().map(|a| a.value.to_string()),
        limits: Limits {
            max_header_bytes: cfg
                .limits
                .max_header_bytes
                .map_or(limits.max_header_bytes, |v| v as u32),
            max_headers: cfg.limits.max_headers.map_or(limits.max_headers, |v| v as u32),
            max_connections: cfg.limits.max_connections.map_or(limits.max_connections, |v| v as u32),
            max_request_body_bytes: cfg.limits.max_request_body_bytes,
        },
        shutdown_delay_ms: cfg.shutdown_delay_ms.unwrap_or(0),
        drain_ms: cfg.drain_ms.unwrap_or(30_000),
        defaults,
        access_log: AccessLog {
            enabled: cfg.access_log.enabled.unwrap_or(log.enabled),
            destination: match cfg.access_log.path.as_deref() {
                None | Some("stdout") => LogDestination::Stdout,
                Some("stderr") => LogDestination::Stderr,
                Some(path) => LogDestination::File(path.to_owned()),
            },
            fields: cfg.access_log.fields.clone().unwrap_or(log.fields),
        },
        routes,
        clusters,
        policies: plan_policies,
        hosts,
        catch_all,
        paths,
    })
}
