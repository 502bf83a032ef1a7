//! Regular expressions as the plan ships them: dense DFAs that the compiler
//! built and serialized (`regex-automata`, little-endian), deserialized and
//! validated here at load. The gateway never compiles a pattern.
//!
//! Every DFA is anchored at the start and reports, after the end of input,
//! every pattern whose match ends there (`MatchKind::All`): a whole-input
//! match, as SPEC §4.4 and §4.5 define it. One DFA may hold many patterns (a
//! host tier's path regexes); a walk over a path is one pass whatever their
//! number.

use regex_automata::dfa::{Automaton, dense};
use regex_automata::util::primitives::StateID;
use regex_automata::util::start;
use regex_automata::{Anchored, PatternID};

/// Largest serialized DFA of one pattern.
pub const MAX_PATTERN_DFA_BYTES: usize = 1 << 20;
/// Largest total of all serialized DFAs in one plan.
pub const MAX_PLAN_DFA_BYTES: usize = 16 << 20;

/// A loaded DFA.
#[derive(Debug, Clone)]
pub struct Dfa {
    dfa: dense::DFA<Vec<u32>>,
    start: StateID,
}

/// Where a walk stands: feed bytes with [`Dfa::feed`], end with [`Dfa::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk(StateID);

impl Dfa {
    /// Deserializes and validates a DFA (`regex-automata`'s checks make any
    /// byte string safe to load: a damaged one is refused, never trusted).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        // The table is read as u32s: copy it to a 4-byte boundary.
        let mut buf = vec![0u8; bytes.len() + 3];
        let offset = buf.as_ptr().align_offset(4).min(3);
        let aligned = &mut buf[offset..offset + bytes.len()];
        aligned.copy_from_slice(bytes);
        let (dfa, read) = dense::DFA::from_bytes(aligned).map_err(|e| format!("invalid DFA: {e}"))?;
        if read != bytes.len() {
            return Err(format!("invalid DFA: {} trailing bytes", bytes.len() - read));
        }
        let dfa = dfa.to_owned();
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| format!("DFA has no anchored start: {e}"))?;
        Ok(Self { dfa, start })
    }

    pub fn from_dense(dfa: dense::DFA<Vec<u32>>) -> Result<Self, String> {
        let start = dfa
            .start_state(&start::Config::new().anchored(Anchored::Yes))
            .map_err(|e| format!("DFA has no anchored start: {e}"))?;
        Ok(Self { dfa, start })
    }

    pub fn dense(&self) -> &dense::DFA<Vec<u32>> {
        &self.dfa
    }

    pub fn pattern_len(&self) -> usize {
        self.dfa.pattern_len()
    }

    #[inline]
    pub fn start(&self) -> Walk {
        Walk(self.start)
    }

    /// Feeds `bytes`; `false` once no pattern can match any more.
    #[inline]
    pub fn feed(&self, walk: &mut Walk, bytes: &[u8]) -> bool {
        let mut s = walk.0;
        for &b in bytes {
            s = self.dfa.next_state(s, b);
            if self.dfa.is_dead_state(s) {
                walk.0 = s;
                return false;
            }
        }
        walk.0 = s;
        true
    }

    /// Ends the input: the patterns that match it whole.
    #[inline]
    pub fn finish(&self, walk: Walk) -> Matches<'_> {
        let end = self.dfa.next_eoi_state(walk.0);
        let len = if self.dfa.is_match_state(end) {
            self.dfa.match_len(end)
        } else {
            0
        };
        Matches {
            dfa: self,
            state: end,
            next: 0,
            len,
        }
    }

    /// Whether some pattern matches `bytes` whole.
    #[inline]
    pub fn is_match(&self, bytes: &[u8]) -> bool {
        let mut walk = self.start();
        self.feed(&mut walk, bytes) && self.finish(walk).len > 0
    }

    /// Walks a normalized path as matchers see it ([`crate::match_segments`]:
    /// each segment's `;params` set aside, SPEC §4.3).
    #[inline]
    pub fn walk_path(&self, path: &str) -> Matches<'_> {
        let mut walk = self.start();
        for segment in crate::match_segments(path) {
            if !self.feed(&mut walk, b"/") || !self.feed(&mut walk, segment) {
                return self.none();
            }
        }
        self.finish(walk)
    }

    fn none(&self) -> Matches<'_> {
        Matches {
            dfa: self,
            state: self.start,
            next: 0,
            len: 0,
        }
    }
}

/// The patterns matched at the end of a walk, in no particular order.
#[derive(Debug, Clone)]
pub struct Matches<'d> {
    dfa: &'d Dfa,
    state: StateID,
    next: usize,
    len: usize,
}

impl Matches<'_> {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Iterator for Matches<'_> {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.next >= self.len {
            return None;
        }
        let id: PatternID = self.dfa.dfa.match_pattern(self.state, self.next);
        self.next += 1;
        Some(id.as_u32())
    }
}
