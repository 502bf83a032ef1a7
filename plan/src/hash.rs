//! The child index shared by the host trie and the prefix trees: one hash table
//! from `(parent node, label)` to child node, so finding a child costs one hash of
//! the label whatever the number of siblings.
//!
//! Entries carry the parent, the child and the label's place in a contiguous
//! arena, so a probe touches the table and the label bytes and nothing else.

use hashbrown::HashTable;

/// foldhash with a fixed seed over `parent` and `label`. Labels are compared as
/// stored: host labels are stored lowercase and the request host is lowercased
/// before lookup.
#[inline]
fn hash(parent: u32, label: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x9e37_79b9_7f4a_7c15).build_hasher();
    h.write_u32(parent);
    h.write(label);
    h.finish()
}

#[derive(Debug, Clone, Copy)]
struct Edge {
    parent: u32,
    child: u32,
    start: u32,
    len: u32,
}

/// Nodes with at most this many children are searched by a linear scan of their
/// edges (cheaper than hashing); larger fan-outs go through the hash table.
const SCAN_LIMIT: u32 = 8;

/// `(parent, label) -> child` for a flat node arena.
#[derive(Debug, Clone, Default)]
pub struct ChildIndex {
    /// Edges grouped by parent: node `n`'s edges are `edges[first[n]..first[n + 1]]`.
    first: Vec<u32>,
    edges: Vec<Edge>,
    /// Edges of nodes with more than [`SCAN_LIMIT`] children.
    table: HashTable<Edge>,
    labels: Vec<u8>,
}

impl ChildIndex {
    /// Builds the index over `len` nodes, given each node's parent and label;
    /// nodes whose parent is `None` are roots and are not indexed. `Err` names a
    /// node that repeats a sibling's label.
    pub fn build<'a>(len: usize, node: impl Fn(usize) -> (Option<u32>, &'a str)) -> Result<Self, u32> {
        let mut counts = vec![0u32; len + 1];
        for i in 0..len {
            if let (Some(parent), _) = node(i) {
                *counts.get_mut(parent as usize).ok_or(i as u32)? += 1;
            }
        }
        let mut first = Vec::with_capacity(len + 1);
        let mut sum = 0u32;
        for c in &counts[..len] {
            first.push(sum);
            sum += c;
        }
        first.push(sum);
        let mut fill = first.clone();
        let mut edges = vec![
            Edge {
                parent: 0,
                child: 0,
                start: 0,
                len: 0
            };
            sum as usize
        ];
        let mut labels = Vec::new();
        let mut table: HashTable<Edge> = HashTable::new();
        for i in 0..len {
            let (Some(parent), label) = node(i) else {
                continue;
            };
            let label = label.as_bytes();
            let siblings = &edges[first[parent as usize] as usize..fill[parent as usize] as usize];
            if siblings
                .iter()
                .any(|e| &labels[e.start as usize..(e.start + e.len) as usize] == label)
            {
                return Err(i as u32);
            }
            let edge = Edge {
                parent,
                child: i as u32,
                start: labels.len() as u32,
                len: label.len() as u32,
            };
            labels.extend_from_slice(label);
            edges[fill[parent as usize] as usize] = edge;
            fill[parent as usize] += 1;
            if counts[parent as usize] > SCAN_LIMIT {
                let arena = &labels;
                table.insert_unique(hash(parent, label), edge, |e| {
                    hash(e.parent, &arena[e.start as usize..(e.start + e.len) as usize])
                });
            }
        }
        Ok(Self {
            first,
            edges,
            table,
            labels,
        })
    }

    #[inline]
    fn label(&self, e: &Edge) -> &[u8] {
        self.labels
            .get(e.start as usize..(e.start + e.len) as usize)
            .unwrap_or_default()
    }

    /// The child of `parent` labelled `label`.
    #[inline]
    pub fn child(&self, parent: u32, label: &[u8]) -> Option<u32> {
        let p = parent as usize;
        let (Some(&a), Some(&b)) = (self.first.get(p), self.first.get(p + 1)) else {
            return None;
        };
        if b - a <= SCAN_LIMIT {
            return self.edges[a as usize..b as usize]
                .iter()
                .find(|e| e.len as usize == label.len() && self.label(e) == label)
                .map(|e| e.child);
        }
        self.table
            .find(hash(parent, label), |e| e.parent == parent && self.label(e) == label)
            .map(|e| e.child)
    }
}
