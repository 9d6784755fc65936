//! `match()` and `search()` patterns, compiled once with the webhook into a DFA, so that testing a
//! string is one pass over it, whatever the pattern.
//!
//! serde_json_path compiles the pattern again for every node it tests (`Regex::new` inside the
//! function), and a backtracking-free engine is not enough on its own: the regex crate's lazy DFA
//! gives up on patterns whose states explode (`[a-m][a-z]{100}[A-Z]`, searched) and falls back to
//! simulating the NFA, hundreds of nanoseconds a byte. Here the pattern is determinised when the
//! webhook compiles, within size limits (a pattern past them is refused, naming the limit), and kept
//! as a dense DFA (at most 512 KiB, a few KiB for most patterns): matching costs about 2 ns a byte
//! for every pattern that compiles.

use regex_automata::Input;
use regex_automata::dfa::{Automaton, dense};
use regex_automata::nfa::thompson;

/// The largest NFA a pattern may compile to, checked first (it fails fast on huge repetitions).
const MAX_NFA_BYTES: usize = 256 * 1024;
/// The largest DFA, and the most memory determinising it may use.
pub(crate) const MAX_DFA_BYTES: usize = 512 * 1024;

/// A compiled pattern: anchored for `match()`, unanchored for `search()`, as serde_json_path
/// builds them (`(?R)^(p)$`, `(?R)(p)`: CRLF mode, so `.` matches neither `\r` nor `\n`).
#[derive(Debug)]
pub(crate) struct Pattern {
    /// `None` when the pattern is not a valid regular expression (or not a string): RFC 9535
    /// makes such a `match()` or `search()` false, and so does serde_json_path.
    dfa: Option<dense::DFA<Vec<u32>>>,
}

impl Pattern {
    /// Compiles `pattern`; refuses one whose automaton is over the limits, or that uses what a
    /// DFA cannot run (Unicode word boundaries `\b`, which I-Regexp does not have).
    pub(crate) fn compile(pattern: &str, anchored: bool) -> Result<Self, String> {
        let full = if anchored { format!("(?R)^({pattern})$") } else { format!("(?R)({pattern})") };
        if regex_automata::util::syntax::parse(&full).is_err() {
            return Ok(Self::never());
        }
        let too_big = |what: &str, limit: usize| {
            format!(
                "the pattern '{}' needs {what} larger than {} KiB (the limit on match()/search() patterns, which keeps matching linear); repeated Unicode classes such as \\w{{20}}, or a searched pattern whose states explode, are the usual cause",
                pattern.escape_debug(),
                limit / 1024
            )
        };
        let nfa = thompson::Compiler::new()
            .configure(thompson::Config::new().nfa_size_limit(Some(MAX_NFA_BYTES)))
            .build(&full)
            .map_err(|_| too_big("an automaton", MAX_NFA_BYTES))?;
        let dfa = dense::Builder::new()
            .configure(
                dense::Config::new().dfa_size_limit(Some(MAX_DFA_BYTES)).determinize_size_limit(Some(MAX_DFA_BYTES)),
            )
            .build_from_nfa(&nfa)
            .map_err(|e| {
                if e.to_string().contains("word boundar") {
                    format!("the pattern '{}' uses a Unicode word boundary (\\b), which linear matching does not support and I-Regexp does not have", pattern.escape_debug())
                } else {
                    too_big("a DFA", MAX_DFA_BYTES)
                }
            })?;
        Ok(Self { dfa: Some(dfa) })
    }

    /// The pattern of `match(@, 1)`: not a string, so never a match.
    pub(crate) fn never() -> Self {
        Self { dfa: None }
    }

    /// Whether `text` matches: one pass over it.
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.dfa.as_ref().is_some_and(|dfa| dfa.try_search_fwd(&Input::new(text)).is_ok_and(|m| m.is_some()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_as_serde_json_path_does() {
        let m = Pattern::compile("a.c", true).unwrap();
        assert!(m.is_match("abc"));
        assert!(!m.is_match("xabc"));
        assert!(!m.is_match("abcx"));
        assert!(!m.is_match("a\nc"), "CRLF mode: . matches no line break");
        let s = Pattern::compile("b", false).unwrap();
        assert!(s.is_match("abc"));
        let unicode = Pattern::compile(r"\p{Lu}+", true).unwrap();
        assert!(unicode.is_match("ÉCOLE") && !unicode.is_match("école"));
        assert!(Pattern::compile(r"\w+", false).unwrap().is_match("é"));
    }

    #[test]
    fn an_invalid_pattern_never_matches_and_a_huge_one_is_refused() {
        let bad = Pattern::compile("a(", true).unwrap();
        assert!(!bad.is_match("a("));
        for huge in [r"(\w{20}){20}", r"\w{1000}", r"\w{20}"] {
            let err = Pattern::compile(huge, true).unwrap_err();
            assert!(err.contains("KiB"), "{err}");
        }
        // Anchored, this one is small; searched, its states explode.
        assert!(Pattern::compile("[a-m][a-z]{100}[A-Z]", true).is_ok());
        assert!(Pattern::compile("[a-m][a-z]{100}[A-Z]", false).unwrap_err().contains("explode"));
        assert!(Pattern::compile(r"\bword\b", false).unwrap_err().contains("word boundary"));
    }
}
