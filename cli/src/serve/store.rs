//! Persistence: the one module that talks to the database (embedded SQLite, WAL). A Postgres
//! backend would be one more module with the same methods.
//!
//! Every method writes before it returns, so a caller that answers after it has nothing
//! acknowledged to lose on a restart or `kill -9`.

use std::fs;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};

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
}

/// A stored webhook: the registry's exported state of it (secret and URL token included).
#[derive(Clone, PartialEq)]
pub struct WebhookRow {
    /// The webhook's name.
    pub name: String,
    /// Its `WebhookState` as JSON text.
    pub state: String,
    /// When a delivery last started its pipeline, seconds since the Unix epoch.
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
    /// Insertion order, for listing newest first.
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
}

/// What recording a trigger did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new execution was written.
    Started,
    /// The delivery id was seen for this webhook within the window: nothing written.
    Duplicate,
}

/// A store error: the message only (no values are echoed).
#[derive(Clone, Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// The SQLite store.
pub struct Store {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pipelines (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    declaration TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS webhooks (
    name TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    last_triggered REAL
);
CREATE TABLE IF NOT EXISTS executions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    pipeline TEXT NOT NULL,
    pipeline_version INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_summary TEXT,
    webhook_arn TEXT NOT NULL,
    start_time REAL NOT NULL,
    last_update_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_pipeline ON executions (pipeline, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    webhook TEXT NOT NULL,
    delivery TEXT NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (webhook, delivery)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_at ON deliveries (at);
";

impl Store {
    /// Opens (creating) `dir/codepipeline-webhooks.sqlite3`. The directory is made mode 0700 and
    /// the database files 0600: they hold webhook secrets.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(dir)?;
        restrict(dir, 0o700)?;
        let path = dir.join("codepipeline-webhooks.sqlite3");
        if !path.exists() {
            // Create it 0600 before SQLite opens it, so it is never readable by others.
            create_private(&path)?;
        }
        let conn = Connection::open(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // WAL + NORMAL: a committed transaction survives the process being killed (it is in the
        // WAL file); only an operating-system crash can lose the last ones.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        for suffix in ["-wal", "-shm"] {
            let side = dir.join(format!("codepipeline-webhooks.sqlite3{suffix}"));
            if side.exists() {
                restrict(&side, 0o600)?;
            }
        }
        restrict(&path, 0o600)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest version of every pipeline, by name.
    pub fn latest_pipelines(&self) -> Result<Vec<PipelineRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT p.name, p.version, p.declaration, p.created, p.updated FROM pipelines p
             WHERE p.version = (SELECT MAX(version) FROM pipelines q WHERE q.name = p.name) ORDER BY p.name",
        )?;
        let rows = stmt.query_map([], pipeline_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One pipeline: the latest version, or the one asked for.
    pub fn pipeline(&self, name: &str, version: Option<i64>) -> Result<Option<PipelineRow>, StoreError> {
        let conn = self.conn();
        let row = match version {
            Some(v) => conn
                .query_row(
                    "SELECT name, version, declaration, created, updated FROM pipelines WHERE name = ?1 AND version = ?2",
                    params![name, v],
                    pipeline_row,
                )
                .optional()?,
            None => conn
                .query_row(
                    "SELECT name, version, declaration, created, updated FROM pipelines WHERE name = ?1
                     ORDER BY version DESC LIMIT 1",
                    params![name],
                    pipeline_row,
                )
                .optional()?,
        };
        Ok(row)
    }

    /// Writes a pipeline version.
    pub fn put_pipeline(&self, row: &PipelineRow) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO pipelines (name, version, declaration, created, updated) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.name, row.version, row.declaration, row.created, row.updated],
        )?;
        Ok(())
    }

    /// Deletes every version of a pipeline and its executions. Whether it existed.
    pub fn delete_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM pipelines WHERE name = ?1", params![name])?;
        tx.execute("DELETE FROM executions WHERE pipeline = ?1", params![name])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Every webhook.
    pub fn webhooks(&self) -> Result<Vec<WebhookRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, state, last_triggered FROM webhooks ORDER BY name")?;
        let rows = stmt
            .query_map([], |r| Ok(WebhookRow { name: r.get(0)?, state: r.get(1)?, last_triggered: r.get(2)? }))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Creates or replaces a webhook's state; `lastTriggered` is kept.
    pub fn put_webhook(&self, name: &str, state: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO webhooks (name, state) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET state = excluded.state",
            params![name, state],
        )?;
        Ok(())
    }

    /// Deletes a webhook and its delivery ids.
    pub fn delete_webhook(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM webhooks WHERE name = ?1", params![name])?;
        tx.execute("DELETE FROM deliveries WHERE webhook = ?1", params![name])?;
        tx.commit()?;
        Ok(())
    }

    /// Records a trigger in one transaction: unless `delivery` was seen for this webhook after
    /// `dedupe_after`, the delivery id, the webhook's `lastTriggered` and the execution.
    pub fn record_trigger(
        &self,
        webhook: &str,
        delivery: Option<&str>,
        dedupe_after: f64,
        execution: &ExecutionRow,
    ) -> Result<Recorded, StoreError> {
        let trigger = TriggerRecord {
            webhook: webhook.to_owned(),
            delivery: delivery.map(str::to_owned),
            dedupe_after,
            execution: execution.clone(),
        };
        Ok(self.record_triggers(std::slice::from_ref(&trigger))?.remove(0))
    }

    /// Records several triggers in one transaction (one commit: group commit), in order; a
    /// delivery id repeated within the batch is a duplicate too. All or nothing.
    pub fn record_triggers(&self, batch: &[TriggerRecord]) -> Result<Vec<Recorded>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut out = Vec::with_capacity(batch.len());
        for t in batch {
            let execution = &t.execution;
            if let Some(delivery) = &t.delivery {
                let seen: Option<f64> = tx
                    .prepare_cached("SELECT at FROM deliveries WHERE webhook = ?1 AND delivery = ?2")?
                    .query_row(params![t.webhook, delivery], |r| r.get(0))
                    .optional()?;
                if seen.is_some_and(|at| at > t.dedupe_after) {
                    out.push(Recorded::Duplicate);
                    continue;
                }
                tx.prepare_cached(
                    "INSERT INTO deliveries (webhook, delivery, at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(webhook, delivery) DO UPDATE SET at = excluded.at",
                )?
                .execute(params![t.webhook, delivery, execution.start_time])?;
            }
            tx.prepare_cached(
                "INSERT INTO executions (id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, last_update_time)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                execution.id,
                execution.pipeline,
                execution.pipeline_version,
                execution.status,
                execution.status_summary,
                execution.webhook_arn,
                execution.start_time,
                execution.last_update_time
            ])?;
            out.push(Recorded::Started);
        }
        // lastTriggered: once per webhook per batch, the latest start.
        let mut last: Vec<(&str, f64)> = Vec::new();
        for (t, r) in batch.iter().zip(&out) {
            if *r == Recorded::Started {
                match last.iter_mut().find(|(w, _)| *w == t.webhook) {
                    Some((_, at)) => *at = at.max(t.execution.start_time),
                    None => last.push((&t.webhook, t.execution.start_time)),
                }
            }
        }
        for (webhook, at) in last {
            tx.prepare_cached("UPDATE webhooks SET last_triggered = ?2 WHERE name = ?1")?
                .execute(params![webhook, at])?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Forgets delivery ids older than `before`.
    pub fn prune_deliveries(&self, before: f64) -> Result<usize, StoreError> {
        Ok(self.conn().execute("DELETE FROM deliveries WHERE at <= ?1", params![before])?)
    }

    /// Sets an execution's status.
    pub fn finish_execution(&self, id: &str, status: &str, summary: Option<&str>, at: f64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE executions SET status = ?2, status_summary = ?3, last_update_time = ?4 WHERE id = ?1",
            params![id, status, summary, at],
        )?;
        Ok(())
    }

    /// Marks executions left `InProgress` by a previous process as `Stopped`. How many.
    pub fn stop_orphans(&self, at: f64) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE executions SET status = 'Stopped', status_summary = 'the server restarted while it ran',
             last_update_time = ?1 WHERE status = 'InProgress'",
            params![at],
        )?)
    }

    /// One page of a pipeline's executions, newest first, after `before_seq`.
    pub fn executions(
        &self,
        pipeline: &str,
        before_seq: Option<i64>,
        limit: usize,
    ) -> Result<Vec<ExecutionRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, last_update_time
             FROM executions WHERE pipeline = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
        )?;
        let rows = stmt
            .query_map(params![pipeline, before_seq.unwrap_or(i64::MAX), limit as i64], execution_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// One execution.
    pub fn execution(&self, pipeline: &str, id: &str) -> Result<Option<ExecutionRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT seq, id, pipeline, pipeline_version, status, status_summary, webhook_arn, start_time, last_update_time
                 FROM executions WHERE pipeline = ?1 AND id = ?2",
                params![pipeline, id],
                execution_row,
            )
            .optional()?)
    }

    /// Whether the database answers.
    pub fn healthy(&self) -> bool {
        self.conn().query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).is_ok()
    }
}

fn pipeline_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PipelineRow> {
    Ok(PipelineRow {
        name: r.get(0)?,
        version: r.get(1)?,
        declaration: r.get(2)?,
        created: r.get(3)?,
        updated: r.get(4)?,
    })
}

fn execution_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok(ExecutionRow {
        seq: r.get(0)?,
        id: r.get(1)?,
        pipeline: r.get(2)?,
        pipeline_version: r.get(3)?,
        status: r.get(4)?,
        status_summary: r.get(5)?,
        webhook_arn: r.get(6)?,
        start_time: r.get(7)?,
        last_update_time: r.get(8)?,
    })
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
        }
    }

    fn record(delivery: Option<&str>, id: &str, at: f64) -> TriggerRecord {
        TriggerRecord {
            webhook: "w".into(),
            delivery: delivery.map(str::to_owned),
            dedupe_after: at - 3600.0,
            execution: execution(id, at),
        }
    }

    #[test]
    fn batches_dedupe_prune_and_stamp_last_triggered() {
        let dir = std::env::temp_dir().join(format!("cpw-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = Store::open(&dir).unwrap();
        store.put_webhook("w", "{}").unwrap();
        let out = store
            .record_triggers(&[
                record(Some("d1"), "e1", 1000.0),
                record(Some("d1"), "e2", 1001.0),
                record(None, "e3", 1002.0),
            ])
            .unwrap();
        assert_eq!(out, [Recorded::Started, Recorded::Duplicate, Recorded::Started], "a repeat inside a batch");
        assert_eq!(store.webhooks().unwrap()[0].last_triggered, Some(1002.0));
        assert_eq!(
            store.executions("p", None, 10).unwrap().iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["e3", "e1"]
        );
        // An hour later the id is free again; pruning forgets it.
        assert_eq!(
            store.record_trigger("w", Some("d1"), 5000.0 - 3600.0, &execution("e4", 5000.0)).unwrap(),
            Recorded::Started
        );
        assert_eq!(store.prune_deliveries(4000.0).unwrap(), 0);
        assert_eq!(store.prune_deliveries(6000.0).unwrap(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
