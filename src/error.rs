//! The one error type: an AWS exception name, the field at fault and a message a person can act on.

use std::borrow::Cow;
use std::fmt;

/// How AWS shows a secret token in responses, and how this crate shows it everywhere.
pub const REDACTED: &str = "****";

/// The AWS exception a failed operation maps to, as CodePipeline names it.
///
/// [`ErrorCode::as_str`] gives the exact name AWS puts in `__type` / the SDK error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A model constraint failed (length, pattern, enum, required field, unknown field).
    ValidationException,
    /// A filter rule cannot be compiled: the JsonPath does not parse, or a `{Key}` placeholder
    /// names a key that the target action's configuration does not have.
    InvalidWebhookFilterPatternException,
    /// The authentication type and its configuration do not fit together.
    InvalidWebhookAuthenticationParametersException,
    /// More tags than a resource may carry.
    TooManyTagsException,
    /// A tag key is reserved (`aws:`) or repeated.
    InvalidTagsException,
    /// The target pipeline does not exist.
    PipelineNotFoundException,
    /// A quota (for example the number of webhooks) would be exceeded.
    LimitExceededException,
    /// No webhook has that name or URL.
    WebhookNotFoundException,
    /// The `NextToken` of a list call was not issued by this registry.
    InvalidNextTokenException,
    /// The request body is not a JSON object, or a member has the wrong JSON type.
    SerializationException,
    /// The call names no operation of the service.
    UnknownOperationException,
    /// A pipeline declaration breaks a structure rule (stages, source actions, artifacts,
    /// artifact stores, V2-only fields).
    InvalidStructureException,
    /// A stage of a pipeline declaration is not valid (a name used twice, no action).
    InvalidStageDeclarationException,
    /// An action of a pipeline declaration is not valid (a name used twice in its stage).
    InvalidActionDeclarationException,
    /// No resource has that ARN.
    ResourceNotFoundException,
    /// The ARN is not a CodePipeline resource ARN.
    InvalidArnException,
    /// Not an AWS exception: the host's own options are out of range (for example a nesting
    /// limit of 0). Nothing the API's caller sent is at fault.
    InvalidOptions,
}

impl ErrorCode {
    /// The AWS exception name, for example `"InvalidWebhookFilterPatternException"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ValidationException => "ValidationException",
            Self::InvalidWebhookFilterPatternException => "InvalidWebhookFilterPatternException",
            Self::InvalidWebhookAuthenticationParametersException => "InvalidWebhookAuthenticationParametersException",
            Self::TooManyTagsException => "TooManyTagsException",
            Self::InvalidTagsException => "InvalidTagsException",
            Self::PipelineNotFoundException => "PipelineNotFoundException",
            Self::LimitExceededException => "LimitExceededException",
            Self::WebhookNotFoundException => "WebhookNotFoundException",
            Self::InvalidNextTokenException => "InvalidNextTokenException",
            Self::SerializationException => "SerializationException",
            Self::UnknownOperationException => "UnknownOperationException",
            Self::InvalidStructureException => "InvalidStructureException",
            Self::InvalidStageDeclarationException => "InvalidStageDeclarationException",
            Self::InvalidActionDeclarationException => "InvalidActionDeclarationException",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::InvalidArnException => "InvalidArnException",
            Self::InvalidOptions => "InvalidOptions",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a definition, an input document or an API call was refused.
///
/// `Display` is `Code: message`, the form the AWS CLI prints; `Debug` is the same text, so that
/// an `unwrap()` shows a JsonPath error's caret diagram as it is meant to be read. The message
/// never contains a secret token: where AWS would echo a value of a sensitive field, it shows
/// `****`.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Error {
    code: ErrorCode,
    field: Option<String>,
    message: String,
    position: Option<usize>,
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Error {
    /// Control characters in `message` other than the line feeds the crate lays out multi-line
    /// messages with (a JsonPath and its caret) are escaped here, whatever put them there; values
    /// quoted from a definition are escaped in full, line feeds included, where they are quoted
    /// ([`escape`]).
    pub(crate) fn new(code: ErrorCode, field: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        let message = message.into();
        let message = if message.contains(|c: char| c != '\n' && hidden(c)) {
            let mut out = String::with_capacity(message.len() + 8);
            for c in message.chars() {
                if c != '\n' && hidden(c) {
                    out.extend(c.escape_debug());
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            message
        };
        Self { code, field: field.into().map(|f| escape(&f).into_owned()), message, position: None }
    }

    pub(crate) fn at(mut self, position: usize) -> Self {
        self.position = Some(position);
        self
    }

    pub(crate) fn validation(field: impl Into<Option<String>>, message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ValidationException, field, message)
    }

    /// The AWS exception name, for example `"ValidationException"`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }

    /// The exception as an enum, for matching.
    pub fn kind(&self) -> ErrorCode {
        self.code
    }

    /// The field at fault in AWS's dotted form, for example `webhook.filters[2].jsonPath`,
    /// when the error is about one field.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message alone, without the code.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// For a JsonPath that does not compile: the character position (from 0) of the fault,
    /// where the message's caret points.
    pub fn position(&self) -> Option<usize> {
        self.position
    }
}

/// Characters that split or disguise a line of text: control characters, the Unicode line and
/// paragraph separators, and the bidirectional embeddings, overrides and isolates.
fn hidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with control characters (and the Unicode line separators and bidirectional overrides)
/// escaped as Rust writes them (`\n`, `\0`, `\u{202e}`): a value quoted in a message can then
/// neither split a log line nor disguise what follows it.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// serde_json's message for a document that does not deserialise, without the offending value:
/// `invalid type: integer `12345678`, expected a string` becomes `invalid type: integer, expected
/// a string`, so that a secret given with the wrong type (or a credential in a pipeline's
/// configuration) is never echoed. Field names, the expectation and the position are kept.
pub(crate) fn serde_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = ["invalid type: ", "invalid value: ", "invalid length "]
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
        .min()
    {
        let (i, len) = at;
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        // The value's description ends at ", expected"; keep its kind (`integer`, `string`, ...).
        let end = rest.find(", expected").unwrap_or(rest.len());
        let kind = rest[..end].split([' ', '`', '"']).next().unwrap_or_default();
        out.push_str(kind);
        rest = &rest[end..];
    }
    out.push_str(rest);
    escape(&out).into_owned()
}
