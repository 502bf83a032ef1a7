//! Reading one route (SPEC §4): hosts, one path matcher, request conditions,
//! one action, filters and rewrite, each checked where it stands. References
//! to clusters and policies are resolved by `lower`.

use marked_yaml::Node;
use plan::{HostPattern, PathReplace, normalize_path, parse_host_pattern, split_prefix};

use crate::config::TimeoutsCfg;
use crate::diag::Loc;
use crate::keys;
use crate::regex::{CompiledRegex, RegexUse};
use crate::yaml::{Reader, Spanned, join, loc};

#[derive(Debug)]
pub struct RouteCfg {
    pub loc: Loc,
    pub name: Option<Spanned<String>>,
    /// Each pattern with where it was written; empty when invalid (reported).
    pub hosts: Vec<Spanned<HostPattern>>,
    pub path: Option<Spanned<PathCfg>>,
    pub methods: Vec<String>,
    pub headers: Vec<ConditionCfg>,
    pub query: Vec<ConditionCfg>,
    pub action: Option<ActionCfg>,
    pub request_headers: FilterCfg,
    pub response_headers: FilterCfg,
    pub rewrite: RewriteCfg,
    pub timeouts: TimeoutsCfg,
    pub retry: Option<plan::Retry>,
    pub policies: Vec<Spanned<String>>,
}

#[derive(Debug, Clone)]
pub enum PathCfg {
    Prefix(String),
    Exact(String),
    Regex(Box<CompiledRegex>),
}

#[derive(Debug, Clone)]
pub struct ConditionCfg {
    pub name: String,
    pub value: ValueCfg,
}

#[derive(Debug, Clone)]
pub enum ValueCfg {
    Exact(String),
    Regex(Box<CompiledRegex>),
}

#[derive(Debug)]
pub enum ActionCfg {
    Cluster(Spanned<String>),
    Backends(Vec<(Spanned<String>, u32)>),
    Redirect(RedirectCfg),
}

#[derive(Debug)]
pub struct RedirectCfg {
    pub scheme: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub path: Option<Spanned<PathReplace>>,
    pub status: u16,
}

#[derive(Debug, Default)]
pub struct FilterCfg {
    pub set: Vec<(String, String)>,
    pub add: Vec<(String, String)>,
    pub remove: Vec<String>,
    pub loc: Option<Loc>,
}

#[derive(Debug, Default)]
pub struct RewriteCfg {
    pub host: Option<String>,
    pub path: Option<Spanned<PathReplace>>,
    pub loc: Option<Loc>,
}

/// An exact `path`: normalized as request paths are; a path that no
/// normalized request path can equal is refused.
fn check_exact(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("path {raw:?} must start with \"/\""));
    }
    if let Some(c) = raw.chars().find(|c| matches!(c, '?' | '#' | ';')) {
        return Err(format!(
            "path {raw:?} contains {c:?}; the query, fragment and ;params are never part of the matched path, so it can never match"
        ));
    }
    if raw.contains(' ') {
        return Err(format!(
            "path {raw:?} contains ' ', which no request path carries (a space is written %20), so it can never match"
        ));
    }
    if let Some(seg) = raw[1..].split('/').find(|s| plan::is_dot_segment(s).is_some()) {
        return Err(format!(
            "path {raw:?} contains the dot-segment {seg:?}; request paths are normalized before matching, so it can never match"
        ));
    }
    normalize_path(raw)
        .map(|p| p.into_owned())
        .map_err(|e| format!("path {raw:?}: {e}; such requests are refused with 400, so it can never match"))
}

impl Reader<'_> {
    pub(crate) fn string_list(&mut self, node: &Node, path: &str) -> Vec<Spanned<String>> {
        let mut out = Vec::new();
        if let Some(seq) = self.sequence(node, path) {
            if seq.is_empty() {
                self.diags.error(loc(node), path, "must not be empty");
            }
            for (i, item) in seq.iter().enumerate() {
                if let Some(s) = self.string(item, &format!("{path}[{i}]")) {
                    out.push(s);
                }
            }
        }
        out
    }

    fn hosts(&mut self, node: &Node, path: &str) -> Vec<Spanned<HostPattern>> {
        let mut out: Vec<Spanned<HostPattern>> = Vec::new();
        for s in self.string_list(node, path) {
            match parse_host_pattern(Some(&s.value)) {
                Ok(p) if out.iter().any(|h| h.value == p) => self.diags.error(
                    s.loc,
                    &s.path,
                    format!("host pattern {:?} is listed twice", p.to_plan_string()),
                ),
                Ok(p) => out.push(Spanned {
                    value: p,
                    loc: s.loc,
                    path: s.path,
                }),
                Err(e) => self.diags.error(s.loc, &s.path, e),
            }
        }
        out
    }

    fn methods(&mut self, node: &Node, path: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for m in self.string_list(node, path) {
            if !http1::is_token(m.value.as_bytes()) {
                self.diags
                    .error(m.loc, &m.path, format!("{:?} is not a valid method token", m.value));
            } else if out.contains(&m.value) {
                self.diags
                    .error(m.loc, &m.path, format!("method {:?} is listed twice", m.value));
            } else {
                let upper = m.value.to_ascii_uppercase();
                if upper != m.value {
                    // Methods are case-sensitive (RFC 9110 §9.1): almost
                    // surely a typo for the standard one.
                    self.diags.warning(
                        m.loc,
                        &m.path,
                        format!(
                            "method {:?} matches only requests whose method is exactly {:?} (methods are case-sensitive); did you mean {upper:?}?",
                            m.value, m.value
                        ),
                    );
                }
                out.push(m.value);
            }
        }
        out
    }

    fn conditions(&mut self, node: &Node, path: &str, header: bool) -> Vec<ConditionCfg> {
        let mut out: Vec<ConditionCfg> = Vec::new();
        let Some(seq) = self.sequence(node, path) else {
            return out;
        };
        for (i, item) in seq.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(map) = self.mapping(item, &p, keys::CONDITION) else {
                continue;
            };
            let name = match map.get_node("name") {
                Some(n) => self.string(n, &join(&p, "name")),
                None => {
                    self.diags.error(loc(item), join(&p, "name"), "missing required field");
                    None
                }
            };
            let value = match (map.get_node("value"), map.get_node("regex")) {
                (Some(_), Some(r)) => {
                    self.diags
                        .error(loc(r), join(&p, "regex"), "value and regex are exclusive: give one");
                    None
                }
                (Some(v), None) => self.field_value(v, &join(&p, "value"), header).map(ValueCfg::Exact),
                (None, Some(r)) => {
                    let use_ = if header { RegexUse::Header } else { RegexUse::Query };
                    self.regex(r, &join(&p, "regex"), use_)
                        .map(|r| ValueCfg::Regex(Box::new(r)))
                }
                (None, None) => {
                    self.diags.error(loc(item), &p, "needs value or regex");
                    None
                }
            };
            let Some(name) = name else { continue };
            if header && !http1::is_token(name.value.as_bytes()) {
                self.diags.error(
                    name.loc,
                    &name.path,
                    format!("{:?} is not a valid header name", name.value),
                );
                continue;
            }
            let key = if header {
                name.value.to_ascii_lowercase()
            } else {
                name.value.clone()
            };
            if out.iter().any(|c| c.name == key) {
                self.diags.error(
                    name.loc,
                    &name.path,
                    format!("{:?} has a condition already; one condition per name", name.value),
                );
                continue;
            }
            if let Some(value) = value {
                out.push(ConditionCfg { name: key, value });
            }
        }
        out
    }

    /// A header value (or, for query conditions, any string) that can occur.
    pub(crate) fn field_value(&mut self, node: &Node, path: &str, header: bool) -> Option<String> {
        let Some(s) = node.as_scalar() else {
            self.diags.error(loc(node), path, "must be a string");
            return None;
        };
        let v = s.as_str();
        if header && !http1::is_field_value(v.as_bytes()) {
            self.diags.error(
                loc(node),
                path,
                format!("{v:?} is not a valid header value (control bytes, or whitespace at either end)"),
            );
            return None;
        }
        Some(v.to_owned())
    }

    fn backends(&mut self, node: &Node, path: &str) -> Vec<(Spanned<String>, u32)> {
        let mut out: Vec<(Spanned<String>, u32)> = Vec::new();
        let Some(seq) = self.sequence(node, path) else {
            return out;
        };
        if seq.is_empty() {
            self.diags.error(loc(node), path, "must list at least one backend");
        }
        for (i, item) in seq.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(map) = self.mapping(item, &p, keys::BACKEND) else {
                continue;
            };
            let Some(cluster) = map
                .get_node("cluster")
                .and_then(|c| self.string(c, &join(&p, "cluster")))
            else {
                if map.get_node("cluster").is_none() {
                    self.diags
                        .error(loc(item), join(&p, "cluster"), "missing required field");
                }
                continue;
            };
            let weight = match map.get_node("weight") {
                Some(w) => self
                    .integer(w, &join(&p, "weight"), 0, 1_000_000, "")
                    .map(|w| w.value as u32),
                None => Some(1),
            };
            if out.iter().any(|(c, _)| c.value == cluster.value) {
                self.diags.error(
                    cluster.loc,
                    &cluster.path,
                    format!("cluster {:?} is listed twice in this split", cluster.value),
                );
                continue;
            }
            if let Some(w) = weight {
                out.push((cluster, w));
            }
        }
        if !out.is_empty() && out.iter().all(|(_, w)| *w == 0) {
            self.diags
                .error(loc(node), path, "at least one backend needs a weight greater than 0");
        }
        out
    }

    fn path_matcher(&mut self, key: &str, value: &Node, p: &str) -> Option<PathCfg> {
        if key == "pathRegex" {
            return self
                .regex(value, p, RegexUse::Path)
                .map(|r| PathCfg::Regex(Box::new(r)));
        }
        let s = self.string(value, p)?;
        let checked = if key == "pathPrefix" {
            split_prefix(&s.value).map(PathCfg::Prefix)
        } else {
            check_exact(&s.value).map(PathCfg::Exact)
        };
        checked.map_err(|e| self.diags.error(s.loc, p, e)).ok()
    }

    pub fn route(&mut self, node: &Node, path: &str) -> Option<RouteCfg> {
        let map = self.mapping(node, path, keys::ROUTE)?;
        let mut route = RouteCfg {
            loc: loc(node),
            name: None,
            hosts: vec![Spanned {
                value: HostPattern::Any,
                loc: loc(node),
                path: join(path, "host"),
            }],
            path: None,
            methods: Vec::new(),
            headers: Vec::new(),
            query: Vec::new(),
            action: None,
            request_headers: FilterCfg::default(),
            response_headers: FilterCfg::default(),
            rewrite: RewriteCfg::default(),
            timeouts: TimeoutsCfg::default(),
            retry: None,
            policies: Vec::new(),
        };
        let mut path_key: Option<&str> = None;
        let mut action_key: Option<&str> = None;
        for (key, value) in map.iter() {
            let k = key.as_str();
            let p = join(path, k);
            let key_loc = crate::yaml::span_loc(key.span());
            match k {
                "name" => route.name = self.string(value, &p),
                "hosts" if map.get_node("host").is_some() => {
                    self.diags.error(key_loc, &p, "host and hosts are exclusive: give one");
                }
                "host" => {
                    route.hosts = self
                        .string(value, &p)
                        .and_then(|h| match parse_host_pattern(Some(&h.value)) {
                            Ok(pattern) => Some(vec![Spanned {
                                value: pattern,
                                loc: h.loc,
                                path: h.path,
                            }]),
                            Err(e) => {
                                self.diags.error(h.loc, &p, e);
                                None
                            }
                        })
                        .unwrap_or_default();
                }
                "hosts" => route.hosts = self.hosts(value, &p),
                "pathPrefix" | "path" | "pathRegex" => {
                    if let Some(first) = path_key {
                        self.diags.error(
                            key_loc,
                            &p,
                            format!("{first} and {k} are exclusive: a route has one path matcher"),
                        );
                        continue;
                    }
                    path_key = Some(k);
                    route.path = self.path_matcher(k, value, &p).map(|m| Spanned {
                        value: m,
                        loc: loc(value),
                        path: p.clone(),
                    });
                }
                "methods" => route.methods = self.methods(value, &p),
                "headers" => route.headers = self.conditions(value, &p, true),
                "query" => route.query = self.conditions(value, &p, false),
                "cluster" | "backends" | "redirect" => {
                    if let Some(first) = action_key {
                        self.diags.error(
                            key_loc,
                            &p,
                            format!("{first} and {k} are exclusive: a route has one action"),
                        );
                        continue;
                    }
                    action_key = Some(k);
                    route.action = match k {
                        "cluster" => self.string(value, &p).map(ActionCfg::Cluster),
                        "backends" => Some(ActionCfg::Backends(self.backends(value, &p))),
                        _ => self.redirect(value, &p).map(ActionCfg::Redirect),
                    };
                }
                "requestHeaders" => route.request_headers = self.filter(value, &p, true),
                "responseHeaders" => route.response_headers = self.filter(value, &p, false),
                "rewrite" => route.rewrite = self.rewrite(value, &p),
                "timeouts" => route.timeouts = self.timeouts(value, &p, true),
                "retry" => route.retry = self.retry(value, &p),
                "policies" => route.policies = self.string_list(value, &p),
                _ => {}
            }
        }
        if map.get_node("name").is_none() {
            self.diags
                .error(route.loc, join(path, "name"), "missing required field");
        }
        if path_key.is_none() {
            self.diags.error(
                route.loc,
                join(path, "pathPrefix"),
                "missing required field: one of pathPrefix, path or pathRegex",
            );
        }
        if action_key.is_none() {
            self.diags.error(
                route.loc,
                join(path, "cluster"),
                "missing required field: one of cluster, backends or redirect",
            );
        }
        let prefix_route = matches!(
            route.path,
            Some(Spanned {
                value: PathCfg::Prefix(_),
                ..
            })
        );
        let replacements = [
            match &route.action {
                Some(ActionCfg::Redirect(r)) => r.path.as_ref(),
                _ => None,
            },
            route.rewrite.path.as_ref(),
        ];
        for r in replacements.into_iter().flatten() {
            if matches!(r.value, PathReplace::Prefix(_)) && !prefix_route && route.path.is_some() {
                self.diags.error(
                    r.loc,
                    &r.path,
                    "pathPrefix replaces the matched prefix, so it needs a pathPrefix route; use path to replace the whole path",
                );
            }
        }
        if let (Some(ActionCfg::Redirect(_)), Some(_)) = (&route.action, &route.retry)
            && let Some(v) = map.get_node("retry")
        {
            self.diags.error(
                loc(v),
                join(path, "retry"),
                "retry applies to forwarded requests, and a redirect route forwards nothing",
            );
        }
        if let Some(ActionCfg::Redirect(_)) = route.action {
            for (what, at) in [
                ("requestHeaders", route.request_headers.loc),
                ("rewrite", route.rewrite.loc),
            ] {
                if let Some(at) = at {
                    self.diags.error(
                        at,
                        join(path, what),
                        format!("{what} changes the forwarded request, and a redirect route forwards nothing"),
                    );
                }
            }
        }
        Some(route)
    }
}
