//! `Webhook`: a definition compiled once (placeholders resolved, paths parsed, secret keyed, range
//! parsed), then evaluated against any number of deliveries, from any number of threads.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::action_configuration::ActionConfiguration;
use crate::auth::Auth;
use crate::auth::github::PreviousSecret;
use crate::body;
use crate::definition::{WebhookAuthenticationType, WebhookDefinition};
use crate::error::{Error, ErrorCode, REDACTED, escape};
use crate::filter::plan::Lane;
use crate::filter::{EqualityRule, Filter, FilterPath, Filters};
use crate::limits::{DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT, MAX_PATTERNS};
use crate::request::Request;
use crate::template;
use crate::verdict::{Rejection, Secret, Target, Verdict};
use crate::warning::Warning;

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
///     r#"reject: webhook 'app-main' at filter: filter 0 ($.ref) expected "refs/heads/main", found "refs/heads/dev""#
/// );
/// ```
#[derive(Clone)]
pub struct Webhook {
    target: Arc<Target>,
    auth: Auth,
    filters: Filters,
    max_body_bytes: usize,
    max_depth: usize,
    warnings: Vec<Warning>,
}

/// Options for compiling a [`Webhook`], in the style of `jsonschema`'s options: from
/// [`Webhook::options`], then [`build`](Self::build). `Debug` never shows a secret.
///
/// ```
/// use codepipeline_webhooks::{ActionConfiguration, Webhook, WebhookDefinition};
/// # let definition: WebhookDefinition = serde_json::from_str(r#"{
/// #     "name": "app-main", "targetPipeline": "app", "targetAction": "Source", "filters": [],
/// #     "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "new-secret"}
/// # }"#).unwrap();
/// let webhook = Webhook::options()
///     .require_sha256(true)
///     .max_body_bytes(1 << 20)
///     .accept_previous_secret("old-secret")
///     .deny_warnings(true)
///     .build(&definition, &ActionConfiguration::new())?;
/// # Ok::<(), codepipeline_webhooks::Error>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct WebhookOptions {
    require_sha256: bool,
    max_body_bytes: usize,
    max_depth: usize,
    /// Each with the deadline it is accepted until, if any.
    previous_secrets: Vec<(String, Option<SystemTime>)>,
    deny_warnings: bool,
    secret_keys: Vec<String>,
    aws_exact: bool,
}

impl Default for WebhookOptions {
    fn default() -> Self {
        Self {
            require_sha256: false,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            previous_secrets: Vec::new(),
            deny_warnings: false,
            secret_keys: Vec::new(),
            aws_exact: false,
        }
    }
}

impl fmt::Debug for WebhookOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookOptions")
            .field("require_sha256", &self.require_sha256)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_depth", &self.max_depth)
            .field(
                "previous_secrets",
                &self.previous_secrets.iter().map(|(_, until)| (REDACTED, until)).collect::<Vec<_>>(),
            )
            .field("deny_warnings", &self.deny_warnings)
            .field("secret_keys", &self.secret_keys)
            .field("aws_exact", &self.aws_exact)
            .finish()
    }
}

/// Configuration keys whose values are secrets in every CodePipeline source action that has them.
const SECRET_KEYS: &[&str] = &["OAuthToken"];

impl WebhookOptions {
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

    /// Key rotation: also accept signatures made with `secret`, a webhook's previous
    /// `SecretToken` (call once per secret). Each is checked in constant time, after the current
    /// one, with the same header rules; [`Verdict::used_previous_secret`] tells when one verified,
    /// so the host can see when the sender has moved to the new secret. Only `GITHUB_HMAC`
    /// webhooks have secrets; for others this does nothing. Without a deadline it is accepted
    /// for as long as the webhook lives; see
    /// [`accept_previous_secret_until`](Self::accept_previous_secret_until).
    pub fn accept_previous_secret(mut self, secret: impl Into<String>) -> Self {
        self.previous_secrets.push((secret.into(), None));
        self
    }

    /// Key rotation with a deadline: as [`accept_previous_secret`](Self::accept_previous_secret),
    /// but the secret is tried only for a delivery whose clock reading
    /// ([`Request::now`](crate::Request::now)) is before `until`. At or past it, or without a
    /// reading, the secret is not tried at all: a delivery signed with it is a signature
    /// mismatch and its body is never parsed. The engine has no clock; the host hands in its
    /// reading with each delivery (the registry does, for its `rotation_grace`).
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
    /// # let definition: WebhookDefinition = serde_json::from_str(r#"{
    /// #     "name": "app-main", "targetPipeline": "app", "targetAction": "Source", "filters": [],
    /// #     "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "new-secret"}
    /// # }"#).unwrap();
    /// let rotated = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let webhook = Webhook::options()
    ///     .accept_previous_secret_until("old-secret", rotated + Duration::from_secs(3600))
    ///     .build(&definition, &ActionConfiguration::new())?;
    /// let signature = github::signature_256(b"old-secret", b"{}");
    /// let request = Request::new("{}").header("X-Hub-Signature-256", &signature);
    /// assert!(webhook.evaluate(&request.now(rotated)).used_previous_secret());
    /// assert!(!webhook.evaluate(&request.now(rotated + Duration::from_secs(3600))).is_trigger());
    /// # Ok::<(), codepipeline_webhooks::Error>(())
    /// ```
    pub fn accept_previous_secret_until(mut self, secret: impl Into<String>, until: SystemTime) -> Self {
        self.previous_secrets.push((secret.into(), Some(until)));
        self
    }

    /// Turn compile warnings ([`Webhook::warnings`]) into errors: the first one is returned as
    /// the exception it names (`InvalidWebhookFilterPatternException` for a filter,
    /// `InvalidWebhookAuthenticationParametersException` for a secret). Default: off, as AWS.
    pub fn deny_warnings(mut self, yes: bool) -> Self {
        self.deny_warnings = yes;
        self
    }

    /// Marks a key of the target action's configuration as a secret (`OAuthToken` always is): a
    /// `{Key}` placeholder of it is resolved, but verdicts and warnings show `{Key}`, never the
    /// value.
    pub fn secret_key(mut self, key: impl Into<String>) -> Self {
        self.secret_keys.push(key.into());
        self
    }

    /// Compare an indefinite path's selection with `matchEquals` as AWS does (Jayway JsonPath):
    /// the path selects one list, and a list never equals a plain string, so a filter with an
    /// indefinite path (a wildcard, slice, filter, descendant or union) and a `matchEquals`
    /// never passes. Default: off, this crate's extension, where such a filter passes when any
    /// selected scalar equals `matchEquals` ("any commit modified README.md"). Either way,
    /// compiling such a filter gives a [`Warning`] that on AWS it never passes. Filters without
    /// `matchEquals` (pass when something is selected) and singular paths are the same in both.
    ///
    /// ```
    /// use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition};
    /// let definition: WebhookDefinition = serde_json::from_str(r#"{
    ///     "name": "docs", "targetPipeline": "app", "targetAction": "Source",
    ///     "filters": [{"jsonPath": "$.commits[*].modified[*]", "matchEquals": "README.md"}],
    ///     "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
    /// }"#).unwrap();
    /// let push = Request::new(r#"{"commits":[{"modified":["README.md"]}]}"#);
    /// let config = ActionConfiguration::new();
    /// assert!(Webhook::new(&definition, &config)?.evaluate(&push).is_trigger());
    /// let aws = Webhook::options().aws_exact(true).build(&definition, &config)?;
    /// assert!(!aws.evaluate(&push).is_trigger());
    /// assert!(aws.warnings()[0].message().contains("on AWS this filter never passes"));
    /// # Ok::<(), codepipeline_webhooks::Error>(())
    /// ```
    pub fn aws_exact(mut self, yes: bool) -> Self {
        self.aws_exact = yes;
        self
    }

    pub(crate) fn is_secret(&self, key: &str) -> bool {
        SECRET_KEYS.contains(&key) || self.secret_keys.iter().any(|k| k == key)
    }

    /// Validates `definition` as `PutWebhook` does and compiles it, filling `{Key}` placeholders
    /// from `config` (the target action's configuration).
    ///
    /// Errors, in this order: `InvalidOptions` (these options, not the definition, are out of
    /// range), `ValidationException` (model constraints),
    /// `InvalidWebhookAuthenticationParametersException`, `InvalidWebhookFilterPatternException`
    /// (per filter, its `jsonPath`), then with `deny_warnings` the first warning.
    pub fn build(&self, definition: &WebhookDefinition, config: &ActionConfiguration) -> Result<Webhook, Error> {
        if !(1..=MAX_DEPTH_LIMIT).contains(&self.max_depth) {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                "max_depth".to_owned(),
                format!("max_depth is {}; it must be from 1 to {MAX_DEPTH_LIMIT}", self.max_depth),
            ));
        }
        let d = definition;
        d.validate()?;
        let previous: Vec<PreviousSecret<'_>> = self
            .previous_secrets
            .iter()
            .map(|(secret, until)| PreviousSecret { secret: secret.as_bytes(), until: *until })
            .collect();
        let auth = Auth::compile(d, self.require_sha256, &previous)?;
        let mut warnings = crate::auth::warnings(d);
        let mut filters = Vec::with_capacity(d.filters.len());
        let mut patterns_left = MAX_PATTERNS;
        for (i, rule) in d.filters.iter().enumerate() {
            let path = FilterPath::parse_with(&rule.json_path, patterns_left).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidWebhookFilterPatternException,
                    format!("webhook.filters[{i}].jsonPath"),
                    e.message,
                )
                .at(e.column)
            })?;
            patterns_left -= path.patterns;
            let (expected, shown) = match &rule.match_equals {
                None => (None, None),
                Some(template) => {
                    let resolved = template::resolve(template, config, &|key| self.is_secret(key));
                    for text in &resolved.literal {
                        warnings.push(literal_brace_warning(i, template, text, config));
                    }
                    (Some(resolved.value.into()), Some(resolved.shown.into()))
                }
            };
            let rule = if self.aws_exact { EqualityRule::WholeList } else { EqualityRule::AnyElement };
            let filter = Filter { path, expected, shown, rule };
            warnings.extend(filter.warnings(i));
            filters.push(filter);
        }
        if self.deny_warnings {
            if let Some(first) = warnings.into_iter().next() {
                return Err(first.into_error());
            }
            warnings = Vec::new();
        }
        Ok(Webhook {
            target: Arc::new(Target {
                webhook: d.name.as_str().into(),
                pipeline: d.target_pipeline.as_str().into(),
                action: d.target_action.as_str().into(),
                proves_secret: d.authentication == WebhookAuthenticationType::GithubHmac,
            }),
            auth,
            filters: Filters::new(filters),
            max_body_bytes: self.max_body_bytes,
            max_depth: self.max_depth,
            warnings,
        })
    }
}

/// The warning for brace text `text` that `matchEquals` keeps literally.
fn literal_brace_warning(i: usize, template: &str, text: &str, config: &ActionConfiguration) -> Warning {
    let keys: Vec<&str> = config.keys().collect();
    let known = if keys.is_empty() { "it has no keys".to_owned() } else { format!("keys: {}", keys.join(", ")) };
    let hint = match template::closest_key(text, config) {
        Some(key) => format!("; did you mean `{{{key}}}`?"),
        None => String::new(),
    };
    let what = if text.len() > 1 {
        format!("`{text}` is not a key of the target action's configuration ({known})")
    } else {
        format!("a lone `{text}` is not part of a placeholder")
    };
    Warning::new(
        ErrorCode::InvalidWebhookFilterPatternException,
        format!("webhook.filters[{i}].matchEquals"),
        format!("in '{}', {what}; it is matched literally{hint}", escape(template)),
    )
}

impl Webhook {
    /// Validates and compiles `definition`, filling `{Key}` placeholders from `config` (the target
    /// action's configuration), with the default options. See [`WebhookOptions::build`].
    pub fn new(definition: &WebhookDefinition, config: &ActionConfiguration) -> Result<Self, Error> {
        Self::options().build(definition, config)
    }

    /// The default options, to change and [`build`](WebhookOptions::build) with.
    pub fn options() -> WebhookOptions {
        WebhookOptions::default()
    }

    /// The webhook's name.
    pub fn name(&self) -> &str {
        &self.target.webhook
    }

    /// The pipeline it starts.
    pub fn target_pipeline(&self) -> &str {
        &self.target.pipeline
    }

    /// The source action it targets.
    pub fn target_action(&self) -> &str {
        &self.target.action
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
    /// `matchEquals`), in order. A secret key's placeholder is shown as `{Key}`.
    pub fn expected_values(&self) -> impl Iterator<Item = Option<&str>> {
        self.filters.list().iter().map(Filter::shown)
    }

    /// What compiled but is likely a mistake: placeholders that stay literal, a filter on `$`
    /// that reads members of each top-level value, wildcards in `matchEquals`, secrets that HMAC
    /// treats as shorter ones. Empty under [`WebhookOptions::deny_warnings`] (they are errors).
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The largest body this webhook accepts, in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Whether `evaluate` builds a compact document (the bounded lane, under the work budget):
    /// true when some filter's path is not singular in the common forms (`$.a`, `$['a']`,
    /// `$.a[0]`). A diagnostic, for tests and benchmarks.
    #[doc(hidden)]
    pub fn builds_dom(&self) -> bool {
        self.filters.lane() == Lane::Tape
    }

    /// Decides whether `request` starts the pipeline.
    ///
    /// Steps, cheapest first, the first failure deciding: the source address (IP webhooks), the
    /// body size, the signature (GITHUB_HMAC webhooks), the body's JSON, then every filter in
    /// order. Nothing that fails authentication reaches the JSON parser.
    pub fn evaluate(&self, request: &Request<'_>) -> Verdict {
        Verdict::new(self.target.clone(), self.check(request))
    }

    fn check(&self, request: &Request<'_>) -> Result<Secret, Rejection> {
        let secret = self.auth.admit(request, self.max_body_bytes)?;
        let text = body::json_text(request)?;
        self.filters.check(&text, self.max_depth)?;
        Ok(secret)
    }

    // What `WebhookSet` builds its plan and groups from.

    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    pub(crate) fn filter_list(&self) -> &[Filter] {
        self.filters.list()
    }

    pub(crate) fn lane(&self) -> Lane {
        self.filters.lane()
    }

    pub(crate) fn max_depth(&self) -> usize {
        self.max_depth
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.target.webhook)
            .field("target_pipeline", &self.target.pipeline)
            .field("target_action", &self.target.action)
            .field("auth", &self.auth)
            .field("filters", &self.filters.list().iter().map(|f| (f.json_path(), f.shown())).collect::<Vec<_>>())
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_depth", &self.max_depth)
            .field("warnings", &self.warnings)
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
}
