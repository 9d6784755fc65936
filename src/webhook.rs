//! `Webhook`: a definition compiled once (placeholders resolved, paths parsed, secret keyed, range
//! parsed), then evaluated against any number of deliveries, from any number of threads.

use std::fmt;
use std::sync::Arc;

use crate::action_configuration::ActionConfiguration;
use crate::auth::Auth;
use crate::body;
use crate::definition::{WebhookAuthenticationType, WebhookDefinition};
use crate::error::{Error, ErrorCode};
use crate::filter::{Filter, FilterPath, Filters};
use crate::request::Request;
use crate::template::{self, UnknownKey};
use crate::verdict::{Rejection, Trigger, Verdict};

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
    auth: Auth,
    filters: Filters,
    max_body_bytes: usize,
    max_depth: usize,
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
        let auth = Auth::compile(d, self.require_sha256)?;
        let mut filters = Vec::with_capacity(d.filters.len());
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
            filters.push(Filter { path, expected });
        }
        Ok(Webhook {
            name: d.name.as_str().into(),
            pipeline: d.target_pipeline.as_str().into(),
            action: d.target_action.as_str().into(),
            auth,
            filters: Filters::new(filters),
            max_body_bytes: self.max_body_bytes,
            max_depth: self.max_depth,
        })
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
        self.filters.list().iter().map(|f| f.expected.as_deref())
    }

    /// Whether `evaluate` builds a compact document (the bounded lane, under the work budget):
    /// true when some filter's path is not singular in the common forms (`$.a`, `$['a']`,
    /// `$.a[0]`). When false, a delivery is answered in one DOM-free pass over the body.
    pub fn builds_dom(&self) -> bool {
        self.filters.bounded_lane()
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
        self.auth.check_source(request)?;
        let size = request.body().len();
        if size > self.max_body_bytes {
            return Err(Rejection::PayloadTooLarge { size, limit: self.max_body_bytes });
        }
        self.auth.check_signature(request)?;
        let text = body::json_text(request)?;
        self.filters.check(&text, self.max_depth)
    }

    // The narrow view `WebhookSet` shares the core through.

    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    pub(crate) fn filter_list(&self) -> &[Filter] {
        self.filters.list()
    }

    pub(crate) fn bounded_lane(&self) -> bool {
        self.filters.bounded_lane()
    }

    pub(crate) fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    pub(crate) fn max_depth(&self) -> usize {
        self.max_depth
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("target_pipeline", &self.pipeline)
            .field("target_action", &self.action)
            .field("auth", &self.auth)
            .field(
                "filters",
                &self.filters.list().iter().map(|f| (&*f.path.text, f.expected.as_deref())).collect::<Vec<_>>(),
            )
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
}
