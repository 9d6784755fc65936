//! Compiled filters: their paths (parsed once, within limits), the one equality rule, and the two
//! lanes that answer them.
//!
//! - Singular paths in the recognised subset ([`singular`]) go to the DOM-free lane ([`extract`]):
//!   one validating pass over the body picks out all their values, allocating nothing.
//! - When a webhook has any other path, its filters are answered over a compact [`tape`] of the
//!   body by this crate's RFC 9535 evaluator ([`eval`]), under a work budget proportional to the
//!   body: no path form and no body shape costs more than the budget, and a delivery that needs
//!   more is refused with a reason that says so.
//!
//! serde_json_path is the reference: it validates every path (its acceptance and its error
//! messages), and the differential tests hold both lanes to its answers.

#[cfg(test)]
mod differential;
pub(crate) mod eval;
pub(crate) mod extract;
mod limits;
pub(crate) mod query;
pub(crate) mod regex;
pub(crate) mod singular;
pub(crate) mod tape;

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde_json::Number;

pub(crate) use extract::{Capture, Trie};
pub use limits::{
    MAX_DESCENDANT_SEGMENTS, MAX_PATH_NESTING, MAX_PATTERNS, SCAN_MINIMUM, SCAN_PER_BYTE, WORK_MINIMUM, WORK_PER_NODE,
    WorkBudget, work_budget,
};
pub(crate) use query::Query;
pub(crate) use singular::Step;

use crate::error::{ErrorCode, escape};
use crate::verdict::{FilterFailure, Found, Rejection};
use crate::warning::Warning;
use eval::{Eval, Exhausted, Flow};
use tape::{Kind, Tape};

/// A parsed filter path.
#[derive(Clone, Debug)]
pub(crate) struct FilterPath {
    /// The path as the definition wrote it.
    pub(crate) text: Arc<str>,
    /// The syntax tree the bounded lane evaluates.
    pub(crate) query: Arc<Query>,
    /// `Some` when the path is singular and in the subset the DOM-free lane answers.
    pub(crate) singular: Option<Vec<Step>>,
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
    /// Checks the limits, validates with serde_json_path, then builds the syntax tree.
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
        limits::check(text).map_err(|(column, problem)| PathError {
            message: pointed(text, column, "is refused", &problem),
            column,
        })?;
        serde_json_path::JsonPath::parse(text)
            .map_err(|e| PathError { message: describe(text, &e), column: char_column(text, e.position()) })?;
        let (query, patterns) = query::parse(text, patterns_left)
            .map_err(|r| PathError { message: pointed(text, r.column, "is refused", &r.message), column: r.column })?;
        Ok(Self { text: text.into(), query: Arc::new(query), singular: singular::parse(text), patterns })
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

/// A filter rule, compiled: its path and `matchEquals` with placeholders resolved.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) path: FilterPath,
    /// What selected values are compared with.
    pub(crate) expected: Option<Arc<str>>,
    /// What verdicts show: `expected` with a secret key's placeholder left as `{Key}`.
    pub(crate) shown: Option<Arc<str>>,
}

impl Filter {
    /// Traps this rule falls into, as warnings about field `webhook.filters[index]`.
    pub(crate) fn warnings(&self, index: usize) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let field = |member: &str| format!("webhook.filters[{index}].{member}");
        if let Some(member) = root_filter_member(&self.path.query) {
            let text = &self.path.text;
            warnings.push(Warning::new(
                ErrorCode::InvalidWebhookFilterPatternException,
                field("jsonPath"),
                format!(
                    "'{text}' tests each top-level value of the payload, not the payload itself: `@.{member}` is read from each of them; to test the payload's own {member}, use the path `$.{member}` (with matchEquals)"
                ),
            ));
        }
        if let (Some(shown), None) = (&self.shown, &self.path.singular)
            && shown.contains(['*', '?'])
        {
            warnings.push(Warning::new(
                    ErrorCode::InvalidWebhookFilterPatternException,
                    field("matchEquals"),
                    format!(
                        "matchEquals '{}' is compared exactly: `*` and `?` are not wildcards; to match a pattern, select with search() or match() and leave matchEquals out, e.g. `$.commits[*].modified[?search(@, '^services/api/')]`",
                        shown.escape_debug()
                    ),
                ));
        }
        warnings
    }
}

/// For `$[?…@.member…]` (a filter directly on the root whose predicate reads a member of `@`):
/// that member's name.
fn root_filter_member(query: &Query) -> Option<&str> {
    let first = query.segments.first().filter(|s| !s.descendant)?;
    first.selectors.iter().find_map(|selector| match selector {
        query::Selector::Filter(expr) => relative_member(expr),
        _ => None,
    })
}

fn relative_member(expr: &query::Expr) -> Option<&str> {
    use query::{Comparable, Expr, Function};
    fn of_query(q: &Query) -> Option<&str> {
        match q.segments.first()?.selectors.first()? {
            query::Selector::Name(name) if !q.absolute => Some(name),
            _ => None,
        }
    }
    fn of_comparable(c: &Comparable) -> Option<&str> {
        match c {
            Comparable::Query(q) => of_query(q),
            _ => None,
        }
    }
    match expr {
        Expr::Or(terms) | Expr::And(terms) => terms.iter().find_map(relative_member),
        Expr::Not(inner) => relative_member(inner),
        Expr::Exists(q) => of_query(q),
        Expr::Compare(l, _, r) => of_comparable(l).or_else(|| of_comparable(r)),
        Expr::Test(Function::Match(arg, _) | Function::Search(arg, _)) => of_comparable(arg),
        Expr::Test(_) => None,
    }
}

/// A webhook's filters and the lane that answers them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filters {
    list: Vec<Filter>,
    /// The singular paths, slot = filter index.
    trie: Trie,
    /// Whether some path is not singular: then every filter is answered over one tape.
    bounded_lane: bool,
}

impl Filters {
    pub(crate) fn new(list: Vec<Filter>) -> Self {
        let mut trie = Trie::new();
        for (slot, filter) in list.iter().enumerate() {
            if let Some(steps) = &filter.path.singular {
                trie.insert(steps, slot);
            }
        }
        let bounded_lane = list.iter().any(|f| f.path.singular.is_none());
        Self { list, trie, bounded_lane }
    }

    pub(crate) fn list(&self) -> &[Filter] {
        &self.list
    }

    /// Whether a delivery is answered over a tape, under the work budget.
    pub(crate) fn bounded_lane(&self) -> bool {
        self.bounded_lane
    }

    /// Every filter, in order, against the body's JSON `text`; the first failure decides.
    pub(crate) fn check(&self, text: &str, max_depth: usize) -> Result<(), Rejection> {
        if self.bounded_lane {
            let tape = parse_tape(text, max_depth)?;
            let budget = work_budget(text.len(), tape.len());
            let eval = Eval::new(&tape, budget);
            for (index, filter) in self.list.iter().enumerate() {
                match select_filter(&eval, filter) {
                    Ok(Selection { passed: true, .. }) => {}
                    Ok(selection) => return Err(failure(index, filter, selection.found(&tape))),
                    Err(Exhausted) => {
                        return Err(Rejection::WorkBudgetExhausted {
                            filter: index,
                            json_path: filter.path.text.clone(),
                            budget,
                        });
                    }
                }
            }
            return Ok(());
        }
        let mut captures: [Capture<'_>; crate::MAX_FILTERS] = Default::default();
        self.trie.extract(text, &mut captures[..self.list.len()], max_depth).map_err(invalid_json)?;
        for (index, (filter, capture)) in self.list.iter().zip(&captures).enumerate() {
            let pass = match &filter.expected {
                None => *capture != Capture::Missing,
                Some(expected) => Scalar::of_capture(capture).is_some_and(|s| s.equals(expected)),
            };
            if !pass {
                return Err(failure(index, filter, found_capture(capture)));
            }
        }
        Ok(())
    }
}

/// The body as a tape, or the payload reject that says why it is not one.
pub(crate) fn parse_tape(text: &str, max_depth: usize) -> Result<Tape<'_>, Rejection> {
    if text.len() > tape::MAX_TAPE_BYTES {
        return Err(Rejection::PayloadTooLarge { size: text.len(), limit: tape::MAX_TAPE_BYTES });
    }
    Tape::parse(text, max_depth).map_err(invalid_json)
}

pub(crate) use crate::body::invalid_json;

/// What one filter's path selected, as far as the decision needed to look.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Selection {
    pub(crate) passed: bool,
    /// Nodes selected (all of them when the filter failed).
    pub(crate) count: usize,
    /// The first few selected.
    pub(crate) first: [Option<tape::Id>; Found::FIRST_SHOWN],
}

impl Selection {
    fn found(&self, tape: &Tape<'_>) -> Found {
        let mut first = self.first.iter().flatten().map(|&id| found_kind(tape.kind(id)));
        match self.count {
            0 => Found::Nothing,
            1 => first.next().unwrap_or(Found::Nothing),
            count => Found::Values { count, first: first.collect() },
        }
    }
}

/// Streams `filter`'s path over the tape: passes at the first node equal to `matchEquals` (or at
/// the first node, without it).
pub(crate) fn select_filter(eval: &Eval<'_, '_>, filter: &Filter) -> Result<Selection, Exhausted> {
    let mut selection = Selection::default();
    let tape = eval.tape();
    let _ = eval.select(&filter.path.query, Tape::ROOT, &mut |id| {
        selection.count += 1;
        let scalar = Scalar::of_kind(tape.kind(id));
        // What a `WebhookSet` pays to look the value up, paid here too, so that a member's own
        // evaluation and the set's shared one spend alike.
        if let Some(scalar) = &scalar {
            scalar.pay(eval)?;
        }
        let equal = match &filter.expected {
            None => true,
            Some(expected) => scalar.is_some_and(|s| s.equals(expected)),
        };
        if equal {
            selection.passed = true;
            return Ok(Flow::Break(()));
        }
        if let Some(slot) = selection.first.get_mut(selection.count - 1) {
            *slot = Some(id);
        }
        Ok(Flow::Continue(()))
    })?;
    Ok(selection)
}

fn failure(index: usize, filter: &Filter, found: Found) -> Rejection {
    Rejection::FilterFailed(FilterFailure {
        index,
        json_path: filter.path.text.clone(),
        expected: filter.shown.clone(),
        found,
    })
}

/// A selected scalar, as `matchEquals` sees it. Objects and arrays have none: they never equal
/// a string.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(&'a str),
    Number(Number),
    Bool(bool),
    Null,
}

impl<'a> Scalar<'a> {
    pub(crate) fn of_capture(capture: &'a Capture<'_>) -> Option<Self> {
        Some(match capture {
            Capture::Str(s) => Scalar::Str(s),
            Capture::Number(n) => Scalar::Number(n.clone()),
            Capture::Bool(b) => Scalar::Bool(*b),
            Capture::Null => Scalar::Null,
            Capture::Missing | Capture::Object | Capture::Array => return None,
        })
    }

    pub(crate) fn of_kind(kind: Kind<'a>) -> Option<Self> {
        Some(match kind {
            Kind::Str(s) => Scalar::Str(s),
            Kind::Number(n) => Scalar::Number(n.to_number()),
            Kind::Bool(b) => Scalar::Bool(b),
            Kind::Null => Scalar::Null,
            Kind::Array(_) | Kind::Object(_) => return None,
        })
    }

    /// The equality rule, the one place it is written: strings by their unescaped value,
    /// numbers as serde_json displays them (`1.50` is `1.5`, `1e2` is `100.0`), `true`, `false`
    /// and `null` by their literals. Exact and case-sensitive.
    pub(crate) fn equals(&self, expected: &str) -> bool {
        match self {
            Scalar::Str(s) => *s == expected,
            Scalar::Number(n) => number_equals(n, expected),
            Scalar::Bool(b) => expected == if *b { "true" } else { "false" },
            Scalar::Null => expected == "null",
        }
    }

    /// Pays for comparing or hashing it: a string's bytes are scanned, a number is formatted
    /// (a couple of work units).
    pub(crate) fn pay(&self, eval: &Eval<'_, '_>) -> Result<(), Exhausted> {
        match self {
            Scalar::Str(s) => eval.scan(s.len()),
            Scalar::Number(_) => eval.charge(2),
            Scalar::Bool(_) | Scalar::Null => Ok(()),
        }
    }

    /// The text that [`Scalar::equals`] compares: `equals(e)` is `text() == e`.
    pub(crate) fn text(&self) -> Cow<'a, str> {
        match self {
            Scalar::Str(s) => Cow::Borrowed(s),
            Scalar::Number(n) => Cow::Owned(n.to_string()),
            Scalar::Bool(true) => Cow::Borrowed("true"),
            Scalar::Bool(false) => Cow::Borrowed("false"),
            Scalar::Null => Cow::Borrowed("null"),
        }
    }

    /// As JSON, for a verdict.
    fn shown(&self) -> Found {
        Found::scalar(match self {
            Scalar::Str(s) => serde_json::Value::String((*s).to_owned()),
            Scalar::Number(n) => serde_json::Value::Number(n.clone()),
            Scalar::Bool(b) => serde_json::Value::Bool(*b),
            Scalar::Null => serde_json::Value::Null,
        })
    }
}

/// Compares `Number`'s `Display` with `expected` as it is written, without allocating.
fn number_equals(n: &Number, expected: &str) -> bool {
    struct Prefix<'e>(&'e str);
    impl fmt::Write for Prefix<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.strip_prefix(s).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let mut rest = Prefix(expected);
    write!(rest, "{n}").is_ok() && rest.0.is_empty()
}

fn found_capture(capture: &Capture<'_>) -> Found {
    match capture {
        Capture::Missing => Found::Nothing,
        Capture::Object => Found::Object,
        Capture::Array => Found::Array,
        scalar => Scalar::of_capture(scalar).map_or(Found::Nothing, |s| s.shown()),
    }
}

fn found_kind(kind: Kind<'_>) -> Found {
    match kind {
        Kind::Object(_) => Found::Object,
        Kind::Array(_) => Found::Array,
        scalar => Scalar::of_kind(scalar).map_or(Found::Nothing, |s| s.shown()),
    }
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
