//! Request conditions (SPEC §4.5): methods, headers and query parameters,
//! checked against a borrowed view of the request without allocating.
//!
//! A header that appears on several lines is read as its lines joined with
//! `,` (RFC 9110 §5.3), so a condition sees one value whatever the framing
//! of the list. A query parameter is its first occurrence, name and value
//! percent-decoded (`+` stays `+`: that is form encoding, not URI syntax).

use crate::dfa::Dfa;
use crate::{Condition, Route, ValueMatch};

/// What conditions read from a request.
pub trait RequestView {
    fn method(&self) -> &[u8];
    /// Every value of the header `name` (lowercase), in received order.
    fn header_values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a;
    /// The raw query string, without `?`.
    fn query(&self) -> Option<&[u8]>;
}

/// An owned request for `explain`, `gateway test` and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedRequest {
    pub method: String,
    /// Names as given (compared case-insensitively).
    pub headers: Vec<(String, String)>,
    pub query: Option<String>,
}

impl RequestView for OwnedRequest {
    fn method(&self) -> &[u8] {
        self.method.as_bytes()
    }

    fn header_values<'a>(&'a self, name: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_bytes())
    }

    fn query(&self) -> Option<&[u8]> {
        self.query.as_deref().map(str::as_bytes)
    }
}

/// A value matcher ready to run.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Exact(Box<[u8]>),
    Dfa(u32),
}

#[derive(Debug, Clone)]
pub(crate) struct Cond {
    name: Box<[u8]>,
    value: Value,
}

/// Which condition of a route failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failed {
    Method,
    /// `headers[i]`: absent, or another value.
    Header(usize),
    /// `query[i]`: absent, or another value.
    Query(usize),
}

/// A route's conditions, compiled for the request path.
#[derive(Debug, Clone)]
pub(crate) struct Conditions {
    methods: Box<[Box<[u8]>]>,
    headers: Box<[Cond]>,
    query: Box<[Cond]>,
}

fn compile(conds: &[Condition], lowercase: bool) -> Box<[Cond]> {
    conds
        .iter()
        .map(|c| Cond {
            name: if lowercase {
                c.name.to_ascii_lowercase().into_bytes().into()
            } else {
                c.name.as_bytes().into()
            },
            value: match &c.value {
                ValueMatch::Exact(v) => Value::Exact(v.as_bytes().into()),
                ValueMatch::Regex { dfa, .. } => Value::Dfa(*dfa),
            },
        })
        .collect()
}

/// Feeds the pieces of a value through `byte`, joined by `,`; stops early
/// when `byte` returns false.
fn joined<'a>(pieces: impl Iterator<Item = &'a [u8]>, mut byte: impl FnMut(u8) -> bool) -> Option<bool> {
    let mut any = false;
    for piece in pieces {
        if any && !byte(b',') {
            return Some(false);
        }
        any = true;
        for &b in piece {
            if !byte(b) {
                return Some(false);
            }
        }
    }
    any.then_some(true)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes `raw` byte by byte into `byte` (a malformed escape is
/// taken literally); stops early when `byte` returns false.
fn decoded(raw: &[u8], mut byte: impl FnMut(u8) -> bool) -> bool {
    let mut i = 0;
    while i < raw.len() {
        let (b, step) = match (
            raw[i],
            raw.get(i + 1).copied().and_then(hex),
            raw.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => (hi * 16 + lo, 3),
            (b, _, _) => (b, 1),
        };
        if !byte(b) {
            return false;
        }
        i += step;
    }
    true
}

fn decoded_eq(raw: &[u8], plain: &[u8]) -> bool {
    let mut at = 0;
    decoded(raw, |b| {
        let ok = plain.get(at) == Some(&b);
        at += 1;
        ok
    }) && at == plain.len()
}

/// The raw value of the first occurrence of parameter `name`.
fn first_param<'q>(query: &'q [u8], name: &[u8]) -> Option<&'q [u8]> {
    query.split(|&b| b == b'&').find_map(|pair| {
        let (n, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        decoded_eq(n, name).then_some(v)
    })
}

impl Conditions {
    /// `None` for a route without conditions (the common case costs nothing).
    pub(crate) fn of(route: &Route) -> Option<Box<Self>> {
        route.has_conditions().then(|| {
            Box::new(Self {
                methods: route.methods.iter().map(|m| m.as_bytes().into()).collect(),
                headers: compile(&route.headers, true),
                query: compile(&route.query, false),
            })
        })
    }

    /// DFA indices the conditions use.
    pub(crate) fn dfas(&self) -> impl Iterator<Item = u32> + '_ {
        self.headers
            .iter()
            .chain(self.query.iter())
            .filter_map(|c| match c.value {
                Value::Dfa(d) => Some(d),
                Value::Exact(_) => None,
            })
    }

    /// The first condition that fails, if any.
    #[inline]
    pub(crate) fn check(&self, req: &impl RequestView, dfas: &[Dfa]) -> Result<(), Failed> {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| **m == *req.method()) {
            return Err(Failed::Method);
        }
        for (i, c) in self.headers.iter().enumerate() {
            let values = req.header_values(&c.name);
            let ok = match &c.value {
                Value::Exact(want) => {
                    let mut at = 0;
                    joined(values, |b| {
                        let ok = want.get(at) == Some(&b);
                        at += 1;
                        ok
                    }) == Some(true)
                        && at == want.len()
                }
                Value::Dfa(d) => {
                    let dfa = &dfas[*d as usize];
                    let mut walk = dfa.start();
                    joined(values, |b| dfa.feed(&mut walk, &[b])) == Some(true) && !dfa.finish(walk).is_empty()
                }
            };
            if !ok {
                return Err(Failed::Header(i));
            }
        }
        for (i, c) in self.query.iter().enumerate() {
            let Some(raw) = req.query().and_then(|q| first_param(q, &c.name)) else {
                return Err(Failed::Query(i));
            };
            let ok = match &c.value {
                Value::Exact(want) => decoded_eq(raw, want),
                Value::Dfa(d) => {
                    let dfa = &dfas[*d as usize];
                    let mut walk = dfa.start();
                    decoded(raw, |b| dfa.feed(&mut walk, &[b])) && !dfa.finish(walk).is_empty()
                }
            };
            if !ok {
                return Err(Failed::Query(i));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_first_occurrences_percent_decoded() {
        let q = b"a=1&b=x%20y&a=2&flag&c%3D=3&d=%zz&e=a+b";
        assert_eq!(first_param(q, b"a"), Some(&b"1"[..]));
        assert!(decoded_eq(first_param(q, b"b").unwrap_or_default(), b"x y"));
        assert_eq!(first_param(q, b"flag"), Some(&b""[..]));
        assert_eq!(first_param(q, b"c="), Some(&b"3"[..]));
        assert!(decoded_eq(first_param(q, b"d").unwrap_or_default(), b"%zz"));
        assert!(decoded_eq(first_param(q, b"e").unwrap_or_default(), b"a+b"));
        assert_eq!(first_param(q, b"A"), None);
        assert_eq!(first_param(q, b"missing"), None);
    }

    #[test]
    fn header_lines_join_with_commas() {
        let collect = |pieces: &[&[u8]]| {
            let mut out = Vec::new();
            let r = joined(pieces.iter().copied(), |b| {
                out.push(b);
                true
            });
            (r, out)
        };
        assert_eq!(collect(&[b"a", b"b c"]), (Some(true), b"a,b c".to_vec()));
        assert_eq!(collect(&[b""]), (Some(true), Vec::new()));
        assert_eq!(collect(&[]), (None, Vec::new()));
    }
}
