//! The outcome of one evaluation: the pipeline starts, or a reason that names the failing step.
//!
//! Every part of a verdict is safe to log: no secret, no expected MAC, no header value.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

/// Whether the pipeline starts, and if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Authentication and every filter passed: the pipeline starts.
    Trigger(Trigger),
    /// The delivery was refused.
    Reject(Rejection),
}

impl Verdict {
    /// Whether the pipeline starts.
    pub fn is_trigger(&self) -> bool {
        matches!(self, Verdict::Trigger(_))
    }

    /// The reason for a reject.
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Verdict::Reject(r) => Some(r),
            Verdict::Trigger(_) => None,
        }
    }

    /// What starts, for a trigger.
    pub fn trigger(&self) -> Option<&Trigger> {
        match self {
            Verdict::Trigger(t) => Some(t),
            Verdict::Reject(_) => None,
        }
    }
}

/// The pipeline and action a delivery starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trigger {
    pub(crate) webhook: Arc<str>,
    pub(crate) pipeline: Arc<str>,
    pub(crate) action: Arc<str>,
}

impl Trigger {
    /// The webhook's name.
    pub fn webhook(&self) -> &str {
        &self.webhook
    }
    /// The pipeline that starts.
    pub fn pipeline(&self) -> &str {
        &self.pipeline
    }
    /// The source action the webhook targets.
    pub fn action(&self) -> &str {
        &self.action
    }
}

/// The step at which a delivery was refused, in evaluation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// No signature header (or, when SHA-256 is required, no `X-Hub-Signature-256`).
    SignatureMissing {
        /// Whether the webhook was compiled to require `X-Hub-Signature-256`.
        sha256_required: bool,
    },
    /// A signature header was sent more than once.
    SignatureRepeated {
        /// The header's name.
        header: &'static str,
    },
    /// A signature header is not `sha256=` + 64 hex digits (or `sha1=` + 40).
    SignatureMalformed {
        /// The header's name.
        header: &'static str,
    },
    /// The signature is well-formed but is not the HMAC of the body with the secret.
    SignatureMismatch {
        /// The header's name.
        header: &'static str,
    },
    /// The body is larger than the limit.
    PayloadTooLarge {
        /// The body's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not what a webhook delivery must be: UTF-8 JSON (or a form with a `payload`
    /// field holding it), nested no deeper than the limit.
    PayloadMalformed {
        /// What is wrong, with serde_json's line and column where it applies.
        problem: String,
    },
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
        /// The budget, in work units.
        budget: u64,
    },
}

impl Rejection {
    /// The step that refused the delivery.
    pub fn step(&self) -> Step {
        match self {
            Rejection::SourceIpMissing | Rejection::SourceIpNotAllowed { .. } => Step::SourceIp,
            Rejection::SignatureMissing { .. }
            | Rejection::SignatureRepeated { .. }
            | Rejection::SignatureMalformed { .. }
            | Rejection::SignatureMismatch { .. } => Step::Signature,
            Rejection::PayloadTooLarge { .. } | Rejection::PayloadMalformed { .. } => Step::Payload,
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
    /// `matchEquals` with its placeholders resolved; `None` for a rule that only needs a match.
    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }
    /// What the path selected.
    pub fn found(&self) -> &Found {
        &self.found
    }
}

/// What a failed filter's path selected. Values are shown as JSON, cut to
/// [`Found::MAX_SHOWN`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// The path selected nothing.
    Nothing,
    /// One scalar, as JSON (`"refs/heads/dev"`, `42`, `true`, `null`).
    Value(String),
    /// An object, which never equals a string.
    Object,
    /// An array, which never equals a string.
    Array,
    /// An indefinite path selected several nodes, none equal.
    Values {
        /// How many nodes were selected.
        count: usize,
        /// The first one, shown as [`Found::Value`] would show it.
        first: Box<Found>,
    },
}

impl Found {
    /// At most this many characters of a found value are kept.
    pub const MAX_SHOWN: usize = 100;

    pub(crate) fn value(json: String) -> Self {
        match json.char_indices().nth(Self::MAX_SHOWN) {
            Some((cut, _)) => Found::Value(format!("{}…", &json[..cut])),
            None => Found::Value(json),
        }
    }
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::Nothing => f.write_str("nothing"),
            Found::Value(v) => f.write_str(v),
            Found::Object => f.write_str("an object"),
            Found::Array => f.write_str("an array"),
            Found::Values { count, first } => write!(f, "{count} values (first: {first})"),
        }
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
            Rejection::SignatureMissing { sha256_required: true } => {
                f.write_str("no X-Hub-Signature-256 header, and this webhook requires SHA-256")
            }
            Rejection::SignatureMissing { sha256_required: false } => {
                f.write_str("no X-Hub-Signature-256 or X-Hub-Signature header")
            }
            Rejection::SignatureRepeated { header } => write!(f, "the {header} header is repeated"),
            Rejection::SignatureMalformed { header } => {
                let form = if *header == crate::X_HUB_SIGNATURE { "sha1= and 40" } else { "sha256= and 64" };
                write!(f, "the {header} header is malformed: expected {form} hex digits")
            }
            Rejection::SignatureMismatch { header } => write!(f, "the {header} signature does not match the payload"),
            Rejection::PayloadTooLarge { size, limit } => {
                write!(f, "the payload is {size} bytes, over the limit of {limit}")
            }
            Rejection::PayloadMalformed { problem } => write!(f, "the payload is malformed: {problem}"),
            Rejection::FilterFailed(failure) => failure.fmt(f),
            Rejection::WorkBudgetExhausted { filter, json_path, budget } => write!(
                f,
                "filter {filter} ({json_path}) needed more than this payload's work budget of {budget} units; nothing was decided"
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
        match self {
            Verdict::Trigger(t) => {
                write!(f, "trigger: webhook '{}' starts pipeline '{}' (action '{}')", t.webhook, t.pipeline, t.action)
            }
            Verdict::Reject(r) => write!(f, "reject at {}: {r}", r.step()),
        }
    }
}

/// The JSON form of a verdict, for logs and the CLI's `--json`.
#[derive(Serialize)]
struct VerdictJson<'a> {
    decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    found: Option<String>,
}

/// `{"decision":"trigger","webhook":..,"pipeline":..,"action":..}` or
/// `{"decision":"reject","step":..,"reason":..}`, plus `filter_index`, `json_path`, `expected`
/// and `found` for a filter reject.
impl Serialize for Verdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut out = VerdictJson {
            decision: if self.is_trigger() { "trigger" } else { "reject" },
            webhook: None,
            pipeline: None,
            action: None,
            step: None,
            reason: None,
            filter_index: None,
            json_path: None,
            expected: None,
            found: None,
        };
        match self {
            Verdict::Trigger(t) => {
                out.webhook = Some(&t.webhook);
                out.pipeline = Some(&t.pipeline);
                out.action = Some(&t.action);
            }
            Verdict::Reject(r) => {
                out.step = Some(r.step());
                out.reason = Some(r.to_string());
                if let Some(failure) = r.filter() {
                    out.filter_index = Some(failure.index);
                    out.json_path = Some(&failure.json_path);
                    out.expected = failure.expected.as_deref();
                    out.found = Some(failure.found.to_string());
                }
            }
        }
        out.serialize(s)
    }
}
