//! Route phase (after the head is read): normalize the path once, look up
//! host, path and conditions. Its result is what every later phase reads.

use std::borrow::Cow;

use http1::{RequestHead, RequestTarget};
use plan::{RequestView, normalize_path};

use crate::error::kind::{ErrorKind, Failure};
use crate::generation::Generation;

/// A routed request.
#[derive(Debug)]
pub struct Routed<'h> {
    pub route: u32,
    /// The normalized path (SPEC §4.3): what matchers saw and what is forwarded.
    pub path: Cow<'h, str>,
}

/// The request as route conditions read it.
pub struct HeadView<'a>(pub &'a RequestHead);

impl RequestView for HeadView<'_> {
    fn method(&self) -> &[u8] {
        self.0.method.as_str().as_bytes()
    }

    fn header_values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.headers.get_all(name)
    }

    fn query(&self) -> Option<&[u8]> {
        self.0.target.query().map(str::as_bytes)
    }
}

/// Normalizes the path and finds the route; `bad_path`/`bad_request` for a
/// path no route may see, `no_route` when none matches.
pub fn route<'h>(
    generation: &Generation,
    target: &'h RequestTarget,
    head: &RequestHead,
) -> Result<Routed<'h>, Failure> {
    let path = normalize_path(target.path())?;
    let m = generation
        .router
        .lookup(&head.host, &path, &HeadView(head))
        .ok_or(ErrorKind::NoRoute)?;
    Ok(Routed { route: m.route, path })
}
