//! Policy phase (after routing, before anything reaches an upstream): the
//! route's wasm policies in order, on this worker's warm instances. The first
//! decision other than "continue" wins; a failed policy marks the exchange
//! `policy_error` and, with `onError: deny`, ends it with 503.

use bytes::Bytes;
use http::Method;
use http1::{Fields, RequestTarget};

use crate::error::kind::{ErrorKind, Failure};
use crate::generation::Generation;
use crate::observe::exchange::Exchange;
use crate::worker::Worker;
use policy_host::{Decision, Prepared};

/// What a policy decided for the exchange.
#[derive(Debug)]
pub enum Outcome {
    Continue,
    /// Route to this plan cluster instead.
    Route(u32),
    /// Answer with this response; nothing is forwarded.
    Respond(Prepared),
}

/// The request as the policies see it (besides its headers, lent separately).
#[derive(Debug)]
pub struct Request<'a> {
    pub method: &'a Method,
    pub target: &'a RequestTarget,
    /// `http` or `https`, as the client connected.
    pub scheme: &'static str,
    pub host: &'a Bytes,
    /// The normalized path.
    pub path: &'a str,
}

/// Runs the policies of `route`; `headers` are lent to them (a policy may
/// change them) and given back.
pub fn run(
    worker: &Worker,
    client_ip: &http::HeaderValue,
    generation: &Generation,
    route: u32,
    request: &Request<'_>,
    headers: &mut Fields,
    ex: &mut Exchange,
) -> Result<Outcome, Failure> {
    let plan = generation.router.plan();
    let Some(route) = plan.routes.get(route as usize) else {
        return Ok(Outcome::Continue);
    };
    if route.policies.is_empty() {
        return Ok(Outcome::Continue);
    }
    let Some(policies) = &generation.policies else {
        return Ok(Outcome::Continue);
    };
    let mut view = worker.policy_view.borrow_mut();
    view.method.clear();
    view.method.extend_from_slice(request.method.as_str().as_bytes());
    view.scheme = request.scheme;
    view.authority.clear();
    view.authority.extend_from_slice(request.host);
    view.path.clear();
    view.path.extend_from_slice(request.path.as_bytes());
    match (request.target.query(), view.query.as_mut()) {
        (Some(q), Some(buf)) => {
            buf.clear();
            buf.extend_from_slice(q.as_bytes());
        }
        (Some(q), None) => view.query = Some(q.as_bytes().to_vec()),
        (None, _) => view.query = None,
    }
    view.client_ip.clear();
    view.client_ip.extend_from_slice(client_ip.as_bytes());
    view.headers = std::mem::take(headers);
    let mut warm = worker.warm.borrow_mut();
    let mut outcome = Ok(Outcome::Continue);
    for &p in &route.policies {
        match warm.call(policies, p as usize, &mut view) {
            Ok(Decision::Continue) => {}
            Ok(Decision::Route(c)) => {
                outcome = Ok(Outcome::Route(c));
                break;
            }
            Ok(Decision::Respond(r)) => {
                outcome = Ok(Outcome::Respond(r));
                break;
            }
            Err(_) => {
                if policies.on_error(p as usize) == plan::OnError::Deny {
                    outcome = Err(ErrorKind::PolicyError.into());
                    break;
                }
                // `onError: allow`: the request goes on, the failure is logged.
                ex.error = Some(ErrorKind::PolicyError);
            }
        }
    }
    *headers = std::mem::take(&mut view.headers);
    outcome
}
