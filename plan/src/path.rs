//! Prefix trees over path segments: segment-wise prefix semantics, longest match.

use crate::hash::ChildIndex;
use crate::{NONE, PathNode};

/// Runtime index over the [`PathNode`] arena (all trees share it).
#[derive(Debug, Clone)]
pub struct PrefixTree {
    index: ChildIndex,
    /// Per node: the route ending there, or [`NONE`].
    routes: Vec<u32>,
}

impl PrefixTree {
    pub fn new(nodes: &[PathNode], routes: usize) -> Result<Self, String> {
        for (i, node) in nodes.iter().enumerate() {
            if node.parent != NONE && node.parent as usize >= i {
                return Err(format!("path node {i} has parent {} not before it", node.parent));
            }
            if node.route != NONE && node.route as usize >= routes {
                return Err(format!("path node {i} names route {} of {routes}", node.route));
            }
            if node.segment.contains('/') {
                return Err(format!("path node {i} has segment {:?}", node.segment));
            }
        }
        let index = ChildIndex::build(nodes.len(), |i| {
            let n = &nodes[i];
            ((n.parent != NONE).then_some(n.parent), n.segment.as_str())
        })
        .map_err(|i| format!("path node {i} duplicates a sibling"))?;
        let routes = nodes.iter().map(|n| n.route).collect();
        Ok(Self { index, routes })
    }

    /// The route of the longest prefix of `path` (normalized, starting with `/`)
    /// in the tree rooted at `root`, with the node where that prefix ends.
    /// Each segment's `;params` are set aside (SPEC §4.3).
    #[inline]
    pub fn longest_prefix(&self, root: u32, path: &str) -> Option<(u32, u32)> {
        let mut node = root;
        let mut best = match self.routes[root as usize] {
            NONE => None,
            route => Some((route, root)),
        };
        let rest = path.strip_prefix('/').unwrap_or(path).as_bytes();
        for seg in rest.split(|&b| b == b'/') {
            let seg = seg.iter().position(|&b| b == b';').map_or(seg, |i| &seg[..i]);
            match self.index.child(node, seg) {
                Some(child) => {
                    node = child;
                    let route = self.routes[child as usize];
                    if route != NONE {
                        best = Some((route, child));
                    }
                }
                None => break,
            }
        }
        best
    }
}
