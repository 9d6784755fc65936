#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action_configuration;
mod auth;
mod body;
mod constraints;
mod definition;
mod error;
mod filter;
pub mod limits;
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub mod registry;
mod request;
mod set;
mod template;
mod verdict;
mod warning;
mod webhook;

pub use action_configuration::ActionConfiguration;
pub use auth::github;
pub use auth::proxies::TrustedProxies;
pub use definition::{
    PutWebhookInput, Tag, WebhookAuthConfiguration, WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule,
};
pub use error::{Error, ErrorCode, REDACTED};
/// Tape reads on this thread so far: an independent measure of evaluation work, for the
/// `bounded` fuzz target (fuzzing builds only).
#[cfg(fuzzing)]
#[doc(hidden)]
pub use filter::tape::touches as tape_touches;
// The tuning constants live in `limits`; these re-exports keep older paths working.
pub use limits::WorkBudget;
#[doc(hidden)]
pub use limits::{
    DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT, MAX_DESCENDANT_SEGMENTS, MAX_FILTERS, MAX_PATH_NESTING,
    MAX_PATTERNS, MAX_TAGS, SCAN_MINIMUM, SCAN_PER_BYTE, WORK_MINIMUM, WORK_PER_NODE, work_budget,
};
pub use request::{
    CONTENT_TYPE, FORWARDED, IntoSourceIp, Request, X_FORWARDED_FOR, X_HUB_SIGNATURE, X_HUB_SIGNATURE_256,
};
pub use set::{SetMatches, SetMatchesIntoIter, SetMatchesIter, WebhookSet};
pub use verdict::{FilterFailure, Found, PayloadProblem, Rejection, SignatureError, SignatureHeader, Step, Verdict};
pub use warning::Warning;
pub use webhook::{Webhook, WebhookOptions};
