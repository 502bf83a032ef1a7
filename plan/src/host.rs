//! The host trie: reversed DNS labels, case-insensitive, exact and `*.suffix`
//! patterns on the same nodes.

use crate::hash::ChildIndex;
use crate::{HostNode, NONE};

/// Strips `:port` (and a trailing root dot) from a `Host` value without allocating.
/// `[v6]:port` keeps its brackets.
pub fn host_without_port(host: &str) -> &str {
    let end = host_without_port_bytes(host.as_bytes()).len();
    &host[..end]
}

/// [`host_without_port`] on bytes.
pub fn host_without_port_bytes(bytes: &[u8]) -> &[u8] {
    let end = if bytes.first() == Some(&b'[') {
        bytes.iter().position(|&b| b == b']').map_or(bytes.len(), |i| i + 1)
    } else {
        // Back over the port's digits: a `:` before them ends the name.
        let digits = bytes.iter().rev().take_while(|b| b.is_ascii_digit()).count();
        let colon = bytes.len() - digits;
        if colon > 0 && bytes[colon - 1] == b':' {
            colon - 1
        } else {
            bytes.len()
        }
    };
    let end = if end > 0 && bytes[end - 1] == b'.' {
        end - 1
    } else {
        end
    };
    &bytes[..end]
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
    /// Per node: exact and wildcard prefix-tree roots, copied out of the plan's
    /// nodes so a walk touches 8 bytes per node.
    roots: Vec<(u32, u32)>,
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
            wild_up[i] = if nodes[p].wildcard != NONE {
                p as u32
            } else {
                wild_up[p]
            };
        }
        let index = ChildIndex::build(nodes.len(), |i| {
            let n = &nodes[i];
            ((n.parent != NONE).then_some(n.parent), n.label.as_str())
        })
        .map_err(|i| format!("host node {i} duplicates a sibling"))?;
        let roots = nodes.iter().map(|n| (n.exact, n.wildcard)).collect();
        Ok(Self { index, roots, wild_up })
    }

    /// Walks `host` (already without port) from its last label.
    #[inline]
    pub fn walk(&self, host: &[u8]) -> HostWalk {
        const NO_MATCH: HostWalk = HostWalk {
            exact: NONE,
            wildcard_node: NONE,
        };
        let bytes = host;
        // Not a DNS name (longer than 253 bytes, or an empty label: `.com` is
        // not under `*.com`): only catch-all routes can match.
        if bytes.len() > 253
            || bytes.first().is_none_or(|&b| b == b'.')
            || bytes.last() == Some(&b'.')
            || bytes.windows(2).any(|w| w == b"..")
        {
            return NO_MATCH;
        }
        // Labels are stored lowercase; only a host with capitals is copied
        // (onto the stack) to lowercase it.
        let mut lower: [u8; 253];
        let buf: &[u8] = if bytes.iter().any(u8::is_ascii_uppercase) {
            lower = [0u8; 253];
            let dest = &mut lower[..bytes.len()];
            dest.copy_from_slice(bytes);
            dest.make_ascii_lowercase();
            dest
        } else {
            bytes
        };
        let mut node = 0u32;
        let mut wildcard_node = NONE;
        for label in buf.rsplit(|&b| b == b'.') {
            if self.roots[node as usize].1 != NONE {
                wildcard_node = node;
            }
            match self.index.child(node, label) {
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
            exact: self.roots[node as usize].0,
            wildcard_node,
        }
    }

    /// The prefix-tree root of the wildcard pattern at `node`.
    #[inline]
    pub fn wildcard_root(&self, node: u32) -> u32 {
        self.roots[node as usize].1
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
