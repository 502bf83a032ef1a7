//! What the gateway would do with one request, without any network: the
//! head parsed by the same codec, the same normalization and lookup, the
//! route's wasm policies on the real runtime, its action, filters and
//! rewrite, and the head that would go upstream. `gateway test` checks
//! cases against it; `explain` prints the forwarded head it encodes.

use bytes::BytesMut;
use http1::{Parsed, RequestHead};
use plan::{Action, PathMatch, PathReplace, Route, Router, normalize_path, replace_prefix};
use policy_host::{Decision, Policies, PolicyStats, RequestView as PolicyView, WarmSet};

use crate::error::{ErrorKind, Failure};
use crate::generation::RouteFilters;
use crate::proxy::respond::location;
use crate::proxy::route::HeadView;

/// A request as a case or `explain` states it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// What the gateway would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub route: Option<u32>,
    pub cluster: Option<u32>,
    /// The status the gateway answers itself (a redirect, an error, a
    /// policy's response); `None` when the request is forwarded.
    pub status: Option<u16>,
    /// The `x-gateway-error` kind of a gateway error.
    pub error: Option<&'static str>,
    pub location: Option<String>,
    /// The upstream picked (its URL), when forwarded.
    pub upstream: Option<String>,
    /// Path and query as the upstream would get them.
    pub upstream_path: Option<String>,
    /// The forwarded head's header lines, in order.
    pub request_headers: Vec<(String, String)>,
}

/// A request URL as `explain` and `test` take it: `Err` is a usage error
/// (no host, another scheme, userinfo).
pub fn parse_url(url: &str) -> Result<http::Uri, String> {
    let with_scheme;
    let url_for_parse = if url.contains("://") {
        url
    } else if url.starts_with('/') {
        return Err(format!(
            "{url:?} has no host: routing starts from the host, so give one, e.g. http://api.example.com{url}"
        ));
    } else {
        with_scheme = format!("http://{url}");
        &with_scheme
    };
    let uri: http::Uri = url_for_parse.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("URL scheme {other:?} is not served: use http:// (or https://)")),
        None => return Err(format!("invalid URL {url:?}")),
    }
    match uri.authority() {
        Some(a) if !a.host().is_empty() && !a.as_str().contains('@') => Ok(uri),
        Some(a) if a.as_str().contains('@') => {
            Err(format!("URL {url:?} has userinfo, which the gateway refuses (400)"))
        }
        _ => Err(format!(
            "{url:?} has no host: routing starts from the host, so give one, e.g. http://api.example.com/"
        )),
    }
}

/// The head the gateway sends upstream for `head`, routed to `route`, to the
/// upstream `upstream` of `cluster`, for a request that came over `scheme`.
pub fn forwarded_head(
    router: &Router,
    route: &Route,
    head: &RequestHead,
    cluster: u32,
    upstream: usize,
    path: &str,
    scheme: &str,
) -> BytesMut {
    let plan = router.plan();
    let url = &plan.clusters[cluster as usize].upstreams[upstream].url;
    let base = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let mut rewritten = String::new();
    let path = match (&route.rewrite.path, &route.path) {
        (None, _) => path,
        (Some(PathReplace::Prefix(with)), PathMatch::Prefix(prefix)) => {
            replace_prefix(path, prefix, with, &mut rewritten);
            &rewritten
        }
        (Some(PathReplace::Full(with) | PathReplace::Prefix(with)), _) => with,
    };
    let query = head.target.query();
    let filters = RouteFilters::of(route);
    let mut out = BytesMut::new();
    http1::encode_request(
        &mut out,
        &http1::Forward {
            method: &head.method,
            target: [
                base.as_bytes(),
                path.as_bytes(),
                if query.is_some() { b"?" } else { b"" },
                query.unwrap_or("").as_bytes(),
            ],
            headers: &head.headers,
            host: route.rewrite.host.as_deref().map_or(&head.host[..], str::as_bytes),
            forwarded_host: &head.host,
            client_ip: b"<client-ip>",
            proto: scheme.as_bytes(),
            body: head.body,
            filter: &filters.request,
            websocket: head.websocket,
        },
    );
    out
}

/// Runs requests offline against one plan, its policies loaded once.
pub struct Offline<'r> {
    router: &'r Router,
    policies: Option<Policies>,
    warm: WarmSet,
}

impl std::fmt::Debug for Offline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offline").finish_non_exhaustive()
    }
}

fn failed(kind: ErrorKind, route: Option<u32>) -> Outcome {
    Outcome {
        route,
        status: Some(kind.status().as_u16()),
        error: Some(kind.as_str()),
        ..Outcome::default()
    }
}

impl<'r> Offline<'r> {
    pub fn new(router: &'r Router) -> Result<Self, String> {
        let policies = Policies::new(router.plan(), u64::MAX, 16, |name| {
            std::sync::Arc::new(PolicyStats::new(name))
        })?;
        Ok(Self {
            router,
            policies,
            warm: WarmSet::default(),
        })
    }

    /// The outcome of `req`; `Err` when the request itself cannot be stated
    /// (a URL without a host, a header that is not `Name: value`).
    pub fn run(&mut self, req: &Request) -> Result<Outcome, String> {
        let uri = parse_url(&req.url)?;
        let authority = uri.authority().map_or("", |a| a.as_str());
        let target = uri.path_and_query().map_or("/", |p| p.as_str());
        let mut raw = format!("{} {target} HTTP/1.1\r\nHost: {authority}\r\n", req.method);
        for (n, v) in &req.headers {
            if n.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
                return Err(format!("header {n:?}: {v:?} cannot be sent"));
            }
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        let limits = self.router.plan().limits;
        let mut buf = BytesMut::from(raw.as_str());
        let mut head = match http1::parse(&mut buf, limits.max_header_bytes as usize, limits.max_headers as usize) {
            Parsed::Complete(head) => head,
            Parsed::Refused(e, _) => return Ok(failed(Failure::from(e).kind, None)),
            Parsed::Incomplete => return Err("the request head is incomplete".to_owned()),
        };
        let path = match normalize_path(head.target.path()) {
            Ok(p) => p.into_owned(),
            Err(e) => return Ok(failed(Failure::from(e).kind, None)),
        };
        let Some(m) = self.router.lookup(&head.host, &path, &HeadView(&head)) else {
            return Ok(failed(ErrorKind::NoRoute, None));
        };
        let route = &self.router.plan().routes[m.route as usize];
        let mut cluster = None;
        if let Some(policies) = &self.policies {
            let mut view = PolicyView {
                method: head.method.as_str().as_bytes().to_vec(),
                scheme: if uri.scheme_str() == Some("https") {
                    "https"
                } else {
                    "http"
                },
                authority: head.host.to_vec(),
                path: path.as_bytes().to_vec(),
                query: head.target.query().map(|q| q.as_bytes().to_vec()),
                client_ip: b"127.0.0.1".to_vec(),
                headers: std::mem::take(&mut head.headers),
            };
            for &p in &route.policies {
                match self.warm.call(policies, p as usize, &mut view) {
                    Ok(Decision::Continue) => {}
                    Ok(Decision::Route(c)) => {
                        cluster = Some(c);
                        break;
                    }
                    Ok(Decision::Respond(r)) => {
                        return Ok(Outcome {
                            route: Some(m.route),
                            status: Some(crate::error::prepared_status(r.status).as_u16()),
                            ..Outcome::default()
                        });
                    }
                    Err(_) if policies.on_error(p as usize) == plan::OnError::Deny => {
                        return Ok(failed(ErrorKind::PolicyError, Some(m.route)));
                    }
                    Err(_) => {}
                }
            }
            head.headers = std::mem::take(&mut view.headers);
        }
        let cluster = match (cluster, &route.action) {
            (Some(c), _) => c,
            (None, Action::Redirect(rd)) => {
                let mut loc = String::new();
                location(
                    &mut loc,
                    rd,
                    route,
                    &head.host,
                    &path,
                    head.target.query(),
                    uri.scheme_str().unwrap_or("http"),
                );
                return Ok(Outcome {
                    route: Some(m.route),
                    status: Some(crate::error::redirect_status(rd.status).as_u16()),
                    location: Some(loc),
                    ..Outcome::default()
                });
            }
            (None, _) => match self.router.cluster_for(m.route) {
                Some(c) => c,
                None => return Ok(failed(ErrorKind::NoRoute, Some(m.route))),
            },
        };
        let upstream = self.router.pick(cluster);
        let forwarded = forwarded_head(
            self.router,
            route,
            &head,
            cluster,
            upstream,
            &path,
            uri.scheme_str().unwrap_or("http"),
        );
        let text = String::from_utf8_lossy(&forwarded);
        let mut lines = text.split("\r\n");
        let upstream_path = lines.next().and_then(|l| l.split(' ').nth(1)).map(str::to_owned);
        let request_headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Ok(Outcome {
            route: Some(m.route),
            cluster: Some(cluster),
            upstream: Some(
                self.router.plan().clusters[cluster as usize].upstreams[upstream]
                    .url
                    .clone(),
            ),
            upstream_path,
            request_headers,
            ..Outcome::default()
        })
    }
}
