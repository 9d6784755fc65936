//! What a trigger starts: its execution record, written by one writer task that commits
//! concurrent triggers together (group commit: each caller still waits for its own commit), and
//! the `--on-trigger` program, run without a shell with the payload on stdin, bounded in time and
//! in how many run at once, in a process group of its own. Executions wait for it as durable rows
//! (the `queue` table, payload included), never in memory. Its exit code decides the execution's
//! status.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::Notify;

use super::App;
use super::store::{ClaimedJob, Recorded, Store, StoreError, TriggerRecord};

/// How often delivery ids older than the duplicate window are deleted (at the next trigger).
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The most triggers committed in one transaction.
const MAX_BATCH: usize = 256;
/// How many times the writer lets the other tasks run before it commits what it has.
const LINGER_TURNS: usize = 2;

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
                let mut idle_turns = 0;
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        // Once the deliveries already being handled have had their turn (a
                        // yield, not a timer), their triggers join this batch: a commit's
                        // cost is mostly per batch, and a batch of one under load pays it
                        // for each trigger.
                        Err(_) if idle_turns < LINGER_TURNS => {
                            idle_turns += 1;
                            tokio::task::yield_now().await;
                        }
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

/// What StopPipelineExecution asks of a running program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// `abandon`: the program's group is ended now.
    Abandon,
    /// Stop and wait: the program finishes; the execution then ends `Stopped`.
    Wait,
}

type StopSignals = Arc<std::sync::Mutex<std::collections::HashMap<String, tokio::sync::oneshot::Sender<StopMode>>>>;

/// Runs the `--on-trigger` program for executions claimed from the durable queue: `concurrency`
/// workers, each claiming the oldest waiting execution (transactionally, so that one instance of
/// many gets it), running the program in a process group of its own and recording how it ended.
#[derive(Debug)]
pub struct Runner {
    program: Vec<String>,
    timeout: Duration,
    grace: Duration,
    concurrency: usize,
    wake: Arc<Notify>,
    stop: tokio::sync::watch::Sender<bool>,
    workers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The executions this instance's workers run, and how to stop each (StopPipelineExecution).
    running: StopSignals,
}

/// How often an idle worker looks at the queue (other instances' triggers; its own wake it).
const POLL_QUEUE: Duration = Duration::from_millis(250);

enum Outcome {
    Exited(std::io::Result<std::process::ExitStatus>),
    TimedOut,
    Shutdown,
    Abandoned,
}

impl Runner {
    /// A runner for `program` (argv, at least one element); its processes get `grace` between
    /// SIGTERM and SIGKILL.
    pub fn new(program: Vec<String>, timeout: Duration, grace: Duration, concurrency: usize) -> Runner {
        Runner {
            program,
            timeout,
            grace,
            concurrency: concurrency.max(1),
            wake: Arc::new(Notify::new()),
            stop: tokio::sync::watch::channel(false).0,
            workers: std::sync::Mutex::new(Vec::new()),
            running: StopSignals::default(),
        }
    }

    /// Starts the workers (on the current runtime).
    pub(crate) fn start(&self, app: Arc<App>) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..self.concurrency {
            let app = app.clone();
            let wake = self.wake.clone();
            let mut stop = self.stop.subscribe();
            let (program, timeout, grace) = (self.program.clone(), self.timeout, self.grace);
            let running = self.running.clone();
            workers.push(tokio::spawn(async move {
                loop {
                    if *stop.borrow() {
                        return;
                    }
                    let job = match app.store.claim(&app.instance).await {
                        Ok(job) => job,
                        Err(e) => {
                            tracing::warn!(error = %e, "claiming a queued execution failed");
                            None
                        }
                    };
                    let Some(job) = job else {
                        tokio::select! {
                            () = wake.notified() => {}
                            () = tokio::time::sleep(POLL_QUEUE) => {}
                            _ = stop.wait_for(|s| *s) => return,
                        }
                        continue;
                    };
                    let (signal, halt) = tokio::sync::oneshot::channel();
                    running.lock().unwrap_or_else(|e| e.into_inner()).insert(job.execution_id.clone(), signal);
                    let (status, summary) = run(&app, &program, timeout, grace, &job, stop.clone(), halt).await;
                    running.lock().unwrap_or_else(|e| e.into_inner()).remove(&job.execution_id);
                    app.metrics.execution_finished(status);
                    if let Err(e) =
                        app.store.finish_execution(&job.execution_id, status, summary.as_deref(), super::now()).await
                    {
                        tracing::error!(execution = %job.execution_id, error = %e, "could not record the execution's end");
                    }
                }
            }));
        }
    }

    /// StopPipelineExecution: signals the program of an execution this instance runs (with
    /// `Abandon` its process group is ended as on the timeout). `false` when no worker here runs
    /// it (still queued, finished, or run by another instance).
    pub fn stop(&self, execution_id: &str, mode: StopMode) -> bool {
        let signal = self.running.lock().unwrap_or_else(|e| e.into_inner()).remove(execution_id);
        signal.is_some_and(|s| s.send(mode).is_ok())
    }

    /// Tells a worker that an execution was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Shutdown: no more claims; running programs' groups get SIGTERM at once, SIGKILL after the
    /// grace period, and their executions end `Stopped`. Waiting executions stay queued for the
    /// next start. Returns when the workers are done, or after the grace period and 5 s.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let workers = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|e| e.into_inner()));
        let all = async {
            for worker in workers {
                let _ = worker.await;
            }
        };
        let _ = tokio::time::timeout(self.grace + Duration::from_secs(5), all).await;
    }
}

async fn run(
    app: &Arc<App>,
    program: &[String],
    timeout: Duration,
    grace: Duration,
    job: &ClaimedJob,
    mut stop: tokio::sync::watch::Receiver<bool>,
    mut halt: tokio::sync::oneshot::Receiver<StopMode>,
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
        // A group of its own: what it starts is ended with it.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            tracing::error!(execution = %job.execution_id, error = %e, "could not start the on-trigger program");
            return ("Failed", Some(format!("the on-trigger program did not start: {e}")));
        }
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(pgid) = pgid
        && let Err(e) = app.store.set_pgid(&job.execution_id, i64::from(pgid)).await
    {
        tracing::warn!(execution = %job.execution_id, error = %e, "could not record the program's process group");
    }
    tracing::info!(execution = %job.execution_id, pid = child.id(), "on-trigger program started");
    let outcome = {
        let mut stdin = child.stdin.take();
        let payload = &job.payload;
        let work = async {
            if let Some(mut stdin) = stdin.take() {
                // A program that does not read its input is not an error.
                let _ = stdin.write_all(payload).await;
                drop(stdin);
            }
            child.wait().await
        };
        tokio::pin!(work);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let first = tokio::select! {
            r = &mut work => Some(Outcome::Exited(r)),
            () = &mut deadline => Some(Outcome::TimedOut),
            _ = stop.wait_for(|s| *s) => Some(Outcome::Shutdown),
            // StopPipelineExecution: abandon ends the group now; stop-and-wait lets it finish
            // (the store then ends the execution Stopped).
            mode = &mut halt => match mode {
                Ok(StopMode::Abandon) => Some(Outcome::Abandoned),
                _ => None,
            },
        };
        match first {
            Some(outcome) => outcome,
            None => tokio::select! {
                r = &mut work => Outcome::Exited(r),
                () = &mut deadline => Outcome::TimedOut,
                _ = stop.wait_for(|s| *s) => Outcome::Shutdown,
            },
        }
    };
    // Whatever ended it, nothing of its group outlives it: SIGTERM, then SIGKILL after the grace
    // period (a program that exited may have left background processes).
    if let Some(pgid) = pgid {
        let reap = async {
            super::procgroup::end_group(pgid, grace).await;
        };
        if matches!(outcome, Outcome::Exited(_)) {
            reap.await;
        } else {
            // The leader is reaped while the group is ended.
            let (_, _) = tokio::join!(reap, async { tokio::time::timeout(grace, child.wait()).await });
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    match outcome {
        Outcome::Exited(Ok(status)) if status.success() => ("Succeeded", None),
        Outcome::Exited(Ok(status)) => ("Failed", Some(format!("the on-trigger program exited with {status}"))),
        Outcome::Exited(Err(e)) => ("Failed", Some(format!("waiting for the on-trigger program failed: {e}"))),
        Outcome::TimedOut => {
            ("Failed", Some(format!("the on-trigger program ran longer than {} s and was killed", timeout.as_secs())))
        }
        Outcome::Shutdown => ("Stopped", Some("the server shut down while it ran".to_owned())),
        Outcome::Abandoned => {
            ("Stopped", Some("stopped by StopPipelineExecution (abandon): the on-trigger program was ended".to_owned()))
        }
    }
}
