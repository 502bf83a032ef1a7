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
pub mod route;

use http::Method;
use http1::RequestHead;

use crate::error::{self, Failure};
use crate::generation::Generation;
use crate::observe::exchange::Exchange;
use crate::session::Conn;
pub use crate::session::{KeepAlive, Session};

/// Runs one exchange whose head has been read; returns whether the client
/// connection can carry another request.
pub async fn exchange(conn: &mut Conn, generation: &Generation, head: &mut RequestHead, ex: &mut Exchange) -> bool {
    ex.record_head(head, &generation.log_fields);
    let plan = generation.router.plan();
    conn.reader
        .start(head.body, plan.limits.max_request_body_bytes, generation.defaults.read);
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
    s.ka.get() && s.conn.reader.is_done() && !s.conn.worker.stopping()
}

async fn phases(s: &mut Session<'_>, head: &mut RequestHead, ex: &mut Exchange) -> Result<(), Failure> {
    let generation = s.generation;
    let routed = route::route(generation, &head.target, head)?;
    ex.route = Some(routed.route);
    s.timeouts = &generation.route_timeouts[routed.route as usize];
    s.conn.reader.read_timeout = s.timeouts.read;
    let filters = &generation.route_filters[routed.route as usize];
    s.response_filter = &filters.response;

    let request = policy::Request {
        method: &head.method,
        target: &head.target,
        host: &head.host,
        path: &routed.path,
    };
    let cluster = match policy::run(s.conn, generation, routed.route, &request, &mut head.headers, ex)? {
        policy::Outcome::Continue => match generation.router.cluster_for(routed.route) {
            Some(c) => c,
            None => return respond::redirect(s, ex, head, routed.route, &routed.path).await,
        },
        policy::Outcome::Route(c) => c,
        policy::Outcome::Respond(prepared) => return respond::prepared(s, ex, prepared).await,
    };
    ex.cluster = Some(cluster);

    forward::check_body(s, head).await?;
    let upstream = generation.router.pick(cluster);
    let id = generation.targets.id(cluster, upstream);
    ex.upstream = Some(id);
    let target = generation.targets.get(id);
    forward::encode_head(s.conn, head, target, &routed, generation);
    let sent = forward::send(s, target, head).await?;
    respond::stream(s, ex, sent, target).await
}
