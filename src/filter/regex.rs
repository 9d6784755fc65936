//! `match()` and `search()` patterns, compiled once with the webhook.
//!
//! serde_json_path compiles the pattern again for every node it tests (`Regex::new` inside the
//! function). Here a pattern is a string literal, compiled when the webhook compiles, with the
//! regex crate's size limits, and its cost per byte of input is known, so that the work budget
//! can charge for it.

use regex::{Regex, RegexBuilder};
use regex_automata::nfa::thompson;

/// The largest compiled program a pattern may have (the regex crate's `size_limit`).
pub(crate) const MAX_PATTERN_BYTES: usize = 1024 * 1024;
/// The lazy DFA's cache per pattern (the regex crate's `dfa_size_limit`).
const DFA_CACHE_BYTES: usize = 256 * 1024;

/// A compiled pattern: anchored for `match()`, unanchored for `search()`, as serde_json_path
/// builds them (`(?R)^(p)$`, `(?R)(p)`: CRLF mode, so `.` matches neither `\r` nor `\n`).
#[derive(Debug)]
pub(crate) struct Pattern {
    /// `None` when the pattern is not a valid regular expression: RFC 9535 makes such a
    /// `match()` or `search()` false, and so does serde_json_path.
    regex: Option<Regex>,
    /// Work units charged per byte searched: 1 + the pattern's NFA states / 128. A search is
    /// linear in the input, with a constant that grows with the automaton.
    pub(crate) weight: u64,
}

impl Pattern {
    /// Compiles `pattern`; refuses one whose program is over [`MAX_PATTERN_BYTES`].
    pub(crate) fn compile(pattern: &str, anchored: bool) -> Result<Self, String> {
        let full = if anchored { format!("(?R)^({pattern})$") } else { format!("(?R)({pattern})") };
        let regex = match RegexBuilder::new(&full).size_limit(MAX_PATTERN_BYTES).dfa_size_limit(DFA_CACHE_BYTES).build()
        {
            Ok(regex) => regex,
            Err(regex::Error::CompiledTooBig(_)) => {
                return Err(format!(
                    "the pattern '{pattern}' compiles to more than {} MiB (the limit on match()/search() patterns); Unicode classes such as \\w repeated many times are the usual cause",
                    MAX_PATTERN_BYTES / (1024 * 1024)
                ));
            }
            Err(_) => return Ok(Self { regex: None, weight: 1 }),
        };
        let states = thompson::Compiler::new()
            .configure(thompson::Config::new().nfa_size_limit(Some(MAX_PATTERN_BYTES)))
            .build(&full)
            .map(|nfa| nfa.states().len())
            .unwrap_or(MAX_PATTERN_BYTES / 16);
        Ok(Self { regex: Some(regex), weight: 1 + states as u64 / 128 })
    }

    /// The pattern of `match(@, 1)`: not a string, so never a match.
    pub(crate) fn never() -> Self {
        Self { regex: None, weight: 1 }
    }

    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(text))
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
        assert!(!m.is_match("a\nc"), "CRLF mode: . matches no line break");
        let s = Pattern::compile("b", false).unwrap();
        assert!(s.is_match("abc"));
    }

    #[test]
    fn an_invalid_pattern_never_matches_and_a_huge_one_is_refused() {
        let bad = Pattern::compile("a(", true).unwrap();
        assert!(!bad.is_match("a("));
        let err = Pattern::compile(r"(\w{20}){20}", true).unwrap_err();
        assert!(err.contains("MiB"), "{err}");
    }

    #[test]
    fn weight_grows_with_the_automaton() {
        let small = Pattern::compile("main", true).unwrap().weight;
        let large = Pattern::compile(r"\w{10}", true).unwrap().weight;
        assert!(small <= 2 && large > small * 10, "{small} {large}");
    }
}
