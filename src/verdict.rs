//! The outcome of one evaluation: the pipeline starts, or a typed reason that names the failing
//! step. Every verdict names its webhook, pipeline and action.
//!
//! Every part of a verdict is safe to log: no secret, no expected MAC, no header value, and a
//! `matchEquals` that used a secret of the action shows its placeholder, not the value.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeMap;

/// The webhook a verdict is about: its name, the pipeline it starts and its source action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) webhook: Box<str>,
    pub(crate) pipeline: Box<str>,
    pub(crate) action: Box<str>,
    /// Whether a delivery that gets past the signature step has proved the secret
    /// (`GITHUB_HMAC`): only such a sender may be told why it was ignored.
    pub(crate) proves_secret: bool,
}

/// Whether the pipeline starts, and if not, why; always naming the webhook.
///
/// ```
/// use codepipeline_webhooks::{ActionConfiguration, Request, Step, Webhook, WebhookDefinition};
/// let definition: WebhookDefinition = serde_json::from_str(r#"{
///     "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
///     "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
///     "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
/// }"#).unwrap();
/// let webhook = Webhook::new(&definition, &ActionConfiguration::new()).unwrap();
/// let verdict = webhook.evaluate(&Request::new(r#"{"ref":"refs/heads/dev"}"#));
/// assert!(!verdict.is_trigger());
/// assert_eq!(verdict.webhook_name(), "app-main");
/// assert_eq!(verdict.target_pipeline(), "app");
/// assert_eq!(verdict.step(), Some(Step::Filter));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub struct Verdict {
    target: Arc<Target>,
    outcome: Result<Secret, Rejection>,
}

/// Which secret verified a trigger's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Secret {
    /// The current one, or none (IP and UNAUTHENTICATED webhooks).
    Current,
    /// One accepted for key rotation.
    Previous,
}

impl Verdict {
    pub(crate) fn new(target: Arc<Target>, outcome: Result<Secret, Rejection>) -> Self {
        Self { target, outcome }
    }

    /// Whether the pipeline starts.
    pub fn is_trigger(&self) -> bool {
        self.outcome.is_ok()
    }

    /// The reason for a reject.
    pub fn rejection(&self) -> Option<&Rejection> {
        self.outcome.as_ref().err()
    }

    /// The step that refused the delivery, for a reject.
    pub fn step(&self) -> Option<Step> {
        self.rejection().map(Rejection::step)
    }

    /// The webhook's name.
    pub fn webhook_name(&self) -> &str {
        &self.target.webhook
    }

    /// The pipeline the webhook starts.
    pub fn target_pipeline(&self) -> &str {
        &self.target.pipeline
    }

    /// The source action the webhook targets.
    pub fn target_action(&self) -> &str {
        &self.target.action
    }

    /// Whether the sender proved the secret: a `GITHUB_HMAC` webhook's delivery that got past the
    /// signature step. Only such a sender may be told why its delivery was ignored
    /// ([`Verdict::http_answer`]).
    pub fn proves_secret(&self) -> bool {
        self.target.proves_secret && self.step().is_none_or(|step| step > Step::Signature) && !self.is_too_large()
    }

    /// A body over the limit is refused before the signature is checked: it proves nothing.
    fn is_too_large(&self) -> bool {
        matches!(self.rejection(), Some(Rejection::PayloadTooLarge { .. }))
    }

    /// Whether the signature verified with a previous secret (key rotation), not the current
    /// one: the sender still signs with the old secret. Once no verdict says so, the host may
    /// drop it.
    pub fn used_previous_secret(&self) -> bool {
        self.outcome == Ok(Secret::Previous)
    }
}

/// The step at which a delivery was refused, in evaluation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Step {
    /// The source address (`IP` webhooks).
    SourceIp,
    /// The GitHub HMAC signature (`GITHUB_HMAC` webhooks).
    Signature,
    /// The body: its size, encoding or JSON.
    Payload,
    /// A filter rule.
    Filter,
}

impl Step {
    /// `source_ip`, `signature`, `payload` or `filter`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Step::SourceIp => "source_ip",
            Step::Signature => "signature",
            Step::Payload => "payload",
            Step::Filter => "filter",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a delivery did not start the pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// An `IP` webhook was given no source address.
    SourceIpMissing,
    /// The source address is outside `AllowedIPRange`.
    SourceIpNotAllowed {
        /// The address the host handed in.
        source_ip: IpAddr,
        /// The allowed range, normalised (host bits masked).
        allowed_range: Arc<str>,
    },
    /// The GitHub signature did not verify.
    Signature(SignatureError),
    /// The body is larger than the limit.
    PayloadTooLarge {
        /// The body's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not what a webhook delivery must be: UTF-8 JSON (or a form with a `payload`
    /// field holding it), nested no deeper than the limit.
    PayloadMalformed(PayloadProblem),
    /// A filter rule did not pass.
    FilterFailed(FilterFailure),
    /// Evaluating the filters needed more work than the budget of this body allows (see
    /// [`work_budget`](crate::work_budget)): a path with nested descendants or filters over a
    /// payload shaped to make it expensive. The delivery is refused; nothing was decided about
    /// the filters after this one.
    WorkBudgetExhausted {
        /// The filter being evaluated when the budget ran out, from 0.
        filter: usize,
        /// Its JsonPath.
        json_path: Arc<str>,
        /// The budget.
        budget: crate::WorkBudget,
    },
}

impl Rejection {
    /// The step that refused the delivery.
    pub fn step(&self) -> Step {
        match self {
            Rejection::SourceIpMissing | Rejection::SourceIpNotAllowed { .. } => Step::SourceIp,
            Rejection::Signature(_) => Step::Signature,
            Rejection::PayloadTooLarge { .. } | Rejection::PayloadMalformed(_) => Step::Payload,
            Rejection::FilterFailed(_) | Rejection::WorkBudgetExhausted { .. } => Step::Filter,
        }
    }

    /// The failed filter, for a filter reject.
    pub fn filter(&self) -> Option<&FilterFailure> {
        match self {
            Rejection::FilterFailed(f) => Some(f),
            _ => None,
        }
    }
}

/// A GitHub signature header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureHeader {
    /// `X-Hub-Signature-256`: `sha256=` and 64 hex digits.
    Sha256,
    /// `X-Hub-Signature`, the legacy one: `sha1=` and 40 hex digits.
    Sha1,
}

impl SignatureHeader {
    /// The header's name as GitHub writes it.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureHeader::Sha256 => crate::X_HUB_SIGNATURE_256,
            SignatureHeader::Sha1 => crate::X_HUB_SIGNATURE,
        }
    }
}

impl fmt::Display for SignatureHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a GitHub signature did not verify: from [`github::verify`](crate::github::verify) and in
/// [`Rejection::Signature`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature header (or, when SHA-256 is required, no `X-Hub-Signature-256`).
    Missing {
        /// Whether SHA-256 was required.
        sha256_required: bool,
    },
    /// A signature header was sent more than once.
    Repeated(SignatureHeader),
    /// A signature header is not `sha256=` + 64 hex digits (or `sha1=` + 40).
    Malformed(SignatureHeader),
    /// The signature is well-formed but is not the HMAC of the body with the secret (nor with
    /// any previous secret the webhook accepts).
    Mismatch(SignatureHeader),
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureError::Missing { sha256_required: true } => {
                f.write_str("no X-Hub-Signature-256 header, and this webhook requires SHA-256")
            }
            SignatureError::Missing { sha256_required: false } => {
                f.write_str("no X-Hub-Signature-256 or X-Hub-Signature header")
            }
            SignatureError::Repeated(header) => write!(f, "the {header} header is repeated"),
            SignatureError::Malformed(header) => {
                let form = if *header == SignatureHeader::Sha1 { "sha1= and 40" } else { "sha256= and 64" };
                write!(f, "the {header} header is malformed: expected {form} hex digits")
            }
            SignatureError::Mismatch(header) => write!(f, "the {header} signature does not match the payload"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// What is wrong with a body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PayloadProblem {
    /// The body (a JSON delivery) is not UTF-8.
    NotUtf8 {
        /// The offset of the first invalid byte.
        offset: usize,
    },
    /// `Content-Type` was sent more than once.
    ContentTypeRepeated,
    /// A form delivery without a `payload` field.
    FormWithoutPayload,
    /// A form delivery with more than one `payload` field.
    FormPayloadRepeated,
    /// A form delivery whose decoded `payload` is not UTF-8.
    FormPayloadNotUtf8 {
        /// The offset of the first invalid byte in the decoded payload.
        offset: usize,
    },
    /// The JSON does not parse.
    InvalidJson {
        /// serde_json's description, without the position.
        reason: String,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
    },
    /// Arrays and objects nest deeper than the webhook's limit.
    TooDeep {
        /// The limit.
        limit: usize,
        /// 1-based line where the limit was passed.
        line: usize,
        /// 1-based column where the limit was passed.
        column: usize,
    },
}

impl fmt::Display for PayloadProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadProblem::NotUtf8 { offset } => write!(f, "it is not UTF-8 (invalid byte at offset {offset})"),
            PayloadProblem::ContentTypeRepeated => f.write_str("the Content-Type header is repeated"),
            PayloadProblem::FormWithoutPayload => f.write_str(
                "the body is declared a form (Content-Type: application/x-www-form-urlencoded, which `curl -d` \
                 sends) but has no payload field: GitHub's form deliveries carry the JSON as payload=...; send \
                 JSON with Content-Type: application/json (curl -H 'Content-Type: application/json' \
                 --data-binary @FILE)",
            ),
            PayloadProblem::FormPayloadRepeated => f.write_str("the form has more than one payload field"),
            PayloadProblem::FormPayloadNotUtf8 { offset } => {
                write!(f, "the form's payload is not UTF-8 (invalid byte at offset {offset})")
            }
            PayloadProblem::InvalidJson { reason, line, column } => {
                write!(f, "it is not valid JSON: {reason} at line {line} column {column}")
            }
            PayloadProblem::TooDeep { limit, line, column } => {
                write!(
                    f,
                    "it is not valid JSON: nesting depth exceeds the limit of {limit} at line {line} column {column}"
                )
            }
        }
    }
}

/// A filter that did not pass: which one, what it wanted and what it found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterFailure {
    pub(crate) index: usize,
    pub(crate) json_path: Arc<str>,
    pub(crate) expected: Option<Arc<str>>,
    pub(crate) found: Found,
}

impl FilterFailure {
    /// The rule's position in `filters`, from 0.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The rule's JsonPath.
    pub fn json_path(&self) -> &str {
        &self.json_path
    }
    /// `matchEquals` with its placeholders resolved (a placeholder whose key is a secret of the
    /// action is shown as `{Key}`); `None` for a rule that only needs a match.
    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }
    /// What the path selected.
    pub fn found(&self) -> &Found {
        &self.found
    }
}

/// What a failed filter's path selected. Strings are cut to [`Found::MAX_SHOWN`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// The path selected nothing.
    Nothing,
    /// One scalar (a string, a number, `true`, `false` or `null`).
    Value(serde_json::Value),
    /// An object, which never equals a string.
    Object,
    /// An array, which never equals a string.
    Array,
    /// A path that is not singular selected several nodes, none equal.
    Values {
        /// How many nodes were selected.
        count: usize,
        /// The first ones (at most [`Found::FIRST_SHOWN`]), in the order selected.
        first: Vec<Found>,
    },
}

impl Found {
    /// At most this many characters of a found string are kept.
    pub const MAX_SHOWN: usize = 100;
    /// At most this many of several selected values are kept.
    pub const FIRST_SHOWN: usize = 3;

    /// A scalar, strings cut to `MAX_SHOWN` characters (with `…` after the cut).
    pub(crate) fn scalar(value: serde_json::Value) -> Self {
        match value {
            serde_json::Value::String(s) => match s.char_indices().nth(Self::MAX_SHOWN) {
                Some((cut, _)) => Found::Value(format!("{}…", &s[..cut]).into()),
                None => Found::Value(s.into()),
            },
            other => Found::Value(other),
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Nothing => f.write_str("nothing"),
            Found::Value(v) => write!(f, "{v}"),
            Found::Object => f.write_str("an object"),
            Found::Array => f.write_str("an array"),
            Found::Values { count, first } => {
                write!(f, "{count} values (first: ")?;
                for (i, value) in first.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    value.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// The value itself for a scalar (`null` is a JSON null that was selected),
/// `{"type": "nothing"}` when the path selected nothing, `{"type": "object"}` /
/// `{"type": "array"}`, or `{"count": n, "first": [...]}`.
impl Serialize for Found {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let kind = match self {
            Found::Value(v) => return v.serialize(s),
            Found::Values { count, first } => {
                let mut map = s.serialize_map(Some(2))?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("first", first)?;
                return map.end();
            }
            Found::Nothing => "nothing",
            Found::Object => "object",
            Found::Array => "array",
        };
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("type", kind)?;
        map.end()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::SourceIpMissing => {
                f.write_str("no source address was given; an IP webhook needs the TCP peer address")
            }
            Rejection::SourceIpNotAllowed { source_ip, allowed_range } => {
                write!(f, "source address {source_ip} is not in the allowed range {allowed_range}")
            }
            Rejection::Signature(e) => e.fmt(f),
            Rejection::PayloadTooLarge { size, limit } => {
                write!(f, "the payload is {size} bytes, over the limit of {limit}")
            }
            Rejection::PayloadMalformed(problem) => write!(f, "the payload is malformed: {problem}"),
            Rejection::FilterFailed(failure) => failure.fmt(f),
            Rejection::WorkBudgetExhausted { filter, json_path, budget } => write!(
                f,
                "filter {filter} ({json_path}) needed more than this payload's work budget ({budget}); nothing was decided"
            ),
        }
    }
}

impl fmt::Display for FilterFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "filter {} ({}) ", self.index, self.json_path)?;
        match &self.expected {
            Some(expected) => write!(f, "expected {:?}, found {}", expected, self.found),
            None => f.write_str("selected nothing"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.target;
        match &self.outcome {
            Ok(secret) => {
                write!(f, "trigger: webhook '{}' starts pipeline '{}' (action '{}')", t.webhook, t.pipeline, t.action)?;
                if *secret == Secret::Previous {
                    f.write_str(", signed with a previous secret")?;
                }
                Ok(())
            }
            Err(r) => write!(f, "reject: webhook '{}' at {}: {r}", t.webhook, r.step()),
        }
    }
}

/// The JSON form of a verdict, for logs and the CLI's `--json`.
#[derive(Serialize)]
struct VerdictJson<'a> {
    decision: &'static str,
    webhook: &'a str,
    pipeline: &'a str,
    action: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    used_previous_secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    step: Option<Step>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_index: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    json_path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expected: Option<&'a str>,
    /// Present (possibly `null`) for a filter reject.
    #[serde(skip_serializing_if = "Option::is_none")]
    found: Option<&'a Found>,
}

/// `{"decision":"trigger"|"reject","webhook":..,"pipeline":..,"action":..}`, plus for a reject
/// `step` and `reason`, and for a filter reject `filter_index`, `json_path`, `expected` and
/// `found` (typed: see [`Found`]'s serialisation).
impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rejection = self.rejection();
        let failure = rejection.and_then(Rejection::filter);
        VerdictJson {
            decision: if self.is_trigger() { "trigger" } else { "reject" },
            webhook: &self.target.webhook,
            pipeline: &self.target.pipeline,
            action: &self.target.action,
            used_previous_secret: self.used_previous_secret(),
            step: rejection.map(Rejection::step),
            reason: rejection.map(ToString::to_string),
            filter_index: failure.map(|f| f.index),
            json_path: failure.map(|f| &*f.json_path),
            expected: failure.and_then(|f| f.expected.as_deref()),
            found: failure.map(|f| &f.found),
        }
        .serialize(s)
    }
}
