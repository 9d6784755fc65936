//! The webhook API's state as pure logic: `PutWebhook`, `ListWebhooks`, `DeleteWebhook`,
//! `RegisterWebhookWithThirdParty`, `DeregisterWebhookWithThirdParty`, `PutPipeline` (so that
//! targets can be checked) and `trigger` (a delivery to a webhook URL).
//!
//! No I/O: the clock and the URL token source are closures the host hands in. `Registry` is
//! `Send + Sync`; `trigger` takes `&self` and holds the lock only to find the compiled webhook, so
//! deliveries evaluate in parallel with each other and with API calls.

mod next_token;
mod shapes;
mod urls;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
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
}

/// How often a put compiles without the lock and finds, at insert time, that the pipeline or the
/// webhooks changed meanwhile, before it compiles under the write lock (so that a stream of
/// concurrent writes cannot starve it).
const UNLOCKED_TRIES: usize = 3;

struct State {
    /// The HMAC-SHA256 key that signs `NextToken`s; exported with the state so that every instance
    /// (and a restarted one) accepts the tokens of the others.
    next_token_key: [u8; 32],
    /// Each pipeline behind an `Arc`: a put that compiled against one knows, by pointer, whether it
    /// is still the pipeline in force when it comes to insert.
    pipelines: BTreeMap<String, Arc<PipelineDeclaration>>,
    webhooks: BTreeMap<String, Entry>,
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
}

/// Options for a [`Registry`]; from [`Registry::builder`].
#[must_use]
pub struct RegistryBuilder {
    region: Option<String>,
    account_id: Option<String>,
    partition: Option<String>,
    base_url: Option<String>,
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

    /// Where webhook URLs live: `PutWebhook` returns `{base}/trigger?t={token}&v=1`, and
    /// [`Registry::trigger`] accepts URLs under it (or their path-and-query). An `http://` or
    /// `https://` URL with a host, an optional port and path and no query; a trailing slash is
    /// ignored. Default: AWS's form, `https://{region}.webhooks.aws`.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.base_url = Some(base.into());
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
        let base_url = match &self.base_url {
            Some(base) => BaseUrl::parse(base)?,
            None => BaseUrl::aws(&region),
        };
        let registry = Registry {
            base_url,
            region,
            account_id,
            partition,
            quota: self.quota,
            clock: self.clock,
            token_source: self.token_source,
            revisions: AtomicU64::new(0),
            state: RwLock::new(State::new(random_key())),
        };
        if let Some(state) = self.state {
            registry.import_state(state)?;
        }
        Ok(registry)
    }
}

/// 256 bits from the operating system's CSPRNG, base64url without padding.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_key())
}

/// 256 bits from the operating system's CSPRNG.
fn random_key() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}

impl State {
    fn new(next_token_key: [u8; 32]) -> Self {
        Self { next_token_key, pipelines: BTreeMap::new(), webhooks: BTreeMap::new(), tokens: HashMap::new() }
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
    let mut v = Violations::default();
    v.length(member, name, 1, 100, false);
    v.name_pattern(member, name);
    v.into_result()
}

impl Registry {
    /// Starts a builder: `.region(..)` and `.account_id(..)` are required.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            region: None,
            account_id: None,
            partition: None,
            base_url: None,
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
    ///
    /// The webhooks are compiled with no lock held (deliveries go on meanwhile); the write lock is
    /// taken only to insert, after checking that none of them changed in between.
    pub fn put_pipeline(&self, pipeline: PipelineDeclaration) -> Result<(), Error> {
        check_pipeline(&pipeline)?;
        let pipeline = Arc::new(pipeline);
        for attempt in 0..=UNLOCKED_TRIES {
            let locked = attempt == UNLOCKED_TRIES;
            let (mut state, compiled) = if locked {
                let state = self.write();
                let compiled = compile_targets(targets(&state, &pipeline.name), &pipeline);
                (state, compiled)
            } else {
                let targets = targets(&self.read(), &pipeline.name);
                let compiled = compile_targets(targets, &pipeline);
                let state = self.write();
                // The same webhooks, by name and revision, as when they were read.
                let current = state.webhooks.iter().filter(|(_, e)| e.definition.target_pipeline == pipeline.name);
                let unchanged = current.clone().count() == compiled.len()
                    && current.zip(&compiled).all(|((name, e), (n, revision, _))| name == n && e.revision == *revision);
                if !unchanged {
                    continue;
                }
                (state, compiled)
            };
            for (name, _, webhook) in compiled {
                if let Some(entry) = state.webhooks.get_mut(&name) {
                    entry.compiled = webhook;
                }
            }
            state.pipelines.insert(pipeline.name.clone(), pipeline);
            return Ok(());
        }
        unreachable!("the last attempt holds the write lock throughout")
    }

    /// `PutWebhook`: validates, checks the target, compiles, and stores. Same name: the webhook is
    /// replaced and keeps its URL, ARN and `lastTriggered`.
    ///
    /// The webhook is compiled (JsonPath parsed, placeholders resolved) and a new URL token drawn
    /// with no lock held, so deliveries to other webhooks go on meanwhile; the write lock is taken
    /// only to insert, after checking that the pipeline is still the one compiled against.
    ///
    /// Errors: `ValidationException` (model; target action not in the first stage),
    /// `TooManyTagsException`, `InvalidTagsException`, `PipelineNotFoundException`,
    /// `InvalidWebhookAuthenticationParametersException`, `InvalidWebhookFilterPatternException`,
    /// `LimitExceededException` (quota).
    pub fn put_webhook(&self, input: PutWebhookInput) -> Result<PutWebhookOutput, Error> {
        input.validate()?;
        let PutWebhookInput { webhook: definition, tags } = input;
        let mut token: Option<String> = None;
        for attempt in 0..=UNLOCKED_TRIES {
            let locked = attempt == UNLOCKED_TRIES;
            let (mut state, compiled) = if locked {
                let state = self.write();
                let pipeline = find_pipeline(&state, &definition)?;
                let compiled = compile(&definition, pipeline)?;
                (state, compiled)
            } else {
                let (pipeline, exists) = {
                    let state = self.read();
                    (find_pipeline(&state, &definition)?.clone(), state.webhooks.contains_key(&definition.name))
                };
                let compiled = compile(&definition, &pipeline)?;
                if !exists && token.is_none() {
                    token = Some(self.draw_token()?);
                }
                let state = self.write();
                if !state.pipelines.get(&definition.target_pipeline).is_some_and(|p| Arc::ptr_eq(p, &pipeline)) {
                    continue;
                }
                (state, compiled)
            };
            let name = definition.name.clone();
            let revision = self.revisions.fetch_add(1, Ordering::Relaxed);
            if let Some(entry) = state.webhooks.get_mut(&name) {
                entry.revision = revision;
                entry.definition = definition;
                entry.tags = tags;
                entry.compiled = Ok(Arc::new(compiled));
            } else {
                if state.webhooks.len() >= self.quota {
                    return Err(Error::new(
                        ErrorCode::LimitExceededException,
                        None,
                        format!("the number of webhooks is limited to {}", self.quota),
                    ));
                }
                let token = match token.take() {
                    Some(t) if !state.tokens.contains_key(&t) => t,
                    // Deleted meanwhile (so no token was drawn) or a token now taken: draw again,
                    // outside the lock unless this is the last try.
                    _ if !locked => continue,
                    _ => self.fresh_token(&state)?,
                };
                state.tokens.insert(token.clone(), name.clone());
                let entry = Entry {
                    revision,
                    definition,
                    tags,
                    token,
                    registered: false,
                    compiled: Ok(Arc::new(compiled)),
                    last_triggered: Arc::default(),
                };
                state.webhooks.insert(name.clone(), entry);
            }
            return Ok(PutWebhookOutput { webhook: self.item(&state.webhooks[&name]) });
        }
        unreachable!("the last attempt holds the write lock throughout")
    }

    /// A URL-safe token from the token source.
    fn draw_token(&self) -> Result<String, Error> {
        for _ in 0..8 {
            let token = (self.token_source)();
            if is_url_token(&token) {
                return Ok(token);
            }
        }
        Err(Error::validation(None, "the token source gave no URL-safe token in 8 tries"))
    }

    /// A URL-safe token that no webhook has.
    fn fresh_token(&self, state: &State) -> Result<String, Error> {
        for _ in 0..8 {
            let token = self.draw_token()?;
            if !state.tokens.contains_key(&token) {
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
                    "1 validation error detected: Value '{max}' at 'MaxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_LIST_RESULTS}"
                ),
            ));
        }
        let state = self.read();
        let after = match &input.next_token {
            None => None,
            Some(token) => Some(next_token::verify(&state.next_token_key, token)?),
        };
        let mut page = match &after {
            None => state.webhooks.range::<String, _>(..),
            Some(after) => {
                state.webhooks.range::<String, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded))
            }
        };
        let webhooks: Vec<ListWebhookItem> = page.by_ref().take(max as usize).map(|(_, e)| self.item(e)).collect();
        let next_token = match (page.next(), webhooks.last()) {
            (Some(_), Some(last)) => Some(next_token::issue(&state.next_token_key, &last.definition.name)),
            _ => None,
        };
        Ok(ListWebhooksOutput { webhooks, next_token })
    }

    /// `DeleteWebhook`: removes it and invalidates its URL. A missing name succeeds, as in AWS; a
    /// name that breaks the model constraints of a webhook name is `ValidationException`.
    pub fn delete_webhook(&self, input: DeleteWebhookInput) -> Result<(), Error> {
        check_webhook_name("name", &input.name)?;
        let mut state = self.write();
        if let Some(entry) = state.webhooks.remove(&input.name) {
            state.tokens.remove(&entry.token);
        }
        Ok(())
    }

    /// `RegisterWebhookWithThirdParty`: marks it registered (`WebhookNotFoundException` when missing,
    /// `ValidationException` when `webhookName` breaks the model constraints of a webhook name).
    pub fn register_webhook_with_third_party(&self, input: RegisterWebhookWithThirdPartyInput) -> Result<(), Error> {
        check_webhook_name("webhookName", &input.webhook_name)?;
        self.set_registered(&input.webhook_name, true)
    }

    /// `DeregisterWebhookWithThirdParty`: marks it not registered (`WebhookNotFoundException` when
    /// missing).
    pub fn deregister_webhook_with_third_party(
        &self,
        input: DeregisterWebhookWithThirdPartyInput,
    ) -> Result<(), Error> {
        check_webhook_name("webhookName", &input.webhook_name)?;
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

    /// A delivery to a webhook URL: `https://{region}.webhooks.aws/trigger?t={token}&v=1`, or
    /// `{base}/trigger?t=…` with [`RegistryBuilder::base_url`]. Either the whole URL (scheme, host
    /// and port must be the base's) or its path-and-query (`/trigger?t=…&v=1`, as an HTTP server
    /// sees it). The query's parameters may come in any order, percent-encoded or not; `v` may be
    /// absent but, when present, must be `1`; other parameters are ignored.
    ///
    /// `WebhookNotFoundException` when no webhook has that URL (no `t`, an empty or unknown one, or
    /// two); the webhook's own error when it cannot compile against its pipeline as it is now. A
    /// trigger stamps `lastTriggered`.
    pub fn trigger(&self, url: &str, request: &Request<'_>) -> Result<Verdict, Error> {
        let token = self.base_url.token_in(url).ok_or_else(unknown_url)?;
        self.trigger_token(&token, request)
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

    /// The URL of a token.
    fn url(&self, token: &str) -> String {
        self.base_url.url(token)
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

    /// The whole state, secrets, URL tokens and the `NextToken` key included, for a host to
    /// persist.
    pub fn export_state(&self) -> RegistryState {
        let state = self.read();
        RegistryState {
            pipelines: state.pipelines.values().map(|p| PipelineDeclaration::clone(p)).collect(),
            webhooks: state
                .webhooks
                .values()
                .map(|e| WebhookState {
                    definition: e.definition.clone(),
                    tags: e.tags.clone(),
                    token: e.token.clone(),
                    registered_with_third_party: e.registered,
                    last_triggered: last_triggered(e),
                    error_code: e.compiled.as_ref().err().map(|e| e.code().to_owned()),
                    error_message: e.compiled.as_ref().err().map(|e| e.message().to_owned()),
                })
                .collect(),
            next_token_key: Some(URL_SAFE_NO_PAD.encode(state.next_token_key)),
        }
    }

    /// Replaces the whole state with an exported one, all or nothing: the state must be one that
    /// this API could have produced. Refused, and nothing changes:
    /// - a pipeline that `put_pipeline` refuses, or one named twice (`ValidationException`);
    /// - more webhooks than the quota (`LimitExceededException`);
    /// - a webhook that `PutWebhook` refuses (its own error), a name or URL token given twice, a
    ///   token that is empty or not URL-safe, a negative `lastTriggered` (`ValidationException`);
    /// - a webhook that does not compile against its pipeline, unless the state records that
    ///   error's code in `errorCode` (it then loads with that error, as after `put_pipeline`);
    /// - a `nextTokenKey` that is not 32 bytes of base64url (`ValidationException`).
    ///
    /// Everything is checked and compiled before the write lock is taken.
    pub fn import_state(&self, imported: RegistryState) -> Result<(), Error> {
        let key = match &imported.next_token_key {
            None => self.read().next_token_key,
            Some(text) => {
                URL_SAFE_NO_PAD.decode(text).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok()).ok_or_else(
                    || Error::validation("nextTokenKey".to_owned(), "nextTokenKey is not 32 bytes of base64url"),
                )?
            }
        };
        let mut next = State::new(key);
        for pipeline in imported.pipelines {
            check_pipeline(&pipeline)?;
            if next.pipelines.insert(pipeline.name.clone(), Arc::new(pipeline)).is_some() {
                return Err(Error::validation("pipelines".to_owned(), "the state names a pipeline twice"));
            }
        }
        if imported.webhooks.len() > self.quota {
            return Err(Error::new(
                ErrorCode::LimitExceededException,
                None,
                format!(
                    "the state holds {} webhooks; the number of webhooks is limited to {}",
                    imported.webhooks.len(),
                    self.quota
                ),
            ));
        }
        for w in imported.webhooks {
            let input = PutWebhookInput { webhook: w.definition, tags: w.tags };
            input.validate()?;
            let name = input.webhook.name.clone();
            let shown = crate::error::escape(&name).into_owned();
            let compiled = match next.pipelines.get(&input.webhook.target_pipeline) {
                Some(pipeline) => compile(&input.webhook, pipeline).map(Arc::new),
                None => Err(pipeline_not_found(&input.webhook.target_pipeline)),
            };
            if let Err(e) = &compiled
                && w.error_code.as_deref() != Some(e.code())
            {
                return Err(Error::new(
                    e.kind(),
                    e.field().map(str::to_owned),
                    format!(
                        "webhook '{shown}' in the state does not compile and records no such error: {}",
                        e.message()
                    ),
                ));
            }
            if !is_url_token(&w.token) {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("webhook '{shown}' has a URL token that is empty or not URL-safe ([A-Za-z0-9_-])"),
                ));
            }
            if next.tokens.insert(w.token.clone(), name.clone()).is_some() {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("webhook '{shown}' reuses another's URL token"),
                ));
            }
            let last = match w.last_triggered {
                None => None,
                Some(secs) => Some(
                    std::time::Duration::try_from_secs_f64(secs)
                        .ok()
                        .and_then(|d| UNIX_EPOCH.checked_add(d))
                        .ok_or_else(|| {
                            Error::validation(
                                "webhooks".to_owned(),
                                format!("webhook '{shown}' has lastTriggered {secs}, which is not a time after 1970"),
                            )
                        })?,
                ),
            };
            let entry = Entry {
                revision: self.revisions.fetch_add(1, Ordering::Relaxed),
                definition: input.webhook,
                tags: input.tags,
                token: w.token,
                registered: w.registered_with_third_party,
                compiled,
                last_triggered: Arc::new(Mutex::new(last)),
            };
            if next.webhooks.insert(name, entry).is_some() {
                return Err(Error::validation(
                    "webhooks".to_owned(),
                    format!("the state names webhook '{shown}' twice"),
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

/// Model constraints of a pipeline as far as webhooks read it: its name, and a first stage.
fn check_pipeline(pipeline: &PipelineDeclaration) -> Result<(), Error> {
    let mut v = Violations::default();
    v.length("pipeline.name", &pipeline.name, 1, 100, false);
    v.name_pattern("pipeline.name", &pipeline.name);
    v.into_result()?;
    if pipeline.stages.is_empty() {
        return Err(Error::validation("pipeline.stages".to_owned(), "a pipeline needs at least one stage"));
    }
    Ok(())
}

fn find_pipeline<'s>(state: &'s State, definition: &WebhookDefinition) -> Result<&'s Arc<PipelineDeclaration>, Error> {
    state.pipelines.get(&definition.target_pipeline).ok_or_else(|| pipeline_not_found(&definition.target_pipeline))
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

/// The webhooks that target `pipeline`, in name order: name, revision, definition.
fn targets(state: &State, pipeline: &str) -> Vec<(String, u64, WebhookDefinition)> {
    state
        .webhooks
        .iter()
        .filter(|(_, e)| e.definition.target_pipeline == pipeline)
        .map(|(name, e)| (name.clone(), e.revision, e.definition.clone()))
        .collect()
}

type Compiled = Result<Arc<Webhook>, Error>;

fn compile_targets(
    targets: Vec<(String, u64, WebhookDefinition)>,
    pipeline: &PipelineDeclaration,
) -> Vec<(String, u64, Compiled)> {
    targets.into_iter().map(|(name, revision, d)| (name, revision, compile(&d, pipeline).map(Arc::new))).collect()
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
