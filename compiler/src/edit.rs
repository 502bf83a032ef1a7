//! Reading what a route does to an exchange besides routing it: request and
//! response header filters, rewrites and redirects (SPEC §4.8, §4.9).

use marked_yaml::Node;
use marked_yaml::types::MarkedMappingNode;
use plan::{HostPattern, PathReplace, normalize_path, parse_host_pattern};

use crate::diag::Loc;
use crate::keys;
use crate::route::{FilterCfg, RedirectCfg, RewriteCfg};
use crate::yaml::{Reader, Spanned, join, loc};

/// Headers a request filter may not touch: the gateway writes them itself
/// (framing, `Host` through `rewrite.host`, `X-Forwarded-*`) or they are
/// hop-by-hop.
fn reserved_request(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "host" => Some("the forwarded Host is set with rewrite.host"),
        "content-length" | "transfer-encoding" => Some("the gateway writes the framing of every message it forwards"),
        "x-forwarded-for" | "x-forwarded-proto" | "x-forwarded-host" => {
            Some("X-Forwarded-* are set by the gateway and filters cannot change them")
        }
        "expect" => Some("the gateway answers Expect itself"),
        _ if http1::is_hop_by_hop(lower.as_bytes()) => Some("hop-by-hop headers are not forwarded"),
        _ => None,
    }
}

fn reserved_response(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "content-length" | "transfer-encoding" => Some("the gateway writes the framing of every message it forwards"),
        _ if http1::is_hop_by_hop(lower.as_bytes()) => Some("hop-by-hop headers are not forwarded"),
        _ => None,
    }
}

/// A hostname for `redirect.host` or `rewrite.host`: a DNS name or IP, no
/// port, no wildcard.
fn check_hostname(raw: &str) -> Result<String, String> {
    match parse_host_pattern(Some(raw)) {
        Ok(HostPattern::Exact(h)) => Ok(h),
        Ok(_) => Err(format!("host {raw:?} must be a hostname, not a pattern")),
        Err(e) => Err(e),
    }
}

/// A path that replaces another: starts with `/`, no query or fragment, and
/// only bytes a request target may carry.
fn check_replacement(raw: &str) -> Result<String, String> {
    if !raw.starts_with('/') {
        return Err(format!("path {raw:?} must start with \"/\""));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "path {raw:?} contains {c:?}, which a request path cannot carry"
        ));
    }
    normalize_path(raw)
        .map(|p| p.into_owned())
        .map_err(|e| format!("path {raw:?}: {e}"))
}

impl Reader<'_> {
    pub(crate) fn filter(&mut self, node: &Node, path: &str, request: bool) -> FilterCfg {
        let mut f = FilterCfg {
            loc: Some(loc(node)),
            ..FilterCfg::default()
        };
        let Some(map) = self.mapping(node, path, keys::FILTER) else {
            return f;
        };
        let reserved = if request { reserved_request } else { reserved_response };
        let mut seen: Vec<(String, &'static str)> = Vec::new();
        let mut check_name = |r: &mut Self, name: &str, at: Loc, p: &str, list: &'static str| -> bool {
            if !http1::is_token(name.as_bytes()) {
                r.diags.error(at, p, format!("{name:?} is not a valid header name"));
                return false;
            }
            if let Some(why) = reserved(name) {
                r.diags
                    .error(at, p, format!("{name} cannot be changed by a filter: {why}"));
                return false;
            }
            let lower = name.to_ascii_lowercase();
            if let Some((_, other)) = seen.iter().find(|(n, _)| *n == lower) {
                let what = if *other == list {
                    format!("{name} is listed twice in {list} (names are case-insensitive)")
                } else {
                    format!("{name} is in both {other} and {list}, which contradict each other")
                };
                // `set` then `add` of one name is allowed: the value set, then one more.
                if !(*other == "set" && list == "add") {
                    r.diags.error(at, p, what);
                    return false;
                }
            }
            seen.push((lower, list));
            true
        };
        for list in ["set", "add"] {
            let Some(v) = map.get_node(list) else { continue };
            let lp = join(path, list);
            let Some(m) = v.as_mapping() else {
                self.diags
                    .error(loc(v), &lp, "must be a mapping of header names to values");
                continue;
            };
            for (k, value) in m.iter() {
                let p = join(&lp, k.as_str());
                let at = crate::yaml::span_loc(k.span());
                if !check_name(self, k.as_str(), at, &p, list) {
                    continue;
                }
                if let Some(value) = self.field_value(value, &p, true) {
                    let pair = (k.as_str().to_owned(), value);
                    if list == "set" {
                        f.set.push(pair)
                    } else {
                        f.add.push(pair)
                    }
                }
            }
        }
        if let Some(v) = map.get_node("remove") {
            for name in self.string_list(v, &join(path, "remove")) {
                if check_name(self, &name.value, name.loc, &name.path, "remove") {
                    f.remove.push(name.value);
                }
            }
        }
        if map.is_empty() {
            self.diags.warning(loc(node), path, "filter changes nothing");
        }
        f
    }

    /// `path` / `pathPrefix` of a rewrite or redirect (exclusive).
    fn replacement(&mut self, map: &MarkedMappingNode, path: &str) -> Option<Spanned<PathReplace>> {
        let mut out = None;
        for key in ["path", "pathPrefix"] {
            let Some(v) = map.get_node(key) else { continue };
            let p = join(path, key);
            let Some(s) = self.string(v, &p) else { continue };
            if out.is_some() {
                self.diags
                    .error(s.loc, &p, "path and pathPrefix are exclusive: give one");
                return None;
            }
            match check_replacement(&s.value) {
                Ok(value) => {
                    out = Some(Spanned {
                        value: if key == "path" {
                            PathReplace::Full(value)
                        } else {
                            PathReplace::Prefix(value)
                        },
                        loc: s.loc,
                        path: p,
                    });
                }
                Err(e) => self.diags.error(s.loc, &p, e),
            }
        }
        out
    }

    pub(crate) fn redirect(&mut self, node: &Node, path: &str) -> Option<RedirectCfg> {
        let map = self.mapping(node, path, keys::REDIRECT)?;
        let mut r = RedirectCfg {
            scheme: None,
            host: None,
            port: None,
            path: self.replacement(map, path),
            status: 302,
        };
        if let Some(v) = map.get_node("scheme") {
            r.scheme = self
                .choice(v, &join(path, "scheme"), &["http", "https"])
                .map(|s| s.value);
        }
        if let Some(v) = map.get_node("host") {
            let p = join(path, "host");
            r.host = self.string(v, &p).and_then(|s| {
                check_hostname(&s.value)
                    .map_err(|e| self.diags.error(s.loc, &p, e))
                    .ok()
            });
        }
        if let Some(v) = map.get_node("port") {
            r.port = self
                .integer(v, &join(path, "port"), 1, 65_535, "")
                .map(|p| p.value as u16);
        }
        if let Some(v) = map.get_node("status") {
            let p = join(path, "status");
            if let Some(s) = self.integer(v, &p, 100, 599, "") {
                if matches!(s.value, 301 | 302 | 303 | 307 | 308) {
                    r.status = s.value as u16;
                } else {
                    self.diags.error(
                        s.loc,
                        &p,
                        format!("must be one of 301, 302, 303, 307, 308, got {}", s.value),
                    );
                }
            }
        }
        Some(r)
    }

    pub(crate) fn rewrite(&mut self, node: &Node, path: &str) -> RewriteCfg {
        let mut r = RewriteCfg {
            loc: Some(loc(node)),
            ..RewriteCfg::default()
        };
        let Some(map) = self.mapping(node, path, keys::REWRITE) else {
            return r;
        };
        r.path = self.replacement(map, path);
        if let Some(v) = map.get_node("host") {
            let p = join(path, "host");
            r.host = self.string(v, &p).and_then(|s| {
                check_hostname(&s.value)
                    .map_err(|e| self.diags.error(s.loc, &p, e))
                    .ok()
            });
        }
        if map.is_empty() {
            self.diags.error(loc(node), path, "needs host, path or pathPrefix");
        }
        r
    }
}
