//! Static checks over the routes (SPEC §4.10), decided on the compiled
//! matchers:
//!
//! - **never selected**: every request a route matches is taken by routes
//!   earlier in the order of SPEC §4.6 within the same host pattern (routes
//!   of other host patterns never cover all of a pattern's hosts). The path
//!   languages are compared exactly, as DFAs intersected with the language of
//!   normalized paths; conditions are compared route by route (an earlier
//!   route takes traffic only where its conditions are implied by the later
//!   route's), which never reports a route that can be selected.
//! - **overlapping regexes**: two regex routes of one host pattern whose
//!   languages intersect without either containing the other, with the
//!   shortest path both match.
//!
//! Candidates are found by literal prefixes (of a path, a prefix, or what
//! every match of a regex starts with) before any automaton is built, so the
//! cost grows with the routes that can overlap, not with the square of all.

use std::collections::{BTreeMap, HashMap};

use plan::build::compile_dfa;
use plan::{HostPattern, build::prefix_segments};

use crate::diag::{Diagnostics, Loc};
use crate::lang::{self, Dense};
use crate::regex::CompiledRegex;
use crate::route::{ConditionCfg, ValueCfg};

/// A route as the checks see it.
#[derive(Debug)]
pub struct View<'a> {
    pub name: &'a str,
    pub line: u32,
    pub loc: Loc,
    pub field: String,
    pub hosts: Vec<HostPattern>,
    pub matcher: Matcher<'a>,
    pub methods: &'a [String],
    pub headers: &'a [ConditionCfg],
    pub query: &'a [ConditionCfg],
}

#[derive(Debug, Clone, Copy)]
pub enum Matcher<'a> {
    Prefix(&'a str),
    Exact(&'a str),
    Regex(&'a CompiledRegex),
}

impl Matcher<'_> {
    fn rank(&self) -> u8 {
        match self {
            Matcher::Exact(_) => 0,
            Matcher::Regex(_) => 1,
            Matcher::Prefix(_) => 2,
        }
    }

    fn specificity(&self) -> usize {
        match self {
            Matcher::Exact(_) => 0,
            Matcher::Regex(r) => r.source.len(),
            Matcher::Prefix(p) => prefix_segments(p).count(),
        }
    }

    /// What every path of the language starts with.
    fn literal(&self) -> &[u8] {
        match self {
            Matcher::Prefix(p) | Matcher::Exact(p) => p.as_bytes(),
            Matcher::Regex(r) => &r.literal_prefix,
        }
    }

    /// The language as a regex over matched paths.
    fn source(&self) -> String {
        match self {
            Matcher::Exact(p) => regex_syntax::escape(p),
            Matcher::Prefix("/") => "/(?s:.)*".to_owned(),
            Matcher::Prefix(p) => format!("{}(?:/(?s:.)*)?", regex_syntax::escape(p)),
            Matcher::Regex(r) => format!("(?:{})", r.source),
        }
    }

    /// Identifies the matcher: kind and text.
    fn key(&self) -> (u8, &str) {
        match self {
            Matcher::Prefix(p) | Matcher::Exact(p) => (self.rank(), p),
            Matcher::Regex(r) => (self.rank(), &r.source),
        }
    }
}

/// Whether every value `r` accepts, `q` accepts too.
fn value_implies(r: &ValueCfg, q: &ValueCfg) -> bool {
    match (r, q) {
        (ValueCfg::Exact(a), ValueCfg::Exact(b)) => a == b,
        (ValueCfg::Exact(a), ValueCfg::Regex(b)) => lang::matches(&b.dfa, a.as_bytes()),
        (ValueCfg::Regex(a), ValueCfg::Regex(b)) => lang::string_outside(&a.dfa, &b.dfa).is_none(),
        // A regex is taken to accept more than one value (sound, if not complete).
        (ValueCfg::Regex(_), ValueCfg::Exact(_)) => false,
    }
}

fn conditions_implied(r: &[ConditionCfg], q: &[ConditionCfg]) -> bool {
    q.iter().all(|qc| {
        r.iter()
            .any(|rc| rc.name == qc.name && value_implies(&rc.value, &qc.value))
    })
}

/// Whether every request satisfying `r`'s conditions satisfies `q`'s.
fn implied(r: &View<'_>, q: &View<'_>) -> bool {
    (q.methods.is_empty() || (!r.methods.is_empty() && r.methods.iter().all(|m| q.methods.contains(m))))
        && conditions_implied(r.headers, q.headers)
        && conditions_implied(r.query, q.query)
}

fn precedence(v: &View<'_>, index: usize) -> impl Ord + use<> {
    use std::cmp::Reverse;
    (
        v.matcher.rank(),
        Reverse(v.matcher.specificity()),
        Reverse(!v.methods.is_empty()),
        Reverse(v.headers.len()),
        Reverse(v.query.len()),
        index,
    )
}

/// DFAs of route languages, built on demand.
struct Languages<'v, 'a> {
    views: &'v [View<'a>],
    cache: HashMap<usize, Dense>,
}

impl Languages<'_, '_> {
    fn of(&mut self, i: usize) -> Option<&Dense> {
        if let Matcher::Regex(r) = self.views[i].matcher {
            return Some(&r.dfa);
        }
        if !self.cache.contains_key(&i) {
            let dfa = compile_dfa(&[self.views[i].matcher.source()], 1 << 24).ok()?;
            self.cache.insert(i, dfa);
        }
        self.cache.get(&i)
    }
}

/// Runs both checks and reports warnings.
pub fn check(views: &[View<'_>], diags: &mut Diagnostics, source: &str) {
    let mut groups: HashMap<&HostPattern, Vec<usize>> = HashMap::new();
    for (i, v) in views.iter().enumerate() {
        for h in &v.hosts {
            groups.entry(h).or_default().push(i);
        }
    }
    let mut langs = Languages {
        views,
        cache: HashMap::new(),
    };
    // Per route: in how many of its host groups it is covered, and by whom.
    let mut covered: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); views.len()];
    let mut groups: Vec<(&HostPattern, Vec<usize>)> = groups.into_iter().collect();
    groups.sort_by_key(|(h, _)| h.to_plan_string());
    let mut walked = Vec::with_capacity(groups.len());
    for (_, mut members) in groups {
        members.sort_by_key(|&i| precedence(&views[i], i));
        let mut seen = Seen::default();
        for (k, &r) in members.iter().enumerate() {
            let found = shadowed(views, &mut langs, r, &members[..k], &seen);
            seen.add(views, r);
            if let Some(takers) = found {
                covered[r].0 += 1;
                for t in takers {
                    if !covered[r].1.contains(&t) {
                        covered[r].1.push(t);
                    }
                }
            }
        }
        walked.push(members);
    }
    let never: Vec<bool> = covered
        .iter()
        .enumerate()
        .map(|(r, (n, _))| *n > 0 && *n == views[r].hosts.len())
        .collect();
    for members in &walked {
        overlaps(views, members, &never, diags, source);
    }
    for (r, (_, takers)) in covered.into_iter().enumerate() {
        if !never[r] {
            continue;
        }
        let named: Vec<String> = takers
            .iter()
            .map(|&t| format!("{:?} ({source}:{})", views[t].name, views[t].line))
            .collect();
        let noun = if named.len() == 1 { "route" } else { "routes" };
        diags.warning(
            views[r].loc,
            &views[r].field,
            format!(
                "never selected: every request it matches goes to {noun} {}",
                named.join(", ")
            ),
        );
    }
}

/// The routes of one host pattern already walked, indexed for the checks.
#[derive(Debug, Default)]
struct Seen<'a> {
    by_matcher: HashMap<(u8, &'a str), Vec<usize>>,
    /// Regex routes by literal prefix.
    regexes: ByLiteral<'a>,
}

impl<'a> Seen<'a> {
    fn add(&mut self, views: &'a [View<'a>], i: usize) {
        self.by_matcher.entry(views[i].matcher.key()).or_default().push(i);
        if let Matcher::Regex(r) = views[i].matcher {
            self.regexes.insert(&r.literal_prefix, i);
        }
    }
}

/// Routes indexed by a literal prefix, to find those whose literal is
/// related to another (one a prefix of the other) without a scan.
#[derive(Debug, Default)]
struct ByLiteral<'a>(BTreeMap<&'a [u8], Vec<usize>>);

impl<'a> ByLiteral<'a> {
    fn insert(&mut self, literal: &'a [u8], i: usize) {
        self.0.entry(literal).or_default().push(i);
    }

    /// Routes whose literal is a prefix of `lit` or starts with it.
    fn related(&self, lit: &[u8]) -> Vec<usize> {
        let mut out: Vec<usize> = (0..lit.len())
            .filter_map(|k| self.0.get(&lit[..k]))
            .flatten()
            .copied()
            .collect();
        for (key, routes) in self
            .0
            .range::<[u8], _>((std::ops::Bound::Included(lit), std::ops::Bound::Unbounded))
        {
            if !key.starts_with(lit) {
                break;
            }
            out.extend(routes);
        }
        out
    }
}

/// The routes among `earlier` (in precedence order, same host pattern) that
/// together take every request `r` matches, or `None` when some request
/// reaches `r`.
fn shadowed(
    views: &[View<'_>],
    langs: &mut Languages<'_, '_>,
    r: usize,
    earlier: &[usize],
    seen: &Seen<'_>,
) -> Option<Vec<usize>> {
    let rv = &views[r];
    if let Some(&q) = seen
        .by_matcher
        .get(&rv.matcher.key())
        .and_then(|same| same.iter().find(|&&q| implied(rv, &views[q])))
    {
        return Some(vec![q]);
    }
    // Exact paths rank first: only the same path takes one. Without a regex
    // among the takers, a prefix always keeps a fresh segment of its own.
    let lit = rv.matcher.literal();
    let mut regex_takers: Vec<usize> = seen
        .regexes
        .related(lit)
        .into_iter()
        .filter(|&q| implied(rv, &views[q]))
        .collect();
    regex_takers.sort_unstable();
    if matches!(rv.matcher, Matcher::Exact(_)) || regex_takers.is_empty() {
        return None;
    }
    let takers: Vec<usize> = earlier.iter().copied().filter(|&q| implied(rv, &views[q])).collect();
    // A prefix keeps the paths under it with a segment no taker names: if no
    // taker matches such a path, the union cannot cover the prefix (the
    // common case, decided without building any automaton).
    if let Matcher::Prefix(p) = rv.matcher {
        let fresh = if p == "/" {
            "/gw~unnamed~segment".to_owned()
        } else {
            format!("{p}/gw~unnamed~segment")
        };
        let taken = takers.iter().any(|&q| match views[q].matcher {
            Matcher::Regex(re) => lang::matches(&re.dfa, fresh.as_bytes()),
            Matcher::Exact(e) => e == fresh,
            Matcher::Prefix(t) => t == "/" || fresh == t || fresh.starts_with(&format!("{t}/")),
        });
        if !taken {
            return None;
        }
    }
    let mine = langs.of(r)?.clone();
    let mut parts: Vec<usize> = Vec::new();
    for &q in &takers {
        let qv = &views[q];
        let relevant = match (qv.matcher, rv.matcher) {
            (Matcher::Regex(_), _) => regex_takers.binary_search(&q).is_ok(),
            (Matcher::Exact(e), _) => e.as_bytes().starts_with(lit),
            (Matcher::Prefix(p), Matcher::Prefix(mine)) => {
                p == mine || p.starts_with(&format!("{mine}/")) || mine == "/"
            }
            (Matcher::Prefix(_), _) => false,
        };
        if relevant && langs.of(q).is_some_and(|d| lang::common_path(&mine, d).is_some()) {
            parts.push(q);
        }
    }
    if parts.is_empty() {
        return None;
    }
    // Name one route when one is enough.
    if let Some(&q) = parts
        .iter()
        .find(|&&q| langs.of(q).is_some_and(|d| lang::path_outside(&mine, d).is_none()))
    {
        return Some(vec![q]);
    }
    let sources: Vec<String> = parts.iter().map(|&q| views[q].matcher.source()).collect();
    let union = compile_dfa(&sources, 1 << 26).ok()?;
    lang::path_outside(&mine, &union).is_none().then_some(parts)
}

/// Warns about regex routes of one host pattern whose languages overlap
/// without either containing the other.
fn overlaps(views: &[View<'_>], members: &[usize], never: &[bool], diags: &mut Diagnostics, source: &str) {
    let mut regexes: Vec<(usize, &CompiledRegex)> = members
        .iter()
        .filter(|&&i| !never[i])
        .filter_map(|&i| match views[i].matcher {
            Matcher::Regex(r) => Some((i, r)),
            _ => None,
        })
        .collect();
    // Members are in precedence order: the earlier of a pair wins.
    regexes.dedup_by(|a, b| a.0 == b.0);
    let rank: HashMap<usize, usize> = regexes.iter().enumerate().map(|(k, &(i, _))| (i, k)).collect();
    let mut index = ByLiteral::default();
    for &(i, r) in &regexes {
        index.insert(&r.literal_prefix, i);
    }
    for &(a, ra) in &regexes {
        let mut later: Vec<(usize, &CompiledRegex)> = index
            .related(&ra.literal_prefix)
            .into_iter()
            .filter(|b| rank[b] > rank[&a])
            .filter_map(|b| match views[b].matcher {
                Matcher::Regex(rb) => Some((b, rb)),
                _ => None,
            })
            .collect();
        later.sort_by_key(|(b, _)| rank[b]);
        for (b, rb) in later {
            if ra.source == rb.source {
                continue;
            }
            let Some(both) = lang::common_path(&ra.dfa, &rb.dfa) else {
                continue;
            };
            if lang::path_outside(&ra.dfa, &rb.dfa).is_none() || lang::path_outside(&rb.dfa, &ra.dfa).is_none() {
                continue;
            }
            let why = if ra.source.len() > rb.source.len() {
                "its pattern is longer"
            } else {
                "it is declared first"
            };
            let conditions = if views[a].methods.is_empty() && views[a].headers.is_empty() && views[a].query.is_empty()
            {
                ""
            } else {
                " when its conditions hold"
            };
            let (bv, av) = (&views[b], &views[a]);
            diags.warning(
                bv.loc,
                format!("{}.pathRegex", bv.field),
                format!(
                    "pathRegex {:?} overlaps route {:?} ({source}:{}) without either containing the other: both match {:?}; route {:?} wins{conditions} ({why})",
                    rb.source,
                    av.name,
                    av.line,
                    lang::show(&both),
                    av.name,
                ),
            );
        }
    }
}
