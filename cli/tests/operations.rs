//! The execution operations (issue 19) through the real `serve` binary on 127.0.0.1, driven by
//! the AWS SDK for Rust: sourceRevisions from the corpus push and pull request,
//! ListPipelineExecutions' filter, StartPipelineExecution, StopPipelineExecution,
//! GetPipelineState, ListActionExecutions, and pipeline tags kept in the store. Every wait is
//! bounded.

mod logs_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionExecutionFilter, ActionExecutionStatus, ActionOwner, ActionTypeId,
    ArtifactStore, ArtifactStoreType, ExecutionMode, InputArtifact, OutputArtifact, PipelineDeclaration,
    PipelineExecutionFilter, PipelineExecutionStatus, PipelineType, SourceRevisionOverride, SourceRevisionType,
    StageDeclaration, StageExecutionStatus, SucceededInStageFilter, Tag, TriggerType, WebhookAuthConfiguration,
    WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "AKIDOPERATIONSTEST";
const KEY_SECRET: &str = "operations-test-secret-access-key";
const PUBLIC_URL: &str = "https://hooks.example.test";
const TOKEN: &str = "ghp_operations_never_shown_42";
const WAIT: Duration = Duration::from_secs(30);
const PUSH_SHA: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
const PR_SHA: &str = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("cpw-ops-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/github/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A running server; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// `db`: `--database-url URL`, or nothing for SQLite under `data_dir`.
    fn start(data_dir: &Path, db: &[String], extra: &[&str]) -> Server {
        let log = data_dir.with_extension(format!("log{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--public-url", PUBLIC_URL, "--data-dir"])
            .arg(data_dir)
            .args(db)
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on http://") {
                        break a.parse().unwrap();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("no address: {}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        };
        Server { child, addr, log }
    }

    fn client(&self) -> Client {
        let config = aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", self.addr))
            .credentials_provider(Credentials::new(KEY_ID, KEY_SECRET, None, None, "tests"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Client::from_conf(config)
    }

    fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log once it holds `needle` (it lands a moment after it is logged).
    fn logs_with(&self, needle: &str) -> String {
        logs_common::logs_with(&self.log, needle)
    }

    /// The log once it stops growing, for what it must not hold.
    fn logs_settled(&self) -> String {
        logs_common::logs_settled(&self.log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

/// A delivery over raw HTTP/1.1: status and JSON answer.
async fn deliver(addr: SocketAddr, token: &str, event: &str, delivery: &str, body: &[u8]) -> (u16, Value) {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /trigger?t={token}&v=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nX-GitHub-Event: {event}\r\nX-GitHub-Delivery: {delivery}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(WAIT, work).await.expect("an answer in time");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let status = String::from_utf8_lossy(&raw[..split]).split(' ').nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null))
}

fn type_id(category: ActionCategory, owner: ActionOwner, provider: &str) -> ActionTypeId {
    ActionTypeId::builder().category(category).owner(owner).provider(provider).version("1").build().unwrap()
}

/// Source (GitHub, with an OAuthToken), then Build (CodeBuild) reading its artifact `src`.
fn pipeline(name: &str) -> PipelineDeclaration {
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(type_id(ActionCategory::Source, ActionOwner::ThirdParty, "GitHub"))
        .configuration("Owner", "Codertocat")
        .configuration("Repo", "Hello-World")
        .configuration("Branch", "master")
        .configuration("OAuthToken", TOKEN)
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    let build = ActionDeclaration::builder()
        .name("Build")
        .action_type_id(type_id(ActionCategory::Build, ActionOwner::Aws, "CodeBuild"))
        .input_artifacts(InputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/codepipeline")
        .artifact_store(ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifacts").build().unwrap())
        .stages(StageDeclaration::builder().name("Source").actions(source).build().unwrap())
        .stages(StageDeclaration::builder().name("Build").actions(build).build().unwrap())
        // PARALLEL: these tests need every execution they start to run; the default SUPERSEDED
        // would rightly supersede one still waiting (execution_modes_* test the modes).
        .pipeline_type(PipelineType::V2)
        .execution_mode(ExecutionMode::Parallel)
        .build()
        .unwrap()
}

/// An unauthenticated webhook on `pipeline` that fires when `json_path` selects anything; its
/// URL token.
async fn webhook(c: &Client, name: &str, pipeline: &str, json_path: &str) -> String {
    let hook = WebhookDefinition::builder()
        .name(name)
        .target_pipeline(pipeline)
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path(json_path).build().unwrap())
        .authentication(WebhookAuthenticationType::Unauthenticated)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .unwrap();
    let url = c.put_webhook().webhook(hook).send().await.unwrap().webhook().unwrap().url().to_owned();
    let prefix = format!("{PUBLIC_URL}/trigger?t=");
    url[prefix.len()..url.len() - "&v=1".len()].to_owned()
}

async fn started(addr: SocketAddr, token: &str, event: &str, delivery: &str, body: &[u8]) -> String {
    let (status, answer) = deliver(addr, token, event, delivery, body).await;
    assert_eq!(status, 202, "{answer}");
    answer["pipelineExecutionId"].as_str().unwrap().to_owned()
}

async fn status_of(c: &Client, pipeline: &str, id: &str) -> PipelineExecutionStatus {
    let got = c.get_pipeline_execution().pipeline_name(pipeline).pipeline_execution_id(id).send().await.unwrap();
    got.pipeline_execution().unwrap().status().unwrap().clone()
}

async fn wait_for(c: &Client, pipeline: &str, id: &str, want: PipelineExecutionStatus) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = status_of(c, pipeline, id).await;
        if status == want {
            return;
        }
        assert!(Instant::now() < deadline, "{id} is {status:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for a file the on-trigger program writes.
async fn wait_file(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text;
        }
        assert!(Instant::now() < deadline, "{} not written", path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A database of its own in the Postgres cluster of `TEST_DATABASE_URL`, or `None` (with a
/// message saying how to run the test) when it is not set.
async fn postgres_database() -> Option<String> {
    use sqlx::Connection as _;
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: set TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/DB to run this test on Postgres \
             (bash .ci/run starts a throwaway cluster and sets it)"
        );
        return None;
    };
    let name = format!("cpw_ops_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("TEST_DATABASE_URL connects");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (prefix, _) = base.split('?').next().unwrap().rsplit_once('/').expect("a URL with a database name");
    Some(format!("{prefix}/{name}"))
}

fn alive(pid: &str) -> bool {
    Path::new(&format!("/proc/{}", pid.trim())).exists()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_from_the_corpus_push_and_pull_request() {
    revisions_from_the_corpus_push_and_pull_request_in(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revisions_from_the_corpus_push_and_pull_request_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    revisions_from_the_corpus_push_and_pull_request_in(&["--database-url".to_owned(), url]).await;
}

async fn revisions_from_the_corpus_push_and_pull_request_in(db: &[String]) {
    let dir = temp_dir("revisions");
    let server = Server::start(&dir.join("data"), db, &[]);
    let (c, addr) = (server.client(), server.addr);
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    // Before any execution: the stages, none with a latest execution.
    let state = c.get_pipeline_state().name("app").send().await.unwrap();
    let names: Vec<_> = state.stage_states().iter().map(|s| s.stage_name().unwrap()).collect();
    assert_eq!(names, ["Source", "Build"]);
    assert!(state.stage_states().iter().all(|s| s.latest_execution().is_none()));
    assert_eq!(state.pipeline_version(), Some(1));

    let on_push = webhook(&c, "on-push", "app", "$.after").await;
    let on_pr = webhook(&c, "on-pr", "app", "$.pull_request.head.sha").await;
    let push = started(addr, &on_push, "push", "d-push", &fixture("push/with-new-branch.payload.json")).await;
    let pr = started(addr, &on_pr, "pull_request", "d-pr", &fixture("pull_request/opened.payload.json")).await;

    // ListPipelineExecutions: sourceRevisions, newest first.
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    let summaries = listed.pipeline_execution_summaries();
    assert_eq!(summaries.len(), 2);
    assert_eq!(summaries[0].pipeline_execution_id(), Some(pr.as_str()));
    // The mode of the pipeline version each ran, as GetPipelineExecution gives it.
    assert!(summaries.iter().all(|s| s.execution_mode() == Some(&ExecutionMode::Parallel)), "{summaries:?}");
    let revision = &summaries[0].source_revisions()[0];
    assert_eq!(revision.action_name(), "Source");
    assert_eq!(revision.revision_id(), Some(PR_SHA));
    assert_eq!(revision.revision_summary(), Some("Update the README with new information."));
    assert_eq!(revision.revision_url(), Some("https://github.com/Codertocat/Hello-World/pull/2"));
    let revision = &summaries[1].source_revisions()[0];
    assert_eq!((revision.action_name(), revision.revision_id()), ("Source", Some(PUSH_SHA)));
    assert_eq!(revision.revision_summary(), Some("Initial commit"));
    assert_eq!(
        revision.revision_url(),
        Some("https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    );
    let trigger = summaries[1].trigger().unwrap();
    assert_eq!(trigger.trigger_type(), Some(&TriggerType::Webhook));
    assert_eq!(trigger.trigger_detail(), Some("arn:aws:codepipeline:us-east-1:123456789012:webhook:on-push"));

    // GetPipelineExecution: artifactRevisions, named after the source action's output artifact.
    let got = c.get_pipeline_execution().pipeline_name("app").pipeline_execution_id(&push).send().await.unwrap();
    let artifacts = got.pipeline_execution().unwrap().artifact_revisions();
    assert_eq!(artifacts.len(), 1);
    assert_eq!((artifacts[0].name(), artifacts[0].revision_id()), (Some("src"), Some(PUSH_SHA)));
    assert_eq!(artifacts[0].revision_summary(), Some("Initial commit"));
    assert!(artifacts[0].revision_url().unwrap().ends_with(PUSH_SHA));

    // GetPipelineState: the latest execution's revision on the source action, every stage
    // Succeeded (no program: the execution succeeded at once).
    let state = c.get_pipeline_state().name("app").send().await.unwrap();
    let source = &state.stage_states()[0];
    assert_eq!(source.latest_execution().unwrap().pipeline_execution_id(), pr.as_str());
    let action = &source.action_states()[0];
    assert_eq!(action.action_name(), Some("Source"));
    assert_eq!(action.current_revision().unwrap().revision_id(), PR_SHA);
    assert_eq!(action.latest_execution().unwrap().status(), Some(&ActionExecutionStatus::Succeeded));
    let build = &state.stage_states()[1];
    assert_eq!(build.latest_execution().unwrap().status(), &StageExecutionStatus::Succeeded);

    // ListActionExecutions: the source action with its output revision, filtered by execution.
    let actions = c
        .list_action_executions()
        .pipeline_name("app")
        .filter(ActionExecutionFilter::builder().pipeline_execution_id(&push).build())
        .send()
        .await
        .unwrap();
    let details = actions.action_execution_details();
    assert_eq!(details.len(), 1);
    let d = &details[0];
    assert_eq!(d.pipeline_execution_id(), Some(push.as_str()));
    assert_eq!((d.stage_name(), d.action_name()), (Some("Source"), Some("Source")));
    assert_eq!(d.status(), Some(&ActionExecutionStatus::Succeeded));
    let input = d.input().unwrap();
    assert_eq!(input.action_type_id().unwrap().provider(), "GitHub");
    assert_eq!(input.configuration().unwrap().get("OAuthToken").map(String::as_str), Some("****"));
    let output = d.output().unwrap();
    assert_eq!(output.output_artifacts()[0].name(), Some("src"));
    let variables = output.output_variables().unwrap();
    assert_eq!(variables.get("CommitId").map(String::as_str), Some(PUSH_SHA));
    assert_eq!(variables.get("CommitMessage").map(String::as_str), Some("Initial commit"));
    assert_eq!(variables.get("BranchName").map(String::as_str), Some("master"));
    assert_eq!(output.execution_result().unwrap().external_execution_id(), Some(PUSH_SHA));
    // Every execution, one page at a time.
    let page = c.list_action_executions().pipeline_name("app").max_results(1).send().await.unwrap();
    assert_eq!(page.action_execution_details()[0].pipeline_execution_id(), Some(pr.as_str()));
    let next = c
        .list_action_executions()
        .pipeline_name("app")
        .max_results(1)
        .next_token(page.next_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(next.action_execution_details()[0].pipeline_execution_id(), Some(push.as_str()));
    assert_eq!(next.next_token(), None);
    let e = c
        .list_action_executions()
        .pipeline_name("app")
        .filter(ActionExecutionFilter::builder().pipeline_execution_id("00000000-0000-0000-0000-000000000000").build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PipelineExecutionNotFoundException");
    assert_eq!(
        code(&c.list_action_executions().pipeline_name("nope").send().await.unwrap_err()),
        "PipelineNotFoundException"
    );
    assert_eq!(code(&c.get_pipeline_state().name("nope").send().await.unwrap_err()), "PipelineNotFoundException");
    assert!(!server.logs_settled().contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pipeline_executions_filter_succeeded_in_stage() {
    list_pipeline_executions_filter_succeeded_in_stage_in(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pipeline_executions_filter_succeeded_in_stage_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    list_pipeline_executions_filter_succeeded_in_stage_in(&["--database-url".to_owned(), url]).await;
}

async fn list_pipeline_executions_filter_succeeded_in_stage_in(db: &[String]) {
    let dir = temp_dir("filter");
    // The program fails the executions of the event `fail`.
    let server =
        Server::start(&dir.join("data"), db, &["--on-trigger", "/bin/sh", "-c", "[ \"$GITHUB_EVENT\" != fail ]"]);
    let (c, addr) = (server.client(), server.addr);
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    let token = webhook(&c, "hook", "app", "$.after").await;
    let body = fixture("push/with-new-branch.payload.json");
    let ok = started(addr, &token, "push", "d-1", &body).await;
    let failed = started(addr, &token, "fail", "d-2", &body).await;
    wait_for(&c, "app", &ok, PipelineExecutionStatus::Succeeded).await;
    wait_for(&c, "app", &failed, PipelineExecutionStatus::Failed).await;
    let ids = |stage: &str| {
        let c = c.clone();
        let stage = stage.to_owned();
        async move {
            let filter = PipelineExecutionFilter::builder()
                .succeeded_in_stage(SucceededInStageFilter::builder().stage_name(stage).build())
                .build();
            let out = c.list_pipeline_executions().pipeline_name("app").filter(filter).send().await.unwrap();
            out.pipeline_execution_summaries()
                .iter()
                .map(|s| s.pipeline_execution_id().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(ids("Build").await, std::slice::from_ref(&ok), "only the execution that succeeded passed Build");
    assert_eq!(ids("Source").await, [failed.clone(), ok.clone()], "both passed the source stage");
    assert!(ids("Nope").await.is_empty(), "a stage the pipeline does not have: nothing");
    let all = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(all.pipeline_execution_summaries().len(), 2);
}

/// A program that records its environment, then sleeps as long as `duration` in `out` says.
fn sleeper(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let script = dir.join("on-trigger.sh");
    std::fs::write(
        &script,
        "out=$1\n\
         env | grep -E '^CODEPIPELINE_' | sort > \"$out/$CODEPIPELINE_EXECUTION_ID.env.tmp\"\n\
         mv \"$out/$CODEPIPELINE_EXECUTION_ID.env.tmp\" \"$out/$CODEPIPELINE_EXECUTION_ID.env\"\n\
         echo $$ > \"$out/$CODEPIPELINE_EXECUTION_ID.pid\"\n\
         exec sleep \"$(cat \"$out/duration\")\"\n",
    )
    .unwrap();
    std::fs::write(out.join("duration"), "0").unwrap();
    (script, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_pipeline_execution_runs_the_latest_revision_once_per_token() {
    start_pipeline_execution_runs_the_latest_revision_once_per_token_in(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_pipeline_execution_runs_the_latest_revision_once_per_token_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    start_pipeline_execution_runs_the_latest_revision_once_per_token_in(&["--database-url".to_owned(), url]).await;
}

async fn start_pipeline_execution_runs_the_latest_revision_once_per_token_in(db: &[String]) {
    let dir = temp_dir("start");
    let (script, out) = sleeper(&dir);
    let server = Server::start(
        &dir.join("data"),
        db,
        &["--on-trigger", "/bin/sh", script.to_str().unwrap(), out.to_str().unwrap()],
    );
    let (c, addr) = (server.client(), server.addr);
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();

    // No delivery yet: the program runs with no revision.
    let first = c.start_pipeline_execution().name("app").send().await.unwrap();
    let first = first.pipeline_execution_id().unwrap().to_owned();
    wait_for(&c, "app", &first, PipelineExecutionStatus::Succeeded).await;
    let env = wait_file(&out.join(format!("{first}.env"))).await;
    assert!(env.contains("CODEPIPELINE_TRIGGER_TYPE=StartPipelineExecution\n"), "{env}");
    assert!(!env.contains("CODEPIPELINE_REVISION_ID"), "{env}");

    // After a push: the latest delivery's revision.
    let token = webhook(&c, "hook", "app", "$.after").await;
    let pushed = started(addr, &token, "push", "d-1", &fixture("push/with-new-branch.payload.json")).await;
    wait_for(&c, "app", &pushed, PipelineExecutionStatus::Succeeded).await;
    let env = wait_file(&out.join(format!("{pushed}.env"))).await;
    assert!(env.contains(&format!("CODEPIPELINE_REVISION_ID={PUSH_SHA}\n")), "a webhook run has it too: {env}");
    let again = c.start_pipeline_execution().name("app").client_request_token("retry-1").send().await.unwrap();
    let again = again.pipeline_execution_id().unwrap().to_owned();
    wait_for(&c, "app", &again, PipelineExecutionStatus::Succeeded).await;
    let env = wait_file(&out.join(format!("{again}.env"))).await;
    assert!(env.contains(&format!("CODEPIPELINE_REVISION_ID={PUSH_SHA}\n")), "{env}");
    assert!(env.contains("CODEPIPELINE_SOURCE_ACTION=Source\n"), "{env}");
    assert!(env.contains("CODEPIPELINE_REVISION_SUMMARY=Initial commit\n"), "{env}");

    // The same clientRequestToken: the same execution, nothing new started.
    let repeat = c.start_pipeline_execution().name("app").client_request_token("retry-1").send().await.unwrap();
    assert_eq!(repeat.pipeline_execution_id(), Some(again.as_str()));
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    let summaries = listed.pipeline_execution_summaries();
    assert_eq!(summaries.len(), 3);
    assert_eq!(summaries[0].pipeline_execution_id(), Some(again.as_str()));
    assert_eq!(summaries[0].trigger().unwrap().trigger_type(), Some(&TriggerType::StartPipelineExecution));
    assert_eq!(summaries[0].source_revisions()[0].revision_id(), Some(PUSH_SHA));
    assert!(summaries[2].source_revisions().is_empty());

    // A revision given: it runs instead.
    let revision_of = |action: &str| {
        c.start_pipeline_execution().name("app").source_revisions(
            SourceRevisionOverride::builder()
                .action_name(action)
                .revision_type(SourceRevisionType::CommitId)
                .revision_value("0123456789abcdef")
                .build()
                .unwrap(),
        )
    };
    let given = revision_of("Source").send().await.unwrap();
    let given = given.pipeline_execution_id().unwrap().to_owned();
    let env = wait_file(&out.join(format!("{given}.env"))).await;
    assert!(env.contains("CODEPIPELINE_REVISION_ID=0123456789abcdef\n"), "{env}");

    assert_eq!(code(&c.start_pipeline_execution().name("nope").send().await.unwrap_err()), "PipelineNotFoundException");
    // A revision for an action that is not a source action: the operation's modelled error.
    let wrong_action = revision_of("NoSuchAction").send().await.unwrap_err();
    assert_eq!(code(&wrong_action), "ValidationException");
    assert!(wrong_action.message().unwrap_or_default().contains("NoSuchAction"), "{wrong_action:?}");
    let bad = c.start_pipeline_execution().name("app").client_request_token("no spaces").send().await.unwrap_err();
    assert_eq!(code(&bad), "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_pipeline_execution_abandons_or_waits_then_stopped() {
    stop_pipeline_execution_abandons_or_waits_then_stopped_in(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_pipeline_execution_abandons_or_waits_then_stopped_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    stop_pipeline_execution_abandons_or_waits_then_stopped_in(&["--database-url".to_owned(), url]).await;
}

async fn stop_pipeline_execution_abandons_or_waits_then_stopped_in(db: &[String]) {
    let dir = temp_dir("stop");
    let (script, out) = sleeper(&dir);
    let server = Server::start(
        &dir.join("data"),
        db,
        &["--on-trigger", "/bin/sh", script.to_str().unwrap(), out.to_str().unwrap()],
    );
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();

    // abandon: the program is ended at once.
    std::fs::write(out.join("duration"), "30").unwrap();
    let id = c.start_pipeline_execution().name("app").send().await.unwrap().pipeline_execution_id().unwrap().to_owned();
    let pid = wait_file(&out.join(format!("{id}.pid"))).await;
    assert!(alive(&pid));
    // While it runs: Source Succeeded, Build InProgress.
    let state = c.get_pipeline_state().name("app").send().await.unwrap();
    let statuses: Vec<_> =
        state.stage_states().iter().map(|s| s.latest_execution().unwrap().status().clone()).collect();
    assert_eq!(statuses, [StageExecutionStatus::Succeeded, StageExecutionStatus::InProgress]);
    let stopped = c
        .stop_pipeline_execution()
        .pipeline_name("app")
        .pipeline_execution_id(&id)
        .abandon(true)
        .reason("enough")
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.pipeline_execution_id(), Some(id.as_str()));
    let now = status_of(&c, "app", &id).await;
    assert!(matches!(now, PipelineExecutionStatus::Stopping | PipelineExecutionStatus::Stopped), "{now:?}");
    wait_for(&c, "app", &id, PipelineExecutionStatus::Stopped).await;
    let deadline = Instant::now() + WAIT;
    while alive(&pid) {
        assert!(Instant::now() < deadline, "the program {pid} still runs");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    let summary = &listed.pipeline_execution_summaries()[0];
    assert_eq!(summary.stop_trigger().unwrap().reason(), Some("enough"));
    let again = c.stop_pipeline_execution().pipeline_name("app").pipeline_execution_id(&id).send().await.unwrap_err();
    assert_eq!(code(&again), "PipelineExecutionNotStoppableException");

    // Stop and wait: Stopping while the program finishes, then Stopped.
    std::fs::write(out.join("duration"), "2").unwrap();
    let id = c.start_pipeline_execution().name("app").send().await.unwrap().pipeline_execution_id().unwrap().to_owned();
    let pid = wait_file(&out.join(format!("{id}.pid"))).await;
    c.stop_pipeline_execution().pipeline_name("app").pipeline_execution_id(&id).send().await.unwrap();
    assert_eq!(status_of(&c, "app", &id).await, PipelineExecutionStatus::Stopping);
    assert!(alive(&pid), "stop without abandon lets the program finish");
    let twice = c.stop_pipeline_execution().pipeline_name("app").pipeline_execution_id(&id).send().await.unwrap_err();
    assert_eq!(code(&twice), "DuplicatedStopRequestException");
    wait_for(&c, "app", &id, PipelineExecutionStatus::Stopped).await;

    // A finished execution is not stoppable; an unknown one is not found.
    std::fs::write(out.join("duration"), "0").unwrap();
    let id = c.start_pipeline_execution().name("app").send().await.unwrap().pipeline_execution_id().unwrap().to_owned();
    wait_for(&c, "app", &id, PipelineExecutionStatus::Succeeded).await;
    let e = c.stop_pipeline_execution().pipeline_name("app").pipeline_execution_id(&id).send().await.unwrap_err();
    assert_eq!(code(&e), "PipelineExecutionNotStoppableException");
    let e = c
        .stop_pipeline_execution()
        .pipeline_name("app")
        .pipeline_execution_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PipelineExecutionNotFoundException");
    let e = c
        .stop_pipeline_execution()
        .pipeline_name("nope")
        .pipeline_execution_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PipelineNotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_tags_are_kept_in_the_store_across_restarts() {
    pipeline_tags_are_kept_in_the_store_across_restarts_in(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_tags_are_kept_in_the_store_across_restarts_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    pipeline_tags_are_kept_in_the_store_across_restarts_in(&["--database-url".to_owned(), url]).await;
}

async fn pipeline_tags_are_kept_in_the_store_across_restarts_in(db: &[String]) {
    let dir = temp_dir("tags");
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:app";
    let tags = |c: Client| async move {
        let out = c.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
        out.tags().iter().map(|t| format!("{}={}", t.key(), t.value())).collect::<Vec<_>>()
    };
    {
        let server = Server::start(&dir.join("data"), db, &[]);
        let c = server.client();
        c.create_pipeline()
            .pipeline(pipeline("app"))
            .tags(Tag::builder().key("team").value("ci").build().unwrap())
            .send()
            .await
            .unwrap();
        c.tag_resource()
            .resource_arn(arn)
            .tags(Tag::builder().key("env").value("prod").build().unwrap())
            .send()
            .await
            .unwrap();
        // UpdatePipeline keeps them.
        c.update_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    }
    {
        let server = Server::start(&dir.join("data"), db, &[]);
        let c = server.client();
        assert_eq!(tags(c.clone()).await, ["team=ci", "env=prod"]);
        c.untag_resource().resource_arn(arn).tag_keys("team").send().await.unwrap();
        let e = c
            .tag_resource()
            .resource_arn(arn)
            .tags(Tag::builder().key("aws:reserved").value("x").build().unwrap())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&e), "InvalidTagsException");
    }
    let server = Server::start(&dir.join("data"), db, &[]);
    let c = server.client();
    assert_eq!(tags(c.clone()).await, ["env=prod"]);
    // Deleted with the pipeline; a pipeline created again starts with its own.
    c.delete_pipeline().name("app").send().await.unwrap();
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    assert!(tags(c.clone()).await.is_empty());
}

/// The README's monorepo trap: an indefinite path compared with a string.
const MONOREPO: &str = r#"{"ref": "refs/heads/master", "after": "abc", "commits": [{"modified": ["src/app.py"]}]}"#;

fn monorepo_hook(name: &str) -> WebhookDefinition {
    WebhookDefinition::builder()
        .name(name)
        .target_pipeline("app")
        .target_action("Source")
        .filters(
            WebhookFilterRule::builder()
                .json_path("$.commits[*].modified[*]")
                .match_equals("src/app.py")
                .build()
                .unwrap(),
        )
        .authentication(WebhookAuthenticationType::Unauthenticated)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_aws_exact_never_passes_an_indefinite_path_and_put_webhook_logs_the_warning() {
    for (flags, want) in [(&[][..], 202), (&["--aws-exact"][..], 200)] {
        let dir = temp_dir("exact");
        let server = Server::start(&dir.join("data"), &[], flags);
        let c = server.client();
        c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
        let url =
            c.put_webhook().webhook(monorepo_hook("mono")).send().await.unwrap().webhook().unwrap().url().to_owned();
        let token = &url[format!("{PUBLIC_URL}/trigger?t=").len()..url.len() - "&v=1".len()];
        let (status, answer) = deliver(server.addr, token, "push", "d-1", MONOREPO.as_bytes()).await;
        assert_eq!(status, want, "{flags:?}: {answer}");
        let logs = server.logs_with("never passes");
        assert!(logs.contains("PutWebhook: compile warning") && logs.contains("never passes"), "{flags:?}: {logs}");
    }
}

#[test]
fn check_and_validate_take_aws_exact() {
    let dir = temp_dir("cli-exact");
    let hook = dir.join("hook.json");
    std::fs::write(
        &hook,
        r#"{"name": "mono", "targetPipeline": "app", "targetAction": "Source", "authentication": "UNAUTHENTICATED",
            "authenticationConfiguration": {}, "filters": [{"jsonPath": "$.commits[*].modified[*]", "matchEquals": "src/app.py"}]}"#,
    )
    .unwrap();
    let payload = dir.join("push.json");
    std::fs::write(&payload, MONOREPO).unwrap();
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
            .arg("check")
            .arg("--webhook")
            .arg(&hook)
            .arg("--payload")
            .arg(&payload)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(0), "the crate's extension: any element: {stderr}");
    assert!(stderr.contains("never passes"), "{stderr}");
    let (code, stderr) = run(&["--aws-exact"]);
    assert_eq!(code, Some(1), "as AWS: a list never equals a string: {stderr}");
    let validate = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args(["validate", "--aws-exact", "--webhook"])
        .arg(&hook)
        .output()
        .unwrap();
    assert_eq!(validate.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&validate.stderr).contains("never passes"));
}

// --- Execution modes ---------------------------------------------------------------------------

/// A program that logs when each execution's run starts and ends (nanoseconds), per pipeline, and
/// sleeps 1.5 s between.
fn timed_program(dir: &Path) -> (PathBuf, PathBuf) {
    let out = dir.join("runs");
    std::fs::create_dir_all(&out).unwrap();
    let script = dir.join("timed.sh");
    std::fs::write(
        &script,
        "log=\"$1/$CODEPIPELINE_PIPELINE.log\"\n\
         echo \"start $CODEPIPELINE_EXECUTION_ID $(date +%s%N)\" >> \"$log\"\n\
         sleep 1.5\n\
         echo \"end $CODEPIPELINE_EXECUTION_ID $(date +%s%N)\" >> \"$log\"\n",
    )
    .unwrap();
    (script, out)
}

/// Each execution's run as (start, end), from the program's log.
fn runs(log: &str) -> std::collections::HashMap<String, (u128, u128)> {
    let mut runs = std::collections::HashMap::new();
    for line in log.lines() {
        let parts: Vec<&str> = line.split(' ').collect();
        let [what, id, at] = parts[..] else { panic!("{line}") };
        let entry = runs.entry(id.to_owned()).or_insert((0, 0));
        let at: u128 = at.parse().unwrap();
        if what == "start" { entry.0 = at } else { entry.1 = at }
    }
    runs
}

fn with_mode(name: &str, mode: Option<ExecutionMode>) -> PipelineDeclaration {
    let p = pipeline(name);
    let mut b = PipelineDeclaration::builder()
        .name(p.name())
        .role_arn(p.role_arn())
        .set_artifact_store(p.artifact_store().cloned())
        .set_stages(Some(p.stages().to_vec()))
        .pipeline_type(PipelineType::V2);
    if let Some(mode) = mode {
        b = b.execution_mode(mode);
    }
    b.build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_modes_two_deliveries_then_a_third() {
    execution_modes_in(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn execution_modes_two_deliveries_then_a_third_on_postgres() {
    let Some(url) = postgres_database().await else { return };
    execution_modes_in(&["--database-url".to_owned(), url]).await;
}

/// With a slow program and room for four at once: a delivery, a second while it runs, then a third.
/// SUPERSEDED (the default) runs the first and the third, the second Superseded by the third
/// without running; QUEUED runs all three one after another in order; PARALLEL runs them side by
/// side.
async fn execution_modes_in(db: &[String]) {
    let dir = temp_dir("modes");
    let (script, out) = timed_program(&dir);
    let server = Server::start(
        &dir.join("data"),
        db,
        &["--on-trigger-concurrency", "4", "--on-trigger", "/bin/sh", script.to_str().unwrap(), out.to_str().unwrap()],
    );
    let (c, addr) = (server.client(), server.addr);
    let push = fixture("push/payload.json");
    for (name, mode) in
        [("default", None), ("queued", Some(ExecutionMode::Queued)), ("parallel", Some(ExecutionMode::Parallel))]
    {
        c.create_pipeline().pipeline(with_mode(name, mode.clone())).send().await.unwrap();
        let token = webhook(&c, &format!("{name}-hook"), name, "$.ref").await;
        let first = started(addr, &token, "push", &format!("{name}-1"), &push).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let second = started(addr, &token, "push", &format!("{name}-2"), &push).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let third = started(addr, &token, "push", &format!("{name}-3"), &push).await;
        for id in [&first, &third] {
            wait_for(&c, name, id, PipelineExecutionStatus::Succeeded).await;
        }
        let log = out.join(format!("{name}.log"));
        match mode {
            None => {
                // The waiting second one is replaced by the third at once, and never runs.
                assert_eq!(
                    status_of(&c, name, &second).await,
                    PipelineExecutionStatus::Superseded,
                    "{}",
                    server.logs()
                );
                let runs = runs(&std::fs::read_to_string(&log).unwrap());
                assert_eq!(runs.len(), 2, "{runs:?}");
                assert!(!runs.contains_key(&second));
                assert!(runs[&third].0 >= runs[&first].1, "one at a time: {runs:?}");
            }
            Some(ExecutionMode::Queued) => {
                wait_for(&c, name, &second, PipelineExecutionStatus::Succeeded).await;
                let runs = runs(&std::fs::read_to_string(&log).unwrap());
                assert_eq!(runs.len(), 3, "{runs:?}");
                assert!(runs[&second].0 >= runs[&first].1, "first in, first out, one at a time: {runs:?}");
                assert!(runs[&third].0 >= runs[&second].1, "first in, first out, one at a time: {runs:?}");
            }
            Some(_) => {
                wait_for(&c, name, &second, PipelineExecutionStatus::Succeeded).await;
                let runs = runs(&std::fs::read_to_string(&log).unwrap());
                assert_eq!(runs.len(), 3, "{runs:?}");
                assert!(runs[&second].0 < runs[&first].1 && runs[&third].0 < runs[&first].1, "side by side: {runs:?}");
            }
        }
    }
}
