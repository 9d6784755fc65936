//! `Webhook`: a definition compiled once (placeholders resolved, paths parsed, secret keyed, range
//! parsed), then evaluated against any number of deliveries, from any number of threads.

use std::fmt;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Number, Value};

use crate::action_configuration::ActionConfiguration;
use crate::auth::github::GithubHmac;
use crate::auth::ip::{self, AllowedIpRange};
use crate::body;
use crate::definition::{MAX_FILTERS, WebhookAuthenticationType, WebhookDefinition};
use crate::error::{Error, ErrorCode};
use crate::json::{self, ValueSeed};
use crate::path::{Capture, FilterPath, Trie};
use crate::request::Request;
use crate::template::{self, UnknownKey};
use crate::verdict::{FilterFailure, Found, Rejection, Trigger, Verdict};

/// GitHub's cap on a delivery, the default body limit: 25 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// The default limit on nested arrays and objects in a body.
pub const DEFAULT_MAX_DEPTH: usize = 128;
/// The largest nesting limit a webhook accepts. Evaluation recurses once per level: measured, about
/// 0.5 KiB of stack per level in release builds and 2 KiB in debug builds, so 512 levels fit in
/// the 2 MiB of a default spawned (or tokio worker) thread even unoptimised; the default 128 needs
/// under 64 KiB optimised.
pub const MAX_DEPTH_LIMIT: usize = 512;

/// A compiled webhook: decides for each delivery whether the target pipeline starts.
///
/// ```
/// use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition};
/// let definition: WebhookDefinition = serde_json::from_str(r#"{
///     "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
///     "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
///     "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
/// }"#).unwrap();
/// let config: ActionConfiguration = [("Branch", "main")].into_iter().collect();
/// let webhook = Webhook::new(&definition, &config).unwrap();
/// assert!(webhook.evaluate(&Request::new(r#"{"ref":"refs/heads/main"}"#)).is_trigger());
/// let verdict = webhook.evaluate(&Request::new(r#"{"ref":"refs/heads/dev"}"#));
/// assert_eq!(
///     verdict.to_string(),
///     r#"reject at filter: filter 0 ($.ref) expected "refs/heads/main", found "refs/heads/dev""#
/// );
/// ```
#[derive(Clone)]
pub struct Webhook {
    name: Arc<str>,
    pipeline: Arc<str>,
    action: Arc<str>,
    pub(crate) auth: Auth,
    pub(crate) filters: Vec<Filter>,
    /// The singular filters, slot = filter index.
    trie: Trie,
    /// Whether some filter needs the `Value` lane; then every filter is answered there, from one
    /// parse.
    needs_value: bool,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_depth: usize,
}

// One per webhook: the keyed HMAC states stay inline, next to the rest of the webhook.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    GithubHmac(GithubHmac),
    Ip { range: AllowedIpRange, shown: Arc<str> },
    Unauthenticated,
}

#[derive(Clone, Debug)]
pub(crate) struct Filter {
    pub(crate) path: FilterPath,
    /// `matchEquals` with placeholders resolved.
    pub(crate) expected: Option<Arc<str>>,
}

/// Options for compiling a [`Webhook`]; from [`Webhook::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct WebhookBuilder<'d> {
    definition: &'d WebhookDefinition,
    config: &'d ActionConfiguration,
    require_sha256: bool,
    max_body_bytes: usize,
    max_depth: usize,
}

impl WebhookBuilder<'_> {
    /// Refuse deliveries without `X-Hub-Signature-256` instead of accepting the legacy SHA-1
    /// `X-Hub-Signature` (default: SHA-1 is accepted when no SHA-256 header is sent).
    pub fn require_sha256(mut self, yes: bool) -> Self {
        self.require_sha256 = yes;
        self
    }

    /// The largest body accepted, in bytes (default [`DEFAULT_MAX_BODY_BYTES`], GitHub's 25 MiB).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The deepest nesting of arrays and objects accepted in a body (default
    /// [`DEFAULT_MAX_DEPTH`]; 1 to [`MAX_DEPTH_LIMIT`]).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.max_depth = depth;
        self
    }

    /// Validates the definition as `PutWebhook` does and compiles it.
    ///
    /// Errors, in this order: `ValidationException` (model constraints),
    /// `InvalidWebhookAuthenticationParametersException`, `InvalidWebhookFilterPatternException`
    /// (per filter, its `jsonPath` then its `matchEquals`).
    pub fn build(self) -> Result<Webhook, Error> {
        let d = self.definition;
        d.validate()?;
        if !(1..=MAX_DEPTH_LIMIT).contains(&self.max_depth) {
            return Err(Error::validation(
                None,
                format!("max_depth is {}; it must be from 1 to {MAX_DEPTH_LIMIT}", self.max_depth),
            ));
        }
        let auth = compile_auth(d, self.require_sha256)?;
        let mut filters = Vec::with_capacity(d.filters.len());
        let mut trie = Trie::new();
        for (i, rule) in d.filters.iter().enumerate() {
            let path = FilterPath::parse(&rule.json_path).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidWebhookFilterPatternException,
                    format!("webhook.filters[{i}].jsonPath"),
                    e.message,
                )
            })?;
            let expected = match &rule.match_equals {
                None => None,
                Some(m) => Some(resolve(m, self.config, i, &d.target_action)?.into()),
            };
            if let Some(steps) = &path.singular {
                trie.insert(steps, i);
            }
            filters.push(Filter { path, expected });
        }
        let needs_value = filters.iter().any(|f| f.path.singular.is_none());
        Ok(Webhook {
            name: d.name.as_str().into(),
            pipeline: d.target_pipeline.as_str().into(),
            action: d.target_action.as_str().into(),
            auth,
            filters,
            trie,
            needs_value,
            max_body_bytes: self.max_body_bytes,
            max_depth: self.max_depth,
        })
    }
}

fn compile_auth(d: &WebhookDefinition, require_sha256: bool) -> Result<Auth, Error> {
    let config = &d.authentication_configuration;
    let err = |field: &str, message: String| {
        Error::new(
            ErrorCode::InvalidWebhookAuthenticationParametersException,
            format!("webhook.authenticationConfiguration.{field}"),
            message,
        )
    };
    let kind = d.authentication;
    let refuse = |field: &str| err(field, format!("{kind} authentication takes no {field}"));
    match kind {
        WebhookAuthenticationType::GithubHmac => {
            if config.allowed_ip_range.is_some() {
                return Err(refuse("AllowedIPRange"));
            }
            let secret = config
                .secret_token
                .as_deref()
                .ok_or_else(|| err("SecretToken", "GITHUB_HMAC authentication needs a SecretToken".into()))?;
            Ok(Auth::GithubHmac(GithubHmac::new(secret, require_sha256)))
        }
        WebhookAuthenticationType::Ip => {
            if config.secret_token.is_some() {
                return Err(refuse("SecretToken"));
            }
            let text = config.allowed_ip_range.as_deref().ok_or_else(|| {
                err("AllowedIPRange", "IP authentication needs an AllowedIPRange, such as 192.0.2.0/24".into())
            })?;
            let range = AllowedIpRange::parse(text).map_err(|m| err("AllowedIPRange", m))?;
            Ok(Auth::Ip { range, shown: range.to_string().into() })
        }
        WebhookAuthenticationType::Unauthenticated => {
            if config.secret_token.is_some() {
                return Err(refuse("SecretToken"));
            }
            if config.allowed_ip_range.is_some() {
                return Err(refuse("AllowedIPRange"));
            }
            Ok(Auth::Unauthenticated)
        }
    }
}

fn resolve(template: &str, config: &ActionConfiguration, i: usize, action: &str) -> Result<String, Error> {
    template::resolve(template, config).map_err(|UnknownKey(key)| {
        let keys: Vec<&str> = config.keys().collect();
        let known = if keys.is_empty() { "it has no keys".to_owned() } else { format!("its keys are: {}", keys.join(", ")) };
        Error::new(
            ErrorCode::InvalidWebhookFilterPatternException,
            format!("webhook.filters[{i}].matchEquals"),
            format!(
                "matchEquals '{template}' refers to {{{key}}}, but the configuration of action '{action}' has no key '{key}' (keys are case-sensitive); {known}"
            ),
        )
    })
}

impl Webhook {
    /// Validates and compiles `definition`, filling `{Key}` placeholders from `config` (the target
    /// action's configuration), with the default options. See [`WebhookBuilder::build`].
    pub fn new(definition: &WebhookDefinition, config: &ActionConfiguration) -> Result<Self, Error> {
        Self::builder(definition, config).build()
    }

    /// Compiles with options: see [`WebhookBuilder`].
    pub fn builder<'d>(definition: &'d WebhookDefinition, config: &'d ActionConfiguration) -> WebhookBuilder<'d> {
        WebhookBuilder {
            definition,
            config,
            require_sha256: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// The webhook's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pipeline it starts.
    pub fn target_pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The source action it targets.
    pub fn target_action(&self) -> &str {
        &self.action
    }

    /// How deliveries authenticate.
    pub fn authentication(&self) -> WebhookAuthenticationType {
        match self.auth {
            Auth::GithubHmac(_) => WebhookAuthenticationType::GithubHmac,
            Auth::Ip { .. } => WebhookAuthenticationType::Ip,
            Auth::Unauthenticated => WebhookAuthenticationType::Unauthenticated,
        }
    }

    /// The value each filter must equal, placeholders resolved (`None` for a rule without
    /// `matchEquals`), in order.
    pub fn expected_values(&self) -> impl Iterator<Item = Option<&str>> {
        self.filters.iter().map(|f| f.expected.as_deref())
    }

    /// Whether `evaluate` builds a `serde_json::Value`: true when some filter's path is not
    /// singular in the common forms (`$.a`, `$['a']`, `$.a[0]`). When false, a delivery is answered
    /// in one DOM-free pass over the body, with no allocation for strings without escapes.
    pub fn builds_dom(&self) -> bool {
        self.needs_value
    }

    /// Decides whether `request` starts the pipeline.
    ///
    /// Steps, cheapest first, the first failure deciding: the source address (IP webhooks), the
    /// body size, the signature (GITHUB_HMAC webhooks), the body's JSON, then every filter in
    /// order. Nothing that fails authentication reaches the JSON parser.
    pub fn evaluate(&self, request: &Request<'_>) -> Verdict {
        match self.check(request) {
            Ok(()) => Verdict::Trigger(Trigger {
                webhook: self.name.clone(),
                pipeline: self.pipeline.clone(),
                action: self.action.clone(),
            }),
            Err(rejection) => Verdict::Reject(rejection),
        }
    }

    fn check(&self, request: &Request<'_>) -> Result<(), Rejection> {
        if let Auth::Ip { range, shown } = &self.auth {
            let source = request.source_addr().ok_or(Rejection::SourceIpMissing)?;
            if !range.contains(source) {
                return Err(Rejection::SourceIpNotAllowed {
                    source_ip: ip::canonical(source),
                    allowed_range: shown.clone(),
                });
            }
        }
        let size = request.body().len();
        if size > self.max_body_bytes {
            return Err(Rejection::PayloadTooLarge { size, limit: self.max_body_bytes });
        }
        if let Auth::GithubHmac(hmac) = &self.auth {
            hmac.verify(request)?;
        }
        let text = body::json_text(request)?;
        self.check_filters(&text)
    }

    fn check_filters(&self, text: &str) -> Result<(), Rejection> {
        let invalid = |e: serde_json::Error| body::malformed(format!("it is not valid JSON: {e}"));
        if self.needs_value {
            let value = json::walk(text, ValueSeed { level: 0, max_depth: self.max_depth }).map_err(invalid)?;
            for (index, filter) in self.filters.iter().enumerate() {
                let nodes = filter.path.query.query(&value);
                let pass = match &filter.expected {
                    None => !nodes.is_empty(),
                    Some(expected) => nodes.iter().any(|v| value_equals(v, expected)),
                };
                if !pass {
                    let found = match (nodes.iter().next(), nodes.len()) {
                        (None, _) => Found::Nothing,
                        (Some(only), 1) => found_value(only),
                        (Some(first), count) => Found::Values { count, first: Box::new(found_value(first)) },
                    };
                    return Err(self.failure(index, filter, found));
                }
            }
            return Ok(());
        }
        let mut captures: [Capture<'_>; MAX_FILTERS] = Default::default();
        self.trie.extract(text, &mut captures[..self.filters.len()], self.max_depth).map_err(invalid)?;
        for (index, (filter, capture)) in self.filters.iter().zip(&captures).enumerate() {
            let pass = match &filter.expected {
                None => *capture != Capture::Missing,
                Some(expected) => capture_equals(capture, expected),
            };
            if !pass {
                return Err(self.failure(index, filter, found_capture(capture)));
            }
        }
        Ok(())
    }

    fn failure(&self, index: usize, filter: &Filter, found: Found) -> Rejection {
        Rejection::FilterFailed(FilterFailure {
            index,
            json_path: filter.path.text.clone(),
            expected: filter.expected.clone(),
            found,
        })
    }
}

/// Whether a scalar's text is `expected`: strings by their unescaped value, numbers as serde_json
/// displays them, `true`, `false` and `null` by their literals. Containers never equal.
pub(crate) fn capture_equals(capture: &Capture<'_>, expected: &str) -> bool {
    match capture {
        Capture::Str(s) => s == expected,
        Capture::Number(n) => number_equals(n, expected),
        Capture::Bool(b) => expected == if *b { "true" } else { "false" },
        Capture::Null => expected == "null",
        Capture::Missing | Capture::Object | Capture::Array => false,
    }
}

fn value_equals(value: &Value, expected: &str) -> bool {
    match value {
        Value::String(s) => s == expected,
        Value::Number(n) => number_equals(n, expected),
        Value::Bool(b) => expected == if *b { "true" } else { "false" },
        Value::Null => expected == "null",
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Compares `Number`'s `Display` with `expected` as it is written, without allocating.
fn number_equals(n: &Number, expected: &str) -> bool {
    struct Prefix<'e>(&'e str);
    impl fmt::Write for Prefix<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 = self.0.strip_prefix(s).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let mut rest = Prefix(expected);
    write!(rest, "{n}").is_ok() && rest.0.is_empty()
}

fn found_capture(capture: &Capture<'_>) -> Found {
    match capture {
        Capture::Missing => Found::Nothing,
        Capture::Str(s) => Found::value(Value::String(s.to_string()).to_string()),
        Capture::Number(n) => Found::value(n.to_string()),
        Capture::Bool(b) => Found::value(b.to_string()),
        Capture::Null => Found::value("null".to_owned()),
        Capture::Object => Found::Object,
        Capture::Array => Found::Array,
    }
}

fn found_value(value: &Value) -> Found {
    match value {
        Value::Object(_) => Found::Object,
        Value::Array(_) => Found::Array,
        scalar => Found::value(scalar.to_string()),
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("target_pipeline", &self.pipeline)
            .field("target_action", &self.action)
            .field("auth", &self.auth)
            .field("filters", &self.filters.iter().map(|f| (&*f.path.text, f.expected.as_deref())).collect::<Vec<_>>())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_depth", &self.max_depth)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_is_send_and_sync() {
        fn assert<T: Send + Sync + 'static>() {}
        assert::<Webhook>();
        assert::<Verdict>();
        assert::<Error>();
    }

    #[test]
    fn numbers_compare_as_serde_json_displays_them() {
        let n = |s: &str| serde_json::from_str::<Number>(s).unwrap();
        assert!(number_equals(&n("42"), "42"));
        assert!(number_equals(&n("1.50"), "1.5"));
        assert!(number_equals(&n("1e2"), "100.0"));
        assert!(number_equals(&n("-7"), "-7"));
        assert!(!number_equals(&n("1.5"), "1.50"));
        assert!(!number_equals(&n("42"), "4"));
        assert!(!number_equals(&n("42"), "420"));
        assert!(!number_equals(&n("42"), ""));
    }
}
