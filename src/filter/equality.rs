//! The equality rule, the one place it is written: how a selected scalar meets `matchEquals`.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use serde_json::Number;

use super::eval::{Eval, Exhausted};
use super::extract::Capture;
use super::tape::Kind;

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
