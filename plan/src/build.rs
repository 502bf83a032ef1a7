//! Building what the plan ships (feature `build`, used by the compiler and the
//! test support): regex DFAs, and the per-host tables of routes in precedence
//! order (SPEC §4.6).

use std::cmp::Reverse;
use std::collections::HashMap;

use base64::Engine as _;
use regex_automata::MatchKind;
use regex_automata::dfa::{StartKind, dense};
use regex_automata::util::syntax;

use crate::dfa::{MAX_PATTERN_DFA_BYTES, MAX_PLAN_DFA_BYTES};
use crate::pattern::{HostPattern, parse_host_pattern};
use crate::{HostNode, NONE, PathMatch, PathNode, RegexDfa, RegexSet, Route, Table};

/// Why patterns could not become a DFA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegexError {
    #[error("{0}")]
    Invalid(String),
    /// Larger than `limit` bytes; `size` when it could be measured.
    #[error("its DFA would exceed {limit} bytes")]
    TooLarge { limit: usize, size: Option<usize> },
}

/// Compiles `patterns` (regex crate syntax) into one anchored, all-matches DFA
/// whose serialized size is at most `limit`.
pub fn compile_dfa<P: AsRef<str>>(patterns: &[P], limit: usize) -> Result<dense::DFA<Vec<u32>>, RegexError> {
    let config = dense::Config::new()
        .match_kind(MatchKind::All)
        .start_kind(StartKind::Anchored)
        .dfa_size_limit(Some(limit))
        .determinize_size_limit(Some(limit.saturating_mul(4)));
    let built = dense::Builder::new()
        .configure(config)
        .syntax(syntax::Config::new())
        .build_many(patterns);
    match built {
        Ok(dfa) if dfa.write_to_len() <= limit => Ok(dfa),
        Ok(dfa) => Err(RegexError::TooLarge {
            limit,
            size: Some(dfa.write_to_len()),
        }),
        Err(e) if e.is_size_limit_exceeded() => Err(RegexError::TooLarge { limit, size: None }),
        Err(e) => Err(RegexError::Invalid(
            std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| format!("{e}: {s}")),
        )),
    }
}

/// Compiles one pattern under the per-pattern cap; a pattern over it is
/// measured again under the plan cap so the error can say how big it is.
pub fn compile_pattern(pattern: &str) -> Result<dense::DFA<Vec<u32>>, RegexError> {
    match compile_dfa(&[pattern], MAX_PATTERN_DFA_BYTES) {
        Err(RegexError::TooLarge { size: None, .. }) => match compile_dfa(&[pattern], MAX_PLAN_DFA_BYTES) {
            Ok(dfa) => Err(RegexError::TooLarge {
                limit: MAX_PATTERN_DFA_BYTES,
                size: Some(dfa.write_to_len()),
            }),
            Err(_) => Err(RegexError::TooLarge {
                limit: MAX_PATTERN_DFA_BYTES,
                size: None,
            }),
        },
        other => other,
    }
}

/// The plan's form of a DFA: its patterns and its little-endian bytes, base64.
pub fn serialize(patterns: Vec<String>, dfa: &dense::DFA<Vec<u32>>) -> RegexDfa {
    let (bytes, padding) = dfa.to_bytes_little_endian();
    RegexDfa {
        patterns,
        dfa: base64::engine::general_purpose::STANDARD.encode(&bytes[padding..]),
    }
}

/// SPEC §4.6 steps 2–5 within one host pattern: the sort key of a route.
pub fn precedence(route: &Route, index: usize) -> impl Ord + use<> {
    (
        route.path.rank(),
        Reverse(route.path.specificity()),
        Reverse(!route.methods.is_empty()),
        Reverse(route.headers.len()),
        Reverse(route.query.len()),
        index,
    )
}

/// A serialized DFA above this size is split, so one host tier's regexes
/// become several DFAs walked one after another.
pub const SPLIT_DFA_BYTES: usize = 4 << 20;

/// The routing index of a plan.
#[derive(Debug, Default)]
pub struct Index {
    pub hosts: Vec<HostNode>,
    pub catch_all: u32,
    pub tables: Vec<Table>,
    pub paths: Vec<PathNode>,
    /// Path DFAs, to be appended to the plan's regexes (table indices count
    /// from `first_regex`).
    pub regexes: Vec<RegexDfa>,
}

#[derive(Debug)]
struct Builder {
    index: Index,
    host_children: HashMap<(u32, String), u32>,
    path_children: HashMap<(u32, String), u32>,
    /// Per table, its routes in insertion order.
    members: Vec<Vec<u32>>,
}

impl Builder {
    fn new_tree(&mut self) -> u32 {
        self.index.paths.push(PathNode {
            parent: NONE,
            segment: String::new(),
            exact: Vec::new(),
            prefix: Vec::new(),
        });
        (self.index.paths.len() - 1) as u32
    }

    fn new_table(&mut self) -> u32 {
        let root = self.new_tree();
        self.index.tables.push(Table {
            root,
            regex: Vec::new(),
        });
        self.members.push(Vec::new());
        (self.index.tables.len() - 1) as u32
    }

    fn host_node(&mut self, name: &str) -> usize {
        let mut node = 0u32;
        for label in name.rsplit('.') {
            let key = (node, label.to_owned());
            node = match self.host_children.get(&key) {
                Some(&child) => child,
                None => {
                    self.index.hosts.push(HostNode {
                        parent: node,
                        label: label.to_owned(),
                        exact: NONE,
                        wildcard: NONE,
                    });
                    let child = (self.index.hosts.len() - 1) as u32;
                    self.host_children.insert(key, child);
                    child
                }
            };
        }
        node as usize
    }

    fn table_for(&mut self, host: &HostPattern) -> u32 {
        match host {
            HostPattern::Any => {
                if self.index.catch_all == NONE {
                    self.index.catch_all = self.new_table();
                }
                self.index.catch_all
            }
            HostPattern::Exact(name) => {
                let n = self.host_node(name);
                if self.index.hosts[n].exact == NONE {
                    self.index.hosts[n].exact = self.new_table();
                }
                self.index.hosts[n].exact
            }
            HostPattern::Wildcard(suffix) => {
                let n = self.host_node(suffix);
                if self.index.hosts[n].wildcard == NONE {
                    self.index.hosts[n].wildcard = self.new_table();
                }
                self.index.hosts[n].wildcard
            }
        }
    }

    /// The node for `segments` under `root`, created as needed.
    fn node<'s>(&mut self, root: u32, segments: impl Iterator<Item = &'s str>) -> u32 {
        let mut node = root;
        for seg in segments {
            let key = (node, seg.to_owned());
            node = match self.path_children.get(&key) {
                Some(&child) => child,
                None => {
                    self.index.paths.push(PathNode {
                        parent: node,
                        segment: seg.to_owned(),
                        exact: Vec::new(),
                        prefix: Vec::new(),
                    });
                    let child = (self.index.paths.len() - 1) as u32;
                    self.path_children.insert(key, child);
                    child
                }
            };
        }
        node
    }
}

/// Segments of a normalized prefix; `/` has none.
pub fn prefix_segments(prefix: &str) -> impl Iterator<Item = &str> {
    let rest = &prefix[1..];
    rest.split('/').filter(move |_| !rest.is_empty())
}

/// Segments of an exact path as a request walk meets them: `/` is one empty
/// segment, `/a/` is `a` and an empty one.
pub fn exact_segments(path: &str) -> impl Iterator<Item = &str> {
    path[1..].split('/')
}

/// Builds host trie, tables and prefix trees for `routes` (validated: host
/// patterns parse, paths are normalized). Regex tables get DFAs whose plan
/// indices start at `first_regex`. `Err` when the path DFAs together exceed
/// the plan's cap.
pub fn index(routes: &[Route], first_regex: u32) -> Result<Index, RegexError> {
    let mut b = Builder {
        index: Index {
            hosts: vec![HostNode {
                parent: NONE,
                label: String::new(),
                exact: NONE,
                wildcard: NONE,
            }],
            catch_all: NONE,
            ..Index::default()
        },
        host_children: HashMap::new(),
        path_children: HashMap::new(),
        members: Vec::new(),
    };
    for (i, route) in routes.iter().enumerate() {
        for host in &route.hosts {
            let pattern = parse_host_pattern(Some(host)).map_err(RegexError::Invalid)?;
            let table = b.table_for(&pattern) as usize;
            b.members[table].push(i as u32);
        }
    }
    let mut total = 0usize;
    for t in 0..b.index.tables.len() {
        let mut members = std::mem::take(&mut b.members[t]);
        members.sort_by_key(|&r| precedence(&routes[r as usize], r as usize));
        let root = b.index.tables[t].root;
        let mut regex_routes = Vec::new();
        for r in members {
            match &routes[r as usize].path {
                PathMatch::Prefix(p) => {
                    let node = b.node(root, prefix_segments(p));
                    b.index.paths[node as usize].prefix.push(r);
                }
                PathMatch::Exact(p) => {
                    let node = b.node(root, exact_segments(p));
                    b.index.paths[node as usize].exact.push(r);
                }
                PathMatch::Regex(_) => regex_routes.push(r),
            }
        }
        let mut sets = Vec::new();
        regex_sets(routes, &regex_routes, &mut sets)?;
        for (routes_of_set, dfa) in sets {
            total += dfa.write_to_len();
            if total > MAX_PLAN_DFA_BYTES {
                return Err(RegexError::TooLarge {
                    limit: MAX_PLAN_DFA_BYTES,
                    size: Some(total),
                });
            }
            let patterns = routes_of_set
                .iter()
                .map(|&r| routes[r as usize].path.as_str().to_owned())
                .collect();
            let id = first_regex + b.index.regexes.len() as u32;
            b.index.regexes.push(serialize(patterns, &dfa));
            b.index.tables[t].regex.push(RegexSet {
                dfa: id,
                routes: routes_of_set,
            });
        }
    }
    Ok(b.index)
}

/// One DFA for `members` (in precedence order), or several when one would be
/// larger than [`SPLIT_DFA_BYTES`]: halves, in order, recursively.
fn regex_sets(
    routes: &[Route],
    members: &[u32],
    out: &mut Vec<(Vec<u32>, dense::DFA<Vec<u32>>)>,
) -> Result<(), RegexError> {
    if members.is_empty() {
        return Ok(());
    }
    let patterns: Vec<&str> = members.iter().map(|&r| routes[r as usize].path.as_str()).collect();
    match compile_dfa(&patterns, SPLIT_DFA_BYTES) {
        Ok(dfa) => {
            out.push((members.to_vec(), dfa));
            Ok(())
        }
        Err(RegexError::TooLarge { .. }) if members.len() > 1 => {
            let (a, b) = members.split_at(members.len() / 2);
            regex_sets(routes, a, out)?;
            regex_sets(routes, b, out)
        }
        Err(e) => Err(e),
    }
}
