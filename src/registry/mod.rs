//! The webhook API's state as pure logic: `PutWebhook`, `ListWebhooks`, `DeleteWebhook`,
//! `RegisterWebhookWithThirdParty`, `DeregisterWebhookWithThirdParty`, `PutPipeline` (so that
//! targets can be checked) and `trigger` (a delivery to a webhook URL).
//!
//! No I/O: the clock and the URL token source are closures the host hands in. `Registry` is
//! `Send + Sync`; `trigger` takes `&self` and holds the lock only to find the compiled webhook, so
//! deliveries evaluate in parallel with each other and with API calls.

mod shapes;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use shapes::{
    ActionDeclaration, DeleteWebhookInput, DeregisterWebhookWithThirdPartyInput, ListWebhookItem, ListWebhooksInput,
    ListWebhooksOutput, PipelineDeclaration, PutWebhookOutput, RegisterWebhookWithThirdPartyInput, RegistryState,
    StageDeclaration, WebhookState,
};

use crate::definition::{PutWebhookInput, Tag, Violations, WebhookDefinition};
use crate::error::{Error, ErrorCode};
use crate::request::Request;
use crate::verdict::Verdict;
use crate::webhook::Webhook;

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
    base_url: Option<String>,
    account_id: String,
    partition: String,
    quota: usize,
    clock: Clock,
    token_source: TokenSource,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    pipelines: BTreeMap<String, PipelineDeclaration>,
    webhooks: BTreeMap<String, Entry>,
    /// URL token → webhook name.
    tokens: HashMap<String, String>,
}

struct Entry {
    definition: WebhookDefinition,
    tags: Vec<Tag>,
    token: String,
    registered: bool,
    /// The compiled webhook, or why it cannot compile against its pipeline as it is now.
    compiled: Result<Arc<Webhook>, Error>,
    last_triggered: Arc<Mutex<Option<SystemTime>>>,
}

/// Options for a [`Registry`]; from [`Registry::builder`].
#[must_use]
pub struct RegistryBuilder {
    region: Option<String>,
    base_url: Option<String>,
    account_id: Option<String>,
    partition: Option<String>,
    quota: usize,
    clock: Clock,
    token_source: TokenSource,
    state: Option<RegistryState>,
}

impl RegistryBuilder {
    /// The AWS region, for URLs and ARNs (required), e.g. `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Where webhook URLs point: `PutWebhook` then returns `{base}/trigger?t=…&v=1` instead of
    /// `https://{region}.webhooks.aws/trigger?t=…&v=1`. A trailing `/` is ignored.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.base_url = Some(base.into().trim_end_matches('/').to_owned());
        self
    }

    /// The 12-digit account id, for ARNs (required).
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// The ARN partition; by default derived from the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// How many webhooks the registry holds at most (default [`DEFAULT_WEBHOOK_QUOTA`]).
    pub fn webhook_quota(mut self, quota: usize) -> Self {
        self.quota = quota;
        self
    }

    /// The clock that stamps `lastTriggered` (default: `SystemTime::now`).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Where URL tokens come from (default: 256 bits from the operating system's CSPRNG,
    /// base64url). The URL is the only secret an UNAUTHENTICATED webhook has: a custom source must
    /// be as unguessable. Tokens must be URL-safe (`[A-Za-z0-9_-]`).
    pub fn token_source(mut self, source: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.token_source = Box::new(source);
        self
    }

    /// Starts from a state exported by [`Registry::export_state`].
    pub fn state(mut self, state: RegistryState) -> Self {
        self.state = Some(state);
        self
    }

    /// Checks the options and builds the registry (`ValidationException` when region or account id
    /// is missing or malformed, or the state does not load).
    pub fn build(self) -> Result<Registry, Error> {
        let region = self.region.ok_or_else(|| Error::validation("region".to_owned(), "a region is required"))?;
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(Error::validation(
                "region".to_owned(),
                format!("'{region}' is not a region name such as us-east-1"),
            ));
        }
        let account_id =
            self.account_id.ok_or_else(|| Error::validation("accountId".to_owned(), "an account id is required"))?;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::validation(
                "accountId".to_owned(),
                format!("'{account_id}' is not a 12-digit account id"),
            ));
        }
        let partition = self.partition.unwrap_or_else(|| {
            if region.starts_with("cn-") {
                "aws-cn"
            } else if region.starts_with("us-gov-") {
                "aws-us-gov"
            } else {
                "aws"
            }
            .to_owned()
        });
        let registry = Registry {
            region,
            base_url: self.base_url,
            account_id,
            partition,
            quota: self.quota,
            clock: self.clock,
            token_source: self.token_source,
            state: RwLock::new(State::default()),
        };
        if let Some(state) = self.state {
            registry.import_state(state)?;
        }
        Ok(registry)
    }
}

/// 256 bits from the operating system's CSPRNG, base64url without padding.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unknown_url() -> Error {
    Error::new(ErrorCode::WebhookNotFoundException, None, "no webhook has that URL")
}

fn not_found(name: &str) -> Error {
    Error::new(ErrorCode::WebhookNotFoundException, None, format!("no webhook is named '{name}'"))
}

impl Registry {
    /// Starts a builder: `.region(..)` and `.account_id(..)` are required.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            region: None,
            base_url: None,
            account_id: None,
            partition: None,
            quota: DEFAULT_WEBHOOK_QUOTA,
            clock: Box::new(SystemTime::now),
            token_source: Box::new(random_token),
            state: None,
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic elsewhere cannot leave the state half-written: every writer validates first and
        // then mutates with operations that do not panic.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates or replaces a pipeline. Webhooks that target it are recompiled against its new first
    /// stage; one that no longer compiles stays listed with `errorCode` and `errorMessage` and
    /// refuses deliveries until the pipeline or the webhook is fixed.
    pub fn put_pipeline(&self, pipeline: PipelineDeclaration) -> Result<(), Error> {
        let mut v = Violations::default();
        v.length("pipeline.name", &pipeline.name, 1, 100, false);
        v.name_pattern("pipeline.name", &pipeline.name);
        v.into_result()?;
        if pipeline.stages.is_empty() {
            return Err(Error::validation("pipeline.stages".to_owned(), "a pipeline needs at least one stage"));
        }
        let mut state = self.write();
        for entry in state.webhooks.values_mut() {
            if entry.definition.target_pipeline == pipeline.name {
                entry.compiled = compile(&entry.definition, &pipeline).map(Arc::new);
            }
        }
        state.pipelines.insert(pipeline.name.clone(), pipeline);
        Ok(())
    }

    /// `PutWebhook`: validates, checks the target, compiles, and stores. Same name: the webhook is
    /// replaced and keeps its URL, ARN and `lastTriggered`.
    ///
    /// Errors: `ValidationException` (model; target action not in the first stage),
    /// `TooManyTagsException`, `InvalidTagsException`, `PipelineNotFoundException`,
    /// `InvalidWebhookAuthenticationParametersException`, `InvalidWebhookFilterPatternException`,
    /// `LimitExceededException` (quota).
    pub fn put_webhook(&self, input: PutWebhookInput) -> Result<PutWebhookOutput, Error> {
        input.validate()?;
        let PutWebhookInput { webhook: definition, tags } = input;
        let mut state = self.write();
        let pipeline = state.pipelines.get(&definition.target_pipeline).ok_or_else(|| {
            Error::new(
                ErrorCode::PipelineNotFoundException,
                Some("webhook.targetPipeline".to_owned()),
                format!("pipeline with name '{}' was not found", definition.target_pipeline),
            )
        })?;
        let compiled = Arc::new(compile(&definition, pipeline)?);
        let name = definition.name.clone();
        if let Some(entry) = state.webhooks.get_mut(&name) {
            entry.definition = definition;
            entry.tags = tags;
            entry.compiled = Ok(compiled);
        } else {
            if state.webhooks.len() >= self.quota {
                return Err(Error::new(
                    ErrorCode::LimitExceededException,
                    None,
                    format!("the number of webhooks is limited to {}", self.quota),
                ));
            }
            let token = self.new_token(&state)?;
            state.tokens.insert(token.clone(), name.clone());
            let entry = Entry {
                definition,
                tags,
                token,
                registered: false,
                compiled: Ok(compiled),
                last_triggered: Arc::default(),
            };
            state.webhooks.insert(name.clone(), entry);
        }
        Ok(PutWebhookOutput { webhook: self.item(&state.webhooks[&name]) })
    }

    fn new_token(&self, state: &State) -> Result<String, Error> {
        for _ in 0..8 {
            let token = (self.token_source)();
            let url_safe =
                !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if url_safe && !state.tokens.contains_key(&token) {
                return Ok(token);
            }
        }
        Err(Error::validation(None, "the token source gave no fresh URL-safe token in 8 tries"))
    }

    /// `ListWebhooks`: one page, in name order. `MaxResults` 1 to 100 (default 100); `NextToken`
    /// from the previous page (`InvalidNextTokenException` when it was not issued here).
    pub fn list_webhooks(&self, input: ListWebhooksInput) -> Result<ListWebhooksOutput, Error> {
        let max = input.max_results.unwrap_or(MAX_LIST_RESULTS);
        if !(1..=MAX_LIST_RESULTS).contains(&max) {
            return Err(Error::validation(
                "MaxResults".to_owned(),
                format!(
                    "1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_LIST_RESULTS}"
                ),
            ));
        }
        let after = match &input.next_token {
            None => None,
            Some(token) => Some(decode_next_token(token)?),
        };
        let state = self.read();
        let mut page = match &after {
            None => state.webhooks.range::<String, _>(..),
            Some(after) => {
                state.webhooks.range::<String, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
        };
        let webhooks: Vec<ListWebhookItem> = page.by_ref().take(max as usize).map(|(_, e)| self.item(e)).collect();
        let next_token = match (page.next(), webhooks.last()) {
            (Some(_), Some(last)) => Some(URL_SAFE_NO_PAD.encode(last.definition.name.as_bytes())),
            _ => None,
        };
        Ok(ListWebhooksOutput { webhooks, next_token })
    }

    /// `DeleteWebhook`: removes it and invalidates its URL. A missing name succeeds, as in AWS.
    pub fn delete_webhook(&self, input: DeleteWebhookInput) -> Result<(), Error> {
        let mut state = self.write();
        if let Some(entry) = state.webhooks.remove(&input.name) {
            state.tokens.remove(&entry.token);
        }
        Ok(())
    }

    /// `RegisterWebhookWithThirdParty`: marks it registered (`WebhookNotFoundException` when missing).
    pub fn register_webhook_with_third_party(&self, input: RegisterWebhookWithThirdPartyInput) -> Result<(), Error> {
        self.set_registered(&input.webhook_name, true)
    }

    /// `DeregisterWebhookWithThirdParty`: marks it not registered (`WebhookNotFoundException` when
    /// missing).
    pub fn deregister_webhook_with_third_party(
        &self,
        input: DeregisterWebhookWithThirdPartyInput,
    ) -> Result<(), Error> {
        self.set_registered(&input.webhook_name, false)
    }

    fn set_registered(&self, name: &str, registered: bool) -> Result<(), Error> {
        let mut state = self.write();
        state.webhooks.get_mut(name).ok_or_else(|| not_found(name))?.registered = registered;
        Ok(())
    }

    /// Whether the webhook is registered with its third party (`WebhookNotFoundException` when
    /// missing).
    pub fn is_registered_with_third_party(&self, name: &str) -> Result<bool, Error> {
        Ok(self.read().webhooks.get(name).ok_or_else(|| not_found(name))?.registered)
    }

    /// A delivery to a webhook URL (`https://{region}.webhooks.aws/trigger?t={token}&v=1`).
    /// `WebhookNotFoundException` when no webhook has that URL; the webhook's own error when it
    /// cannot compile against its pipeline as it is now. A trigger stamps `lastTriggered`.
    pub fn trigger(&self, url: &str, request: &Request<'_>) -> Result<Verdict, Error> {
        let token = self.token_in(url).ok_or_else(unknown_url)?;
        self.trigger_token(token, request)
    }

    /// As [`trigger`](Self::trigger), for a host that routes by the URL's `t` parameter.
    pub fn trigger_token(&self, token: &str, request: &Request<'_>) -> Result<Verdict, Error> {
        let (webhook, last_triggered) = {
            let state = self.read();
            let entry = state.tokens.get(token).and_then(|name| state.webhooks.get(name)).ok_or_else(unknown_url)?;
            (entry.compiled.clone()?, entry.last_triggered.clone())
        };
        let verdict = webhook.evaluate(request);
        if verdict.is_trigger() {
            *last_triggered.lock().unwrap_or_else(PoisonError::into_inner) = Some((self.clock)());
        }
        Ok(verdict)
    }

    /// The token of a URL in this registry's form, without building the URL to compare.
    fn token_in<'u>(&self, url: &'u str) -> Option<&'u str> {
        if let Some(base) = &self.base_url {
            return url.strip_prefix(base.as_str())?.strip_prefix("/trigger?t=")?.strip_suffix("&v=1");
        }
        url.strip_prefix("https://")?
            .strip_prefix(self.region.as_str())?
            .strip_prefix(".webhooks.aws/trigger?t=")?
            .strip_suffix("&v=1")
    }

    /// The URL of a token.
    fn url(&self, token: &str) -> String {
        if let Some(base) = &self.base_url {
            return format!("{base}/trigger?t={token}&v=1");
        }
        format!("https://{}.webhooks.aws/trigger?t={token}&v=1", self.region)
    }

    fn arn(&self, name: &str) -> String {
        format!("arn:{}:codepipeline:{}:{}:webhook:{name}", self.partition, self.region, self.account_id)
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

    /// The whole state, secrets and URL tokens included, for a host to persist.
    pub fn export_state(&self) -> RegistryState {
        let state = self.read();
        RegistryState {
            pipelines: state.pipelines.values().cloned().collect(),
            webhooks: state
                .webhooks
                .values()
                .map(|e| WebhookState {
                    definition: e.definition.clone(),
                    tags: e.tags.clone(),
                    token: e.token.clone(),
                    registered_with_third_party: e.registered,
                    last_triggered: last_triggered(e),
                })
                .collect(),
        }
    }

    /// Replaces the whole state with an exported one. Every webhook is validated and compiled
    /// again; nothing changes if any fails (`ValidationException` for duplicates, or the
    /// webhook's own error). A webhook whose pipeline rejects it loads with `errorCode` set, as
    /// after `put_pipeline`.
    pub fn import_state(&self, imported: RegistryState) -> Result<(), Error> {
        let mut next = State::default();
        for pipeline in imported.pipelines {
            if next.pipelines.insert(pipeline.name.clone(), pipeline).is_some() {
                return Err(Error::validation("pipelines".to_owned(), "the state names a pipeline twice"));
            }
        }
        for w in imported.webhooks {
            let input = PutWebhookInput { webhook: w.definition, tags: w.tags };
            input.validate()?;
            let compiled = match next.pipelines.get(&input.webhook.target_pipeline) {
                Some(pipeline) => compile(&input.webhook, pipeline).map(Arc::new),
                None => Err(Error::new(
                    ErrorCode::PipelineNotFoundException,
                    Some("webhook.targetPipeline".to_owned()),
                    format!("pipeline with name '{}' was not found", input.webhook.target_pipeline),
                )),
            };
            let name = input.webhook.name.clone();
            if next.tokens.insert(w.token.clone(), name.clone()).is_some() {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("webhook '{name}' reuses another's URL token"),
                ));
            }
            let last =
                w.last_triggered.and_then(|s| UNIX_EPOCH.checked_add(std::time::Duration::try_from_secs_f64(s).ok()?));
            let entry = Entry {
                definition: input.webhook,
                tags: input.tags,
                token: w.token,
                registered: w.registered_with_third_party,
                compiled,
                last_triggered: Arc::new(Mutex::new(last)),
            };
            if next.webhooks.insert(name.clone(), entry).is_some() {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("the state names webhook '{name}' twice"),
                ));
            }
        }
        *self.write() = next;
        Ok(())
    }
}

fn last_triggered(entry: &Entry) -> Option<f64> {
    let at = (*entry.last_triggered.lock().unwrap_or_else(PoisonError::into_inner))?;
    // Milliseconds, as AWS timestamps carry them.
    at.duration_since(UNIX_EPOCH).ok().map(|d| (d.as_millis() as f64) / 1000.0)
}

/// Compiles `definition` against its pipeline: the target action must be in the first stage, and
/// its configuration fills the placeholders.
fn compile(definition: &WebhookDefinition, pipeline: &PipelineDeclaration) -> Result<Webhook, Error> {
    let action = pipeline
        .stages
        .first()
        .and_then(|stage| stage.actions.iter().find(|a| a.name == definition.target_action))
        .ok_or_else(|| {
            Error::validation(
                Some("webhook.targetAction".to_owned()),
                format!(
                    "Action with name {} was not found in the first stage of the pipeline",
                    definition.target_action
                ),
            )
        })?;
    Webhook::new(definition, &action.configuration)
}

fn decode_next_token(token: &str) -> Result<String, Error> {
    URL_SAFE_NO_PAD.decode(token).ok().and_then(|bytes| String::from_utf8(bytes).ok()).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidNextTokenException,
            Some("NextToken".to_owned()),
            "the NextToken was not issued by ListWebhooks",
        )
    })
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
