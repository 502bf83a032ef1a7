//! Header edits a route makes to a message it forwards or answers (SPEC §4.9):
//! received fields with a dropped name are left out and the added lines are
//! written after the rest. Built once per plan; applying one allocates
//! nothing, and an empty filter costs one length check per field.

/// A header line to add: name and value.
type Line = (Box<[u8]>, Box<[u8]>);

/// `set` is a drop plus an add; `remove` a drop; `add` an add.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Lowercase names.
    drop: Vec<Box<[u8]>>,
    add: Vec<Line>,
}

impl Filter {
    /// A filter that drops `drop` (any case) and adds `add`, in order.
    pub fn new<'a>(drop: impl IntoIterator<Item = &'a str>, add: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            drop: drop
                .into_iter()
                .map(|n| n.to_ascii_lowercase().into_bytes().into_boxed_slice())
                .collect(),
            add: add
                .into_iter()
                .map(|(n, v)| (n.as_bytes().into(), v.as_bytes().into()))
                .collect(),
        }
    }

    /// The filter that changes nothing.
    pub const NONE: Filter = Filter {
        drop: Vec::new(),
        add: Vec::new(),
    };

    /// A shared filter that changes nothing.
    pub fn none() -> &'static Filter {
        static NONE: Filter = Filter::NONE;
        &NONE
    }

    pub fn is_empty(&self) -> bool {
        self.drop.is_empty() && self.add.is_empty()
    }

    /// Whether a field named `name` (any case) is left out.
    #[inline]
    pub fn drops(&self, name: &[u8]) -> bool {
        !self.drop.is_empty() && self.drop.iter().any(|d| d.eq_ignore_ascii_case(name))
    }

    /// The lines to add, in order.
    #[inline]
    pub fn added(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.add.iter().map(|(n, v)| (&n[..], &v[..]))
    }
}
