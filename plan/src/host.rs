//! The host trie: reversed DNS labels, case-insensitive, exact and `*.suffix`
//! patterns on the same nodes.

use crate::hash::ChildIndex;
use crate::{HostNode, NONE};

/// Strips `:port` (and a trailing root dot) from a `Host` value without allocating.
/// `[v6]:port` keeps its brackets.
pub fn host_without_port(host: &str) -> &str {
    let host = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        }
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// Where the host walk ended: the exact host's prefix tree, and the deepest node
/// whose wildcard pattern matches the host (shorter suffixes via [`HostTrie::next_wildcard`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostWalk {
    pub exact: u32,
    pub wildcard_node: u32,
}

/// Runtime index over [`HostNode`]s.
#[derive(Debug, Clone)]
pub struct HostTrie {
    index: ChildIndex,
    /// For each node, the nearest strict ancestor carrying a wildcard, or [`NONE`].
    wild_up: Vec<u32>,
}

impl HostTrie {
    /// Builds the index; `Err` names the first node that breaks the arena's shape.
    pub fn new(nodes: &[HostNode]) -> Result<Self, String> {
        if nodes.first().is_none_or(|root| root.parent != NONE) {
            return Err("host trie has no root node".into());
        }
        let mut wild_up = vec![NONE; nodes.len()];
        for (i, node) in nodes.iter().enumerate().skip(1) {
            let p = node.parent as usize;
            if p >= i {
                return Err(format!("host node {i} has parent {p} not before it"));
            }
            if node.label.is_empty() || node.label.bytes().any(|b| b.is_ascii_uppercase() || b == b'.') {
                return Err(format!("host node {i} has label {:?}", node.label));
            }
            wild_up[i] = if nodes[p].wildcard != NONE { p as u32 } else { wild_up[p] };
        }
        let index = ChildIndex::build(
            nodes.len(),
            |i| {
                let n = &nodes[i];
                ((n.parent != NONE).then_some(n.parent), n.label.as_str())
            },
            true,
        )
        .map_err(|i| format!("host node {i} duplicates a sibling"))?;
        Ok(Self { index, wild_up })
    }

    /// Walks `host` (already without port) from its last label.
    #[inline]
    pub fn walk(&self, nodes: &[HostNode], host: &str) -> HostWalk {
        let mut node = 0u32;
        let mut wildcard_node = NONE;
        for label in host.rsplit('.') {
            if nodes[node as usize].wildcard != NONE {
                wildcard_node = node;
            }
            match self.index.child(node, label.as_bytes(), |n| {
                let n = &nodes[n as usize];
                (n.parent, n.label.as_str())
            }) {
                Some(child) => node = child,
                None => {
                    return HostWalk {
                        exact: NONE,
                        wildcard_node,
                    };
                }
            }
        }
        HostWalk {
            exact: nodes[node as usize].exact,
            wildcard_node,
        }
    }

    /// The next shorter wildcard suffix above `node`, or [`NONE`].
    #[inline]
    pub fn next_wildcard(&self, node: u32) -> u32 {
        self.wild_up[node as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_root_dots_are_stripped() {
        let cases = [
            ("example.com", "example.com"),
            ("example.com:8080", "example.com"),
            ("Example.COM.", "Example.COM"),
            ("example.com.:80", "example.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(host_without_port(input), expected, "input {input:?}");
        }
    }
}
