//! Compiled filters, one job per file:
//!
//! - [`path`]: a path compiled once (the [`shape`] limits, serde_json_path as the validator and
//!   reference for messages and positions, then [`query`], the one parse into this crate's tree),
//!   with errors that point at the fault;
//! - [`rule`]: a filter rule (its path and resolved `matchEquals`), and [`warnings`] about it;
//! - [`plan`]: the compiled plan of a webhook or a set, its lane chosen once, and the one way a
//!   body is answered: the DOM-free pass ([`extract`]) or the [`tape`] and this crate's RFC 9535
//!   evaluator ([`eval`]) under a work budget;
//! - [`equality`]: the one equality rule; [`found`]: what a failed filter found;
//! - [`json`]: the strict, depth-limited JSON walks both lanes share.
//!
//! The differential tests hold both lanes to serde_json_path's answers over a `serde_json::Value`.

#[cfg(test)]
mod differential;
pub(crate) mod equality;
pub(crate) mod eval;
pub(crate) mod extract;
pub(crate) mod found;
pub(crate) mod json;
pub(crate) mod path;
pub(crate) mod plan;
pub(crate) mod query;
pub(crate) mod regex;
pub(crate) mod rule;
mod shape;
pub(crate) mod singular;
pub(crate) mod tape;
pub(crate) mod warnings;

pub(crate) use path::FilterPath;
pub(crate) use plan::Filters;
pub(crate) use rule::{EqualityRule, Filter};
