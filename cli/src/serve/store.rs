//! Persistence: the one module that talks to the database, through sqlx's `Any` driver, so that
//! every query is written once for both backends: embedded SQLite (the default, under
//! `--data-dir`, WAL, one process, locked) and Postgres (`--database-url postgres://…`, shared by
//! many instances). The schema is versioned migrations (`cli/migrations/{sqlite,postgres}`), run
//! at start.
//!
//! The database is the source of truth. Every method writes before it returns, so a caller that
//! answers after it has nothing acknowledged to lose on a restart or `kill -9`. Writes of the
//! control plane are transactions ([`Store::write`]): on SQLite `BEGIN IMMEDIATE`, on Postgres a
//! transaction that first takes a lock on the one pipeline or webhook it writes. Each one appends
//! to the change feed ([`Store::changes_since`]), which every instance polls to refresh its cache
//! of compiled webhooks.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use super::dedupe::{SEEN_MAX, SeenIds, Window};
use super::modes::ExecutionMode;

/// The SQLite database's file name under `--data-dir`.
pub const SQLITE_FILE: &str = "codepipeline-webhooks.sqlite3";
/// The lock file's name under `--data-dir` (beside the database for `sqlite:PATH`: `PATH.lock`).
pub const LOCK_FILE: &str = "serve.lock";

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded SQLite database in this directory.
    DataDir(PathBuf),
    /// A database URL: `sqlite:PATH` or `postgres://USER:PASS@HOST:PORT/DB`.
    Url(String),
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::DataDir(dir) => f.debug_tuple("DataDir").field(dir).finish(),
            // The URL may carry a password.
            Location::Url(url) => f.debug_tuple("Url").field(&redact_url(url)).finish(),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::DataDir(dir) => write!(f, "{}", dir.display()),
            Location::Url(url) => f.write_str(&redact_url(url)),
        }
    }
}

/// A database URL with its password shown as `****`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{scheme}://{user}:****@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// Which database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite: one process.
    Sqlite,
    /// Postgres: many instances.
    Postgres,
}

/// A stored pipeline version.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineRow {
    /// The pipeline's name.
    pub name: String,
    /// Its version, from 1.
    pub version: i64,
    /// The declaration as given, with `version` set, as JSON text.
    pub declaration: String,
    /// When version 1 was created, seconds since the Unix epoch.
    pub created: f64,
    /// When this version was written, seconds since the Unix epoch.
    pub updated: f64,
    /// The pipeline's tags, as JSON text (an array of `{key, value}`; the same on every version).
    pub tags: String,
}

/// A stored webhook: the registry's exported state of it (secret and URL token included).
#[derive(Clone, PartialEq)]
pub struct WebhookRow {
    /// The webhook's name.
    pub name: String,
    /// Its URL token.
    pub token: String,
    /// Its `WebhookState` as JSON text.
    pub state: String,
    /// When a delivery last started its pipeline, seconds since the Unix epoch (the latest over
    /// every instance).
    pub last_triggered: Option<f64>,
}

impl std::fmt::Debug for WebhookRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The state holds the secret and the URL token.
        f.debug_struct("WebhookRow").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A pipeline execution started by a webhook.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecutionRow {
    /// Insertion order, for listing newest first (set by the database).
    pub seq: i64,
    /// The execution id (a UUID).
    pub id: String,
    /// The pipeline.
    pub pipeline: String,
    /// The pipeline version it ran.
    pub pipeline_version: i64,
    /// `InProgress`, `Succeeded`, `Failed` or `Stopped`.
    pub status: String,
    /// Why, when it did not succeed.
    pub status_summary: Option<String>,
    /// The ARN of the webhook that started it.
    pub webhook_arn: String,
    /// Seconds since the Unix epoch.
    pub start_time: f64,
    /// Seconds since the Unix epoch.
    pub last_update_time: f64,
    /// `Webhook` or `StartPipelineExecution`.
    pub trigger_type: String,
    /// Its `sourceRevisions`, as JSON text (an array).
    pub source_revisions: String,
    /// StopPipelineExecution's `reason`, once a call stopped it.
    pub stop_reason: Option<String>,
}

/// One trigger to record.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerRecord {
    /// The webhook's name.
    pub webhook: String,
    /// `X-GitHub-Delivery`, when sent.
    pub delivery: Option<String>,
    /// A delivery id seen after this time (seconds since the Unix epoch) is a duplicate.
    pub dedupe_after: f64,
    /// The execution to write.
    pub execution: ExecutionRow,
    /// The instance that runs its on-trigger program, if one does.
    pub instance: Option<String>,
    /// What waits for the on-trigger program (a durable row of the queue), if one runs.
    pub job: Option<QueuedJob>,
}

/// An execution's wait for the on-trigger program: spooled to the `queue` table in the
/// transaction that records the trigger.
#[derive(Clone, PartialEq)]
pub struct QueuedJob {
    /// `X-GitHub-Event`, or empty.
    pub event: String,
    /// The delivery's body.
    pub payload: axum::body::Bytes,
    /// The most executions that may wait (over every instance); past it the trigger is
    /// [`Recorded::QueueFull`].
    pub queue_max: usize,
}

impl std::fmt::Debug for QueuedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedJob").field("event", &self.event).field("payload_bytes", &self.payload.len()).finish()
    }
}

/// An execution claimed from the queue by this instance, to run now.
#[derive(Clone)]
pub struct ClaimedJob {
    /// The execution id.
    pub execution_id: String,
    /// The pipeline started.
    pub pipeline: String,
    /// The webhook that started it.
    pub webhook: String,
    /// `X-GitHub-Event`, or empty.
    pub event: String,
    /// `X-GitHub-Delivery`, or empty.
    pub delivery: String,
    /// The delivery's body.
    pub payload: Vec<u8>,
    /// More environment for the program: the revision it runs (`CODEPIPELINE_TRIGGER_TYPE`,
    /// `CODEPIPELINE_REVISION_ID`, ...).
    pub env: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for ClaimedJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClaimedJob").field("execution_id", &self.execution_id).finish_non_exhaustive()
    }
}

/// What [`Store::stop_orphans`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Orphans {
    /// Executions marked `Stopped`.
    pub stopped: u64,
    /// The process groups their programs ran in (execution id, pgid), to end: the pgid is
    /// `None` when the server died before recording it.
    pub groups: Vec<(String, Option<i64>)>,
}

/// What recording a trigger did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new execution was written.
    Started,
    /// The delivery id was seen for this webhook within the window (by any instance): nothing
    /// written.
    Duplicate,
    /// The queue of executions waiting for the on-trigger program is full: nothing written.
    QueueFull,
}

/// What a committed write changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A pipeline (any version, or its deletion).
    Pipeline,
    /// A webhook (its state, or its deletion).
    Webhook,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Pipeline => "pipeline",
            ChangeKind::Webhook => "webhook",
        }
    }
}

/// One entry of the change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Its place in commit order.
    pub seq: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// The pipeline's or webhook's name.
    pub name: String,
}

/// A store error: the message only (no values are echoed).
#[derive(Clone, Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

impl StoreError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        StoreError(message.into())
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError(format!("migrating the schema: {e}"))
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// The store: a pool of connections to SQLite or Postgres.
pub struct Store {
    pool: AnyPool,
    /// The connection of the batch writers (trigger batches, the delivery log): on SQLite a
    /// pool of its own with one connection, whose page cache stays warm from batch to batch (a
    /// write by another connection makes every other one drop its cache and read the pages
    /// again: two reads per trigger were measured); on Postgres the pool itself.
    writer: AnyPool,
    backend: Backend,
    /// The exclusive lock on the SQLite database's directory, held while the store lives.
    _lock: Option<fs::File>,
    /// Postgres: the connection that holds this instance's liveness lock.
    liveness: tokio::sync::Mutex<Option<sqlx::AnyConnection>>,
    /// The last failed write, for readiness.
    health: Health,
    /// SQLite has one writer at a time: the writers of this process (the trigger recorder, the
    /// delivery log) queue here instead of in SQLite's busy handler, which sleeps. It holds the
    /// writer pool's one connection, taken out once: sqlx pings a connection each time it goes
    /// back to its pool, a round trip to the connection's thread for every batch. Replaced when
    /// a transaction cannot begin on it ([`WriteTurn::begin`]). `None` on Postgres (and once
    /// closed).
    write_gate: tokio::sync::Mutex<Option<sqlx::pool::PoolConnection<sqlx::Any>>>,
    /// Postgres: the trigger recorder's connection and when it was last used, kept from batch
    /// to batch for the same reason (two pings, two round trips to the server, for each
    /// one-statement batch) while batches keep coming: after [`HELD_IDLE_MAX`] without one it
    /// goes back to the pool, whose ping finds a connection that broke meanwhile (a restart,
    /// an idle timeout on the way).
    trigger_conn: tokio::sync::Mutex<Option<(sqlx::pool::PoolConnection<sqlx::Any>, std::time::Instant)>>,
    /// SQLite: a transaction could not begin on the held writer connection; the next turn
    /// replaces it.
    writer_broken: std::sync::atomic::AtomicBool,
    /// SQLite: the duplicate window ([`SeenIds`]), the whole truth of it (one process holds
    /// the database). Held by a trigger batch from its check to its commit, so that what is
    /// in it is what committed; `None` on Postgres, whose `deliveries` table decides.
    seen: Option<Arc<Window>>,
}

/// The turn of this process's batch writers ([`Store::write_turn`]): on SQLite the writer
/// connection, held until dropped.
pub(crate) struct WriteTurn<'s> {
    store: &'s Store,
    held: Option<tokio::sync::MutexGuard<'s, Option<sqlx::pool::PoolConnection<sqlx::Any>>>>,
}

impl WriteTurn<'_> {
    /// The held writer connection (SQLite), replaced first when the last turn found it broken,
    /// and opened again when a turn before could not open it; `None` on Postgres, or when no
    /// connection can be opened now.
    async fn held(&mut self) -> Option<&mut sqlx::pool::PoolConnection<sqlx::Any>> {
        let store = self.store;
        let slot = self.held.as_deref_mut()?;
        if store.writer_broken.swap(false, std::sync::atomic::Ordering::Relaxed)
            && let Some(conn) = slot.take()
        {
            let _ = conn.close().await;
        }
        if slot.is_none() {
            // If that fails, transactions begin on the writer pool until it works again.
            *slot = store.writer.acquire().await.ok();
        }
        slot.as_mut()
    }

    /// A write transaction in this turn: SQLite's `BEGIN IMMEDIATE` (the write lock at once, not
    /// at the first write) on the writer connection; on Postgres, one from the pool. When it
    /// cannot begin on the held connection, the connection may be broken (its thread gone, a
    /// transaction left open): the next turn closes it and opens another one in its place.
    pub(crate) async fn begin(&mut self) -> Result<sqlx::Transaction<'_, sqlx::Any>, StoreError> {
        use sqlx::Connection as _;
        let store = self.store;
        let backend = store.backend;
        Ok(match (backend, self.held().await) {
            (Backend::Sqlite, Some(conn)) => match conn.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => tx,
                Err(e) => {
                    store.writer_broken.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Err(e.into());
                }
            },
            (Backend::Sqlite, None) => store.writer.begin_with("BEGIN IMMEDIATE").await?,
            (Backend::Postgres, _) => store.writer.begin().await?,
        })
    }

    /// SQLite: runs `script` (statements from `BEGIN IMMEDIATE` to `COMMIT`) on the held writer
    /// connection in one hand-off to sqlx's SQLite thread, and returns the rows its statements
    /// return. When it fails, the transaction is rolled back; a connection on which that fails
    /// too is replaced at the next turn (closing it rolls back).
    async fn run_script<'q>(
        &mut self,
        script: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let store = self.store;
        let Some(conn) = self.held().await else {
            return Err(StoreError::new("no connection to the database to write on"));
        };
        let conn: &mut sqlx::AnyConnection = conn;
        // A script dropped while it runs (the recorder's task ended, say) may stop after its
        // `BEGIN IMMEDIATE` (sqlx's thread stops at the first row or result it cannot hand
        // back): the guard marks the connection, so the next turn does not write inside it.
        let open = OpenScript(Some(&store.writer_broken));
        let (rows, rolled_back) = run_or_roll_back(conn, script).await;
        open.finish();
        if !rolled_back {
            store.writer_broken.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        rows
    }
}

/// A script running on the held writer connection, until it ends: dropped before
/// [`finish`](Self::finish) (the future dropped while the script runs), it marks the connection
/// broken, so that the next turn closes it (which rolls back) instead of writing inside a
/// transaction the script may have left open, holding SQLite's write lock meanwhile.
struct OpenScript<'a>(Option<&'a std::sync::atomic::AtomicBool>);

impl OpenScript<'_> {
    fn finish(mut self) {
        self.0 = None;
    }
}

impl Drop for OpenScript<'_> {
    fn drop(&mut self) {
        if let Some(broken) = self.0 {
            broken.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Runs `script` on `conn`; when it fails, rolls back. The second value: false when the
/// rollback failed too (the connection should not be used again).
async fn run_or_roll_back<'q>(
    conn: &mut sqlx::AnyConnection,
    script: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
) -> (Result<Vec<AnyRow>, StoreError>, bool) {
    match script.fetch_all(&mut *conn).await {
        Ok(rows) => (Ok(rows), true),
        Err(e) => {
            let rolled_back = sqlx::query("ROLLBACK").execute(&mut *conn).await.is_ok();
            (Err(e.into()), rolled_back)
        }
    }
}

/// The last write that failed (when, and why), shared with write transactions.
#[derive(Clone, Debug, Default)]
struct Health(std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>);

/// How long a failed write keeps `/healthz` at 503 (the probe writes every second).
const UNHEALTHY_FOR: Duration = Duration::from_secs(10);

impl Health {
    fn note<T>(&self, result: &Result<T, StoreError>) {
        if let Err(e) = result {
            *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), e.0.clone()));
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

const PIPELINE_COLUMNS: &str = "name, version, declaration, created, updated, tags";
const EXECUTION_COLUMNS: &str = "seq, id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, \
     last_update_time, trigger_type, source_revisions, stop_reason";

impl Store {
    /// Opens the database and migrates its schema.
    ///
    /// - `DataDir(dir)`: creates `dir` (mode 0700) and `dir/codepipeline-webhooks.sqlite3` (0600:
    ///   it holds webhook secrets), takes an exclusive lock on `dir/serve.lock` (a second server on
    ///   the same directory is refused, with the process that holds it), WAL.
    /// - `Url("sqlite:PATH")`: the same for that file, locked through `PATH.lock` (through
    ///   `DIR/serve.lock` when PATH is a data directory's database: one database, one lock).
    /// - `Url("postgres://…")`: a pool shared with the other instances; migrations take
    ///   Postgres's advisory lock, so instances that start together migrate once.
    pub async fn open(location: &Location) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        match location {
            Location::DataDir(dir) => {
                fs::create_dir_all(dir)?;
                restrict(dir, 0o700)?;
                let lock = lock_file(&lock_of(&dir.join(SQLITE_FILE)))?;
                Self::open_sqlite(&dir.join(SQLITE_FILE), lock).await
            }
            Location::Url(url) if url.starts_with("sqlite:") => {
                let path = sqlite_url_path(url);
                if path.as_os_str().is_empty() {
                    return Err(StoreError::new("--database-url sqlite:PATH needs a path"));
                }
                let lock = lock_file(&lock_of(&path))?;
                Self::open_sqlite(&path, lock).await
            }
            Location::Url(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let pool = AnyPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(url)
                    .await
                    .map_err(|e| StoreError(format!("cannot connect to {}: {e}", redact_url(url))))?;
                POSTGRES_MIGRATIONS.run(&pool).await?;
                Ok(Store {
                    writer: pool.clone(),
                    pool,
                    backend: Backend::Postgres,
                    _lock: None,
                    liveness: Default::default(),
                    health: Health::default(),
                    write_gate: Default::default(),
                    trigger_conn: Default::default(),
                    writer_broken: Default::default(),
                    seen: None,
                })
            }
            Location::Url(url) => Err(StoreError(format!(
                "--database-url must start with sqlite: or postgres://, not '{}'",
                redact_url(url)
            ))),
        }
    }

    async fn open_sqlite(path: &Path, lock: fs::File) -> Result<Store, StoreError> {
        if path.exists() {
            check_sqlite_file(path)?;
        } else {
            // Create it 0600 before SQLite opens it, so it is never readable by others.
            create_private(path)?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = sqlite_pool_options(4)
            .connect(&url)
            .await
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        // A SQLite file of another application: its tables, and none of ours.
        let ours: i64 = sqlx::query(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('_sqlx_migrations', 'webhooks')",
        )
        .fetch_one(&pool)
        .await
        .map_err(|e| StoreError(format!("cannot read {}: {e}", path.display())))?
        .try_get(0)?;
        let tables: i64 = sqlx::query("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'")
            .fetch_one(&pool)
            .await?
            .try_get(0)?;
        if ours == 0 && tables > 0 {
            pool.close().await;
            return Err(StoreError(format!(
                "{} is a SQLite database of another application ({tables} tables, none of this service's): \
                 refusing to use it; point --data-dir or --database-url elsewhere",
                path.display()
            )));
        }
        SQLITE_MIGRATIONS.run(&pool).await?;
        if let Some(dir) = path.parent() {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for suffix in ["-wal", "-shm"] {
                let side = dir.join(format!("{name}{suffix}"));
                if side.exists() {
                    restrict(&side, 0o600)?;
                }
            }
        }
        restrict(path, 0o600)?;
        let writer = sqlite_pool_options(1)
            .connect(&url)
            .await
            .map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        let held = writer.acquire().await.map_err(|e| StoreError(format!("cannot open {}: {e}", path.display())))?;
        let seen = load_seen_ids(&pool).await?;
        Ok(Store {
            pool,
            writer,
            backend: Backend::Sqlite,
            _lock: Some(lock),
            liveness: Default::default(),
            health: Health::default(),
            write_gate: tokio::sync::Mutex::new(Some(held)),
            trigger_conn: Default::default(),
            writer_broken: Default::default(),
            seen: Some(Arc::new(Window::new(seen))),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SQLite: the turn of this process's batch writers (held for a write transaction); Postgres
    /// has row locks, and no turn to wait for (the trigger recorder, one task, keeps a
    /// connection of its own).
    pub(crate) async fn write_turn(&self) -> WriteTurn<'_> {
        let held = match self.backend {
            Backend::Sqlite => Some(self.write_gate.lock().await),
            Backend::Postgres => None,
        };
        WriteTurn { store: self, held }
    }

    /// The connection pool, for the modules that keep their own tables (the delivery log).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The key that signs `NextToken`s, shared by every instance: made (32 random bytes,
    /// base64url) by the first instance that starts on the database.
    pub async fn next_token_key(&self, fresh: &str) -> Result<String, StoreError> {
        sqlx::query("INSERT INTO meta (name, value) VALUES ('next_token_key', $1) ON CONFLICT (name) DO NOTHING")
            .bind(fresh)
            .execute(&self.pool)
            .await?;
        let row = sqlx::query("SELECT value FROM meta WHERE name = 'next_token_key'").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    /// The latest version of every pipeline, by name.
    pub async fn latest_pipelines(&self) -> Result<Vec<PipelineRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines p
             WHERE p.version = (SELECT MAX(version) FROM pipelines q WHERE q.name = p.name) ORDER BY p.name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pipeline_row).collect()
    }

    /// The latest version of the pipelines named after `after` (all with `None`), in name order,
    /// at most `limit`.
    pub async fn pipelines_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<PipelineRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PIPELINE_COLUMNS} FROM pipelines p
             WHERE p.name > $1 AND p.version = (SELECT MAX(version) FROM pipelines q WHERE q.name = p.name)
             ORDER BY p.name LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pipeline_row).collect()
    }

    /// One pipeline: the latest version, or the one asked for.
    pub async fn pipeline(&self, name: &str, version: Option<i64>) -> Result<Option<PipelineRow>, StoreError> {
        pipeline_in(&self.pool, name, version).await
    }

    /// Every webhook, by name.
    pub async fn webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        let rows = sqlx::query("SELECT name, token, state, last_triggered FROM webhooks ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(webhook_row).collect()
    }

    /// One webhook.
    pub async fn webhook(&self, name: &str) -> Result<Option<WebhookRow>, StoreError> {
        webhook_in(&self.pool, name).await
    }

    /// `lastTriggered` of every webhook that has one (the latest over all instances).
    pub async fn last_triggered(&self) -> Result<Vec<(String, f64)>, StoreError> {
        let rows = sqlx::query("SELECT name, last_triggered FROM webhooks WHERE last_triggered IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    /// Starts a write transaction for one pipeline or webhook (`key`, such as `webhook:NAME`):
    /// SQLite takes its write lock at once (`BEGIN IMMEDIATE`); Postgres takes a transaction lock
    /// on the key, so that writes to one name from several instances take turns and writes to
    /// different names do not wait for each other.
    pub async fn write(&self, key: &str) -> Result<WriteTx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                lock(&mut tx, key).await?;
                tx
            }
        };
        Ok(WriteTx {
            tx,
            changes: Vec::new(),
            health: self.health.clone(),
            seen: self.seen.clone(),
            forgotten: Vec::new(),
        })
    }

    /// The change feed after `seq`, in commit order (at most `limit`). The feed has no gaps
    /// (its counter row is taken in each writing transaction) and pruning keeps its last entry.
    pub async fn changes_since(&self, seq: i64, limit: usize) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query("SELECT seq, kind, name FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(seq)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind: String = r.try_get(1)?;
            let kind = match kind.as_str() {
                "pipeline" => ChangeKind::Pipeline,
                "webhook" => ChangeKind::Webhook,
                _ => continue,
            };
            out.push(Change { seq: r.try_get(0)?, kind, name: r.try_get(2)? });
        }
        Ok(out)
    }

    /// The change feed's last sequence.
    pub async fn change_seq(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT value FROM counters WHERE name = 'changes'").fetch_one(&self.pool).await?;
        Ok(row.try_get(0)?)
    }

    /// Forgets change-feed entries written before `before`, but always keeps the last one.
    pub async fn prune_changes(&self, before: f64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM changes WHERE at < $1 AND seq < (SELECT MAX(seq) FROM changes)")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    /// Records a trigger: unless `delivery` was seen for this webhook after `dedupe_after`, the
    /// delivery id, the webhook's `lastTriggered` and the execution, in one transaction.
    pub async fn record_trigger(&self, trigger: &TriggerRecord) -> Result<Recorded, StoreError> {
        Ok(self.record_triggers(std::slice::from_ref(trigger)).await?.remove(0))
    }

    /// Records several triggers in one transaction (one commit: group commit), in order; a
    /// delivery id repeated within the batch is a duplicate too, and so is one that another
    /// instance recorded within the window (on Postgres the delivery's row decides, under the
    /// database's row lock; on SQLite, one process, the window in memory). All or nothing.
    pub async fn record_triggers(&self, batch: &[TriggerRecord]) -> Result<Vec<Recorded>, StoreError> {
        let result = self.record_triggers_tx(batch).await;
        self.health.note(&result);
        result
    }

    async fn record_triggers_tx(&self, batch: &[TriggerRecord]) -> Result<Vec<Recorded>, StoreError> {
        let mut out = vec![Recorded::Started; batch.len()];
        // Repeats inside the batch, decided here; rows are then touched in one order (webhook,
        // delivery) so that two instances' batches cannot deadlock on each other.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| {
            (&batch[a].webhook, &batch[a].delivery, a).cmp(&(&batch[b].webhook, &batch[b].delivery, b))
        });
        for w in order.windows(2) {
            let (a, b) = (&batch[w[0]], &batch[w[1]]);
            if a.delivery.is_some() && a.webhook == b.webhook && a.delivery == b.delivery {
                out[w[1]] = Recorded::Duplicate;
            }
        }
        let mut turn = self.write_turn().await;
        if self.backend == Backend::Postgres
            && let Some(window) = one_window(batch)
        {
            return self.record_triggers_postgres(batch, &order, out, window).await;
        }
        // SQLite: the window in memory decides the repeats, and is held until the commit.
        let mut seen = match &self.seen {
            Some(seen) => Some(seen.lock().await),
            None => None,
        };
        if let Some(seen) = seen.as_deref() {
            for (t, r) in batch.iter().zip(out.iter_mut()) {
                if let Some(delivery) = &t.delivery
                    && *r == Recorded::Started
                    && seen.seen(&t.webhook, delivery, t.dedupe_after)
                {
                    *r = Recorded::Duplicate;
                }
            }
        }
        if let Some(seen) = seen.as_deref_mut()
            && one_window(batch).is_some()
        {
            return self.record_triggers_sqlite(&mut turn, seen, batch, out).await;
        }
        let mut tx = turn.begin().await?;
        for &i in &order {
            let t = &batch[i];
            if out[i] == Recorded::Duplicate {
                continue;
            }
            if let Some(delivery) = &t.delivery
                && seen.is_none()
            {
                // Postgres: inserted, or taken over when the id is older than the window;
                // otherwise nothing changes and the delivery is a duplicate.
                let done = sqlx::query(
                    "INSERT INTO deliveries (webhook, delivery, at) VALUES ($1, $2, $3)
                     ON CONFLICT (webhook, delivery) DO UPDATE SET at = excluded.at WHERE deliveries.at <= $4",
                )
                .bind(&t.webhook)
                .bind(delivery)
                .bind(t.execution.start_time)
                .bind(t.dedupe_after)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    out[i] = Recorded::Duplicate;
                    continue;
                }
            }
            if let Some(job) = &t.job {
                // A place in the queue, counted over every instance in this transaction.
                let taken = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'queued' AND value < $1")
                    .bind(i64::try_from(job.queue_max).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                if taken.rows_affected() == 0 {
                    out[i] = Recorded::QueueFull;
                    if let Some(delivery) = &t.delivery
                        && seen.is_none()
                    {
                        // Not acknowledged: a redelivery of this id must be able to start.
                        sqlx::query("DELETE FROM deliveries WHERE webhook = $1 AND delivery = $2")
                            .bind(&t.webhook)
                            .bind(delivery)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
        }
        // A repeat of a delivery refused for a full queue is refused too.
        for w in order.windows(2) {
            let (a, b) = (&batch[w[0]], &batch[w[1]]);
            if out[w[0]] == Recorded::QueueFull && a.webhook == b.webhook && a.delivery == b.delivery {
                out[w[1]] = Recorded::QueueFull;
            }
        }
        for (t, r) in batch.iter().zip(&out) {
            if *r != Recorded::Started {
                continue;
            }
            let e = &t.execution;
            let insert = sqlx::query(
                "INSERT INTO executions (id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, last_update_time, instance, trigger_type, source_revisions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            );
            bind_execution(insert, &t.execution, t.instance.as_deref()).execute(&mut *tx).await?;
            if let Some(delivery) = &t.delivery
                && seen.is_some()
            {
                sqlx::query(
                    "INSERT INTO delivery_ids (webhook, delivery, at)
                     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM webhooks WHERE name = $4)",
                )
                .bind(&t.webhook)
                .bind(delivery)
                .bind(e.start_time)
                .bind(&t.webhook)
                .execute(&mut *tx)
                .await?;
            }
            if let Some(job) = &t.job {
                let waiting = Waiting {
                    execution_id: &e.id,
                    pipeline: &e.pipeline,
                    webhook: &t.webhook,
                    event: &job.event,
                    delivery: t.delivery.as_deref().unwrap_or_default(),
                    payload: &job.payload[..],
                    at: e.start_time,
                };
                enqueue(&mut tx, self.backend, waiting).await?;
            }
        }
        self.stamp_last_triggered(&mut tx, batch, &out).await?;
        tx.commit().await?;
        if let Some(seen) = seen.as_deref_mut() {
            take_started(seen, batch, &out);
        }
        Ok(out)
    }

    /// SQLite, a batch without on-trigger jobs and with one dedupe window, its repeats decided
    /// (by the window in memory, `seen`, held by the caller): the whole transaction as one
    /// script, one hand-off to sqlx's SQLite thread (a transaction begun with `begin()` takes
    /// five: begin, executions, delivery ids, lastTriggered, commit). Each hand-off is a wake-up
    /// of that thread and of the recorder, and under load the woken thread waits for a core
    /// the request handlers hold: on the development VM a script that only began the
    /// transaction and read no row took 170 µs, what the rest of the batch's work took. The
    /// script inserts the executions in arrival order, appends their delivery ids to the log
    /// the window is filled from at start, and moves each webhook's `lastTriggered` to the
    /// latest start of its executions, never earlier than it was; once it committed, the ids
    /// join the window.
    async fn record_triggers_sqlite(
        &self,
        turn: &mut WriteTurn<'_>,
        seen: &mut SeenIds,
        batch: &[TriggerRecord],
        out: Vec<Recorded>,
    ) -> Result<Vec<Recorded>, StoreError> {
        let backend = self.backend;
        // In arrival order (the executions' order).
        let started: Vec<usize> = (0..batch.len()).filter(|&i| out[i] == Recorded::Started).collect();
        if started.is_empty() {
            return Ok(out);
        }
        let with_id: Vec<usize> = started.iter().copied().filter(|&i| batch[i].delivery.is_some()).collect();
        let stamps = last_triggered(batch, &out);
        let mut sql = String::from("BEGIN IMMEDIATE;");
        for chunk in started.chunks(ROWS_PER_STATEMENT) {
            let _ = write!(
                sql,
                "INSERT INTO executions (id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, last_update_time, instance, trigger_type, source_revisions)
                 VALUES {};",
                placeholders(backend, chunk.len(), 11),
            );
        }
        // The ids of a webhook deleted since the batch's check (its delete commits between the
        // check and this script) are not logged: the delete took its rows, and the window
        // forgets it at the next check.
        for chunk in with_id.chunks(ROWS_PER_STATEMENT) {
            let _ = write!(
                sql,
                "INSERT INTO delivery_ids (webhook, delivery, at)
                 SELECT column1, column2, column3 FROM (VALUES {}) WHERE column1 IN (SELECT name FROM webhooks);",
                placeholders(backend, chunk.len(), 3),
            );
        }
        for _ in &stamps {
            sql.push_str(
                "UPDATE webhooks SET last_triggered = ? WHERE name = ? AND (last_triggered IS NULL OR last_triggered < ?);",
            );
        }
        sql.push_str("COMMIT");
        let mut script = sqlx::query(&sql);
        for &i in &started {
            let t = &batch[i];
            script = bind_execution(script, &t.execution, t.instance.as_deref());
        }
        for &i in &with_id {
            let t = &batch[i];
            script = script.bind(&t.webhook).bind(t.delivery.as_deref()).bind(t.execution.start_time);
        }
        for &(webhook, at) in &stamps {
            script = script.bind(at).bind(webhook).bind(at);
        }
        turn.run_script(script).await?;
        take_started(seen, batch, &out);
        Ok(out)
    }

    /// Postgres, a batch without on-trigger jobs and with one dedupe window: the whole batch in
    /// one statement (`postgres_batch_sql`), one round trip to the database in place of five
    /// (begin, delivery ids, executions, lastTriggered, commit), each of which is a network
    /// round trip and a wake-up of a Postgres backend. `order`: the batch in (webhook, delivery)
    /// order, in which the delivery ids are locked; `out`: the repeats within the batch, already
    /// decided.
    async fn record_triggers_postgres(
        &self,
        batch: &[TriggerRecord],
        order: &[usize],
        mut out: Vec<Recorded>,
        window: f64,
    ) -> Result<Vec<Recorded>, StoreError> {
        let candidates: Vec<usize> = order.iter().copied().filter(|&i| out[i] != Recorded::Duplicate).collect();
        // One statement for the whole batch, so that its locks are taken in one order (every
        // delivery id, then the webhooks) and its executions numbered in arrival order. The
        // recorder's batches (at most 256 triggers, 3,841 parameters) are far below what one
        // statement can carry; a larger one is refused rather than split.
        if candidates.len() > POSTGRES_BATCH_MAX {
            return Err(StoreError(format!(
                "a batch of {} triggers is more than one statement carries ({POSTGRES_BATCH_MAX})",
                candidates.len()
            )));
        }
        if candidates.is_empty() {
            return Ok(out);
        }
        let sql = postgres_batch_sql(candidates.len());
        let statement = || {
            let mut query = sqlx::query(&sql);
            for &i in &candidates {
                let t = &batch[i];
                query = query
                    .bind(i64::try_from(i).unwrap_or(i64::MAX))
                    .bind(&t.webhook)
                    .bind(t.delivery.as_deref())
                    .bind(t.execution.start_time);
                query = bind_execution(query, &t.execution, t.instance.as_deref());
            }
            query.bind(window)
        };
        let mut held = self.trigger_conn.lock().await;
        let kept = held.take().filter(|(_, used)| used.elapsed() < HELD_IDLE_MAX).map(|(conn, _)| conn);
        let done = match kept {
            Some(mut conn) => match statement().fetch_all(&mut *conn).await {
                Ok(rows) => Some((conn, rows)),
                Err(e) => {
                    // Perhaps the kept connection broke (the server restarted): back to the pool
                    // (whose ping closes it if so), and once more on one from the pool, before
                    // the failure counts (for readiness) and the recorder's own retry.
                    tracing::debug!(error = %e, "a trigger batch failed on the kept connection; once more");
                    None
                }
            },
            None => None,
        };
        let (conn, rows) = match done {
            Some(done) => done,
            None => {
                let mut conn = self.writer.acquire().await?;
                let rows = statement().fetch_all(&mut *conn).await?;
                (conn, rows)
            }
        };
        *held = Some((conn, std::time::Instant::now()));
        drop(held);
        for &i in &candidates {
            out[i] = Recorded::Duplicate;
        }
        for row in rows {
            let i: i64 = row.try_get(0)?;
            if let Some(r) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
                *r = Recorded::Started;
            }
        }
        Ok(out)
    }

    /// lastTriggered: once per webhook per batch, the latest start, never moved back (another
    /// instance may have stamped a later one).
    async fn stamp_last_triggered(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        batch: &[TriggerRecord],
        out: &[Recorded],
    ) -> Result<(), StoreError> {
        for (webhook, at) in last_triggered(batch, out) {
            sqlx::query(
                "UPDATE webhooks SET last_triggered = $2 WHERE name = $1 AND (last_triggered IS NULL OR last_triggered < $2)",
            )
            .bind(webhook)
            .bind(at)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Forgets delivery ids taken at or before `before`; how many ids the window forgot.
    pub async fn prune_deliveries(&self, before: f64) -> Result<u64, StoreError> {
        let Some(seen) = &self.seen else {
            let pruned = sqlx::query("DELETE FROM deliveries WHERE at <= $1").bind(before).execute(&self.pool).await?;
            return Ok(pruned.rows_affected());
        };
        let forgotten = seen.lock().await.forget_before(before);
        // The log is in the order ids were taken, so what is old is its head, up to the first
        // young row: no index on the time, and no scan past what goes. An id dated later than
        // the rows after it (the clock stepped back) holds them until its own time; the log
        // never keeps more rows than the window holds ids, whatever the clock says.
        sqlx::query(
            "DELETE FROM delivery_ids WHERE seq < max(
                 coalesce(
                     (SELECT seq FROM delivery_ids WHERE at > $1 ORDER BY seq LIMIT 1),
                     (SELECT max(seq) + 1 FROM delivery_ids)),
                 (SELECT max(seq) FROM delivery_ids) - $2 + 1)",
        )
        .bind(before)
        .bind(SEEN_MAX as i64)
        .execute(&self.pool)
        .await?;
        Ok(forgotten)
    }

    /// Sets an execution's status at its end: an execution `Stopping` (StopPipelineExecution) ends
    /// `Stopped` whatever the program did, and one already ended (stopped by a call on another
    /// instance, or as an orphan) is left as it is.
    pub async fn finish_execution(
        &self,
        id: &str,
        status: &str,
        summary: Option<&str>,
        at: f64,
    ) -> Result<(), StoreError> {
        let result = async {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "UPDATE executions SET status = CASE WHEN status = 'Stopping' THEN 'Stopped' ELSE $2 END,
                 status_summary = CASE WHEN status = 'Stopping' THEN status_summary ELSE $3 END, last_update_time = $4
                 WHERE id = $1 AND status IN ('InProgress', 'Stopping')",
            )
            .bind(id)
            .bind(status)
            .bind(summary)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM queue WHERE execution_id = $1").bind(id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        self.health.note(&result);
        result
    }

    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// Claims the oldest execution waiting for the on-trigger program, for instance `me`
    /// (transactionally: one instance gets it), and takes it off the queue's count.
    pub async fn claim(&self, me: &str) -> Result<Option<ClaimedJob>, StoreError> {
        // The oldest waiting execution whose pipeline may start one now: any under PARALLEL (the
        // program's concurrency bounds it), otherwise only when none of that pipeline runs
        // (SUPERSEDED and QUEUED run one at a time; QUEUED first in, first out).
        const PICK: &str = "SELECT q.seq FROM queue q WHERE q.state = 'Queued'
             AND (q.mode = 'PARALLEL' OR NOT EXISTS
                  (SELECT 1 FROM queue r WHERE r.pipeline = q.pipeline AND r.state = 'Running'))
             ORDER BY q.seq LIMIT 1";
        let pick = match self.backend {
            Backend::Sqlite => PICK.to_owned(),
            Backend::Postgres => format!("{PICK} FOR UPDATE SKIP LOCKED"),
        };
        // A read first: an idle worker's poll takes no write lock.
        if sqlx::query("SELECT 1 FROM queue WHERE state = 'Queued' LIMIT 1").fetch_optional(&self.pool).await?.is_none()
        {
            return Ok(None);
        }
        let result = async {
            let mut tx = self.begin_write().await?;
            if self.backend == Backend::Postgres {
                // One claim at a time over every instance: two claims could otherwise both see no
                // running execution of a pipeline (SQLite's BEGIN IMMEDIATE already serialises).
                lock(&mut tx, "queue:claim").await?;
            }
            let row = sqlx::query(&format!(
                "UPDATE queue SET state = 'Running', claimed_by = $1 WHERE state = 'Queued' AND seq = ({pick})
                 RETURNING execution_id, pipeline, webhook, event, delivery, payload"
            ))
            .bind(me)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else { return Ok(None) };
            let job = ClaimedJob {
                execution_id: row.try_get(0)?,
                pipeline: row.try_get(1)?,
                webhook: row.try_get(2)?,
                event: row.try_get(3)?,
                delivery: row.try_get(4)?,
                payload: row.try_get(5)?,
                env: Vec::new(),
            };
            let mut job = job;
            let ran = sqlx::query("SELECT trigger_type, source_revisions FROM executions WHERE id = $1")
                .bind(&job.execution_id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(ran) = ran {
                let trigger_type: String = ran.try_get(0)?;
                let revisions: String = ran.try_get(1)?;
                let revisions: Vec<super::revisions::SourceRevision> =
                    serde_json::from_str(&revisions).unwrap_or_default();
                job.env = super::revisions::program_env(&trigger_type, revisions.first());
            }
            sqlx::query("UPDATE counters SET value = value - 1 WHERE name = 'queued' AND value > 0")
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE executions SET instance = $2 WHERE id = $1")
                .bind(&job.execution_id)
                .bind(me)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Some(job))
        }
        .await;
        self.health.note(&result);
        result
    }

    /// Records the process group an execution's program runs in.
    pub async fn set_pgid(&self, execution_id: &str, pgid: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE queue SET pgid = $2 WHERE execution_id = $1")
            .bind(execution_id)
            .bind(pgid)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// How many executions wait for the on-trigger program (over every instance).
    pub async fn queued(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT value FROM counters WHERE name = 'queued'").fetch_one(&self.pool).await?.try_get(0)?)
    }

    /// Marks `Stopped` the executions still waiting when no instance can run them (SQLite, and no
    /// `--on-trigger` program configured now). How many.
    pub async fn stop_queued(&self, at: f64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "UPDATE executions SET status = 'Stopped', status_summary = 'no --on-trigger program to run it after a restart',
             last_update_time = $1 WHERE status = 'InProgress' AND id IN (SELECT execution_id FROM queue WHERE state = 'Queued')",
        )
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM queue WHERE state = 'Queued'").execute(&mut *tx).await?;
        sqlx::query("UPDATE counters SET value = 0 WHERE name = 'queued'").execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// A small write, for readiness (`/healthz`); noted like every write.
    pub async fn probe(&self, at: f64) -> Result<(), StoreError> {
        let result = match tokio::time::timeout(
            Duration::from_secs(3),
            sqlx::query("UPDATE meta SET value = $1 WHERE name = 'probe'").bind(at.to_string()).execute(&self.pool),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(StoreError::from(e)),
            Err(_) => Err(StoreError::new("a write took longer than 3 s")),
        };
        self.health.note(&result);
        result
    }

    /// Whether the store can write: the reason of the last failed write, if one failed within
    /// the last 10 s.
    pub fn write_error(&self) -> Option<String> {
        let last = self.health.0.lock().unwrap_or_else(|p| p.into_inner());
        last.as_ref().filter(|(at, _)| at.elapsed() < UNHEALTHY_FOR).map(|(_, e)| e.clone())
    }

    /// Registers this instance (and refreshes its heartbeat, which says when it was last seen).
    pub async fn heartbeat(&self, instance: &str, pid: u32, at: f64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO instances (id, pid, started, heartbeat) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET heartbeat = excluded.heartbeat",
        )
        .bind(instance)
        .bind(i64::from(pid))
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Holds this instance's liveness lock for as long as the store lives: on Postgres a
    /// session advisory lock on a connection of its own, which the server releases when the
    /// process dies (even by `kill -9`: its connection closes); on SQLite the directory's lock
    /// already says it.
    pub async fn hold_instance_lock(&self, instance: &str) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let mut conn = self.pool.acquire().await?.detach();
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock(hashtext($1))) AS locked")
            .bind(format!("instance:{instance}"))
            .fetch_one(&mut conn)
            .await?;
        *self.liveness.lock().await = Some(conn);
        Ok(())
    }

    /// Marks `Stopped` the executions left `InProgress` by instances that are gone, and forgets
    /// those instances; returns how many, and the process groups their on-trigger programs ran
    /// in (to end). Executions still waiting in the queue are not touched: they run later. On
    /// SQLite every other instance is gone (this process holds the directory's lock); on Postgres
    /// an instance is gone when its liveness lock can be taken.
    pub async fn stop_orphans(&self, me: &str, at: f64) -> Result<Orphans, StoreError> {
        const STOP: &str =
            "UPDATE executions SET status = 'Stopped', status_summary = 'the server restarted while it ran',
             last_update_time = $2 WHERE status IN ('InProgress', 'Stopping')
             AND id NOT IN (SELECT execution_id FROM queue WHERE state = 'Queued') AND ";
        let mut orphans = Orphans::default();
        match self.backend {
            Backend::Sqlite => {
                let mut tx = self.begin_write().await?;
                let rows = sqlx::query(
                    "SELECT execution_id, pgid FROM queue WHERE state = 'Running' AND (claimed_by IS NULL OR claimed_by <> $1)",
                )
                .bind(me)
                .fetch_all(&mut *tx)
                .await?;
                orphans.groups = groups_of(&rows)?;
                sqlx::query("DELETE FROM queue WHERE state = 'Running' AND (claimed_by IS NULL OR claimed_by <> $1)")
                    .bind(me)
                    .execute(&mut *tx)
                    .await?;
                orphans.stopped = sqlx::query(&format!("{STOP} (instance IS NULL OR instance <> $1)"))
                    .bind(me)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("DELETE FROM instances WHERE id <> $1").bind(me).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(orphans)
            }
            Backend::Postgres => {
                let mut conn = self.pool.acquire().await?;
                orphans.stopped = sqlx::query(&format!("{STOP} instance IS NULL"))
                    .bind(me)
                    .bind(at)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                let rows = sqlx::query(
                    "SELECT id FROM instances WHERE id <> $1
                     UNION SELECT DISTINCT instance FROM executions WHERE status IN ('InProgress', 'Stopping') AND instance <> $1
                     UNION SELECT DISTINCT claimed_by FROM queue WHERE state = 'Running' AND claimed_by <> $1",
                )
                .bind(me)
                .fetch_all(&mut *conn)
                .await?;
                for row in rows {
                    let other: String = row.try_get(0)?;
                    let key = format!("instance:{other}");
                    let gone: bool = sqlx::query("SELECT pg_try_advisory_lock(hashtext($1))")
                        .bind(&key)
                        .fetch_one(&mut *conn)
                        .await?
                        .try_get(0)?;
                    if !gone {
                        continue;
                    }
                    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
                    let running = sqlx::query(
                        "DELETE FROM queue WHERE state = 'Running' AND claimed_by = $1 RETURNING execution_id, pgid",
                    )
                    .bind(&other)
                    .fetch_all(&mut *tx)
                    .await?;
                    orphans.groups.extend(groups_of(&running)?);
                    orphans.stopped += sqlx::query(&format!("{STOP} instance = $1"))
                        .bind(&other)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query("DELETE FROM instances WHERE id = $1").bind(&other).execute(&mut *tx).await?;
                    tx.commit().await?;
                    sqlx::query("SELECT pg_advisory_unlock(hashtext($1))").bind(&key).fetch_one(&mut *conn).await?;
                }
                Ok(orphans)
            }
        }
    }

    /// One page of a pipeline's executions, newest first, after `before_seq`.
    pub async fn executions(
        &self,
        pipeline: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        self.executions_with(pipeline, before_seq, limit, None).await
    }

    /// One page of a pipeline's executions with this status (any with `None`), newest first,
    /// after `before_seq`.
    pub async fn executions_with(
        &self,
        pipeline: &str,
        before_seq: Option<i64>,
        limit: usize,
        status: Option<&str>,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE pipeline = $1 AND seq < $2 AND ($4 = '' OR status = $4)
             ORDER BY seq DESC LIMIT $3"
        ))
        .bind(pipeline)
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(status.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(execution_row).collect()
    }

    /// The `sourceRevisions` (JSON text) of the pipeline's latest webhook-started execution that
    /// has any: what StartPipelineExecution runs.
    pub async fn latest_source_revisions(&self, pipeline: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT source_revisions FROM executions WHERE pipeline = $1 AND trigger_type = 'Webhook'
             AND source_revisions <> '[]' ORDER BY seq DESC LIMIT 1",
        )
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get(0)).transpose().map_err(Into::into)
    }

    /// Writes an execution started by a call (StartPipelineExecution), and with `queue_max`
    /// queues it for the on-trigger program (`Ok(None)` when the queue is full), in one
    /// transaction. With a `client_request_token` already used on this pipeline nothing is
    /// written and the id of the execution it started is returned (`false`: not started now).
    pub async fn start_execution(
        &self,
        execution: &ExecutionRow,
        instance: Option<&str>,
        client_request_token: Option<&str>,
        queue_max: Option<usize>,
    ) -> Result<Option<(String, bool)>, StoreError> {
        let e = execution;
        let existing = |token: &str| {
            sqlx::query("SELECT id FROM executions WHERE pipeline = $1 AND client_request_token = $2")
                .bind(e.pipeline.clone())
                .bind(token.to_owned())
        };
        if let Some(token) = client_request_token
            && let Some(row) = existing(token).fetch_optional(&self.pool).await?
        {
            return Ok(Some((row.try_get(0)?, false)));
        }
        let written = async {
            let mut tx = self.begin_write().await?;
            if let Some(max) = queue_max {
                let taken = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'queued' AND value < $1")
                    .bind(i64::try_from(max).unwrap_or(i64::MAX))
                    .execute(&mut *tx)
                    .await?;
                if taken.rows_affected() == 0 {
                    return Ok(false);
                }
            }
            let insert = sqlx::query(
                "INSERT INTO executions (id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time,
                 last_update_time, instance, trigger_type, source_revisions, client_request_token)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            );
            bind_execution(insert, e, instance)
                .bind(client_request_token)
                .execute(&mut *tx)
            .await?;
            if queue_max.is_some() {
                let waiting = Waiting {
                    execution_id: &e.id,
                    pipeline: &e.pipeline,
                    webhook: "",
                    event: "",
                    delivery: "",
                    payload: b"",
                    at: e.start_time,
                };
                enqueue(&mut tx, self.backend, waiting).await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(true)
        }
        .await;
        match written {
            Ok(true) => Ok(Some((e.id.clone(), true))),
            Ok(false) => Ok(None),
            // The same token committed meanwhile (the unique index): its execution.
            Err(err) => match client_request_token {
                Some(token) => match existing(token).fetch_optional(&self.pool).await? {
                    Some(row) => Ok(Some((row.try_get(0)?, false))),
                    None => Err(err),
                },
                None => Err(err),
            },
        }
    }

    /// Takes an execution that still waits in the queue off it (StopPipelineExecution before
    /// a worker claimed it). Whether it was waiting.
    pub async fn unqueue(&self, execution_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM queue WHERE execution_id = $1 AND state = 'Queued'")
            .bind(execution_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            sqlx::query("UPDATE counters SET value = value - 1 WHERE name = 'queued' AND value > 0")
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// StopPipelineExecution: an execution `InProgress` becomes `Stopping` (`Stopped` at once
    /// with `now`) with the reason. Whether it was in progress.
    pub async fn stop_execution(
        &self,
        pipeline: &str,
        id: &str,
        reason: Option<&str>,
        now: bool,
        at: f64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE executions SET status = $3, stop_reason = $4, status_summary = $4, last_update_time = $5
             WHERE pipeline = $1 AND id = $2 AND status = 'InProgress'",
        )
        .bind(pipeline)
        .bind(id)
        .bind(if now { "Stopped" } else { "Stopping" })
        .bind(reason)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// One execution.
    pub async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<ExecutionRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE pipeline = $1 AND id = $2"))
            .bind(pipeline)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(execution_row).transpose()
    }

    /// Whether the database answers.
    pub async fn healthy(&self) -> bool {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await.is_ok()
    }

    /// Closes the pools (waits for connections in use) and releases the liveness lock.
    pub async fn close(&self) {
        if let Some(conn) = self.liveness.lock().await.take() {
            let _ = sqlx::Connection::close(conn).await;
        }
        if let Some(held) = self.write_gate.lock().await.take() {
            let _ = held.close().await;
        }
        if let Some((held, _)) = self.trigger_conn.lock().await.take() {
            let _ = held.close().await;
        }
        self.writer.close().await;
        self.pool.close().await;
    }
}

/// A write transaction of the control plane ([`Store::write`]). Dropped without
/// [`commit`](Self::commit), it rolls back.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    changes: Vec<(ChangeKind, String)>,
    health: Health,
    /// SQLite: the duplicate window, and the webhooks whose ids it forgets at the commit.
    seen: Option<Arc<Window>>,
    forgotten: Vec<String>,
}

impl std::fmt::Debug for WriteTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTx").field("changes", &self.changes).finish_non_exhaustive()
    }
}

impl WriteTx {
    /// One pipeline, as this transaction sees it.
    pub async fn pipeline(&mut self, name: &str, version: Option<i64>) -> Result<Option<PipelineRow>, StoreError> {
        pipeline_in(&mut *self.tx, name, version).await
    }

    /// Writes a pipeline version.
    pub async fn insert_pipeline(&mut self, row: &PipelineRow) -> Result<(), StoreError> {
        sqlx::query(&format!("INSERT INTO pipelines ({PIPELINE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"))
            .bind(&row.name)
            .bind(row.version)
            .bind(&row.declaration)
            .bind(row.created)
            .bind(row.updated)
            .bind(&row.tags)
            .execute(&mut *self.tx)
            .await?;
        self.changes.push((ChangeKind::Pipeline, row.name.clone()));
        Ok(())
    }

    /// Replaces a pipeline's tags (JSON text), on every version. Whether the pipeline exists.
    pub async fn set_pipeline_tags(&mut self, name: &str, tags: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("UPDATE pipelines SET tags = $2 WHERE name = $1")
            .bind(name)
            .bind(tags)
            .execute(&mut *self.tx)
            .await?;
        let exists = n.rows_affected() > 0;
        if exists {
            self.changes.push((ChangeKind::Pipeline, name.to_owned()));
        }
        Ok(exists)
    }

    /// Deletes every version of a pipeline and its executions. Whether it existed.
    pub async fn delete_pipeline(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM pipelines WHERE name = $1").bind(name).execute(&mut *self.tx).await?;
        sqlx::query("DELETE FROM executions WHERE pipeline = $1").bind(name).execute(&mut *self.tx).await?;
        let existed = n.rows_affected() > 0;
        if existed {
            self.changes.push((ChangeKind::Pipeline, name.to_owned()));
        }
        Ok(existed)
    }

    /// One webhook, as this transaction sees it.
    pub async fn webhook(&mut self, name: &str) -> Result<Option<WebhookRow>, StoreError> {
        webhook_in(&mut *self.tx, name).await
    }

    /// Takes one of the `quota` webhook slots; `false` when all are taken (by any instance).
    pub async fn take_webhook_slot(&mut self, quota: usize) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'webhooks' AND value < $1")
            .bind(i64::try_from(quota).unwrap_or(i64::MAX))
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Creates or replaces a webhook's state; `lastTriggered` is kept.
    pub async fn put_webhook(&mut self, name: &str, token: &str, state: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO webhooks (name, token, state) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET token = excluded.token, state = excluded.state",
        )
        .bind(name)
        .bind(token)
        .bind(state)
        .execute(&mut *self.tx)
        .await?;
        self.changes.push((ChangeKind::Webhook, name.to_owned()));
        Ok(())
    }

    /// Deletes a webhook, its delivery ids and its delivery log, and frees its slot. Whether it
    /// existed.
    pub async fn delete_webhook(&mut self, name: &str) -> Result<bool, StoreError> {
        let n = sqlx::query("DELETE FROM webhooks WHERE name = $1").bind(name).execute(&mut *self.tx).await?;
        let ids = if self.seen.is_some() { "delivery_ids" } else { "deliveries" };
        sqlx::query(&format!("DELETE FROM {ids} WHERE webhook = $1")).bind(name).execute(&mut *self.tx).await?;
        // SQLite: the window in memory forgets them once this commits.
        self.forgotten.push(name.to_owned());
        // Its delivery log goes with it: a webhook put later under the same name starts with none.
        sqlx::query("DELETE FROM delivery_log WHERE webhook = $1").bind(name).execute(&mut *self.tx).await?;
        let existed = n.rows_affected() > 0;
        if existed {
            sqlx::query("UPDATE counters SET value = value - 1 WHERE name = 'webhooks' AND value > 0")
                .execute(&mut *self.tx)
                .await?;
            self.changes.push((ChangeKind::Webhook, name.to_owned()));
        }
        Ok(existed)
    }

    /// Appends what changed to the change feed and commits. The feed's counter row is taken last,
    /// so writers hold it only for the commit, and the feed is in commit order.
    ///
    /// The commit runs in a task of its own: a caller that gives up (the control plane's
    /// timeout) does not cut it between the database's commit and what this process notes of
    /// it (SQLite: the deleted webhooks' ids, forgotten by the duplicate window).
    pub async fn commit(self, at: f64) -> Result<(), StoreError> {
        let health = self.health.clone();
        let result = match tokio::spawn(self.commit_tx(at)).await {
            Ok(result) => result,
            Err(e) => Err(StoreError(format!("the commit's task ended: {e}"))),
        };
        health.note(&result);
        result
    }

    async fn commit_tx(mut self, at: f64) -> Result<(), StoreError> {
        self.changes.dedup();
        for (kind, name) in &self.changes {
            let seq: i64 = sqlx::query("UPDATE counters SET value = value + 1 WHERE name = 'changes' RETURNING value")
                .fetch_one(&mut *self.tx)
                .await?
                .try_get(0)?;
            sqlx::query("INSERT INTO changes (seq, kind, name, at) VALUES ($1, $2, $3, $4)")
                .bind(seq)
                .bind(kind.as_str())
                .bind(name)
                .bind(at)
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        if let Some(seen) = &self.seen
            && !self.forgotten.is_empty()
        {
            seen.forget(std::mem::take(&mut self.forgotten));
        }
        Ok(())
    }
}

async fn pipeline_in<'e, E>(exec: E, name: &str, version: Option<i64>) -> Result<Option<PipelineRow>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = match version {
        Some(v) => {
            sqlx::query(&format!("SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE name = $1 AND version = $2"))
                .bind(name)
                .bind(v)
                .fetch_optional(exec)
                .await?
        }
        None => {
            sqlx::query(&format!(
                "SELECT {PIPELINE_COLUMNS} FROM pipelines WHERE name = $1 ORDER BY version DESC LIMIT 1"
            ))
            .bind(name)
            .fetch_optional(exec)
            .await?
        }
    };
    row.as_ref().map(pipeline_row).transpose()
}

async fn webhook_in<'e, E>(exec: E, name: &str) -> Result<Option<WebhookRow>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let row = sqlx::query("SELECT name, token, state, last_triggered FROM webhooks WHERE name = $1")
        .bind(name)
        .fetch_optional(exec)
        .await?;
    row.as_ref().map(webhook_row).transpose()
}

fn groups_of(rows: &[AnyRow]) -> Result<Vec<(String, Option<i64>)>, StoreError> {
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

fn pipeline_row(r: &AnyRow) -> Result<PipelineRow, StoreError> {
    Ok(PipelineRow {
        name: r.try_get(0)?,
        version: r.try_get(1)?,
        declaration: r.try_get(2)?,
        created: r.try_get(3)?,
        updated: r.try_get(4)?,
        tags: r.try_get(5)?,
    })
}

fn webhook_row(r: &AnyRow) -> Result<WebhookRow, StoreError> {
    Ok(WebhookRow { name: r.try_get(0)?, token: r.try_get(1)?, state: r.try_get(2)?, last_triggered: r.try_get(3)? })
}

fn execution_row(r: &AnyRow) -> Result<ExecutionRow, StoreError> {
    Ok(ExecutionRow {
        seq: r.try_get(0)?,
        id: r.try_get(1)?,
        pipeline: r.try_get(2)?,
        pipeline_version: r.try_get(3)?,
        status: r.try_get(4)?,
        status_summary: r.try_get(5)?,
        webhook_arn: r.try_get(6)?,
        start_time: r.try_get(7)?,
        last_update_time: r.try_get(8)?,
        trigger_type: r.try_get(9)?,
        source_revisions: r.try_get(10)?,
        stop_reason: r.try_get(11)?,
    })
}

/// The file of `sqlite:PATH` (or `sqlite://PATH`; a `?query` is not part of it).
fn sqlite_url_path(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:");
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    PathBuf::from(rest.split('?').next().unwrap_or_default())
}

/// The lock file of the SQLite file at `path`, from where the file really is (symbolic links
/// and relative paths resolved), so that every way of naming one database takes one lock:
/// `DIR/serve.lock` for a data directory's database (`--data-dir DIR`, or
/// `--database-url sqlite:DIR/codepipeline-webhooks.sqlite3`), `PATH.lock` for any other.
fn lock_of(path: &Path) -> PathBuf {
    let real = fs::canonicalize(path).ok().or_else(|| {
        let name = path.file_name()?;
        let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(fs::canonicalize(parent).ok()?.join(name))
    });
    let real = real.unwrap_or_else(|| path.to_owned());
    match real.parent() {
        Some(dir) if real.file_name().is_some_and(|n| n == SQLITE_FILE) => dir.join(LOCK_FILE),
        _ => {
            let mut lock = real.into_os_string();
            lock.push(".lock");
            lock.into()
        }
    }
}

/// The lock file of a SQLite database, as `Store::open` takes it ([`lock_of`]); none on
/// Postgres.
fn lock_path(location: &Location) -> Option<PathBuf> {
    match location {
        Location::DataDir(dir) => Some(lock_of(&dir.join(SQLITE_FILE))),
        Location::Url(url) if url.starts_with("sqlite:") => {
            Some(sqlite_url_path(url)).filter(|p| !p.as_os_str().is_empty()).map(|p| lock_of(&p))
        }
        Location::Url(_) => None,
    }
}

/// Whether another process holds the lock of the SQLite database at `location`: its refusal
/// (which names that process), for a start that failed before the database was opened (the
/// port already taken, most likely by that same process). A probe: a free lock is let go at
/// once, and a missing directory is not made.
pub fn held_elsewhere(location: &Location) -> Option<StoreError> {
    let path = lock_path(location)?;
    if !path.parent().is_some_and(Path::is_dir) {
        return None;
    }
    lock_file(&path).err()
}

/// Opens (creating, 0600) and exclusively locks `path`, then writes this process's id into it.
/// Refused, naming the holder's process id, when another process holds it.
fn lock_file(path: &Path) -> Result<fs::File, StoreError> {
    use std::io::{Read, Seek, Write};
    let mut options = fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() || !holder.bytes().all(|b| b.is_ascii_digit()) {
                "another process".to_owned()
            } else {
                format!("process {holder}")
            };
            return Err(StoreError(format!(
                "{} is locked by {who} (another codepipeline-webhooks serve on the same database?); \
                 SQLite serves one process: stop it, or run many instances on Postgres (--database-url postgres://...)",
                path.display()
            )));
        }
        Err(fs::TryLockError::Error(e)) => return Err(StoreError(format!("cannot lock {}: {e}", path.display()))),
    }
    file.set_len(0)?;
    file.rewind()?;
    writeln!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(file)
}

/// Refuses an existing database file that SQLite would silently treat as a new, empty database
/// (zero bytes: the service would start with no webhooks and no word) or that is not SQLite.
fn check_sqlite_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read as _;
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Err(StoreError(format!(
            "{} is empty (0 bytes), not a database this service wrote: refusing to start as an empty service; \
             restore it from a backup, or remove it to start afresh",
            path.display()
        )));
    }
    let mut header = [0u8; 16];
    let n = file.read(&mut header)?;
    if n < 16 || &header != b"SQLite format 3\0" {
        return Err(StoreError(format!(
            "{} is not a SQLite database ({len} bytes without the SQLite header): refusing to use it",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
}

#[cfg(not(unix))]
fn create_private(path: &Path) -> std::io::Result<()> {
    fs::OpenOptions::new().write(true).create_new(true).open(path).map(drop)
}

/// An execution to put in the queue for the on-trigger program.
struct Waiting<'a> {
    execution_id: &'a str,
    pipeline: &'a str,
    webhook: &'a str,
    event: &'a str,
    delivery: &'a str,
    payload: &'a [u8],
    at: f64,
}

/// Queues an execution in its pipeline's execution mode (the latest declaration's
/// `executionMode`, AWS's default SUPERSEDED when it names none). Under SUPERSEDED, executions of
/// the pipeline still waiting are Superseded by this newer one now, as AWS does: they never run.
/// Rows are removed before their executions are marked, so one that a claim took meanwhile keeps
/// running.
async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    w: Waiting<'_>,
) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        lock(tx, &format!("queue:{}", w.pipeline)).await?;
    }
    let declaration: Option<String> =
        sqlx::query("SELECT declaration FROM pipelines WHERE name = $1 ORDER BY version DESC LIMIT 1")
            .bind(w.pipeline)
            .fetch_optional(&mut **tx)
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    let mode = declaration
        .and_then(|d| serde_json::from_str::<serde_json::Value>(&d).ok())
        .map(|d| ExecutionMode::of_declaration(&d))
        .unwrap_or_default();
    if mode == ExecutionMode::Superseded {
        let gone = sqlx::query("DELETE FROM queue WHERE pipeline = $1 AND state = 'Queued' RETURNING execution_id")
            .bind(w.pipeline)
            .fetch_all(&mut **tx)
            .await?;
        for row in &gone {
            let id: String = row.try_get(0)?;
            sqlx::query(
                "UPDATE executions SET status = 'Superseded',
                 status_summary = 'superseded by a newer execution before it ran', last_update_time = $2
                 WHERE id = $1 AND status = 'InProgress'",
            )
            .bind(id)
            .bind(w.at)
            .execute(&mut **tx)
            .await?;
        }
        if !gone.is_empty() {
            sqlx::query(
                "UPDATE counters SET value = CASE WHEN value > $1 THEN value - $1 ELSE 0 END WHERE name = 'queued'",
            )
            .bind(i64::try_from(gone.len()).unwrap_or(i64::MAX))
            .execute(&mut **tx)
            .await?;
        }
    }
    sqlx::query(
        "INSERT INTO queue (execution_id, pipeline, webhook, event, delivery, payload, state, enqueued, mode)
         VALUES ($1, $2, $3, $4, $5, $6, 'Queued', $7, $8)",
    )
    .bind(w.execution_id)
    .bind(w.pipeline)
    .bind(w.webhook)
    .bind(w.event)
    .bind(w.delivery)
    .bind(w.payload)
    .bind(w.at)
    .bind(mode.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Binds an execution row and the instance that runs its program, in the executions table's
/// column order of the INSERTs.
fn bind_execution<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    e: &'q ExecutionRow,
    instance: Option<&'q str>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(&e.id)
        .bind(&e.pipeline)
        .bind(e.pipeline_version)
        .bind(&e.status)
        .bind(e.status_summary.as_deref())
        .bind(&e.webhook_arn)
        .bind(e.start_time)
        .bind(e.last_update_time)
        .bind(instance)
        .bind(&e.trigger_type)
        .bind(&e.source_revisions)
}

/// The most rows one multi-row statement carries.
const ROWS_PER_STATEMENT: usize = 64;

/// How long the Postgres trigger recorder keeps its connection without a batch.
const HELD_IDLE_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// The dedupe window (a record's start time less its `dedupe_after`) when it is the same for
/// every record of `batch` and none has an on-trigger job: then the batch is written with one
/// statement per table.
fn one_window(batch: &[TriggerRecord]) -> Option<f64> {
    let first = batch.first()?;
    let window = first.execution.start_time - first.dedupe_after;
    let same = batch.iter().all(|t| t.job.is_none() && (t.execution.start_time - t.dedupe_after - window).abs() < 1e-6);
    same.then_some(window)
}

/// The latest start among the triggers of `batch` that started, per webhook, in webhook order
/// (the order in which their rows are locked).
fn last_triggered<'b>(batch: &'b [TriggerRecord], out: &[Recorded]) -> Vec<(&'b str, f64)> {
    let mut last: Vec<(&str, f64)> = Vec::new();
    for (t, r) in batch.iter().zip(out) {
        if *r == Recorded::Started {
            match last.iter_mut().find(|(w, _)| *w == t.webhook) {
                Some((_, at)) => *at = at.max(t.execution.start_time),
                None => last.push((&t.webhook, t.execution.start_time)),
            }
        }
    }
    last.sort_by(|a, b| a.0.cmp(b.0));
    last
}

/// SQLite: the delivery ids of `batch`'s triggers that started join the window (`out`: what
/// each trigger got; called once the batch committed).
fn take_started(seen: &mut SeenIds, batch: &[TriggerRecord], out: &[Recorded]) {
    for (t, r) in batch.iter().zip(out) {
        if let Some(delivery) = &t.delivery
            && *r == Recorded::Started
        {
            seen.take(&t.webhook, delivery, t.execution.start_time);
        }
    }
}

/// SQLite: the duplicate window as the database left it, from the `delivery_ids` log in the
/// order the ids were taken, a page at a time: its last [`SEEN_MAX`] rows, what the window
/// would have kept (ids older than the window are pruned at the recorder's next turn to prune).
async fn load_seen_ids(pool: &AnyPool) -> Result<SeenIds, StoreError> {
    const PAGE: i64 = 10_000;
    let mut seen = SeenIds::new(SEEN_MAX);
    let last: Option<i64> = sqlx::query("SELECT max(seq) FROM delivery_ids").fetch_one(pool).await?.try_get(0)?;
    let mut after = last.map_or(0, |last| last - SEEN_MAX as i64);
    loop {
        let rows =
            sqlx::query("SELECT seq, webhook, delivery, at FROM delivery_ids WHERE seq > $1 ORDER BY seq LIMIT $2")
                .bind(after)
                .bind(PAGE)
                .fetch_all(pool)
                .await?;
        for r in &rows {
            let (webhook, delivery): (String, String) = (r.try_get(1)?, r.try_get(2)?);
            seen.take(&webhook, &delivery, r.try_get(3)?);
        }
        match rows.last() {
            Some(last) => after = last.try_get(0)?,
            None => break,
        }
    }
    Ok(seen)
}

/// The options of a SQLite pool of `connections`: WAL, and the pragmas every connection needs.
fn sqlite_pool_options(connections: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(connections)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        // No ping before each use: a connection to a local file does not go stale, and sqlx's
        // ping is a round trip to the connection's thread (a wake-up each way) for every batch
        // and every query. (Postgres keeps it: a connection across a restart of the server is.)
        .test_before_acquire(false)
        .after_connect(|conn, _meta| {
            Box::pin(async move {
                // WAL + NORMAL: a committed transaction survives the process being killed (it
                // is in the WAL file); only an operating-system crash can lose the last ones.
                sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *conn).await?;
                sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *conn).await?;
                sqlx::query("PRAGMA busy_timeout = 5000").execute(&mut *conn).await?;
                // A multi-row INSERT keeps a statement journal (to undo a half-done statement):
                // in memory, not in a temporary file written for every trigger batch (a
                // sixth of a trigger's CPU).
                sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *conn).await?;
                sqlx::query("PRAGMA foreign_keys = ON").execute(&mut *conn).await?;
                Ok(())
            })
        })
}

/// The columns of one trigger in `postgres_batch_sql`, with their types: its place in the batch,
/// its delivery id, and its execution.
const POSTGRES_BATCH_COLUMNS: [&str; 15] = [
    "int8", "text", "text", "float8", "text", "text", "int8", "text", "text", "text", "float8", "float8", "text",
    "text", "text",
];

/// The most triggers `postgres_batch_sql` carries: 15 parameters each, and Postgres takes at
/// most 65,535 in one statement.
const POSTGRES_BATCH_MAX: usize = 4096;

/// Postgres: one statement that records `rows` triggers. Its data-modifying CTEs take each
/// delivery id (inserted, or taken over when older than the window: the last parameter, in
/// seconds), start an execution for each trigger whose id was taken or that has none, and stamp
/// each webhook's lastTriggered with its latest; it returns the batch places of the triggers
/// that started. Locks are taken in one order, as the statement-per-table path takes them, so
/// that two instances' batches cannot deadlock: every delivery id first, in (webhook, delivery)
/// byte order (`started` waits for all of `fresh`: the count), then the webhooks' rows, by name.
fn postgres_batch_sql(rows: usize) -> String {
    let columns = POSTGRES_BATCH_COLUMNS.len();
    let mut values = String::new();
    for row in 0..rows {
        values.push_str(if row == 0 { "(" } else { ", (" });
        for (c, ty) in POSTGRES_BATCH_COLUMNS.iter().enumerate() {
            if c > 0 {
                values.push_str(", ");
            }
            let _ = write!(values, "${}::{ty}", row * columns + c + 1);
        }
        values.push(')');
    }
    format!(
        "WITH v (i, webhook, delivery, at, id, pipeline, pipeline_version, status, status_summary, webhook_arn,
                 start_time, last_update_time, instance, trigger_type, source_revisions) AS (VALUES {values}),
         fresh AS (
             INSERT INTO deliveries (webhook, delivery, at)
             SELECT webhook, delivery, at FROM v WHERE delivery IS NOT NULL
             ORDER BY webhook COLLATE \"C\", delivery COLLATE \"C\"
             ON CONFLICT (webhook, delivery) DO UPDATE SET at = excluded.at
             WHERE deliveries.at <= excluded.at - ${window}
             RETURNING webhook, delivery),
         started AS (
             SELECT v.* FROM v, (SELECT count(*) FROM fresh) AS taken
             WHERE v.delivery IS NULL OR (v.webhook, v.delivery) IN (SELECT webhook, delivery FROM fresh)),
         inserted AS (
             INSERT INTO executions (id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time,
                                     last_update_time, instance, trigger_type, source_revisions)
             SELECT id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, last_update_time,
                    instance, trigger_type, source_revisions
             FROM started ORDER BY i),
         locked AS MATERIALIZED (
             SELECT name FROM webhooks WHERE name IN (SELECT webhook FROM started)
             ORDER BY name COLLATE \"C\" FOR UPDATE),
         stamped AS (
             UPDATE webhooks w SET last_triggered = s.at
             FROM (SELECT webhook, max(start_time) AS at FROM started GROUP BY webhook) s
             WHERE w.name = s.webhook AND w.name IN (SELECT name FROM locked)
               AND (w.last_triggered IS NULL OR w.last_triggered < s.at))
         SELECT i FROM started",
        window = rows * columns + 1,
    )
}

/// Parameter `n` (from 1) of a statement: `?` on SQLite (positional: sqlx looks up each named
/// parameter, and SQLite finds a `$N` by a walk of the statement's list, quadratic in a long
/// statement), `$n` on Postgres.
fn parameter(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_owned(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `(p1, p2, p3), (p4, p5, p6)`: the VALUES of `rows` rows of `columns` parameters each.
pub(crate) fn placeholders(backend: Backend, rows: usize, columns: usize) -> String {
    let mut out = String::new();
    for row in 0..rows {
        out.push_str(if row == 0 { "(" } else { ", (" });
        for column in 1..=columns {
            if column > 1 {
                out.push_str(", ");
            }
            out.push_str(&parameter(backend, row * columns + column));
        }
        out.push(')');
    }
    out
}

/// Postgres: a transaction-scoped advisory lock on `key`.
async fn lock(tx: &mut sqlx::Transaction<'_, sqlx::Any>, key: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(hashtext($1))) AS locked")
        .bind(key.to_owned())
        .fetch_one(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn execution(id: &str, at: f64) -> ExecutionRow {
        ExecutionRow {
            seq: 0,
            id: id.into(),
            pipeline: "p".into(),
            pipeline_version: 1,
            status: "Succeeded".into(),
            status_summary: None,
            webhook_arn: "arn:aws:codepipeline:us-east-1:123456789012:webhook:w".into(),
            start_time: at,
            last_update_time: at,
            trigger_type: "Webhook".into(),
            source_revisions: "[]".into(),
            stop_reason: None,
        }
    }

    fn record(delivery: Option<&str>, id: &str, at: f64) -> TriggerRecord {
        TriggerRecord {
            webhook: "w".into(),
            delivery: delivery.map(str::to_owned),
            dedupe_after: at - 3600.0,
            execution: execution(id, at),
            instance: None,
            job: None,
        }
    }

    /// A batch larger than any statement chunk, with every kind of trigger: no delivery id, an
    /// id recorded before (a duplicate), one id repeated within the batch, fresh ids whose order
    /// is the reverse of the arrival order. Executions are numbered in arrival order.
    async fn a_large_batch(store: &Store) {
        let mut tx = store.write("webhook:w").await.unwrap();
        assert!(tx.take_webhook_slot(10).await.unwrap());
        tx.put_webhook("w", "tok", "{}").await.unwrap();
        tx.commit(1.0).await.unwrap();
        // An id seen more than the window (3,600 s) before the batch is taken over, not a repeat.
        assert_eq!(store.record_trigger(&record(Some("stale"), "stale", -5000.0)).await.unwrap(), Recorded::Started);
        assert_eq!(store.record_trigger(&record(Some("seen"), "before", 999.0)).await.unwrap(), Recorded::Started);
        let kind = |n: usize| match n % 10 {
            0 => None,
            3 => Some("seen".to_owned()),
            7 if n == 7 => Some("stale".to_owned()),
            5 => Some("again".to_owned()),
            _ => Some(format!("d{:03}", 299 - n)),
        };
        let batch: Vec<TriggerRecord> =
            (0..300).map(|n| record(kind(n).as_deref(), &format!("e{n:03}"), 1000.0 + n as f64)).collect();
        let out = store.record_triggers(&batch).await.unwrap();
        let expected: Vec<Recorded> = (0..300)
            .map(|n| match n % 10 {
                3 => Recorded::Duplicate,
                5 if n > 5 => Recorded::Duplicate,
                _ => Recorded::Started,
            })
            .collect();
        assert_eq!(out, expected);
        let listed: Vec<String> = store.executions("p", None, 1000).await.unwrap().into_iter().map(|e| e.id).collect();
        let mut started: Vec<String> =
            (0..300).filter(|&n| expected[n] == Recorded::Started).map(|n| format!("e{n:03}")).collect();
        started.reverse();
        started.extend(["before".to_owned(), "stale".to_owned()]);
        assert_eq!(listed, started, "newest first, in arrival order");
        assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(1299.0));
        // The same batch again: every id it carries is now a duplicate; those without one start.
        let mut batch = batch;
        for t in &mut batch {
            t.execution.id.push_str("-again");
        }
        let again = store.record_triggers(&batch).await.unwrap();
        assert_eq!(again.iter().filter(|r| **r == Recorded::Started).count(), 30);
        assert_eq!(again[7], Recorded::Duplicate, "the stale id, taken over by the batch, is fresh now");
    }

    /// A transaction left open on the held writer connection (its Transaction forgotten, so no
    /// rollback is queued): the next batch cannot begin and fails; the one after it runs on a
    /// new connection.
    #[tokio::test]
    async fn a_broken_writer_connection_is_replaced() {
        let (store, dir) = sqlite_store("broken").await;
        {
            let mut turn = store.write_turn().await;
            std::mem::forget(turn.begin().await.unwrap());
        }
        let first = store.record_triggers(&[record(Some("d1"), "e1", 1000.0)]).await;
        assert!(first.is_err(), "the connection is still in its transaction: {first:?}");
        let second = store.record_triggers(&[record(Some("d1"), "e1", 1000.0)]).await.unwrap();
        assert_eq!(second, [Recorded::Started]);
        assert_eq!(store.executions("p", None, 10).await.unwrap().len(), 1);
        drop_sqlite_store((store, dir)).await;
    }

    /// A SQLite store in a directory of its own (`tag`), for a test; [`drop_sqlite_store`]
    /// closes it and removes the directory.
    async fn sqlite_store(tag: &str) -> (Store, PathBuf) {
        let dir = std::env::temp_dir().join(format!("cpw-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        (Store::open(&Location::DataDir(dir.clone())).await.unwrap(), dir)
    }

    async fn drop_sqlite_store((store, dir): (Store, PathBuf)) {
        store.close().await;
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A batch that fails part of the way (an execution id already taken, after its delivery
    /// ids were written) leaves nothing behind: its delivery ids are free for the redelivery,
    /// lastTriggered is not moved, and the next batch writes on the same connection.
    async fn a_failed_batch_leaves_nothing(store: &Store) {
        let mut tx = store.write("webhook:w").await.unwrap();
        assert!(tx.take_webhook_slot(10).await.unwrap());
        tx.put_webhook("w", "tok", "{}").await.unwrap();
        tx.commit(1.0).await.unwrap();
        assert_eq!(store.record_triggers(&[record(None, "taken", 1000.0)]).await.unwrap(), [Recorded::Started]);
        for delivery in [Some("d1"), None] {
            let failed =
                store.record_triggers(&[record(delivery, "fresh", 1100.0), record(Some("d2"), "taken", 1101.0)]).await;
            assert!(failed.is_err(), "an execution id is taken: {failed:?}");
            assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(1000.0));
        }
        let out =
            store.record_triggers(&[record(Some("d1"), "e1", 1200.0), record(Some("d2"), "e2", 1201.0)]).await.unwrap();
        assert_eq!(out, [Recorded::Started, Recorded::Started], "the failed batches' ids were rolled back");
        let listed: Vec<String> = store.executions("p", None, 10).await.unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(listed, ["e2", "e1", "taken"]);
        assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(1201.0));
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_nothing_on_sqlite() {
        let (store, dir) = sqlite_store("failed").await;
        a_failed_batch_leaves_nothing(&store).await;
        drop_sqlite_store((store, dir)).await;
    }

    /// A transaction a script left open (what a future dropped while its script runs may
    /// leave): the next turn does not write inside it, on a connection
    /// that holds SQLite's write lock, but on a new one: the next batch is written the first
    /// time. And a writer connection that could not be held is opened again at the next turn.
    #[tokio::test]
    async fn a_script_left_open_is_not_written_into() {
        let (store, dir) = sqlite_store("open").await;
        {
            let mut turn = store.write_turn().await;
            turn.run_script(sqlx::query("BEGIN IMMEDIATE")).await.unwrap();
            drop(OpenScript(Some(&store.writer_broken)));
        }
        let out = store.record_triggers(&[record(Some("d1"), "e1", 1000.0)]).await.unwrap();
        assert_eq!(out, [Recorded::Started]);
        drop(store.write_gate.lock().await.take());
        let out = store.record_triggers(&[record(Some("d2"), "e2", 1001.0)]).await.unwrap();
        assert_eq!(out, [Recorded::Started]);
        assert!(store.write_gate.lock().await.is_some(), "the writer connection is held again");
        assert_eq!(store.executions("p", None, 10).await.unwrap().len(), 2);
        drop_sqlite_store((store, dir)).await;
    }

    #[tokio::test]
    async fn a_large_batch_on_sqlite() {
        let (store, dir) = sqlite_store("batch").await;
        a_large_batch(&store).await;
        drop_sqlite_store((store, dir)).await;
    }

    /// With `TEST_DATABASE_URL` (postgres://USER@HOST:PORT/DB): a store on a database of its own
    /// (`tag`), and the connection that drops it ([`drop_postgres_store`]); `None` (skipped,
    /// with a message) without it.
    async fn postgres_store(tag: &str) -> Option<(Store, sqlx::AnyConnection, String)> {
        let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
            eprintln!("skipped: set TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB to run it on Postgres");
            return None;
        };
        sqlx::any::install_default_drivers();
        let mut admin = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await.unwrap();
        let name = format!("cpw_unit_{tag}_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
        let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
        let store = Store::open(&Location::Url(format!("{base}/{name}"))).await.unwrap();
        Some((store, admin, name))
    }

    async fn drop_postgres_store((store, mut admin, name): (Store, sqlx::AnyConnection, String)) {
        store.close().await;
        // FORCE: a closed connection's server process may not have exited yet (seen in CI:
        // "is being accessed by other users" right after the pool closed).
        sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)")).execute(&mut admin).await.unwrap();
    }

    /// The one-statement batch of Postgres.
    /// One batch over two webhooks, where the latest trigger of one is a repeat of an id it saw
    /// before: each webhook's lastTriggered is the latest of its own triggers that started.
    async fn two_webhooks_in_one_batch(store: &Store) {
        for name in ["v", "w"] {
            let mut tx = store.write(&format!("webhook:{name}")).await.unwrap();
            assert!(tx.take_webhook_slot(10).await.unwrap());
            tx.put_webhook(name, &format!("tok-{name}"), "{}").await.unwrap();
            tx.commit(1.0).await.unwrap();
        }
        let of = |webhook: &str, t: TriggerRecord| TriggerRecord { webhook: webhook.into(), ..t };
        assert_eq!(store.record_trigger(&of("v", record(Some("old"), "v0", 900.0))).await.unwrap(), Recorded::Started);
        let out = store
            .record_triggers(&[
                of("w", record(Some("old"), "w1", 1000.0)),
                of("v", record(Some("new"), "v1", 1001.0)),
                of("w", record(None, "w2", 1002.0)),
                of("v", record(Some("old"), "v2", 1003.0)),
            ])
            .await
            .unwrap();
        // "old" is v's repeat, not w's: ids are per webhook.
        assert_eq!(out, [Recorded::Started, Recorded::Started, Recorded::Started, Recorded::Duplicate]);
        assert_eq!(store.webhook("v").await.unwrap().unwrap().last_triggered, Some(1001.0));
        assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(1002.0));
        let ids: Vec<String> = store.executions("p", None, 10).await.unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["w2", "v1", "w1", "v0"], "arrival order, the repeat left out");
    }

    #[tokio::test]
    async fn two_webhooks_in_one_batch_on_sqlite() {
        let (store, dir) = sqlite_store("two").await;
        two_webhooks_in_one_batch(&store).await;
        drop_sqlite_store((store, dir)).await;
    }

    #[tokio::test]
    async fn two_webhooks_in_one_batch_on_postgres() {
        let Some(pg) = postgres_store("two").await else { return };
        two_webhooks_in_one_batch(&pg.0).await;
        drop_postgres_store(pg).await;
    }

    #[tokio::test]
    async fn a_large_batch_on_postgres() {
        let Some(pg) = postgres_store("batch").await else { return };
        a_large_batch(&pg.0).await;
        drop_postgres_store(pg).await;
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_nothing_on_postgres() {
        let Some(pg) = postgres_store("failed").await else { return };
        a_failed_batch_leaves_nothing(&pg.0).await;
        drop_postgres_store(pg).await;
    }

    #[tokio::test]
    async fn batches_dedupe_prune_stamp_last_triggered_and_lock() {
        let dir = std::env::temp_dir().join(format!("cpw-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::open(&Location::DataDir(dir.clone())).await.unwrap();
        let second = Store::open(&Location::DataDir(dir.clone())).await.unwrap_err().to_string();
        assert!(second.contains(&format!("locked by process {}", std::process::id())), "{second}");
        let mut tx = store.write("webhook:w").await.unwrap();
        assert!(tx.take_webhook_slot(1).await.unwrap());
        tx.put_webhook("w", "tok", "{}").await.unwrap();
        tx.commit(1.0).await.unwrap();
        let mut tx = store.write("webhook:x").await.unwrap();
        assert!(!tx.take_webhook_slot(1).await.unwrap(), "the quota of 1 is taken");
        drop(tx);
        let changes = store.changes_since(0, 10).await.unwrap();
        assert_eq!(changes, [Change { seq: 1, kind: ChangeKind::Webhook, name: "w".into() }]);
        assert_eq!(store.change_seq().await.unwrap(), 1);
        let out = store
            .record_triggers(&[
                record(Some("d1"), "e1", 1000.0),
                record(Some("d1"), "e2", 1001.0),
                record(None, "e3", 1002.0),
            ])
            .await
            .unwrap();
        assert_eq!(out, [Recorded::Started, Recorded::Duplicate, Recorded::Started], "a repeat inside a batch");
        assert_eq!(store.webhooks().await.unwrap()[0].last_triggered, Some(1002.0));
        // An earlier stamp does not move lastTriggered back.
        store.record_trigger(&record(None, "e0", 900.0)).await.unwrap();
        assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(1002.0));
        assert_eq!(
            store.executions("p", None, 10).await.unwrap().iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e0", "e3", "e1"]
        );
        assert_eq!(store.record_trigger(&record(Some("d1"), "e9", 1500.0)).await.unwrap(), Recorded::Duplicate);
        // An hour later the id is free again; pruning forgets it.
        assert_eq!(store.record_trigger(&record(Some("d1"), "e4", 5000.0)).await.unwrap(), Recorded::Started);
        // A batch of a repeat and a new id: only the new one is written, and only it stamps.
        let out =
            store.record_triggers(&[record(Some("d1"), "e5", 5002.0), record(Some("d2"), "e6", 5001.0)]).await.unwrap();
        assert_eq!(out, [Recorded::Duplicate, Recorded::Started]);
        assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(5001.0));
        let ids: Vec<String> = store.executions("p", None, 10).await.unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["e6", "e4", "e0", "e3", "e1"]);
        assert_eq!(store.record_trigger(&record(Some("d2"), "e7", 5003.0)).await.unwrap(), Recorded::Duplicate);
        assert_eq!(store.webhook("w").await.unwrap().unwrap().last_triggered, Some(5001.0));
        assert_eq!(store.prune_deliveries(4000.0).await.unwrap(), 0);
        assert_eq!(store.prune_deliveries(6000.0).await.unwrap(), 2);
        store.close().await;
        drop(store);
        // The lock is released with the store.
        let again = Store::open(&Location::DataDir(dir.clone())).await.unwrap();
        again.close().await;
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A trigger with an on-trigger job (the transaction built statement by statement): one
    /// refused for a full queue leaves its delivery id free for the redelivery, which starts;
    /// a repeat of that is a duplicate.
    async fn a_full_queue_takes_no_delivery_id(store: &Store) {
        let mut tx = store.write("webhook:w").await.unwrap();
        assert!(tx.take_webhook_slot(10).await.unwrap());
        tx.put_webhook("w", "tok", "{}").await.unwrap();
        tx.commit(1.0).await.unwrap();
        let with_job = |id: &str, at: f64, queue_max: usize| TriggerRecord {
            job: Some(QueuedJob { event: "push".into(), payload: axum::body::Bytes::from_static(b"{}"), queue_max }),
            ..record(Some("d1"), id, at)
        };
        assert_eq!(store.record_trigger(&with_job("e1", 1000.0, 0)).await.unwrap(), Recorded::QueueFull);
        assert_eq!(store.record_trigger(&with_job("e2", 1001.0, 10)).await.unwrap(), Recorded::Started);
        assert_eq!(store.record_trigger(&with_job("e3", 1002.0, 10)).await.unwrap(), Recorded::Duplicate);
        assert_eq!(store.record_trigger(&record(Some("d1"), "e4", 1003.0)).await.unwrap(), Recorded::Duplicate);
        let ids: Vec<String> = store.executions("p", None, 10).await.unwrap().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["e2"]);
    }

    #[tokio::test]
    async fn a_full_queue_takes_no_delivery_id_on_sqlite() {
        let (store, dir) = sqlite_store("queue").await;
        a_full_queue_takes_no_delivery_id(&store).await;
        drop_sqlite_store((store, dir)).await;
    }

    #[tokio::test]
    async fn a_full_queue_takes_no_delivery_id_on_postgres() {
        let Some(pg) = postgres_store("queue").await else { return };
        a_full_queue_takes_no_delivery_id(&pg.0).await;
        drop_postgres_store(pg).await;
    }

    async fn put(store: &Store, name: &str) {
        let mut tx = store.write(&format!("webhook:{name}")).await.unwrap();
        assert!(tx.take_webhook_slot(10).await.unwrap());
        tx.put_webhook(name, &format!("tok-{name}"), "{}").await.unwrap();
        tx.commit(1.0).await.unwrap();
    }

    /// SQLite's window in memory is filled again from the database at start, and DeleteWebhook
    /// forgets the webhook's ids in memory and in the database (a webhook put again under the
    /// name starts with none), and only its own.
    #[tokio::test]
    async fn the_sqlite_window_outlives_a_restart_and_dies_with_its_webhook() {
        let (store, dir) = sqlite_store("window").await;
        let of = |webhook: &str, t: TriggerRecord| TriggerRecord { webhook: webhook.into(), ..t };
        put(&store, "v").await;
        put(&store, "w").await;
        let out = store
            .record_triggers(&[of("w", record(Some("d1"), "w1", 1000.0)), of("v", record(Some("d1"), "v1", 1001.0))])
            .await
            .unwrap();
        assert_eq!(out, [Recorded::Started, Recorded::Started]);
        store.close().await;
        drop(store);
        let store = Store::open(&Location::DataDir(dir.clone())).await.unwrap();
        assert_eq!(store.seen.as_ref().unwrap().lock().await.len(), 2);
        assert_eq!(
            store.record_trigger(&of("w", record(Some("d1"), "w2", 1100.0))).await.unwrap(),
            Recorded::Duplicate
        );
        let mut tx = store.write("webhook:w").await.unwrap();
        assert!(tx.delete_webhook("w").await.unwrap());
        tx.commit(2.0).await.unwrap();
        assert_eq!(store.record_trigger(&of("w", record(Some("d1"), "w3", 1200.0))).await.unwrap(), Recorded::Started);
        // Deleted again, then a restart: the log forgot w's ids too, and kept v's.
        let mut tx = store.write("webhook:w").await.unwrap();
        tx.delete_webhook("w").await.unwrap();
        tx.commit(3.0).await.unwrap();
        store.close().await;
        drop(store);
        let store = Store::open(&Location::DataDir(dir.clone())).await.unwrap();
        put(&store, "w").await;
        let out = store
            .record_triggers(&[of("w", record(Some("d1"), "w4", 1300.0)), of("v", record(Some("d1"), "v2", 1301.0))])
            .await
            .unwrap();
        assert_eq!(out, [Recorded::Started, Recorded::Duplicate]);
        drop_sqlite_store((store, dir)).await;
    }

    async fn logged_ids(store: &Store, webhook: &str) -> i64 {
        sqlx::query("SELECT COUNT(*) FROM delivery_ids WHERE webhook = $1")
            .bind(webhook)
            .fetch_one(store.pool())
            .await
            .unwrap()
            .try_get(0)
            .unwrap()
    }

    /// A DeleteWebhook does not wait for the window (a trigger batch may hold it through its
    /// commit), the next holder forgets the webhook's ids, and a trigger of the webhook that was
    /// already on its way when the delete committed starts but leaves no id in the log. A delete
    /// that does not commit forgets nothing.
    #[tokio::test]
    async fn a_delete_forgets_the_ids_without_waiting_for_the_window() {
        let (store, dir) = sqlite_store("delete-race").await;
        put(&store, "w").await;
        assert_eq!(store.record_trigger(&record(Some("d1"), "e1", 1000.0)).await.unwrap(), Recorded::Started);
        let mut tx = store.write("webhook:w").await.unwrap();
        assert!(tx.delete_webhook("w").await.unwrap());
        drop(tx);
        assert_eq!(store.record_trigger(&record(Some("d1"), "e2", 1001.0)).await.unwrap(), Recorded::Duplicate);
        assert_eq!(logged_ids(&store, "w").await, 1, "a delete rolled back keeps the ids");
        {
            let held = store.seen.as_ref().unwrap().lock().await;
            let mut tx = store.write("webhook:w").await.unwrap();
            assert!(tx.delete_webhook("w").await.unwrap());
            tokio::time::timeout(Duration::from_secs(10), tx.commit(2.0))
                .await
                .expect("the delete waited for the window")
                .unwrap();
            drop(held);
        }
        assert_eq!(logged_ids(&store, "w").await, 0);
        // The delivery that was on its way: it starts (the data plane accepted it before the
        // delete reached it), and no id of the deleted webhook is logged.
        assert_eq!(store.record_trigger(&record(Some("d1"), "e3", 1002.0)).await.unwrap(), Recorded::Started);
        assert_eq!(logged_ids(&store, "w").await, 0);
        drop_sqlite_store((store, dir)).await;
    }

    /// Pruning cuts the log's head up to the first young row, and never keeps more rows than
    /// the window holds ids, even behind a row dated in the future (a clock stepped back).
    #[tokio::test]
    async fn pruning_cuts_the_log_and_bounds_it_whatever_the_clock() {
        let (store, dir) = sqlite_store("prune-log").await;
        put(&store, "w").await;
        for (n, at) in [1000.0, 2000.0, 3000.0].into_iter().enumerate() {
            let id = format!("d{n}");
            assert_eq!(store.record_trigger(&record(Some(&id), &id, at)).await.unwrap(), Recorded::Started);
        }
        assert_eq!(store.prune_deliveries(2500.0).await.unwrap(), 2);
        assert_eq!(logged_ids(&store, "w").await, 1);
        // A row from the future, then more than the window holds.
        sqlx::query("INSERT INTO delivery_ids (webhook, delivery, at) VALUES ('w', 'future', 1e12)")
            .execute(store.pool())
            .await
            .unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
             INSERT INTO delivery_ids (webhook, delivery, at) SELECT 'w', 'x' || i, 5000.0 FROM n",
        )
        .bind(SEEN_MAX as i64 + 10)
        .execute(store.pool())
        .await
        .unwrap();
        store.prune_deliveries(4000.0).await.unwrap();
        assert_eq!(logged_ids(&store, "w").await, SEEN_MAX as i64);
        // Restarted, the window takes the log's last rows, and the pruned ones are gone.
        store.close().await;
        drop(store);
        let store = Store::open(&Location::DataDir(dir.clone())).await.unwrap();
        let seen = store.seen.as_ref().unwrap().lock().await;
        assert_eq!(seen.len(), SEEN_MAX);
        assert!(seen.seen("w", &format!("x{}", SEEN_MAX + 10), 0.0));
        assert!(!seen.seen("w", "future", 0.0) && !seen.seen("w", "d2", 0.0));
        drop(seen);
        drop_sqlite_store((store, dir)).await;
    }

    /// One database, one lock: a data directory's database named through `--database-url`
    /// (a relative path, or through a symbolic link) is refused while `--data-dir` holds it.
    #[tokio::test]
    async fn one_sqlite_database_is_held_once_however_it_is_named() {
        let (store, dir) = sqlite_store("one-lock").await;
        let file = dir.join(SQLITE_FILE);
        let link = std::env::temp_dir().join(format!("cpw-store-one-lock-link-{}", std::process::id()));
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&file, &link).unwrap();
        for url in [format!("sqlite:{}", file.display()), format!("sqlite://{}", link.display())] {
            let refused = Store::open(&Location::Url(url.clone())).await.expect_err(&url);
            assert!(refused.to_string().contains(&format!("locked by process {}", std::process::id())), "{refused}");
            assert!(refused.to_string().contains(LOCK_FILE), "{refused}");
            assert!(held_elsewhere(&Location::Url(url)).is_some());
        }
        fs::remove_file(&link).unwrap();
        drop_sqlite_store((store, dir)).await;
    }

    /// A database written before the window moved to memory (migrations 1 to 6, ids in the
    /// `deliveries` table): its ids are still repeats after the upgrade.
    #[tokio::test]
    async fn an_upgraded_sqlite_database_keeps_its_delivery_ids() {
        let dir = std::env::temp_dir().join(format!("cpw-store-upgrade-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let old = dir.join("migrations");
        fs::create_dir_all(&old).unwrap();
        for m in SQLITE_MIGRATIONS.iter().filter(|m| m.version <= 6) {
            fs::write(old.join(format!("{:04}_{}.sql", m.version, m.description.replace(' ', "_"))), &*m.sql).unwrap();
        }
        sqlx::any::install_default_drivers();
        let path = dir.join(SQLITE_FILE);
        let pool = sqlite_pool_options(1).connect(&format!("sqlite://{}?mode=rwc", path.display())).await.unwrap();
        sqlx::migrate::Migrator::new(old.as_path()).await.unwrap().run(&pool).await.unwrap();
        sqlx::query("INSERT INTO deliveries (webhook, delivery, at) VALUES ('w', 'old', 1000.0)")
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let store = Store::open(&Location::DataDir(dir.clone())).await.unwrap();
        put(&store, "w").await;
        assert_eq!(store.record_trigger(&record(Some("old"), "e1", 1500.0)).await.unwrap(), Recorded::Duplicate);
        assert_eq!(store.record_trigger(&record(Some("new"), "e2", 1501.0)).await.unwrap(), Recorded::Started);
        drop_sqlite_store((store, dir)).await;
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(redact_url("postgres://u:secret@127.0.0.1:5432/db"), "postgres://u:****@127.0.0.1:5432/db");
        assert_eq!(redact_url("postgres://127.0.0.1/db"), "postgres://127.0.0.1/db");
        assert_eq!(redact_url("sqlite:/tmp/x"), "sqlite:/tmp/x");
    }
}
