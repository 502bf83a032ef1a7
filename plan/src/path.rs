//! Prefix trees over path segments. A node carries the exact-path routes that
//! end at it and the prefix routes whose prefix ends at it, each list in
//! precedence order; one walk down the tree finds both.

use std::ops::Range;

use crate::hash::ChildIndex;
use crate::{NONE, PathNode};

/// Runtime index over the [`PathNode`] arena (all trees share it).
#[derive(Debug, Clone)]
pub struct PrefixTree {
    index: ChildIndex,
    parents: Vec<u32>,
    /// Per node: its exact routes, then its prefix routes, in `routes`.
    spans: Vec<(u32, u32, u32)>,
    routes: Vec<u32>,
}

/// Where a walk down the tree ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathWalk {
    /// The deepest node reached.
    pub node: u32,
    /// Every segment of the path was found: `node` is the path's own node.
    pub complete: bool,
}

/// The segments of a normalized path as matchers see them (SPEC §4.3): each
/// segment's `;params` are set aside, and a segment they leave empty is
/// dropped, as a Java upstream merges the `//` it leaves (`/;x/admin` is
/// `/admin`, the bypass a proxy must not let through). `/` is one empty
/// segment, and a trailing `/` an empty last one.
#[inline]
pub fn match_segments(path: &str) -> impl Iterator<Item = &[u8]> {
    let rest = path.strip_prefix('/').unwrap_or(path).as_bytes();
    let mut segments = rest
        .split(|&b| b == b'/')
        .map(|seg| seg.iter().position(|&b| b == b';').map_or(seg, |i| &seg[..i]))
        .peekable();
    std::iter::from_fn(move || {
        loop {
            let seg = segments.next()?;
            // Normalization merged runs of `/`: only params leave a segment
            // empty before the last.
            if !seg.is_empty() || segments.peek().is_none() {
                return Some(seg);
            }
        }
    })
}

impl PrefixTree {
    pub fn new(nodes: &[PathNode], routes: usize) -> Result<Self, String> {
        let mut spans = Vec::with_capacity(nodes.len());
        let mut flat = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if node.parent != NONE && node.parent as usize >= i {
                return Err(format!("path node {i} has parent {} not before it", node.parent));
            }
            if let Some(&r) = node.exact.iter().chain(&node.prefix).find(|&&r| r as usize >= routes) {
                return Err(format!("path node {i} names route {r} of {routes}"));
            }
            if node.segment.contains('/') {
                return Err(format!("path node {i} has segment {:?}", node.segment));
            }
            let start = flat.len() as u32;
            flat.extend_from_slice(&node.exact);
            let mid = flat.len() as u32;
            flat.extend_from_slice(&node.prefix);
            spans.push((start, mid, flat.len() as u32));
        }
        let index = ChildIndex::build(nodes.len(), |i| {
            let n = &nodes[i];
            ((n.parent != NONE).then_some(n.parent), n.segment.as_str())
        })
        .map_err(|i| format!("path node {i} duplicates a sibling"))?;
        Ok(Self {
            index,
            parents: nodes.iter().map(|n| n.parent).collect(),
            spans,
            routes: flat,
        })
    }

    /// Walks `path` (normalized) down the tree rooted at `root`.
    #[inline]
    pub fn walk(&self, root: u32, path: &str) -> PathWalk {
        let mut node = root;
        for seg in match_segments(path) {
            match self.index.child(node, seg) {
                Some(child) => node = child,
                None => return PathWalk { node, complete: false },
            }
        }
        PathWalk { node, complete: true }
    }

    fn range(start: u32, end: u32) -> Range<usize> {
        start as usize..end as usize
    }

    /// Routes whose exact path ends at `node`.
    #[inline]
    pub fn exact(&self, node: u32) -> &[u32] {
        let (start, mid, _) = self.spans[node as usize];
        &self.routes[Self::range(start, mid)]
    }

    /// Routes whose prefix ends at `node`.
    #[inline]
    pub fn prefix(&self, node: u32) -> &[u32] {
        let (_, mid, end) = self.spans[node as usize];
        &self.routes[Self::range(mid, end)]
    }

    /// The parent of `node`, or [`NONE`] at a root.
    #[inline]
    pub fn parent(&self, node: u32) -> u32 {
        self.parents[node as usize]
    }
}
