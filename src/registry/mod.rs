//! The webhook API's state as pure logic: `PutWebhook`, `ListWebhooks`, `DeleteWebhook`,
//! `RegisterWebhookWithThirdParty`, `DeregisterWebhookWithThirdParty`, `PutPipeline` (so that
//! targets can be checked), `TagResource`, `UntagResource`, `ListTagsForResource` (pipelines and
//! webhooks) and `trigger` (a delivery to a webhook URL).
//!
//! And the checks a host runs before it reads an input as typed data: [`validate_input`] (every
//! operation's input against the AWS service model, in AWS's words), [`validate_pipeline_input`]
//! (`CreatePipeline` / `UpdatePipeline`: the model, then the structure rules), [`check_name`] (the
//! one name checker), [`check_tags`] (the one tag checker), and [`Registry::mask_secrets`] for
//! every declaration a response shows.
//!
//! No I/O: the clock and the URL token source are closures the host hands in. `Registry` is
//! `Send + Sync`; `trigger` takes `&self` and holds the lock only to find the compiled webhook, so
//! deliveries evaluate in parallel with each other and with API calls.
//!
//! Feature `registry` (on by default), which brings in `getrandom` (URL tokens, the `NextToken` key)
//! and `base64`.

#![cfg(feature = "registry")]

mod builder;
mod host;
mod next_token;
mod operations;
mod pipeline;
mod shapes;
mod state;
mod tags;
mod urls;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::model::{MAX_REPORTED_VIOLATIONS, check_name, model_operations, validate_input};
pub use builder::{RegistryBuilder, partition_of};
pub use host::{Resolved, check_max_results, invalid_next_token, no_such_pipeline};
pub use pipeline::{MAX_STAGES, SECRET_CONFIGURATION_KEYS, mask_secrets, validate_pipeline_input, validate_structure};
pub use shapes::{
    ActionDeclaration, DeleteWebhookInput, DeregisterWebhookWithThirdPartyInput, ListWebhookItem, ListWebhooksInput,
    ListWebhooksOutput, PipelineDeclaration, PutWebhookOutput, RegisterWebhookWithThirdPartyInput, RegistryState,
    StageDeclaration, WebhookState,
};
pub use tags::{ListTagsForResourceInput, ListTagsForResourceOutput, TagResourceInput, UntagResourceInput, check_tags};

use crate::definition::{Tag, WebhookDefinition};
use crate::error::{Error, ErrorCode};
use crate::webhook::{Webhook, WebhookOptions};
use urls::BaseUrl;

/// The default quota of webhooks per registry (AWS: 300 per account and region).
pub const DEFAULT_WEBHOOK_QUOTA: usize = 300;
/// The default and largest page of `ListWebhooks`.
pub const MAX_LIST_RESULTS: i64 = 100;

type Clock = Box<dyn Fn() -> SystemTime + Send + Sync>;
type TokenSource = Box<dyn Fn() -> String + Send + Sync>;

/// The state behind the CodePipeline webhook API. Build it with [`Registry::builder`].
///
/// ```
/// use codepipeline_webhooks::registry::{PipelineDeclaration, Registry};
/// use codepipeline_webhooks::{PutWebhookInput, Request};
///
/// let registry = Registry::builder()
///     .region("eu-west-1")
///     .account_id("123456789012")
///     .token_source(|| "fixed-token-for-the-example".to_owned())
///     .build()?;
/// let pipeline: PipelineDeclaration = serde_json::from_str(r#"{
///     "name": "app", "roleArn": "arn:aws:iam::123456789012:role/cp", "version": 1,
///     "stages": [{"name": "Source", "actions": [{"name": "Source",
///         "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
///         "configuration": {"Owner": "octo-org", "Repo": "app", "Branch": "main"}}]}]
/// }"#)?;
/// registry.put_pipeline(pipeline)?;
/// let out = registry.put_webhook(PutWebhookInput::from_json(r#"{"webhook": {
///     "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
///     "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
///     "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}}"#)?)?;
/// assert_eq!(out.webhook.url, "https://eu-west-1.webhooks.aws/trigger?t=fixed-token-for-the-example&v=1");
/// assert_eq!(out.webhook.arn.as_deref(), Some("arn:aws:codepipeline:eu-west-1:123456789012:webhook:app-main"));
///
/// let verdict = registry.trigger(&out.webhook.url, &Request::new(r#"{"ref":"refs/heads/main"}"#))?;
/// assert!(verdict.is_trigger());
/// assert!(registry.list_webhooks(Default::default())?.webhooks[0].last_triggered.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Registry {
    region: String,
    account_id: String,
    partition: String,
    base_url: BaseUrl,
    quota: usize,
    clock: Clock,
    token_source: TokenSource,
    revisions: AtomicU64,
    state: RwLock<State>,
    /// What every webhook is compiled with.
    options: WebhookOptions,
    /// How long a replaced `SecretToken` stays valid.
    rotation_grace: Duration,
}

struct State {
    /// The HMAC-SHA256 key that signs `NextToken`s; exported with the state so that every instance
    /// (and a restarted one) accepts the tokens of the others.
    next_token_key: [u8; 32],
    /// Each pipeline behind an `Arc`: a put that compiled against one knows, by pointer, whether it
    /// is still the pipeline in force when it comes to insert.
    pipelines: BTreeMap<String, Arc<PipelineDeclaration>>,
    webhooks: BTreeMap<String, Entry>,
    /// Each tagged pipeline's tags (`TagResource`, `CreatePipeline`'s `tags`); a webhook's are in
    /// its entry.
    pipeline_tags: BTreeMap<String, Vec<Tag>>,
    /// URL token → webhook name.
    tokens: HashMap<String, String>,
}

struct Entry {
    /// Drawn from [`Registry::revisions`] on every put and import, never reused: a
    /// `put_pipeline` that compiled this webhook knows whether it still has the same definition.
    revision: u64,
    definition: WebhookDefinition,
    tags: Vec<Tag>,
    token: String,
    registered: bool,
    /// The compiled webhook, or why it cannot compile against its pipeline as it is now.
    compiled: Result<Arc<Webhook>, Error>,
    last_triggered: Arc<Mutex<Option<SystemTime>>>,
    /// The secret a `PutWebhook` replaced, accepted until the deadline (`rotation_grace`).
    previous: Option<Previous>,
}

/// A replaced `SecretToken` and when it stops being accepted.
#[derive(Clone)]
struct Previous {
    secret: String,
    until: SystemTime,
}

impl State {
    fn new(next_token_key: [u8; 32]) -> Self {
        Self {
            next_token_key,
            pipelines: BTreeMap::new(),
            webhooks: BTreeMap::new(),
            pipeline_tags: BTreeMap::new(),
            tokens: HashMap::new(),
        }
    }
}

fn unknown_url() -> Error {
    Error::new(ErrorCode::WebhookNotFoundException, None, "no webhook has that URL")
}

fn not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::WebhookNotFoundException,
        None,
        format!("no webhook is named '{}'", crate::error::escape(name)),
    )
}

/// A webhook name member of an input (`DeleteWebhook`'s `name`, `webhookName` of the
/// third-party calls): the model constraints of `PutWebhook`'s `name` (`WebhookName`, 1 to 100
/// characters of `[A-Za-z0-9.@\-_]+`), reported as AWS reports them.
fn check_webhook_name(member: &str, name: &str) -> Result<(), Error> {
    crate::model::check_name(member, name)
}

impl Registry {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic elsewhere cannot leave the state half-written: every writer validates first and
        // then mutates with operations that do not panic.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The URL of a token.
    fn url(&self, token: &str) -> String {
        self.base_url.url(token)
    }

    /// The path every webhook URL of this registry posts to, as an HTTP server sees it:
    /// `/trigger`, or `/cp/trigger` under a [`base_url`](RegistryBuilder::base_url) of
    /// `https://hooks.example.com/cp`. A host routes it (and `/trigger`, what a proxy that
    /// strips the base's path forwards) to [`resolve_url`](Self::resolve_url).
    pub fn trigger_path(&self) -> &str {
        self.base_url.trigger_path()
    }

    fn arn(&self, name: &str) -> String {
        urls::arn(&self.partition, &self.region, &self.account_id, name)
    }

    fn item(&self, entry: &Entry) -> ListWebhookItem {
        let (error_code, error_message) = match &entry.compiled {
            Ok(_) => (None, None),
            Err(e) => (Some(e.code().to_owned()), Some(e.message().to_owned())),
        };
        ListWebhookItem {
            definition: entry.definition.redacted(),
            url: self.url(&entry.token),
            error_message,
            error_code,
            last_triggered: last_triggered(entry),
            arn: Some(self.arn(&entry.definition.name)),
            tags: Some(entry.tags.clone()).filter(|t| !t.is_empty()),
        }
    }
}

fn last_triggered(entry: &Entry) -> Option<f64> {
    let at = (*entry.last_triggered.lock().unwrap_or_else(PoisonError::into_inner))?;
    // Milliseconds, as AWS timestamps carry them.
    at.duration_since(UNIX_EPOCH).ok().map(|d| (d.as_millis() as f64) / 1000.0)
}

/// Model constraints of a pipeline as far as webhooks read it: its name, and a first stage.
fn check_pipeline(pipeline: &PipelineDeclaration) -> Result<(), Error> {
    crate::model::check_name("pipeline.name", &pipeline.name)?;
    if pipeline.stages.is_empty() {
        return Err(Error::validation("pipeline.stages".to_owned(), "a pipeline needs at least one stage"));
    }
    Ok(())
}

fn pipeline_not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::PipelineNotFoundException,
        Some("webhook.targetPipeline".to_owned()),
        format!("pipeline with name '{}' was not found", crate::error::escape(name)),
    )
}

/// Whether a URL token is non-empty and URL-safe (`[A-Za-z0-9_-]`), as every token this registry
/// puts in a URL is.
fn is_url_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Registry {
    /// Compiles `definition` against its pipeline with the registry's options: the target action
    /// must be in the first stage, and its configuration fills the placeholders. A previous secret
    /// still in its grace period is accepted too.
    fn compile(
        &self,
        definition: &WebhookDefinition,
        pipeline: &PipelineDeclaration,
        previous: Option<&Previous>,
    ) -> Result<Webhook, Error> {
        let config = pipeline.first_stage_configuration(&definition.target_action)?;
        match previous {
            None => self.options.build(definition, config),
            Some(p) => {
                self.options.clone().accept_previous_secret_until(p.secret.clone(), p.until).build(definition, config)
            }
        }
    }
}

impl Registry {
    /// Shows the secret configuration values of a pipeline declaration (JSON) as `****`, as AWS
    /// responses show them: `OAuthToken`, and every key marked secret in the registry's
    /// [`webhook_options`](RegistryBuilder::webhook_options)
    /// ([`WebhookOptions::secret_key`]), whatever the value's JSON type. For every response that
    /// shows a declaration (`CreatePipeline`, `UpdatePipeline`, `GetPipeline`).
    pub fn mask_secrets(&self, pipeline: &mut serde_json::Value) {
        pipeline::mask_secrets(pipeline, |key| self.options.is_secret(key));
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read();
        f.debug_struct("Registry")
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("partition", &self.partition)
            .field("webhook_quota", &self.quota)
            .field("pipelines", &state.pipelines.len())
            .field("webhooks", &state.webhooks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
