#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod action_configuration;
mod answer;
mod auth;
mod body;
mod constraints;
mod definition;
mod error;
mod filter;
mod json;
#[cfg_attr(not(feature = "registry"), allow(dead_code))]
mod model;
#[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
pub mod registry;
mod request;
mod set;
mod template;
mod verdict;
mod warning;
mod webhook;

pub use action_configuration::ActionConfiguration;
pub use answer::HttpAnswer;
pub use auth::github;
pub use auth::proxies::TrustedProxies;
pub use definition::{
    MAX_FILTERS, MAX_TAGS, PutWebhookInput, REDACTED, Tag, WebhookAuthConfiguration, WebhookAuthenticationType,
    WebhookDefinition, WebhookFilterRule,
};
pub use error::{Error, ErrorCode};
/// Tape reads on this thread so far: an independent measure of evaluation work, for the
/// `bounded` fuzz target (fuzzing builds only).
#[cfg(fuzzing)]
#[doc(hidden)]
pub use filter::tape::touches as tape_touches;
pub use filter::{
    MAX_DESCENDANT_SEGMENTS, MAX_PATH_NESTING, MAX_PATTERNS, SCAN_MINIMUM, SCAN_PER_BYTE, WORK_MINIMUM, WORK_PER_NODE,
    WorkBudget, work_budget,
};
pub use request::{
    CONTENT_TYPE, FORWARDED, IntoSourceIp, Request, X_FORWARDED_FOR, X_HUB_SIGNATURE, X_HUB_SIGNATURE_256,
};
pub use set::{SetMatches, SetMatchesIntoIter, SetMatchesIter, WebhookSet};
pub use verdict::{FilterFailure, Found, PayloadProblem, Rejection, SignatureError, SignatureHeader, Step, Verdict};
pub use warning::Warning;
pub use webhook::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT, Webhook, WebhookOptions};
