//! The child index shared by the host trie and the prefix trees: one hash table
//! from `(parent node, label)` to child node, so finding a child costs one hash of
//! the label whatever the number of siblings.

use hashbrown::HashTable;

/// FNV-1a over `parent` and `label`; `fold` makes it ASCII case-insensitive.
#[inline]
fn hash(parent: u32, label: &[u8], fold: bool) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET ^ u64::from(parent);
    h = h.wrapping_mul(PRIME);
    for &b in label {
        let b = if fold { b.to_ascii_lowercase() } else { b };
        h = (h ^ u64::from(b)).wrapping_mul(PRIME);
    }
    // FNV's low bits are weak; hashbrown uses the top 7 bits for its control bytes
    // and the low bits for the bucket, so mix both ends.
    h ^ (h >> 29)
}

/// `(parent, label) -> child` for a flat node arena.
#[derive(Debug, Clone, Default)]
pub struct ChildIndex {
    table: HashTable<u32>,
    fold_case: bool,
}

impl ChildIndex {
    /// Builds the index over `nodes`, given each node's parent and label; nodes
    /// whose parent is `None` are roots and are not indexed.
    pub fn build<'a>(
        len: usize,
        node: impl Fn(usize) -> (Option<u32>, &'a str),
        fold_case: bool,
    ) -> Result<Self, u32> {
        let mut table = HashTable::with_capacity(len);
        for i in 0..len {
            let (Some(parent), label) = node(i) else {
                continue;
            };
            let h = hash(parent, label.as_bytes(), fold_case);
            let duplicate = table
                .find(h, |&other: &u32| {
                    let (p, l) = node(other as usize);
                    p == Some(parent) && eq(l.as_bytes(), label.as_bytes(), fold_case)
                })
                .is_some();
            if duplicate {
                return Err(i as u32);
            }
            table.insert_unique(h, i as u32, |&n| {
                let (p, l) = node(n as usize);
                hash(p.unwrap_or(0), l.as_bytes(), fold_case)
            });
        }
        Ok(Self { table, fold_case })
    }

    /// The child of `parent` labelled `label`; `label_of` reads a node's label.
    #[inline]
    pub fn child<'a>(&self, parent: u32, label: &[u8], label_of: impl Fn(u32) -> (u32, &'a str)) -> Option<u32> {
        let h = hash(parent, label, self.fold_case);
        self.table
            .find(h, |&n| {
                let (p, l) = label_of(n);
                p == parent && eq(l.as_bytes(), label, self.fold_case)
            })
            .copied()
    }
}

#[inline]
fn eq(a: &[u8], b: &[u8], fold: bool) -> bool {
    if fold { a.eq_ignore_ascii_case(b) } else { a == b }
}
