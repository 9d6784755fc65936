//! A filter rule, compiled: its path, its `matchEquals` with placeholders resolved, and how
//! the two meet.

use std::sync::Arc;

use super::path::FilterPath;

/// A filter rule, compiled: its path and `matchEquals` with placeholders resolved.
#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) path: FilterPath,
    /// What selected values are compared with.
    pub(crate) expected: Option<Arc<str>>,
    /// What verdicts show: `expected` with a secret key's placeholder left as `{Key}`.
    pub(crate) shown: Option<Arc<str>>,
    /// How an indefinite path's selection meets `matchEquals`.
    pub(crate) rule: EqualityRule,
}

/// How the nodes an indefinite path selects are compared with `matchEquals`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum EqualityRule {
    /// This crate's extension: the filter passes when any selected scalar equals it.
    #[default]
    AnyElement,
    /// As on AWS (Jayway): the selection is one list, compared as a whole, and a list never
    /// equals a plain string, so the filter never passes.
    WholeList,
}

impl Filter {
    /// The path as the definition wrote it.
    pub(crate) fn json_path(&self) -> &str {
        &self.path.text
    }

    /// The expected value as verdicts show it (a secret key's placeholder as `{Key}`).
    pub(crate) fn shown(&self) -> Option<&str> {
        self.shown.as_deref()
    }

    /// Whether selected nodes are compared one by one (any equal passes). False for a filter
    /// whose selection is compared as one list (it never passes).
    pub(crate) fn compares_elements(&self) -> bool {
        self.rule == EqualityRule::AnyElement || self.expected.is_none() || self.path.query.is_singular()
    }
}
