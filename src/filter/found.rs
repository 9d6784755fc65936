//! What a failed filter found, as its verdict shows it.

use super::equality::Scalar;
use super::extract::Capture;
use super::tape::Kind;
use crate::verdict::Found;

/// What a singular path selected, for a verdict.
pub(crate) fn found_capture(capture: &Capture<'_>) -> Found {
    match capture {
        Capture::Missing => Found::Nothing,
        Capture::Object => Found::Object,
        Capture::Array => Found::Array,
        scalar => Scalar::of_capture(scalar).map_or(Found::Nothing, |s| shown(&s)),
    }
}

/// A node of the tape, for a verdict.
pub(crate) fn found_kind(kind: Kind<'_>) -> Found {
    match kind {
        Kind::Object(_) => Found::Object,
        Kind::Array(_) => Found::Array,
        scalar => Scalar::of_kind(scalar).map_or(Found::Nothing, |s| shown(&s)),
    }
}

/// A selected scalar as JSON.
fn shown(scalar: &Scalar<'_>) -> Found {
    Found::scalar(match scalar {
        Scalar::Str(s) => serde_json::Value::String((*s).to_owned()),
        Scalar::Number(n) => serde_json::Value::Number(n.clone()),
        Scalar::Bool(b) => serde_json::Value::Bool(*b),
        Scalar::Null => serde_json::Value::Null,
    })
}
