//! The running service: configuration, shared state, routes, startup and shutdown.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};

use super::control::{self, ApiError, CONTENT_TYPE};
use super::executions::Runner;
use super::metrics::Metrics;
use super::sigv4::{self, AccessKey};
use super::store::{ChangeKind, Location, PipelineRow, Store, StoreError, WebhookRow};
use codepipeline_webhooks::DEFAULT_MAX_BODY_BYTES;
use codepipeline_webhooks::Tag;
use codepipeline_webhooks::registry::{
    ListTagsForResourceInput, PipelineDeclaration, Registry, RegistryState, TagResourceInput, UntagResourceInput,
    WebhookState,
};

/// How logs are written (to stderr).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The `serve` subcommand's options.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    /// The address to listen on (port 0: any free port; the bound address is printed on stdout).
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// The URL webhook URLs start with: `{public-url}/trigger?t=…&v=1` (default `http://{listen}`).
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Where the embedded SQLite database lives (one process; a second `serve` on the same
    /// directory is refused).
    #[arg(long, default_value = "./codepipeline-webhooks-data", value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The database instead of `--data-dir`: `postgres://USER:PASS@HOST:PORT/DB` (shared by many
    /// instances) or `sqlite:PATH`.
    #[arg(long, env = "DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The AWS region the service answers as (ARNs, SigV4 scope).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// The 12-digit account id in ARNs.
    #[arg(long, default_value = "123456789012")]
    pub account_id: String,
    /// Accept control-plane calls without SigV4 verification (local use only).
    #[arg(long)]
    pub no_auth: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Seconds an on-trigger program may run before it is killed and the execution fails.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub on_trigger_timeout: u64,
    /// How many on-trigger programs run at once (more wait their turn).
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub on_trigger_concurrency: usize,
    /// Seconds a request (its body included) may take to arrive.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub request_timeout: u64,
    /// Seconds between SIGTERM and SIGKILL when an on-trigger program's process group is ended
    /// (timeout, shutdown, restart after a crash).
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub on_trigger_grace: u64,
    /// The most executions that may wait for the on-trigger program (durable rows, over every
    /// instance); past it a delivery gets 503 with Retry-After.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub queue_max: usize,
    /// The budget of request bodies buffered in memory at once, in MiB; past it a new body waits
    /// 2 s for room, then gets 503 with Retry-After.
    #[arg(long, default_value_t = super::limits::DEFAULT_BODY_BUDGET_MIB, value_name = "MIB")]
    pub body_budget_mib: usize,
    /// How many bodies are evaluated at once, off the async workers (0: one per CPU).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub eval_threads: usize,
    /// How many of those one webhook may use at once (0: half of them, at least 1); more wait
    /// their turn, round-robin over the webhooks. A body of at most 64 KiB may borrow a slot past
    /// this share that no waiting evaluation may use.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub eval_per_webhook: usize,
    /// The program a trigger runs, with its arguments: the rest of the command line. No shell;
    /// the payload on stdin; `CODEPIPELINE_PIPELINE`, `CODEPIPELINE_WEBHOOK`,
    /// `CODEPIPELINE_EXECUTION_ID`, `GITHUB_EVENT`, `GITHUB_DELIVERY` in its environment.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, value_name = "PROGRAM [ARG]...")]
    pub on_trigger: Vec<String>,
    /// The console's listener and token.
    #[command(flatten)]
    pub console: super::console::ConsoleArgs,
    /// The delivery log's retention and body cap.
    #[command(flatten)]
    pub deliveries: super::deliveries::DeliveryArgs,
    /// The most webhooks the service holds (PutWebhook past it: LimitExceededException). The
    /// database counts over every instance; give each instance the same quota.
    #[arg(long, default_value_t = codepipeline_webhooks::registry::DEFAULT_WEBHOOK_QUOTA, value_name = "N")]
    pub webhook_quota: usize,
    /// The largest delivery body, in bytes (past it: 413). A body also needs room in
    /// `--body-budget-mib` (one larger than the whole budget gets 503).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Webhooks compare what an indefinite JsonPath selects as AWS does (a list never equals a
    /// matchEquals string, so such a filter never passes); without it, any selected element
    /// that equals passes. PutWebhook logs the compile warning either way.
    #[arg(long)]
    pub aws_exact: bool,
}

/// The resolved configuration of a running service.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The region.
    pub region: String,
    /// `--aws-exact`: indefinite JsonPaths compared as AWS compares them.
    pub aws_exact: bool,
    /// The account id.
    pub account_id: String,
    /// The base of webhook URLs.
    pub public_url: String,
    /// Where the database is.
    pub database: Location,
    /// Accepted access keys; empty with `--no-auth`.
    pub keys: Vec<AccessKey>,
    /// Whether SigV4 is checked.
    pub auth: bool,
    /// The on-trigger program, if any.
    pub on_trigger: Vec<String>,
    /// Its time limit.
    pub on_trigger_timeout: Duration,
    /// How many run at once.
    pub on_trigger_concurrency: usize,
    /// How long a delivery's body may take.
    pub read_timeout: Duration,
    /// The body limit of a delivery.
    pub max_body_bytes: usize,
    /// `--webhook-quota`.
    pub webhook_quota: usize,
    /// The largest control-plane request body.
    pub max_api_body_bytes: usize,
    /// Between SIGTERM and SIGKILL for a program's process group.
    pub on_trigger_grace: Duration,
    /// The most executions waiting for the program.
    pub queue_max: usize,
    /// The budget of buffered body bytes.
    pub body_budget_bytes: usize,
    /// Evaluations at once.
    pub eval_threads: usize,
    /// Evaluations at once for one webhook.
    pub eval_per_webhook: usize,
    /// The delivery log's retention and body cap.
    pub deliveries: super::deliveries::DeliveryArgs,
}

/// How often each instance polls the change feed (changes reach its data plane within this, and
/// its control plane at once: every call catches up first).
const POLL_EVERY: Duration = Duration::from_millis(200);
/// How long change-feed entries are kept.
const KEEP_CHANGES_SECS: f64 = 3600.0;

/// The running service's shared state. The database is the source of truth; `registry` is this
/// instance's cache of it (compiled webhooks, pipelines), kept current through the change feed.
pub(crate) struct App {
    pub(crate) config: ServeConfig,
    pub(crate) registry: Registry,
    pub(crate) store: Arc<Store>,
    pub(crate) recorder: super::executions::Recorder,
    pub(crate) deliveries: super::deliveries::DeliveryLog,
    pub(crate) metrics: Metrics,
    pub(crate) runner: Option<Runner>,
    /// The budget of buffered request bodies.
    pub(crate) budget: super::limits::BodyBudget,
    /// The evaluation pool.
    pub(crate) pool: super::pool::FairPool,
    /// This process's id in the `instances` table.
    pub(crate) instance: String,
    /// The change feed's position this cache has applied; held while catching up.
    applied: tokio::sync::Mutex<i64>,
}

/// Seconds since the Unix epoch, with milliseconds.
pub(crate) fn now() -> f64 {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_millis() as f64) / 1000.0
}

/// A random (version 4) UUID.
pub(crate) fn uuid() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).expect("the operating system's random source is available");
    uuid_text(b, 4)
}

/// An execution id: a version 7 UUID (RFC 9562), the time in milliseconds in its first 48 bits
/// and 74 random bits after. Ids made later sort after, so the executions' unique index on the
/// id grows at its end: a random (version 4) id wrote a page anywhere in it for each trigger.
pub(crate) fn execution_id() -> String {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b[6..]).expect("the operating system's random source is available");
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    b[..6].copy_from_slice(&(millis as u64).to_be_bytes()[2..]);
    uuid_text(b, 7)
}

/// 16 bytes as the text of a UUID of `version` (its version and variant bits set).
fn uuid_text(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    // 8-4-4-4-12 hex digits encoded in place between the dashes (hex::encode and format! were
    // four allocations and a formatter pass, on every answer).
    let mut text = [b'-'; 36];
    for (bytes, at) in [(0..4, 0), (4..6, 9), (6..8, 14), (8..10, 19), (10..16, 24)] {
        let digits = &mut text[at..at + 2 * bytes.len()];
        let _ = hex::encode_to_slice(&b[bytes], digits);
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Why the service did not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is refused.
    #[error("{0}")]
    Config(String),
    /// The database cannot be opened or loaded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Listening failed.
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
}

fn corrupt(what: &str, name: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("the stored {what} '{name}' does not load: {e}"))
}

/// Whether two states of one webhook are the same webhook (what the registry compiles and
/// answers with), apart from what the database keeps elsewhere or the registry derives.
fn same_webhook(a: &WebhookState, b: &WebhookState) -> bool {
    let strip =
        |w: &WebhookState| WebhookState { last_triggered: None, error_code: None, error_message: None, ..w.clone() };
    strip(a) == strip(b)
}

impl App {
    /// Loads a pipeline's latest row (or its absence) into the cache; webhooks that target it are
    /// recompiled only when it changed.
    pub(crate) fn load_pipeline(&self, name: &str, row: Option<&PipelineRow>) -> Result<(), StoreError> {
        match row {
            Some(row) => {
                let p: PipelineDeclaration =
                    serde_json::from_str(&row.declaration).map_err(|e| corrupt("pipeline", name, e))?;
                if self.registry.pipeline(name).as_ref() != Some(&p) {
                    self.registry.put_pipeline(p).map_err(|e| corrupt("pipeline", name, e))?;
                }
                self.load_pipeline_tags(name, &row.tags)?;
            }
            None => {
                let _ = self.registry.delete_pipeline(name);
            }
        }
        Ok(())
    }

    /// Puts a pipeline's stored tags (JSON text) in the cache, in place of those it has.
    pub(crate) fn load_pipeline_tags(&self, name: &str, tags: &str) -> Result<(), StoreError> {
        let tags: Vec<Tag> = serde_json::from_str(tags).map_err(|e| corrupt("pipeline tags of", name, e))?;
        let resource_arn = self.registry.pipeline_arn(name);
        let list = ListTagsForResourceInput { resource_arn: resource_arn.clone(), next_token: None, max_results: None };
        let current = self.registry.list_tags_for_resource(list).map(|o| o.tags).unwrap_or_default();
        if current == tags {
            return Ok(());
        }
        if !current.is_empty() {
            let tag_keys = current.into_iter().map(|t| t.key).collect();
            self.registry
                .untag_resource(UntagResourceInput { resource_arn: resource_arn.clone(), tag_keys })
                .map_err(|e| corrupt("pipeline tags of", name, e))?;
        }
        if !tags.is_empty() {
            self.registry
                .tag_resource(TagResourceInput { resource_arn, tags })
                .map_err(|e| corrupt("pipeline tags of", name, e))?;
        }
        Ok(())
    }

    /// Loads a webhook's row (or its absence) into the cache; compiled again only when it changed.
    pub(crate) fn load_webhook(&self, name: &str, row: Option<&WebhookRow>) -> Result<(), StoreError> {
        match row {
            Some(row) => {
                let mut w: WebhookState = serde_json::from_str(&row.state).map_err(|e| corrupt("webhook", name, e))?;
                w.last_triggered = row.last_triggered;
                if self.registry.export_webhook(name).is_some_and(|cached| same_webhook(&cached, &w)) {
                    return Ok(());
                }
                self.registry.import_webhook(w).map_err(|e| corrupt("webhook", name, e))?;
            }
            None => {
                self.registry.remove_webhook(name);
            }
        }
        Ok(())
    }

    /// Every webhook's `lastTriggered`, from the database (the latest start over every
    /// instance): what ListWebhooks and the console show. The cache is not stamped by the data
    /// plane, which evaluates with `evaluate_resolved`: a repeated delivery id, a ping or a full
    /// queue passes the filters and starts nothing.
    pub(crate) async fn last_triggered(&self) -> Result<std::collections::HashMap<String, f64>, StoreError> {
        Ok(self.store.last_triggered().await?.into_iter().collect())
    }

    /// After a write that failed: the cache reloads the row from the database, so that it shows
    /// only what was committed.
    pub(crate) async fn reload(&self, kind: ChangeKind, name: &str) {
        let result = match kind {
            ChangeKind::Pipeline => match self.store.pipeline(name, None).await {
                Ok(row) => self.load_pipeline(name, row.as_ref()),
                Err(e) => Err(e),
            },
            ChangeKind::Webhook => match self.store.webhook(name).await {
                Ok(row) => self.load_webhook(name, row.as_ref()),
                Err(e) => Err(e),
            },
        };
        if let Err(e) = result {
            tracing::error!(error = %e, "reloading from the store failed");
        }
    }

    /// Catches the cache up with the change feed: the rows that changed since the last call are
    /// loaded (never the whole state, unless this instance fell behind the feed's pruning).
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let mut applied = self.applied.lock().await;
        loop {
            let changes = self.store.changes_since(*applied, 500).await?;
            // The feed has no gaps, and pruning keeps its last entry: a first entry past the
            // next one means entries this instance never saw were pruned. Reload everything.
            if changes.first().is_some_and(|c| c.seq > *applied + 1) {
                let seq = self.store.change_seq().await?;
                self.load_all().await?;
                *applied = seq;
                continue;
            }
            let Some(last) = changes.last().map(|c| c.seq) else { return Ok(()) };
            let mut seen = std::collections::HashSet::new();
            for change in &changes {
                if !seen.insert((change.kind, change.name.as_str())) {
                    continue;
                }
                match change.kind {
                    ChangeKind::Pipeline => {
                        let row = self.store.pipeline(&change.name, None).await?;
                        self.load_pipeline(&change.name, row.as_ref())?;
                    }
                    ChangeKind::Webhook => {
                        let row = self.store.webhook(&change.name).await?;
                        self.load_webhook(&change.name, row.as_ref())?;
                    }
                }
            }
            *applied = last;
        }
    }

    /// Loads every pipeline and webhook (at start, or after falling behind the feed), and drops
    /// from the cache what the database no longer has.
    async fn load_all(&self) -> Result<(), StoreError> {
        let pipelines = self.store.latest_pipelines().await?;
        let names: std::collections::HashSet<&str> = pipelines.iter().map(|p| p.name.as_str()).collect();
        for row in &pipelines {
            self.load_pipeline(&row.name, Some(row))?;
        }
        for name in self.registry.pipeline_names() {
            if !names.contains(name.as_str()) {
                self.load_pipeline(&name, None)?;
            }
        }
        let webhooks = self.store.webhooks().await?;
        let names: std::collections::HashSet<&str> = webhooks.iter().map(|w| w.name.as_str()).collect();
        for name in self.registry.webhook_names() {
            if !names.contains(name.as_str()) {
                self.registry.remove_webhook(&name);
            }
        }
        for row in &webhooks {
            self.load_webhook(&row.name, Some(row))?;
        }
        Ok(())
    }
}

/// Polls the change feed, beats this instance's heartbeat, stops the executions of instances
/// that are gone and prunes the feed, until the process ends.
async fn housekeeping(app: Arc<App>) {
    let mut tick: u64 = 0;
    loop {
        tokio::time::sleep(POLL_EVERY).await;
        tick += 1;
        if let Err(e) = app.sync().await {
            tracing::warn!(error = %e, "catching up with the change feed failed");
        }
        if tick.is_multiple_of(5)
            && let Err(e) = app.store.heartbeat(&app.instance, std::process::id(), now()).await
        {
            tracing::warn!(error = %e, "heartbeat failed");
        }
        if tick.is_multiple_of(5)
            && let Err(e) = app.store.probe(now()).await
        {
            tracing::warn!(error = %e, "the store's write probe failed");
        }
        // Also 1 s after the start: an instance killed just before this one started may still
        // have held its liveness lock at startup (its database session ends a moment later).
        if tick == 5 || tick.is_multiple_of(50) {
            match app.store.stop_orphans(&app.instance, now()).await {
                Ok(orphans) => {
                    if orphans.stopped > 0 {
                        tracing::warn!(
                            executions = orphans.stopped,
                            "executions of an instance that stopped marked Stopped"
                        );
                    }
                    end_orphan_groups(orphans.groups, app.config.on_trigger_grace);
                }
                Err(e) => tracing::warn!(error = %e, "looking for orphaned executions failed"),
            }
        }
        if tick.is_multiple_of(300)
            && let Err(e) = app.store.prune_changes(now() - KEEP_CHANGES_SECS).await
        {
            tracing::warn!(error = %e, "pruning the change feed failed");
        }
    }
}

/// Ends, in the background, the process groups that the on-trigger programs of a dead server
/// left (each only if it still holds a process of that execution; a group it had not recorded
/// yet is looked for by the execution's environment).
fn end_orphan_groups(groups: Vec<(String, Option<i64>)>, grace: Duration) {
    for (execution, pgid) in groups {
        let Ok(pgid) = pgid.map(i32::try_from).transpose() else { continue };
        tokio::spawn(async move {
            super::procgroup::end_orphan_group(pgid, &execution, grace).await;
        });
    }
}

/// Resolves the options and the environment into a configuration (the listen address is needed
/// for the default public URL).
pub fn config(args: &ServeArgs, bound: SocketAddr) -> Result<ServeConfig, ServeError> {
    let id = std::env::var("AWS_ACCESS_KEY_ID").ok().filter(|v| !v.is_empty());
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").ok().filter(|v| !v.is_empty());
    let keys = match (id, secret, args.no_auth) {
        (_, _, true) => Vec::new(),
        (Some(id), Some(secret), false) => vec![AccessKey { id, secret }],
        (None, None, false) => {
            return Err(ServeError::Config(
                "refusing to start: no credentials. Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the key pair \
                 clients sign with), or pass --no-auth to accept unsigned control-plane calls (local use only)"
                    .into(),
            ));
        }
        (Some(_), None, false) => {
            return Err(ServeError::Config(
                "refusing to start: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
            ));
        }
        (None, Some(_), false) => {
            return Err(ServeError::Config(
                "refusing to start: AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
            ));
        }
    };
    let public_url = args.public_url.clone().unwrap_or_else(|| format!("http://{bound}"));
    let public_url = public_url.trim_end_matches('/').to_owned();
    // The rest of the URL's rules (a host, no query or fragment) are the registry's, checked
    // when it is built with this base.
    if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
        return Err(ServeError::Config(format!(
            "--public-url must start with http:// or https://, not '{public_url}'"
        )));
    }
    if args.on_trigger.first().is_some_and(|p| p.is_empty()) {
        return Err(ServeError::Config("--on-trigger needs a program".into()));
    }
    if let Some(program) = args.on_trigger.first()
        && !runnable(program)
    {
        // Refused now, not at the first trigger (whose execution would fail).
        return Err(ServeError::Config(format!(
            "--on-trigger: '{program}' is not an executable file{}",
            if program.contains('/') { "" } else { " on PATH" }
        )));
    }
    let options = serve_options();
    for arg in args.on_trigger.iter().skip(1) {
        if let Some(option) = serve_option(arg, &options) {
            tracing::warn!(
                argument = %arg,
                "--on-trigger takes the rest of the command line: '--{option}' goes to the program, not to serve \
                 (put --on-trigger last)"
            );
        }
    }
    let eval_threads = match args.eval_threads {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let eval_per_webhook = match args.eval_per_webhook {
        0 => (eval_threads / 2).max(1),
        n => n.min(eval_threads),
    };
    let database = database_of(args);
    Ok(ServeConfig {
        region: args.region.clone(),
        aws_exact: args.aws_exact,
        account_id: args.account_id.clone(),
        public_url,
        database,
        auth: !args.no_auth,
        keys,
        on_trigger: args.on_trigger.clone(),
        on_trigger_timeout: Duration::from_secs(args.on_trigger_timeout.max(1)),
        on_trigger_concurrency: args.on_trigger_concurrency.max(1),
        read_timeout: Duration::from_secs(args.request_timeout.max(1)),
        max_body_bytes: args.max_body_bytes.max(1),
        webhook_quota: args.webhook_quota,
        max_api_body_bytes: 1024 * 1024,
        on_trigger_grace: Duration::from_secs(args.on_trigger_grace),
        queue_max: args.queue_max.max(1),
        body_budget_bytes: args.body_budget_mib.max(1).saturating_mul(1024 * 1024),
        eval_threads,
        eval_per_webhook,
        deliveries: args.deliveries.clone(),
    })
}

async fn build_app(config: ServeConfig) -> Result<Arc<App>, ServeError> {
    let store = Arc::new(Store::open(&config.database).await?);
    let instance = uuid();
    store.hold_instance_lock(&instance).await?;
    // SQLite: this process holds the lock, so whatever ran before is gone. Postgres: the
    // instances whose liveness lock is free.
    let orphans = store.stop_orphans(&instance, now()).await?;
    if orphans.stopped > 0 {
        tracing::warn!(executions = orphans.stopped, "executions left running by a previous process marked Stopped");
    }
    end_orphan_groups(orphans.groups, config.on_trigger_grace);
    if config.on_trigger.is_empty() && store.backend() == super::store::Backend::Sqlite {
        // One process, and it has no program: what waits would wait for ever.
        let n = store.stop_queued(now()).await?;
        if n > 0 {
            tracing::warn!(executions = n, "queued executions marked Stopped: no --on-trigger program");
        }
    }
    store.heartbeat(&instance, std::process::id(), now()).await?;
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh).map_err(|e| ServeError::Config(format!("no random source: {e}")))?;
    let key = {
        use base64::Engine as _;
        store.next_token_key(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(fresh)).await?
    };
    let registry = Registry::builder()
        .region(config.region.clone())
        .account_id(config.account_id.clone())
        .base_url(config.public_url.clone())
        .webhook_options(webhook_options(&config))
        .webhook_quota(config.webhook_quota)
        .state(RegistryState { next_token_key: Some(key), ..RegistryState::default() })
        .build()
        .map_err(|e| match e.field() {
            Some("baseUrl") => ServeError::Config(format!("--public-url: {}", e.message())),
            _ => ServeError::Config(format!("{}: {}", e.code(), e.message())),
        })?;
    let runner = config.on_trigger.first().map(|_| {
        Runner::new(
            config.on_trigger.clone(),
            config.on_trigger_timeout,
            config.on_trigger_grace,
            config.on_trigger_concurrency,
        )
    });
    let budget = super::limits::BodyBudget::new(config.body_budget_bytes);
    let pool = super::pool::FairPool::new(config.eval_threads, config.eval_per_webhook);
    // The feed's position before the load: what changes meanwhile is applied again (loading a
    // row is idempotent).
    let seq = store.change_seq().await?;
    let deliveries = super::deliveries::DeliveryLog::start(store.clone(), &config.deliveries);
    let app = App {
        config,
        deliveries,
        registry,
        recorder: super::executions::Recorder::start(store.clone()),
        store,
        metrics: Metrics::default(),
        runner,
        budget,
        pool,
        instance,
        applied: tokio::sync::Mutex::new(seq),
    };
    app.load_all().await?;
    Ok(Arc::new(app))
}

/// Whether `program` names an executable file: a path as given, a bare name on `PATH`.
fn runnable(program: &str) -> bool {
    let executable = |path: &std::path::Path| {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        }
        #[cfg(not(unix))]
        {
            path.is_file()
        }
    };
    if program.contains('/') {
        return executable(std::path::Path::new(program));
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| executable(&dir.join(program))))
}

/// The long names of `serve`'s options: an argument after `--on-trigger` (which takes the rest
/// of the line) that is one of them was most likely meant for serve.
fn serve_options() -> Vec<String> {
    let command = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
    command.get_arguments().filter_map(clap::Arg::get_long).map(str::to_owned).collect()
}

/// The serve option (of `options`, its long name) that `arg` is, if any: `--listen`,
/// `--data-dir=/x`.
fn serve_option<'a>(arg: &'a str, options: &[String]) -> Option<&'a str> {
    let name = arg.strip_prefix("--")?.split('=').next()?;
    options.iter().any(|o| o == name).then_some(name)
}

/// How every webhook of this service is compiled: the registry's copies and the console's
/// test against the current definition alike, so that a dry run gives the data plane's verdict.
pub(crate) fn webhook_options(config: &ServeConfig) -> codepipeline_webhooks::WebhookOptions {
    codepipeline_webhooks::Webhook::options().aws_exact(config.aws_exact).max_body_bytes(config.max_body_bytes)
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", post(control_plane))
        // `serve_connections` sends POST /trigger to the data plane before the router, so in the
        // binary this route answers only the other methods (405 with `Allow: POST`); its POST
        // handler serves the router called on its own (with `ConnectInfo` set, as
        // `serve_connections` sets it for every request it routes).
        .route(
            "/trigger",
            post(|State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request| {
                super::data::trigger(app, peer, request)
            }),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::map_response(request_id))
        .with_state(app)
}

/// A request id: unique (each thread's own random base and a counter), not secret, and made
/// without a system call (a `getrandom` per answer was one more syscall on every delivery).
fn request_uuid() -> String {
    // Each thread counts from a random base of its own: a counter all workers shared was a
    // write to one cache line that every request of every core made.
    thread_local! {
        static NEXT: std::cell::Cell<u128> = std::cell::Cell::new({
            let mut b = [0u8; 16];
            getrandom::fill(&mut b).expect("the operating system's random source is available");
            u128::from_le_bytes(b)
        });
    }
    let n = NEXT.with(|next| {
        let n = next.get();
        next.set(n.wrapping_add(1));
        n
    });
    uuid_text(n.to_be_bytes(), 4)
}

async fn request_id(mut response: Response) -> Response {
    set_request_id(&mut response);
    response
}

/// `x-amzn-RequestId`, parsed once.
static X_AMZN_REQUESTID: HeaderName = HeaderName::from_static("x-amzn-requestid");

fn set_request_id(response: &mut Response) {
    if let Ok(v) = HeaderValue::try_from(request_uuid()) {
        response.headers_mut().insert(X_AMZN_REQUESTID.clone(), v);
    }
}

/// Ready when the store answers and its last write (the probe every second, or any other) did
/// not fail within the last 10 s; otherwise 503 and the reason.
async fn healthz(State(app): State<Arc<App>>) -> Response {
    if !app.store.healthy().await {
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable: it does not answer\n").into_response();
    }
    match app.store.write_error() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("store cannot write: {e}\n")).into_response(),
    }
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], app.metrics.render()).into_response()
}

fn api_error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (status, [(header::CONTENT_TYPE, CONTENT_TYPE)], e.body()).into_response();
    if let Ok(v) = HeaderValue::from_str(e.code.as_str()) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

/// A control-plane call, bounded as a whole (twice `--request-timeout`: its body, then its
/// database work); past it, AWS's JSON error for a timeout. A delivery bounds each of its waits
/// itself (its body, its evaluation slot, its database write), which costs no timer when nothing
/// waits (a timer per delivery was about a tenth of its CPU).
async fn control_plane(
    State(app): State<Arc<App>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let limit = app.config.read_timeout * 2;
    let op_name =
        control::operation_name(headers.get("x-amz-target").and_then(|v| v.to_str().ok())).unwrap_or("unknown");
    match tokio::time::timeout(limit, control_plane_call(app.clone(), op_name, method, uri, headers, body)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(operation = op_name, "control-plane call not done in time");
            app.metrics.api_call(op_name, 408);
            api_error(&ApiError {
                status: 408,
                code: control::ApiCode::Service("RequestTimeoutException"),
                message: format!("the call did not complete within {} s", limit.as_secs_f64()),
            })
        }
    }
}

/// `op_name`: the operation `X-Amz-Target` names (`unknown` when it names none), for metrics
/// and logs.
async fn control_plane_call(
    app: Arc<App>,
    op_name: &'static str,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    use super::limits::BodyError;
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    // Before a byte of the body is read: the credentials (present, well formed, a known key, the
    // date within the skew), then the declared length. A stranger's body is never buffered.
    if app.config.auth
        && let Err(e) = sigv4::precheck(&app.config.keys, &app.config.region, &headers, SystemTime::now())
    {
        tracing::info!(operation = op_name, code = e.code, "request not authenticated");
        let e = ApiError { status: 403, code: control::ApiCode::Service(e.code), message: e.message };
        app.metrics.api_call(op_name, 403);
        return api_error(&e);
    }
    let limit = app.config.max_api_body_bytes;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = || ApiError {
        status: 413,
        code: control::ApiCode::Service("SerializationException"),
        message: format!("the request body is over the limit of {limit} bytes"),
    };
    if declared.is_some_and(|n| n > limit as u64) {
        app.metrics.api_call(op_name, 413);
        return api_error(&too_large());
    }
    let deadline = tokio::time::Instant::now() + app.config.read_timeout;
    let (body, _held): (Bytes, _) = match app.budget.read(body, limit, declared, deadline).await {
        Ok(read) => read,
        Err(why) => {
            let e = match why {
                BodyError::TooLarge => too_large(),
                BodyError::Busy => ApiError {
                    status: 503,
                    code: control::ApiCode::Service("ThrottlingException"),
                    message: "the server is holding too many request bodies; retry later".into(),
                },
                BodyError::Timeout => ApiError {
                    status: 408,
                    code: control::ApiCode::Service("RequestTimeoutException"),
                    message: "the request body did not arrive in time".into(),
                },
                BodyError::Broken => ApiError {
                    status: 400,
                    code: control::ApiCode::Service("SerializationException"),
                    message: "the request body was cut off".into(),
                },
            };
            app.metrics.api_call(op_name, e.status);
            let mut response = api_error(&e);
            if why == BodyError::Busy {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(super::limits::RETRY_AFTER_SECS));
            }
            return response;
        }
    };
    if app.config.auth {
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        if let Err(e) = sigv4::verify(
            &app.config.keys,
            &app.config.region,
            method.as_str(),
            path,
            &headers,
            &body,
            SystemTime::now(),
        ) {
            tracing::info!(operation = op_name, code = e.code, "request not authenticated");
            let e = ApiError { status: 403, code: control::ApiCode::Service(e.code), message: e.message };
            app.metrics.api_call(op_name, 403);
            return api_error(&e);
        }
    }
    let result = match control::decode(target, &body) {
        Ok(op) => super::api::execute(&app, op).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(value) => {
            app.metrics.api_call(op_name, 200);
            tracing::info!(operation = op_name, status = 200, "api call");
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
        }
        Err(e) => {
            app.metrics.api_call(op_name, e.status);
            tracing::info!(operation = op_name, status = e.status, code = %e.code, "api call failed");
            api_error(&e)
        }
    }
}

/// Writes out the waiting log lines, 2 s at most (stderr may be a stuck pipe): past it the
/// process exits without them.
fn flush_log(guard: super::logbuf::Guard) {
    guard.finish(Duration::from_secs(2));
}

/// The log's writer, for the dropped-lines count (set once logging starts).
static LOG: std::sync::OnceLock<super::logbuf::LogWriter> = std::sync::OnceLock::new();

/// The log lines dropped so far because stderr did not keep up (0 before logging starts).
pub(crate) fn log_lines_dropped() -> u64 {
    LOG.get().map_or(0, super::logbuf::LogWriter::dropped)
}

/// Logs to stderr through a thread of its own ([`logbuf`](super::logbuf)): a line is
/// formatted on the thread that logs it and appended to a bounded buffer, which that thread
/// writes in one call for all the lines that gathered; a flood of deliveries never waits for
/// stderr. The guard writes out what waits.
fn init_logging(format: LogFormat) -> super::logbuf::Guard {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = super::logbuf::start(std::io::stderr());
    let _ = LOG.set(writer.clone());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    guard
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Accepts connections until SIGTERM or SIGINT, then lets open requests finish (10 s at most).
/// HTTP/1.1 with a header read timeout (hyper's, which needs a timer; `axum::serve` sets none), so
/// a client that sends its headers slowly cannot hold a connection; bodies are bounded by the
/// handlers and the request timeout. With `data_plane`, `POST /trigger` goes to
/// [`super::data::trigger`] directly and everything else to `router`.
pub(crate) async fn serve_connections(
    listener: tokio::net::TcpListener,
    router: Router,
    data_plane: Option<Arc<App>>,
    header_timeout: Duration,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;

    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).keep_alive(true);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (router, data_plane) = (router.clone(), data_plane.clone());
                let service = hyper::service::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                    // One clone a request, of what serves it: each clone and its drop is a write
                    // to a reference count that every worker's requests share.
                    let path = request.uri().path();
                    let to_data_plane = data_plane.as_ref().filter(|app| {
                        request.method() == Method::POST && (path == "/trigger" || path == app.registry.trigger_path())
                    });
                    let served = match to_data_plane {
                        Some(app) => Ok(app.clone()),
                        None => Err(router.clone()),
                    };
                    async move {
                        match served {
                            Ok(app) => {
                                let mut response = super::data::trigger(app, peer, request).await;
                                set_request_id(&mut response);
                                Ok::<_, std::convert::Infallible>(response)
                            }
                            Err(router) => {
                                request.extensions_mut().insert(ConnectInfo(peer));
                                tower::ServiceExt::oneshot(router, request).await
                            }
                        }
                    }
                });
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 10 s after the shutdown signal: closing them");
    }
}

/// Where `args` put the database: `--database-url` (or `DATABASE_URL`), else `--data-dir`.
fn database_of(args: &ServeArgs) -> Location {
    match args.database_url.as_deref().filter(|u| !u.is_empty()) {
        Some(url) => Location::Url(url.to_owned()),
        None => Location::DataDir(args.data_dir.clone()),
    }
}

/// Runs the service until SIGTERM or SIGINT: binds, prints `listening on http://ADDR` on stdout,
/// serves, and shuts down gracefully.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        // The port is taken: when the data dir is locked too, another serve holds both, and
        // the lock says which process it is.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(match super::store::held_elsewhere(&database_of(&args)) {
                Some(held) => ServeError::Config(format!("{}: {held}", args.listen)),
                None => e.into(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let bound = listener.local_addr()?;
    let config = config(&args, bound)?;
    let console = super::console::bind(&args.console).await?;
    if !config.auth {
        tracing::warn!("--no-auth: control-plane calls are not authenticated");
    }
    let app = build_app(config).await?;
    let poller = tokio::spawn(housekeeping(app.clone()));
    tracing::info!(address = %bound, public_url = %app.config.public_url, database = %app.config.database, instance = %app.instance, "listening");
    let console = match console {
        Some(console) => {
            let addr = console.addr()?;
            tracing::info!(address = %addr, "console listening");
            Some((addr, tokio::spawn(super::console::serve(app.clone(), console))))
        }
        None => None,
    };
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{bound}");
        if let Some((addr, _)) = &console {
            let _ = writeln!(out, "console on http://{addr}");
        }
        let _ = out.flush();
    }
    if let Some(runner) = &app.runner {
        runner.start(app.clone());
    }
    serve_connections(listener, router(app.clone()), Some(app.clone()), app.config.read_timeout).await;
    if let Some(runner) = &app.runner {
        runner.shutdown().await;
    }
    poller.abort();
    if let Some((_, task)) = console {
        task.abort();
    }
    app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The `serve` subcommand: a multi-threaded runtime around [`run`]. Exit code 0 after a graceful
/// shutdown, 2 when the service refuses to start.
pub fn main(args: ServeArgs) -> ExitCode {
    let log = init_logging(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            flush_log(log);
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(run(args));
    // Bounded: a blocking task still running (the evaluation of a large body) is left behind.
    runtime.shutdown_timeout(Duration::from_secs(5));
    // The queued log lines first, so that the error below is the last line.
    flush_log(log);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codepipeline-webhooks serve: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn on_trigger_programs_and_swallowed_options() {
        assert!(super::runnable("sh"), "on PATH");
        assert!(super::runnable("/bin/sh"));
        assert!(!super::runnable("/no/such/program"));
        assert!(!super::runnable("no-such-program-on-path"));
        assert!(!super::runnable("/etc/passwd"), "a file, not executable");
        let options = super::serve_options();
        assert_eq!(super::serve_option("--listen", &options), Some("listen"));
        assert_eq!(super::serve_option("--data-dir=/x", &options), Some("data-dir"));
        assert_eq!(super::serve_option("--verbose", &options), None);
        assert_eq!(super::serve_option("-v", &options), None);
    }

    #[test]
    fn uuid_text_is_rfc_9562s_form() {
        let b: [u8; 16] = std::array::from_fn(|i| (i as u8) * 0x11);
        assert_eq!(super::uuid_text(b, 4), "00112233-4455-4677-8899-aabbccddeeff");
        assert_eq!(super::uuid_text([0xff; 16], 7), "ffffffff-ffff-7fff-bfff-ffffffffffff");
    }

    #[test]
    fn request_ids_are_distinct_v4_uuids() {
        let ids: Vec<String> = (0..1000).map(|_| super::request_uuid()).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        for id in &ids {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('4') && matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
        }
    }

    #[test]
    fn execution_ids_are_v7_uuids_in_time_order() {
        let before = super::now();
        let first = super::execution_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let ids: Vec<String> = (0..1000).map(|_| super::execution_id()).collect();
        for id in &ids {
            let parts: Vec<&str> = id.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
            assert!(parts[2].starts_with('7') && matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{id}");
            assert!(*id > first, "made later, sorts after: {id} vs {first}");
        }
        // The first 48 bits are the time in milliseconds.
        let millis = u64::from_str_radix(&first.replace('-', "")[..12], 16).unwrap();
        assert!((millis as f64 / 1000.0 - before).abs() < 1.0, "{first} at {before}");
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
    }
}
