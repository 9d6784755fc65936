//! A filter path compiled once: the shape limits, serde_json_path as the validator (its
//! acceptance, its messages and positions), then this crate's one parse into the syntax tree the
//! lanes run; errors show the path with a caret under the fault.

use std::sync::Arc;

use super::query::{self, Query};
use super::shape;
use super::singular::PathStep;
use crate::error::escape;
#[cfg(test)]
use crate::limits::MAX_PATTERNS;

/// A parsed filter path.
#[derive(Clone, Debug)]
pub(crate) struct FilterPath {
    /// The path as the definition wrote it.
    pub(crate) text: Arc<str>,
    /// The syntax tree the bounded lane evaluates.
    pub(crate) query: Arc<Query>,
    /// `Some` when the path is singular and in the subset the DOM-free lane answers.
    pub(crate) singular: Option<Arc<[PathStep]>>,
    /// How many `match()`/`search()` patterns it compiled.
    pub(crate) patterns: usize,
}

/// Why a path did not compile: a message that shows the path and points at the fault.
#[derive(Debug)]
pub(crate) struct PathError {
    pub(crate) message: String,
    /// The character position of the fault.
    pub(crate) column: usize,
}

impl FilterPath {
    /// Checks the shape limits, validates with serde_json_path, then builds the syntax tree.
    #[cfg(test)]
    pub(crate) fn parse(text: &str) -> Result<Self, PathError> {
        Self::parse_with(text, MAX_PATTERNS)
    }

    /// As `parse`, compiling at most `patterns_left` `match()`/`search()` patterns (what the
    /// webhook's earlier filters left of [`MAX_PATTERNS`]).
    pub(crate) fn parse_with(text: &str, patterns_left: usize) -> Result<Self, PathError> {
        if ends_inside_unicode_escape(text) {
            // serde_json_path 0.7 panics on these (a streaming `one_of` meets the end of input and
            // nom's `Incomplete` reaches an `unreachable!`); they are never valid, so refuse them
            // here. Found by the `differential` fuzz target.
            let column = text.chars().count();
            return Err(PathError {
                message: pointed(text, column, "does not parse", "the path ends inside a \\u escape"),
                column,
            });
        }
        // Before serde_json_path sees it: its parser takes time exponential in filter nesting.
        shape::check(text).map_err(|(column, problem)| PathError {
            message: pointed(text, column, "is refused", &problem),
            column,
        })?;
        serde_json_path::JsonPath::parse(text)
            .map_err(|e| PathError { message: describe(text, &e), column: char_column(text, e.position()) })?;
        let (query, patterns) = query::parse(text, patterns_left)
            .map_err(|r| PathError { message: pointed(text, r.column, "is refused", &r.message), column: r.column })?;
        // The DOM-free lane's steps come from the same tree: no second parser.
        let singular = query.singular_steps().map(Arc::from);
        Ok(Self { text: text.into(), query: Arc::new(query), singular, patterns })
    }
}

/// `JsonPath '…' does not parse at character N: problem` (or `is refused`, for a path valid in
/// RFC 9535 that this crate's limits refuse), then the path with a caret under N.
fn pointed(text: &str, column: usize, verdict: &str, problem: &str) -> String {
    // Control characters in the path are escaped, so that the message keeps its three lines; the
    // caret goes under the escaped text.
    let shown = escape(text);
    let before: String = text.chars().take(column).collect();
    let width = escape(&before).chars().count() + 1;
    format!("JsonPath '{shown}' {verdict} at character {column}: {problem}\n  {shown}\n  {caret:>width$}", caret = "^")
}

/// serde_json_path reports a byte offset; the caret goes under the character.
fn char_column(text: &str, byte: usize) -> usize {
    let byte = byte.min(text.len());
    text.char_indices().take_while(|&(i, _)| i < byte).count()
}

/// Whether `text` ends where a `\u` escape still needs its hex digits: right after `\u`, or
/// after the `D` that starts a surrogate. Nothing valid ends there.
fn ends_inside_unicode_escape(text: &str) -> bool {
    text.ends_with("\\u") || text.ends_with("\\uD") || text.ends_with("\\ud")
}

/// A message that shows the path and points at the fault, with a hint for the Jayway forms that
/// AWS documents and RFC 9535 does not have.
fn describe(text: &str, e: &serde_json_path::ParseError) -> String {
    let column = char_column(text, e.position());
    let mut message = pointed(text, column, "does not parse", e.message());
    if let Some(hint) = jayway_hint(text) {
        message.push_str("\n  hint: ");
        message.push_str(&hint);
    }
    message
}

fn jayway_hint(text: &str) -> Option<String> {
    if !text.starts_with('$') {
        let rest = text.trim_start_matches(['.', '@']);
        return Some(format!(
            "paths start at the root `$` (RFC 9535); Jayway reads '{text}' as '$.{rest}', so write that"
        ));
    }
    if text.ends_with("()") {
        return Some(
            "Jayway functions such as length() or min() are not RFC 9535; use a filter or length() inside one".into(),
        );
    }
    if text.contains("=~") {
        return Some(
            "Jayway's =~ regex operator is not RFC 9535; use match(@.x, 'regex') or search(@.x, 'regex')".into(),
        );
    }
    if text.contains('-') && !text.contains('[') {
        return Some("a name with '-' needs brackets in RFC 9535: $['my-name'], not $.my-name".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_at_the_fault() {
        let e = FilterPath::parse("$.a[").unwrap_err().message;
        assert!(e.contains("does not parse at character"), "{e}");
        assert!(e.contains("\n  $.a[\n"), "{e}");
    }

    #[test]
    fn hints_at_jayway_forms() {
        assert!(FilterPath::parse("ref").unwrap_err().message.contains("'$.ref'"));
        assert!(FilterPath::parse("$.commits.length()").unwrap_err().message.contains("length()"));
        assert!(FilterPath::parse("$.repo-name").unwrap_err().message.contains("$['my-name']"));
    }

    #[test]
    fn paths_ending_inside_a_unicode_escape_are_refused_not_panicked_on() {
        for path in [
            r"$['\u",
            r"$['\uD",
            r"$['\ud",
            r#"$["\u"#,
            r"$['\uD834\u",
            r"$['\uD834\uD",
            r"$[?@.a == '\u",
            r"$[?match(@.a, '\uD",
            r"$['a\\u",
        ] {
            let e = FilterPath::parse(path).unwrap_err().message;
            assert!(e.contains("does not parse"), "{path}: {e}");
        }
        // Complete escapes still parse.
        assert!(FilterPath::parse(r"$['\u00e9\uD834\uDD1E']").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in r"\$[\[\]'\x22\\uUdD0-9a-fA-F.?@=*, ()-]{0,16}") {
            let _ = FilterPath::parse(&text);
        }
    }

    #[test]
    fn sorts_paths_into_lanes() {
        assert!(FilterPath::parse("$.ref").unwrap().singular.is_some());
        assert!(FilterPath::parse("$[ 'a' ][ 0 ]").unwrap().singular.is_some());
        assert!(FilterPath::parse("$.commits[*].modified[*]").unwrap().singular.is_none());
        assert!(FilterPath::parse("$.commits[-1].id").unwrap().singular.is_none());
    }
}
