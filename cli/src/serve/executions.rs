//! What a trigger starts: its execution record, written by one writer task that commits
//! concurrent triggers together (group commit: each caller still waits for its own commit), and
//! the `--on-trigger` program, run without a shell with the payload on stdin, bounded in time and
//! in how many run at once. Its exit code decides the execution's status.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::App;
use super::store::{Recorded, Store, StoreError, TriggerRecord};

/// How often delivery ids older than the duplicate window are deleted (at the next trigger).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The most triggers committed in one transaction.
const MAX_BATCH: usize = 256;

type Reply = tokio::sync::oneshot::Sender<Result<Recorded, StoreError>>;

/// Writes trigger records through one task, batching those that arrive while the previous
/// batch commits.
#[derive(Debug)]
pub struct Recorder {
    queue: tokio::sync::mpsc::UnboundedSender<(TriggerRecord, Reply)>,
}

impl Recorder {
    /// Starts the writer task (on the current runtime).
    pub fn start(store: Arc<Store>) -> Recorder {
        let (queue, mut jobs) = tokio::sync::mpsc::unbounded_channel::<(TriggerRecord, Reply)>();
        tokio::spawn(async move {
            let mut pruned = std::time::Instant::now();
            while let Some(first) = jobs.recv().await {
                if pruned.elapsed() >= PRUNE_EVERY {
                    // Delivery ids older than the duplicate window are no longer needed.
                    match store.prune_deliveries(super::now() - super::data::DEDUPE_WINDOW_SECS).await {
                        Ok(n) => tracing::debug!(forgotten = n, "old delivery ids pruned"),
                        Err(e) => tracing::warn!(error = %e, "pruning delivery ids failed"),
                    }
                    pruned = std::time::Instant::now();
                }
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let (records, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let mut result = store.record_triggers(&records).await;
                if let Err(e) = &result {
                    // Postgres may abort a transaction that deadlocked with another instance's
                    // batch on the same delivery ids: once more.
                    tracing::warn!(error = %e, "recording a batch of triggers failed; trying again");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    result = store.record_triggers(&records).await;
                }
                match result {
                    Ok(results) => {
                        for (result, reply) in results.into_iter().zip(replies) {
                            let _ = reply.send(Ok(result));
                        }
                    }
                    Err(e) => {
                        for reply in replies {
                            let _ = reply.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        Recorder { queue }
    }

    /// Records one trigger; answers once it is committed.
    pub async fn record(&self, record: TriggerRecord) -> Result<Recorded, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let gone = || StoreError::new("the trigger writer stopped");
        self.queue.send((record, reply)).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// One execution to run.
#[derive(Debug)]
pub struct Job {
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
    pub payload: Bytes,
    /// More environment for the program (the revision it runs:
    /// `CODEPIPELINE_TRIGGER_TYPE`, `CODEPIPELINE_REVISION_ID`, ...).
    pub env: Vec<(&'static str, String)>,
}

/// What StopPipelineExecution asks of a running program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// `abandon`: the program is ended now.
    Abandon,
    /// Stop and wait: the program finishes; the execution then ends `Stopped`.
    Wait,
}

type StopSignal = tokio::sync::oneshot::Sender<StopMode>;

/// Runs the `--on-trigger` program.
#[derive(Debug)]
pub struct Runner {
    program: Vec<String>,
    timeout: Duration,
    concurrency: usize,
    permits: Arc<Semaphore>,
    /// The executions this runner has (waiting or running), and how to stop each.
    running: Arc<std::sync::Mutex<std::collections::HashMap<String, StopSignal>>>,
}

impl Runner {
    /// A runner for `program` (argv, at least one element).
    pub fn new(program: Vec<String>, timeout: Duration, concurrency: usize) -> Runner {
        let concurrency = concurrency.max(1);
        Runner {
            program,
            timeout,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            running: Arc::default(),
        }
    }

    /// Starts the job in the background; it waits for a free slot first.
    pub(crate) fn spawn(&self, app: Arc<App>, job: Job) {
        let permits = self.permits.clone();
        let program = self.program.clone();
        let timeout = self.timeout;
        let (signal, mut stop) = tokio::sync::oneshot::channel();
        let running = self.running.clone();
        running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(job.execution_id.clone(), signal);
        tokio::spawn(async move {
            let permit = tokio::select! {
                permit = permits.acquire_owned() => permit.ok(),
                // Stopped while it waited for a slot: it never runs.
                _ = &mut stop => None,
            };
            let (status, summary) = match permit {
                Some(_permit) => run(&program, timeout, &job, stop).await,
                None => ("Stopped", None),
            };
            running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&job.execution_id);
            app.metrics.execution_finished(status);
            if let Err(e) =
                app.store.finish_execution(&job.execution_id, status, summary.as_deref(), super::now()).await
            {
                tracing::error!(execution = %job.execution_id, error = %e, "could not record the execution's end");
            }
        });
    }

    /// StopPipelineExecution: signals the execution's program (or its wait for a slot). `false`
    /// when this runner does not have it (finished, or run by another instance).
    pub fn stop(&self, execution_id: &str, mode: StopMode) -> bool {
        let signal = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(execution_id);
        signal.is_some_and(|s| s.send(mode).is_ok())
    }

    /// Waits until no program runs, or `limit` has passed.
    pub async fn drain(&self, limit: Duration) {
        let n = u32::try_from(self.concurrency).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(limit, self.permits.acquire_many(n)).await;
    }
}

async fn run(
    program: &[String],
    timeout: Duration,
    job: &Job,
    mut stop: tokio::sync::oneshot::Receiver<StopMode>,
) -> (&'static str, Option<String>) {
    let mut command = Command::new(&program[0]);
    command
        .args(&program[1..])
        .env("CODEPIPELINE_PIPELINE", &job.pipeline)
        .env("CODEPIPELINE_WEBHOOK", &job.webhook)
        .env("CODEPIPELINE_EXECUTION_ID", &job.execution_id)
        .env("GITHUB_EVENT", &job.event)
        .env("GITHUB_DELIVERY", &job.delivery)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(execution = %job.execution_id, error = %e, "could not start the on-trigger program");
            return ("Failed", Some(format!("the on-trigger program did not start: {e}")));
        }
    };
    tracing::info!(execution = %job.execution_id, pid = child.id(), "on-trigger program started");
    let work = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is not an error.
            let _ = stdin.write_all(&job.payload).await;
            drop(stdin);
        }
        child.wait().await
    };
    // Stopped with `abandon`: the program is ended (as on the timeout); stopped to wait: it
    // finishes, and the store ends the execution Stopped.
    let watched = async {
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => Some(done),
            mode = &mut stop => match mode {
                Ok(StopMode::Abandon) => None,
                _ => Some(work.await),
            },
        }
    };
    let outcome = tokio::time::timeout(timeout, watched).await;
    match outcome {
        Ok(None) => {
            let _ = child.kill().await;
            ("Stopped", Some("stopped by StopPipelineExecution (abandon): the on-trigger program was ended".into()))
        }
        Ok(Some(done)) => match done {
            Ok(status) if status.success() => ("Succeeded", None),
            Ok(status) => ("Failed", Some(format!("the on-trigger program exited with {status}"))),
            Err(e) => ("Failed", Some(format!("waiting for the on-trigger program failed: {e}"))),
        },
        Err(_) => {
            let _ = child.kill().await;
            ("Failed", Some(format!("the on-trigger program ran longer than {} s and was killed", timeout.as_secs())))
        }
    }
}
