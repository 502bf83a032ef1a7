//! Languages of compiled matchers, decided exactly on their DFAs: emptiness,
//! intersection and inclusion by a breadth-first walk of product automata,
//! with the shortest witness string. The static checks (SPEC §4.10) and the
//! regex checks are built on these.
//!
//! All DFAs here are anchored, all-matches DFAs as `plan::build` makes them:
//! a string is in the language when the state after its last byte and the
//! end-of-input transition is a match state.

use std::collections::{HashMap, VecDeque};
use std::sync::OnceLock;

use plan::build::compile_dfa;
use regex_automata::Anchored;
use regex_automata::dfa::{Automaton, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;

pub type Dense = dense::DFA<Vec<u32>>;

/// Unreserved characters: a normalized path never carries them escaped.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The regex of every path a matcher can see (SPEC §4.3): normalized (no
/// `//`, no dot-segments, escapes only for reserved bytes and in uppercase,
/// never `%2F`, `%5C`, `%00`), with each segment's `;params` set aside and
/// a segment left empty by them dropped (so no segment but a trailing one is
/// empty, and none has a `;`).
fn valid_path_regex() -> String {
    // Raw bytes a segment may carry: visible ASCII except the separators and
    // what normalization refuses, and any non-ASCII character.
    let raw = r##"[!"$&'()*+,\-0-9:<=>@A-Z\[\]^_`a-z{|}~]|[^\x00-\x7F]"##;
    let mut escapes = Vec::new();
    for hi in 0..16u8 {
        let los: String = (0..16u8)
            .filter(|lo| {
                let v = hi * 16 + lo;
                !unreserved(v) && !matches!(v, b'/' | b'\\' | 0)
            })
            .map(|lo| format!("{lo:X}"))
            .collect();
        if !los.is_empty() {
            escapes.push(format!("{hi:X}[{los}]"));
        }
    }
    let escape = format!("%(?:{})", escapes.join("|"));
    // `raw` has no `.`: `d` is a segment byte other than a dot, `c` any.
    let d = format!("(?:{raw}|{escape})");
    let c = format!(r"(?:{raw}|{escape}|\.)");
    // A segment that is not empty, `.` or `..`: starting with a non-dot, or
    // a dot then a non-dot, or two dots then at least one more byte.
    let seg = format!(r"(?:{d}{c}*|\.{d}{c}*|\.\.{c}+)");
    // `/`, or segments with an optional trailing `/`.
    format!("/(?:{seg}(?:/{seg})*/?)?")
}

/// The DFA of [`valid_path_regex`].
pub fn valid_paths() -> &'static Dense {
    static DFA: OnceLock<Dense> = OnceLock::new();
    DFA.get_or_init(|| match compile_dfa(&[valid_path_regex()], 1 << 24) {
        Ok(dfa) => dfa,
        // The pattern is a constant: a failure is a bug caught by the tests.
        Err(e) => panic!("the valid-path language does not compile: {e}"),
    })
}

fn start_of(dfa: &Dense) -> StateID {
    match dfa.start_state(&start::Config::new().anchored(Anchored::Yes)) {
        Ok(s) => s,
        Err(e) => panic!("DFA without an anchored start: {e}"),
    }
}

fn accepts(dfa: &Dense, s: StateID) -> bool {
    dfa.is_match_state(dfa.next_eoi_state(s))
}

/// Bytes in the order witnesses should prefer them: readable first.
fn preferred_bytes() -> impl Iterator<Item = u8> {
    let readable = (b'a'..=b'z').chain(b'0'..=b'9').chain(b'A'..=b'Z').chain(*b"/-_.~%");
    let rest = (0..=255u8).filter(|b| !(b.is_ascii_alphanumeric() || b"/-_.~%".contains(b)));
    readable.chain(rest)
}

/// One representative byte per class of the joint refinement of the DFAs'
/// byte classes: bytes no DFA tells apart lead to the same product state.
fn representatives(dfas: &[&Dense]) -> Vec<u8> {
    let mut seen = HashMap::new();
    for b in preferred_bytes() {
        let key: Vec<u8> = dfas.iter().map(|d| d.byte_classes().get(b)).collect();
        seen.entry(key).or_insert(b);
    }
    let mut reps: Vec<u8> = seen.into_values().collect();
    let order: Vec<u8> = preferred_bytes().collect();
    reps.sort_by_key(|b| order.iter().position(|o| o == b));
    reps
}

/// The shortest string whose membership in each DFA's language satisfies
/// `accept` (one flag per DFA), searching the product breadth-first.
/// `needed[i]` says DFA `i` must accept, so its dead states are pruned.
pub fn product_witness(dfas: &[&Dense], needed: &[bool], accept: impl Fn(&[bool]) -> bool) -> Option<Vec<u8>> {
    let reps = representatives(dfas);
    let start: Vec<StateID> = dfas.iter().map(|d| start_of(d)).collect();
    let mut parent: HashMap<Vec<StateID>, Option<(Vec<StateID>, u8)>> = HashMap::new();
    parent.insert(start.clone(), None);
    let mut queue = VecDeque::from([start]);
    while let Some(state) = queue.pop_front() {
        let flags: Vec<bool> = dfas.iter().zip(&state).map(|(d, &s)| accepts(d, s)).collect();
        if accept(&flags) {
            let mut out = Vec::new();
            let mut at = state;
            while let Some(Some((prev, b))) = parent.get(&at) {
                out.push(*b);
                at = prev.clone();
            }
            out.reverse();
            return Some(out);
        }
        for &b in &reps {
            let next: Vec<StateID> = dfas.iter().zip(&state).map(|(d, &s)| d.next_state(s, b)).collect();
            let dead = dfas
                .iter()
                .zip(&next)
                .zip(needed)
                .any(|((d, &s), &need)| need && d.is_dead_state(s));
            if dead || parent.contains_key(&next) {
                continue;
            }
            parent.insert(next.clone(), Some((state.clone(), b)));
            queue.push_back(next);
        }
    }
    None
}

/// A string the DFA matches, if any.
pub fn witness(dfa: &Dense) -> Option<Vec<u8>> {
    product_witness(&[dfa], &[true], |f| f[0])
}

/// A normalized path the DFA matches, if any.
pub fn witness_in_valid_paths(dfa: &Dense) -> Option<Vec<u8>> {
    product_witness(&[dfa, valid_paths()], &[true, true], |f| f[0] && f[1])
}

/// A normalized path both match, if any.
pub fn common_path(a: &Dense, b: &Dense) -> Option<Vec<u8>> {
    product_witness(&[a, b, valid_paths()], &[true, true, true], |f| f.iter().all(|&x| x))
}

/// A normalized path `a` matches and `b` does not, if any (`None`: every
/// path of `a` is one of `b`'s).
pub fn path_outside(a: &Dense, b: &Dense) -> Option<Vec<u8>> {
    product_witness(&[a, b, valid_paths()], &[true, false, true], |f| f[0] && !f[1] && f[2])
}

/// A string (any bytes) `a` matches and `b` does not, if any.
pub fn string_outside(a: &Dense, b: &Dense) -> Option<Vec<u8>> {
    product_witness(&[a, b], &[true, false], |f| f[0] && !f[1])
}

/// Whether the DFA matches `s` whole.
pub fn matches(dfa: &Dense, s: &[u8]) -> bool {
    let mut state = start_of(dfa);
    for &b in s {
        state = dfa.next_state(state, b);
    }
    accepts(dfa, state)
}

/// A readable form of a witness (bytes that are not printable ASCII escaped).
pub fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dfa(p: &str) -> Dense {
        compile_dfa(&[p], 1 << 22).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    #[test]
    fn the_valid_path_language_is_what_normalization_produces() {
        let valid = valid_paths();
        for ok in ["/", "/a", "/a/", "/a/b", "/a..b/.x/...", "/%20", "/%3B", "/é", "/~x_-"] {
            assert!(matches(valid, ok.as_bytes()), "{ok} should be valid");
        }
        for bad in [
            "", "a", "/.", "/..", "/a/./b", "/a/../b", "/%2F", "/%2f", "/%61", "/%5C", "/%00", "/a;x", "/a?b", "/a#b",
            "/a\\b", "/%2", "/a b", "//", "/a//b", "//a",
        ] {
            assert!(!matches(valid, bad.as_bytes()), "{bad} should be invalid");
        }
        // Every path normalization produces (params set aside) is in the language.
        for raw in [
            "/a/%7e/../%2e%2E/x",
            "//a///b/",
            "/a;p=1/b;q",
            "/x/..;y/z",
            "/%3b%41",
            "/;x/a",
            "/a/;x",
            "/;x",
            "/a/;x/;y/b",
        ] {
            let normalized = plan::normalize_path(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            let seen = plan::reference::reference_match_path(&normalized);
            assert!(matches(valid, seen.as_bytes()), "{raw} -> {seen}");
        }
    }

    #[test]
    fn products_find_the_shortest_readable_witness() {
        assert_eq!(witness_in_valid_paths(&dfa("/a;x")), None);
        assert_eq!(witness_in_valid_paths(&dfa("/a/%61")), None);
        // A segment of params only is dropped, as a Java upstream merges
        // the `//` it leaves: no matcher sees an empty segment mid-path.
        assert_eq!(witness_in_valid_paths(&dfa("/a//b")), None);
        assert_eq!(
            witness_in_valid_paths(&dfa("/users/[0-9]+")),
            Some(b"/users/0".to_vec())
        );
        assert_eq!(common_path(&dfa("/a/.*"), &dfa(".*/b")), Some(b"/a/b".to_vec()));
        assert_eq!(common_path(&dfa("/a/[0-9]+"), &dfa("/a/[a-z]+")), None);
        assert_eq!(path_outside(&dfa("/a/[0-9]"), &dfa("/a/.*")), None);
        assert_eq!(path_outside(&dfa("/a/.*"), &dfa("/a/[0-9]")), Some(b"/a/".to_vec()));
        assert_eq!(string_outside(&dfa("v[0-9]"), &dfa("v.*")), None);
    }
}
