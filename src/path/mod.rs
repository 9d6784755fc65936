//! JsonPath filters: compiled once with serde_json_path (RFC 9535), and sorted into two lanes.
//!
//! - Singular paths in the recognised subset ([`singular`]) go to the DOM-free lane ([`extract`]):
//!   one validating pass over the body picks out all their values.
//! - Every other path is answered by serde_json_path over a `serde_json::Value`, built once per
//!   request however many such filters there are.
//!
//! For a singular path both lanes give the same answer (at most one node is selected), so the choice
//! of lane is about speed only.

#[cfg(test)]
mod differential;
pub(crate) mod extract;
pub(crate) mod singular;

use std::sync::Arc;

use serde_json_path::JsonPath;

pub(crate) use extract::{Capture, Trie};
pub(crate) use singular::Step;

/// A parsed filter path.
#[derive(Clone, Debug)]
pub(crate) struct FilterPath {
    /// The path as the definition wrote it.
    pub(crate) text: Arc<str>,
    pub(crate) query: JsonPath,
    /// `Some` when the path is singular and in the subset the DOM-free lane answers.
    pub(crate) singular: Option<Vec<Step>>,
}

/// Why a path did not parse: a message and the character position of the fault.
#[derive(Debug)]
pub(crate) struct PathError {
    pub(crate) message: String,
}

impl FilterPath {
    pub(crate) fn parse(text: &str) -> Result<Self, PathError> {
        if ends_inside_unicode_escape(text) {
            // serde_json_path 0.7 panics on these (a streaming `one_of` meets the end of input and
            // nom's `Incomplete` reaches an `unreachable!`); they are never valid, so refuse them
            // here. Found by the `differential` fuzz target.
            let column = text.chars().count();
            return Err(PathError {
                message: format!(
                    "JsonPath '{text}' does not parse at character {column}: the path ends inside a \\u escape\n  {text}\n  {caret:>width$}",
                    caret = "^",
                    width = column + 1
                ),
            });
        }
        let query = JsonPath::parse(text).map_err(|e| PathError { message: describe(text, &e) })?;
        Ok(Self { text: text.into(), query, singular: singular::parse(text) })
    }
}

/// Whether `text` ends where a `\u` escape still needs its hex digits: right after `\u`, or
/// after the `D` that starts a surrogate. Nothing valid ends there.
fn ends_inside_unicode_escape(text: &str) -> bool {
    text.ends_with("\\u") || text.ends_with("\\uD") || text.ends_with("\\ud")
}

/// A message that shows the path and points at the fault, with a hint for the Jayway forms that
/// AWS documents and RFC 9535 does not have.
fn describe(text: &str, e: &serde_json_path::ParseError) -> String {
    // serde_json_path reports a byte offset; the caret goes under the character.
    let byte = e.position().min(text.len());
    let column = text.char_indices().take_while(|&(i, _)| i < byte).count();
    let mut message = format!(
        "JsonPath '{text}' does not parse at character {column}: {}\n  {text}\n  {caret:>width$}",
        e.message(),
        caret = "^",
        width = column + 1
    );
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
        assert!(FilterPath::parse("$.commits[*].modified[*]").unwrap().singular.is_none());
        assert!(FilterPath::parse("$.commits[-1].id").unwrap().singular.is_none());
    }
}
