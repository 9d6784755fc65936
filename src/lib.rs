//! AWS CodePipeline webhooks as an embeddable, no-I/O engine: `PutWebhook` definitions validated
//! exactly as the AWS API validates them, compiled once (placeholders resolved, JsonPath parsed,
//! HMAC key and CIDR prepared), and a [`Verdict`] for every delivery (raw body, headers, source
//! address) that says whether the pipeline starts and, if not, exactly why.
//!
//! # Three ways in
//!
//! - **One webhook**: [`WebhookDefinition`] (the AWS shape, serde) and the target action's
//!   [`ActionConfiguration`] compile into a [`Webhook`] ([`Webhook::new`], or
//!   [`Webhook::options`] for [`WebhookOptions`]); [`Webhook::evaluate`] takes a [`Request`] and
//!   gives a [`Verdict`]: a trigger, or a [`Rejection`] that names the [`Step`] and, for a filter,
//!   the path, the expected value and what was [`Found`]. [`Verdict::http_answer`] is what a
//!   receiver answers ([`HttpAnswer`]).
//! - **Many webhooks, one delivery**: a [`WebhookSet`] evaluates one delivery against thousands
//!   of webhooks at about the cost of one, with the same verdicts ([`SetMatches`]).
//! - **The API's state**: [`registry::Registry`] (feature `registry`, default) is `PutWebhook`,
//!   `ListWebhooks`, `DeleteWebhook`, the pipelines they target, their URLs, ARNs, tags and quotas
//!   as pure logic, and [`registry::Registry::trigger`] finds a webhook by its URL and evaluates it.
//!
//! ```
//! use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let definition: WebhookDefinition = serde_json::from_str(r#"{
//!         "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
//!         "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
//!         "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "s3cr3t"}
//!     }"#)?;
//!     let config: ActionConfiguration = [("Branch", "main")].into_iter().collect();
//!     let webhook = Webhook::new(&definition, &config)?;
//!
//!     let body = br#"{"ref":"refs/heads/main"}"#;
//!     let signature = github::signature_256(b"s3cr3t", body);
//!     let verdict = webhook.evaluate(&Request::new(body).header("X-Hub-Signature-256", &signature));
//!     assert!(verdict.is_trigger());
//!     assert_eq!(verdict.http_answer().status(), 202);
//!     Ok(())
//! }
//! ```
//!
//! # Around them
//!
//! - Receivers on axum or hyper: feature `http`, [`Request::from_headers`] and
//!   [`Request::from_parts`]; behind proxies, [`TrustedProxies`] finds the client address.
//! - GitHub's signatures alone: [`github::verify`], [`github::signature_256`].
//! - Errors: [`Error`] with the AWS exception name ([`ErrorCode`]), the field and a position;
//!   compile [`Warning`]s for what AWS accepts but is likely a mistake.
//! - Bounded cost: every delivery is evaluated within a [`WorkBudget`] proportional to its body
//!   ([`work_budget`]); the limits on paths and documents are listed in the guide.
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `registry` | yes | [`registry`] (brings `getrandom` and `base64`) |
//! | `http` | no | [`Request::from_headers`], [`Request::from_parts`] |
//!
//! With `default-features = false` the engine alone builds. The `codepipeline-webhooks` binary
//! (`check`, `validate`, `sign`, `serve`) is the workspace member `cli/`, not a feature.
//!
//! # The guide
//!
//! [`guide`] is the README: every decision where AWS's documentation is silent, the JsonPath
//! dialect (Jayway against RFC 9535), bounded cost, running it in a service, the registry, the
//! command-line tool and `serve`, performance and hardening.
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
pub mod limits;
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

/// The guide: the README, with every decision where AWS is silent, the JsonPath dialect, bounded
/// cost, embedding, the registry, the CLI and the service. Its Rust examples are tested.
#[doc = include_str!("../README.md")]
pub mod guide {}

pub use action_configuration::ActionConfiguration;
pub use answer::HttpAnswer;
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
