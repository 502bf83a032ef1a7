//! The header fields of a request, as spans into the bytes of its head: no
//! map, no copies, no hashing per request. Each field is classified once, at
//! parse time, by [`Known`]; lookups compare names case-insensitively.
//! Changes (a policy's, a route filter's) are an overlay: received fields are
//! marked removed, new ones are appended, and [`Fields::iter`] yields the
//! result in order.

use std::ops::Range;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

use crate::headers::Known;

/// One received field: where its name and value sit in the head.
#[derive(Debug, Clone)]
struct Field {
    name: Range<u32>,
    value: Range<u32>,
    kind: Known,
    removed: bool,
}

/// One field as [`Fields::lines`] yields it.
#[derive(Debug, Clone, Copy)]
pub enum Line<'a> {
    /// `name: value` as received (without its line ending), and the name.
    Raw(&'a [u8], &'a [u8]),
    /// An added field's name and value.
    Parts(&'a [u8], &'a [u8]),
}

/// The header fields of one request. Its storage is reused from request to
/// request on a connection ([`Fields::clear`] keeps the capacity).
#[derive(Debug, Default)]
pub struct Fields {
    head: Bytes,
    fields: Vec<Field>,
    added: Vec<(HeaderName, HeaderValue)>,
}

impl Fields {
    /// Empties the fields, keeping their storage, and releases the head bytes
    /// (so the connection's read buffer is no longer shared).
    pub fn clear(&mut self) {
        self.head = Bytes::new();
        self.fields.clear();
        self.added.clear();
    }

    /// Starts a new set of fields, with room for `count`; the head bytes
    /// come later ([`Fields::set_head`]), once parsing let go of them.
    pub(crate) fn begin(&mut self, count: usize) {
        self.clear();
        self.fields.reserve(count);
    }

    /// Adds a received field: ranges into the head, and what it is.
    pub(crate) fn push(&mut self, name: Range<usize>, value: Range<usize>, kind: Known) {
        self.fields.push(Field {
            name: name.start as u32..name.end as u32,
            value: value.start as u32..value.end as u32,
            kind,
            removed: false,
        });
    }

    /// The bytes the ranges point into.
    pub(crate) fn set_head(&mut self, head: Bytes) {
        self.head = head;
    }

    /// The received fields: what each is, its value, and where the value sits.
    pub(crate) fn received(&self) -> impl Iterator<Item = (Known, &[u8], Range<usize>)> {
        self.fields.iter().map(|f| {
            let range = f.value.start as usize..f.value.end as usize;
            (f.kind, &self.head[range.clone()], range)
        })
    }

    fn name_of(&self, f: &Field) -> &[u8] {
        &self.head[f.name.start as usize..f.name.end as usize]
    }

    fn value_of(&self, f: &Field) -> &[u8] {
        &self.head[f.value.start as usize..f.value.end as usize]
    }

    /// Every field in order, `(name, value, kind)`: the received ones not
    /// removed (names as the client wrote them), then the added ones.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8], Known)> {
        let received = self
            .fields
            .iter()
            .filter(|f| !f.removed)
            .map(|f| (self.name_of(f), self.value_of(f), f.kind));
        let added = self
            .added
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes(), Known::of(n.as_str().as_bytes())));
        received.chain(added)
    }

    /// Every field as the forwarded head writes it: a received field as its
    /// `name: value` bytes from the head (one copy), an added one in parts.
    pub fn lines(&self) -> impl Iterator<Item = (Line<'_>, Known)> {
        let received = self.fields.iter().filter(|f| !f.removed).map(|f| {
            let line = &self.head[f.name.start as usize..f.value.end.max(f.name.end) as usize];
            (Line::Raw(line, self.name_of(f)), f.kind)
        });
        let added = self.added.iter().map(|(n, v)| {
            let name = n.as_str().as_bytes();
            (Line::Parts(name, v.as_bytes()), Known::of(name))
        });
        received.chain(added)
    }

    /// How many fields [`Fields::iter`] yields.
    pub fn len(&self) -> usize {
        self.fields.iter().filter(|f| !f.removed).count() + self.added.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values of every field named `name` (any case), in order.
    pub fn get_all<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, _)| v)
    }

    /// The first value of the field named `name` (any case).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v, _)| v)
    }

    /// The first value of a known field.
    pub fn get_known(&self, kind: Known) -> Option<&[u8]> {
        self.iter().find(|(_, _, k)| *k == kind).map(|(_, v, _)| v)
    }

    /// The first received value of a known field as shared bytes of the head
    /// (no copy), for keeping beyond the request's parse (the access log).
    pub fn shared_value(&self, kind: Known) -> Option<Bytes> {
        let f = self.fields.iter().find(|f| !f.removed && f.kind == kind)?;
        Some(self.head.slice(f.value.start as usize..f.value.end as usize))
    }

    /// Removes every field named `name` (any case).
    pub fn remove(&mut self, name: &[u8]) {
        for i in 0..self.fields.len() {
            if self.name_of(&self.fields[i]).eq_ignore_ascii_case(name) {
                self.fields[i].removed = true;
            }
        }
        self.added
            .retain(|(n, _)| !n.as_str().as_bytes().eq_ignore_ascii_case(name));
    }

    /// Replaces every field named `name` with one of `value`.
    pub fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        self.remove(name.as_str().as_bytes());
        self.added.push((name, value));
    }

    /// Adds one more field named `name`, after those there are.
    pub fn append(&mut self, name: HeaderName, value: HeaderValue) {
        self.added.push((name, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(head: &'static str) -> Fields {
        let mut f = Fields::default();
        f.begin(4);
        // "Name: value" lines, each `name: value` separated by '\n'.
        let mut at = 0;
        for line in head.split('\n') {
            let colon = line.find(':').expect("a field line");
            let value_start = at + colon + 2;
            f.push(
                at..at + colon,
                value_start..at + line.len(),
                Known::of(&line.as_bytes()[..colon]),
            );
            at += line.len() + 1;
        }
        f.set_head(Bytes::from_static(head.as_bytes()));
        f
    }

    #[test]
    fn lookups_are_case_insensitive_and_ordered() {
        let f = fields("Host: a\nX-Thing: 1\nx-thing: 2\nUser-Agent: curl");
        assert_eq!(f.get(b"host"), Some(&b"a"[..]));
        assert_eq!(f.get_known(Known::UserAgent), Some(&b"curl"[..]));
        assert_eq!(f.get_all(b"X-THING").collect::<Vec<_>>(), [&b"1"[..], b"2"]);
        assert_eq!(f.len(), 4);
        assert_eq!(f.shared_value(Known::Host).as_deref(), Some(&b"a"[..]));
    }

    #[test]
    fn edits_overlay_the_received_fields() {
        let mut f = fields("Host: a\nX-Thing: 1\nx-thing: 2\nAccept: */*");
        f.insert(HeaderName::from_static("x-thing"), HeaderValue::from_static("3"));
        f.append(HeaderName::from_static("x-new"), HeaderValue::from_static("n"));
        f.remove(b"ACCEPT");
        let all: Vec<(&[u8], &[u8])> = f.iter().map(|(n, v, _)| (n, v)).collect();
        assert_eq!(all, [(&b"Host"[..], &b"a"[..]), (b"x-thing", b"3"), (b"x-new", b"n")]);
        f.remove(b"x-new");
        assert_eq!(f.get(b"x-new"), None);
        f.clear();
        assert!(f.is_empty());
    }
}
