//! Route phase (after the head is read): normalize the path once, look up
//! host and path. Its result is what every later phase reads.

use std::borrow::Cow;

use http1::RequestTarget;
use plan::normalize_path;

use crate::error::kind::{ErrorKind, Failure};
use crate::generation::Generation;

/// A routed request.
#[derive(Debug)]
pub struct Routed<'h> {
    pub route: u32,
    pub cluster: u32,
    /// The normalized path (SPEC §4.3): what matchers saw and what is forwarded.
    pub path: Cow<'h, str>,
}

/// Normalizes the path and finds the route; `bad_path`/`bad_request` for a
/// path no route may see, `no_route` when none matches.
pub fn route<'h>(generation: &Generation, target: &'h RequestTarget, host: &[u8]) -> Result<Routed<'h>, Failure> {
    let path = normalize_path(target.path())?;
    let m = generation.router.lookup(host, &path).ok_or(ErrorKind::NoRoute)?;
    Ok(Routed {
        route: m.route,
        cluster: m.cluster,
        path,
    })
}
