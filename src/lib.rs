#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action_configuration;
mod auth;
mod body;
mod definition;
mod error;
mod json;
mod path;
pub mod registry;
mod request;
#[cfg(feature = "control-plane")]
pub mod server;
mod set;
mod template;
mod verdict;
mod webhook;

pub use action_configuration::ActionConfiguration;
pub use auth::github;
pub use definition::{
    MAX_FILTERS, MAX_TAGS, PutWebhookInput, REDACTED, Tag, WebhookAuthConfiguration, WebhookAuthenticationType,
    WebhookDefinition, WebhookFilterRule,
};
pub use error::{Error, ErrorCode};
pub use request::{CONTENT_TYPE, IntoSourceIp, Request, X_HUB_SIGNATURE, X_HUB_SIGNATURE_256};
pub use set::{SetMatches, WebhookSet};
pub use verdict::{FilterFailure, Found, Rejection, Step, Trigger, Verdict};
pub use webhook::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT, Webhook, WebhookBuilder};
