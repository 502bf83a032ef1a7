//! The phases of one exchange, in the shape of Pingora's proxy phases:
//!
//! ```text
//! route ──▶ policies ──▶ check body ──▶ forward ──▶ stream back
//!   │           │             │            │             │
//!   └───────────┴─────────────┴────────────┴─────────────┴──▶ error::fail
//! ```
//!
//! Each phase returns `Result<_, Failure>`; the first failure goes to the one
//! failure path, [`crate::error::fail`], which picks the status, answers if
//! nothing was sent yet and decides whether the connection survives. Whether
//! it does is a one-way ratchet ([`KeepAlive`]).

pub mod forward;
pub mod policy;
pub mod respond;
pub mod retry;
pub mod route;
pub mod tunnel;
pub mod upstream_h2;

use http::Method;
use http1::RequestHead;

use crate::client::side::Client;
use crate::error::ErrorKind;
use crate::error::{self, Failure};
use crate::generation::Generation;
use crate::observe::exchange::Exchange;
use crate::session::Conn;
pub use crate::session::{KeepAlive, Session};
use crate::upstream::budget::Reason;

/// Runs one exchange whose head has been read; returns whether the client
/// connection can carry another request.
pub async fn exchange<C: Client>(
    conn: &mut Conn<C>,
    generation: &Generation,
    head: &mut RequestHead,
    ex: &mut Exchange,
) -> bool {
    ex.record_head(head, generation.log_head);
    let plan = generation.router.plan();
    conn.client
        .start_body(head.body, plan.limits.max_request_body_bytes, generation.defaults.read);
    let mut s = Session {
        conn,
        generation,
        ka: KeepAlive::new(head.keep_alive),
        timeouts: &generation.defaults,
        head_only: head.method == Method::HEAD,
        response_filter: http1::Filter::none(),
    };
    if let Err(failure) = phases(&mut s, head, ex).await {
        error::fail(&mut s, ex, failure).await;
    }
    s.may_keep_alive()
}

async fn phases<C: Client>(s: &mut Session<'_, C>, head: &mut RequestHead, ex: &mut Exchange) -> Result<(), Failure> {
    let generation = s.generation;
    if let Some(tls) = s.conn.client.tls()
        && !tls.serves(&head.host)
    {
        return Err(ErrorKind::MisdirectedRequest.into());
    }
    let routed = route::route(generation, &head.target, head)?;
    ex.route = Some(routed.route);
    s.timeouts = &generation.route_timeouts[routed.route as usize];
    s.conn.client.set_read_timeout(s.timeouts.read);
    let filters = &generation.route_filters[routed.route as usize];
    s.response_filter = &filters.response;

    let request = policy::Request {
        method: &head.method,
        target: &head.target,
        scheme: s.conn.client.scheme(),
        host: &head.host,
        path: &routed.path,
    };
    let cluster = match policy::run(
        &s.conn.worker,
        &s.conn.client_ip,
        generation,
        routed.route,
        &request,
        &mut head.headers,
        ex,
    )? {
        policy::Outcome::Continue => match generation.router.cluster_for(routed.route) {
            Some(c) => c,
            None => return respond::redirect(s, ex, head, routed.route, &routed.path).await,
        },
        policy::Outcome::Route(c) => c,
        policy::Outcome::Respond(prepared) => return respond::prepared(s, ex, prepared).await,
    };
    ex.cluster = Some(cluster);

    forward::check_body(s, head).await?;
    let route = &generation.router.plan().routes[routed.route as usize];
    let budget = generation.retry_budgets[routed.route as usize].as_deref();
    let _in_flight = budget.map(|b| b.enter());
    let health = &generation.targets.clusters[cluster as usize];
    let mut ticket = None;
    let mut previous = None;
    let mut attempt = 1u32;
    loop {
        let picked = match previous {
            Some(p) => health.pick_other(p),
            None => health.pick(),
        };
        let upstream = picked.ok_or(ErrorKind::NoHealthyUpstream)?;
        let id = generation.targets.id(cluster, upstream);
        ex.upstream = Some(id);
        ex.attempts = attempt;
        let target = generation.targets.get(id);
        forward::encode_head(s.conn, head, target, &routed, generation);
        let sent = match target.h2 {
            false => forward::send(s, target, head).await.map(Answer::H1),
            // Boxed: the HTTP/2 path's futures are large, and the HTTP/1.1
            // path (and every stream's task) should not carry their size.
            true => Box::pin(upstream_h2::send(s, target, head)).await.map(Answer::H2),
        };
        let reason = match &sent {
            Ok(r) if r.head().status.is_server_error() => {
                health.failure(upstream);
                Some(Reason::Status(r.head().status.as_u16()))
            }
            Ok(_) => {
                health.success(upstream);
                None
            }
            Err(f) if f.kind.is_upstream_fault() => {
                health.failure(upstream);
                Some(Reason::Kind(f.kind))
            }
            Err(_) => None,
        };
        let retry = match (reason, route.retry.as_ref(), budget) {
            (Some(reason), Some(policy), Some(budget))
                if attempt < policy.attempts && retry::covers(policy, reason) && retry::replayable(head, reason) =>
            {
                budget.try_retry(policy.budget_percent, reason).map(|t| (t, policy))
            }
            _ => None,
        };
        let Some((next_ticket, policy)) = retry else {
            return match sent {
                // Only ever a WebSocket upgrade the request asked for (`http1`
                // refuses any other 101).
                Ok(Answer::H1(sent)) if sent.head.status.as_u16() == 101 => tunnel::relay(s, ex, sent).await,
                Ok(Answer::H1(sent)) => respond::stream(s, ex, sent, target).await,
                Ok(Answer::H2(sent)) => Box::pin(upstream_h2::stream(s, ex, sent)).await,
                Err(f) => Err(f),
            };
        };
        // The failed attempt is counted and logged as any upstream failure;
        // its connection (and any response) is dropped, never reused.
        if let Err(f) = &sent {
            generation.stats.upstream_failure(cluster, f.kind);
            target.failures.failure(&target.stats.name, &target.url, f.kind);
        }
        drop(sent);
        // The ticket of this retry replaces (and so ends) the previous one.
        drop(ticket.replace(next_ticket));
        tokio::time::sleep(retry::backoff(policy, attempt)).await;
        previous = Some(upstream);
        attempt += 1;
    }
}

/// A response head from an upstream, over the protocol its cluster speaks.
enum Answer {
    H1(forward::Sent),
    H2(upstream_h2::SentH2),
}

impl Answer {
    fn head(&self) -> &http1::ResponseHead {
        match self {
            Answer::H1(sent) => &sent.head,
            Answer::H2(sent) => &sent.head,
        }
    }
}
