//! Cross-reference checks and lowering from [`Config`] (what the user wrote) to
//! [`Plan`] (what was validated).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use plan::build::serialize;
use plan::{
    AccessLog, Action, Backend, Cluster, Condition, HeaderFilter, Limits, LogDestination, PathMatch, Plan, Policy,
    PolicyLimits, Redirect, RegexDfa, Rewrite, Route, Timeouts, Upstream, ValueMatch, sha256_hex, smooth_wrr_sequence,
};

use crate::analysis;
use crate::config::{Config, TimeoutsCfg};
use crate::diag::{Diagnostics, Loc, suggestion};
use crate::route::{ActionCfg, ConditionCfg, FilterCfg, PathCfg, RouteCfg, ValueCfg};

/// Where the gateway serves when `listen` is not given.
const DEFAULT_LISTEN: std::net::SocketAddr =
    std::net::SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 8080);

fn merge(base: Timeouts, over: &TimeoutsCfg) -> Timeouts {
    Timeouts {
        read_ms: over.read_ms.unwrap_or(base.read_ms),
        write_ms: over.write_ms.unwrap_or(base.write_ms),
        upstream_ms: over.upstream_ms.unwrap_or(base.upstream_ms),
        connect_ms: over.connect_ms.unwrap_or(base.connect_ms),
        idle_ms: over.idle_ms.unwrap_or(base.idle_ms),
        tunnel_idle_ms: over.tunnel_idle_ms.unwrap_or(base.tunnel_idle_ms),
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
pub fn lower(
    cfg: &Config,
    diags: &mut Diagnostics,
    source_name: &str,
    base_dir: &Path,
    analysis_time: &mut std::time::Duration,
) -> Option<Plan> {
    let clusters = index_names(diags, "cluster", cfg.clusters.iter().map(|c| c.name.as_ref()));
    let policies = index_names(diags, "policy", cfg.policies.iter().map(|p| p.name.as_ref()));
    let route_names = index_names(diags, "route", cfg.routes.iter().map(|r| r.name.as_ref()));
    let _ = route_names;

    let defaults = merge(Timeouts::default(), &cfg.defaults);
    let mut used_clusters = vec![false; cfg.clusters.len()];
    let mut used_policies = vec![false; cfg.policies.len()];
    let mut regexes: Vec<RegexDfa> = Vec::new();
    let mut routes = Vec::with_capacity(cfg.routes.len());
    for r in &cfg.routes {
        let action = r.action.as_ref().and_then(|a| match a {
            ActionCfg::Cluster(c) => resolve(diags, "cluster", &clusters, &mut used_clusters, c).map(Action::Cluster),
            ActionCfg::Backends(list) => {
                let mut backends = Vec::with_capacity(list.len());
                for (c, weight) in list {
                    if let Some(cluster) = resolve(diags, "cluster", &clusters, &mut used_clusters, c) {
                        backends.push(Backend {
                            cluster,
                            weight: *weight,
                        });
                    }
                }
                let weights: Vec<u32> = backends.iter().map(|b| b.weight).collect();
                (backends.len() == list.len() && !list.is_empty()).then(|| Action::Backends {
                    wrr: smooth_wrr_sequence(&weights).unwrap_or_default(),
                    backends,
                })
            }
            ActionCfg::Redirect(rd) => Some(Action::Redirect(Redirect {
                scheme: rd.scheme.clone(),
                host: rd.host.clone(),
                port: rd.port,
                path: rd.path.as_ref().map(|p| p.value.clone()),
                status: rd.status,
            })),
        });
        let mut route_policies = Vec::with_capacity(r.policies.len());
        for p in &r.policies {
            if let Some(idx) = resolve(diags, "policy", &policies, &mut used_policies, p) {
                route_policies.push(idx);
            }
        }
        let (Some(name), Some(path), Some(action)) = (&r.name, &r.path, action) else {
            continue;
        };
        if r.hosts.is_empty() {
            continue;
        }
        let mut condition = |c: &ConditionCfg| Condition {
            name: c.name.clone(),
            value: match &c.value {
                ValueCfg::Exact(v) => ValueMatch::Exact(v.clone()),
                ValueCfg::Regex(re) => {
                    regexes.push(serialize(vec![re.source.clone()], &re.dfa));
                    ValueMatch::Regex {
                        source: re.source.clone(),
                        dfa: (regexes.len() - 1) as u32,
                    }
                }
            },
        };
        let headers = r.headers.iter().map(&mut condition).collect();
        let query = r.query.iter().map(&mut condition).collect();
        let filter = |f: &FilterCfg| HeaderFilter {
            set: f.set.clone(),
            add: f.add.clone(),
            remove: f.remove.clone(),
        };
        routes.push(Route {
            name: name.value.clone(),
            hosts: r.hosts.iter().map(|h| h.value.to_plan_string()).collect(),
            path: match &path.value {
                PathCfg::Prefix(p) => PathMatch::Prefix(p.clone()),
                PathCfg::Exact(p) => PathMatch::Exact(p.clone()),
                PathCfg::Regex(re) => PathMatch::Regex(re.source.clone()),
            },
            methods: r.methods.clone(),
            headers,
            query,
            action,
            request_headers: filter(&r.request_headers),
            response_headers: filter(&r.response_headers),
            rewrite: Rewrite {
                host: r.rewrite.host.clone(),
                path: r.rewrite.path.as_ref().map(|p| p.value.clone()),
            },
            timeouts: merge(defaults, &r.timeouts),
            retry: r.retry.clone(),
            policies: route_policies,
            line: r.loc.line,
            column: r.loc.col,
        });
    }
    duplicates(cfg, diags);
    if !diags.has_errors() {
        let started = std::time::Instant::now();
        analysis::check(&views(cfg), diags, source_name);
        *analysis_time = started.elapsed();
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

    if let Some(path) = cfg
        .access_log
        .path
        .as_deref()
        .filter(|p| !matches!(*p, "stdout" | "stderr"))
    {
        let dir = base_dir.join(path).parent().map(Path::to_path_buf).unwrap_or_default();
        if !dir.as_os_str().is_empty() && !dir.is_dir() {
            diags.warning(
                cfg.access_log.path_loc,
                "accessLog.path",
                format!(
                    "the directory of {path:?} ({}) does not exist here; the gateway cannot open the log until it does",
                    dir.display()
                ),
            );
        }
    }
    if let Some(admin) = &cfg.admin_listen {
        let (listen, said) = match &cfg.listen {
            Some(l) => (l.value, format!("listen {} (line {})", l.value, l.loc.line)),
            None => (DEFAULT_LISTEN, format!("the default listen {DEFAULT_LISTEN}")),
        };
        if crate::config::addresses_collide(admin.value, listen) {
            diags.error(admin.loc, &admin.path, format!("{} collides with {said}", admin.value));
        }
    }
    let tls = cfg
        .tls
        .as_ref()
        .map(|t| crate::tls_check::lower(t, cfg, diags, base_dir));
    for (i, c) in cfg.clusters.iter().enumerate() {
        crate::tls_check::upstream(c, i, diags, base_dir);
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
                pool: c.pool,
                health_check: c.health_check.clone(),
                outlier: c.outlier,
                dns_refresh_ms: c.dns_refresh_ms.unwrap_or(30_000),
                protocol: c.protocol,
                tls: c.tls.as_ref().map(|t| plan::UpstreamTls {
                    ca: t.ca.as_ref().map(|c| c.value.clone()),
                    insecure_skip_verify: t.insecure_skip_verify.as_ref().is_some_and(|s| s.value),
                }),
            }
        })
        .collect();
    let index = match plan::build::index(&routes, regexes.len() as u32) {
        Ok(index) => index,
        Err(e) => {
            diags.error(
                Loc { line: 1, col: 1 },
                "routes",
                format!("the path regexes together: {e}"),
            );
            return None;
        }
    };
    regexes.extend(index.regexes);
    let limits = Limits::default();
    let log = AccessLog::default();
    Some(Plan {
        source: source_name.to_owned(),
        listen: cfg
            .listen
            .as_ref()
            .map_or_else(|| DEFAULT_LISTEN.to_string(), |l| l.value.to_string()),
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
        tls: tls.flatten(),
        http2: crate::tls_check::lower_http2(&cfg.http2),
        routes,
        clusters,
        policies: plan_policies,
        hosts: index.hosts,
        catch_all: index.catch_all,
        tables: index.tables,
        paths: index.paths,
        regexes,
    })
}

/// What identifies a route's match within one host pattern: path matcher
/// kind and text, methods, headers and query conditions (each sorted).
type MatchKey = (u8, String, Vec<String>, Vec<String>, Vec<String>);

/// The key of a route's match within one host pattern: the path matcher and
/// the conditions, order-insensitive.
fn match_key(r: &RouteCfg) -> Option<MatchKey> {
    let path = r.path.as_ref()?;
    let (rank, text) = match &path.value {
        PathCfg::Exact(p) => (0, p.clone()),
        PathCfg::Regex(re) => (1, re.source.clone()),
        PathCfg::Prefix(p) => (2, p.clone()),
    };
    let conds = |list: &[ConditionCfg]| {
        let mut v: Vec<String> = list
            .iter()
            .map(|c| match &c.value {
                ValueCfg::Exact(x) => format!("{}={x}", c.name),
                ValueCfg::Regex(re) => format!("{}~{}", c.name, re.source),
            })
            .collect();
        v.sort();
        v
    };
    let mut methods = r.methods.clone();
    methods.sort();
    Some((rank, text, methods, conds(&r.headers), conds(&r.query)))
}

/// Two routes with a host pattern in common and the same path matcher and
/// conditions: the later one could never be selected for that host, and the
/// config says two things about one request.
fn duplicates(cfg: &Config, diags: &mut Diagnostics) {
    let mut seen: HashMap<(String, MatchKey), usize> = HashMap::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        let Some(key) = match_key(r) else { continue };
        for h in &r.hosts {
            let host = h.value.to_plan_string();
            match seen.get(&(host.clone(), key.clone())) {
                Some(&first) if first != i => {
                    let other = &cfg.routes[first];
                    let Some(path) = &r.path else { continue };
                    let (sep, what) = if key.2.is_empty() && key.3.is_empty() && key.4.is_empty() {
                        (" and", "")
                    } else {
                        (",", " and conditions")
                    };
                    diags.error(
                        path.loc,
                        &path.path,
                        format!(
                            "route has the same host {host:?}{sep} {} {:?}{what} as route {:?} (line {}) after normalization",
                            ["path", "pathRegex", "pathPrefix"][key.0 as usize],
                            key.1,
                            other.name.as_ref().map_or("?", |n| n.value.as_str()),
                            other.loc.line,
                        ),
                    );
                    break;
                }
                Some(_) => {}
                None => {
                    seen.insert((host, key.clone()), i);
                }
            }
        }
    }
}

/// The routes as the static checks see them (every route read whole).
fn views(cfg: &Config) -> Vec<analysis::View<'_>> {
    cfg.routes
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let path = r.path.as_ref()?;
            Some(analysis::View {
                name: r.name.as_ref().map_or("?", |n| n.value.as_str()),
                line: r.loc.line,
                loc: r.loc,
                field: format!("routes[{i}]"),
                hosts: r.hosts.iter().map(|h| h.value.clone()).collect(),
                matcher: match &path.value {
                    PathCfg::Prefix(p) => analysis::Matcher::Prefix(p),
                    PathCfg::Exact(p) => analysis::Matcher::Exact(p),
                    PathCfg::Regex(re) => analysis::Matcher::Regex(re),
                },
                methods: &r.methods,
                headers: &r.headers,
                query: &r.query,
            })
        })
        .collect()
}
