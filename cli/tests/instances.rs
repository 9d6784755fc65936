//! `serve` on many instances: real processes on 127.0.0.1 sharing one real Postgres database
//! (from `TEST_DATABASE_URL`; each test makes its own database in that cluster), driven by the AWS
//! SDK for Rust and raw HTTP/1.1. Without `TEST_DATABASE_URL` the Postgres tests skip with a
//! message saying how to run them; `bash .ci/run` starts a throwaway cluster. The SQLite test
//! (one data dir, one server) needs nothing. No mocks; every wait and loop is bounded.

mod logs_common;

use std::collections::HashSet;
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
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, InputArtifact,
    OutputArtifact, PipelineDeclaration, StageDeclaration, WebhookAuthConfiguration, WebhookAuthenticationType,
    WebhookDefinition, WebhookFilterRule,
};
use codepipeline_webhooks::github;
use serde_json::Value;
use sqlx::Connection as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "AKIDINSTANCESTEST";
const KEY_SECRET: &str = "instances-test-secret-access-key";
const HOOK_SECRET: &str = "hook-secret-for-instances";
const PUBLIC_URL: &str = "https://hooks.example.test";
const WAIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("cpw-instances-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A database of its own in the cluster of `TEST_DATABASE_URL`, or `None` (with a message) when
/// the variable is not set.
async fn fresh_database(tag: &str) -> Option<String> {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: set TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/DB to run the Postgres tests \
             (bash .ci/run starts a throwaway cluster and sets it)"
        );
        return None;
    };
    let name = format!("cpw_{tag}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("TEST_DATABASE_URL connects");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (prefix, _) = base.split('?').next().unwrap().rsplit_once('/').expect("a URL with a database name");
    Some(format!("{prefix}/{name}"))
}

/// A running server process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

fn command(log_dir: &Path, args: &[&str]) -> (Command, PathBuf) {
    let log = log_dir.join(format!("serve-{}.log", COUNTER.fetch_add(1, Ordering::Relaxed)));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"));
    cmd.arg("serve")
        .args(["--listen", "127.0.0.1:0", "--public-url", PUBLIC_URL])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env("RUST_LOG", "info")
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    (cmd, log)
}

impl Server {
    fn start(log_dir: &Path, args: &[&str]) -> Server {
        let (mut cmd, log) = command(log_dir, args);
        let mut child = cmd.spawn().expect("the server binary starts");
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
                    panic!(
                        "the server did not report its address: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        Server { child, addr, log }
    }

    fn on_postgres(log_dir: &Path, url: &str) -> Server {
        Server::start(log_dir, &["--database-url", url])
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The log once it stops growing, for what it must not hold.
    fn logs_settled(&self) -> String {
        logs_common::logs_settled(&self.log)
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A delivery over raw HTTP/1.1: the status and the JSON body, or `None` when the server is not
/// there (refused, reset before an answer).
async fn deliver(addr: SocketAddr, token: &str, body: &[u8], delivery: &str) -> Option<(u16, Value)> {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let head = format!(
            "POST /trigger?t={token}&v=1 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {}\r\n\r\n",
            body.len(),
            github::signature_256(HOOK_SECRET.as_bytes(), body)
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        stream.write_all(body).await.ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.ok()?;
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let status = String::from_utf8_lossy(&raw[..split]).split(' ').nth(1)?.parse().ok()?;
        let json = serde_json::from_slice(&raw[split + 4..]).unwrap_or(Value::Null);
        Some((status, json))
    };
    tokio::time::timeout(WAIT, work).await.expect("answer in time")
}

fn push() -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/github/push/with-new-branch.payload.json", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

fn pipeline(name: &str) -> PipelineDeclaration {
    let source = ActionDeclaration::builder()
        .name("Source")
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Source)
                .owner(ActionOwner::ThirdParty)
                .provider("GitHub")
                .version("1")
                .build()
                .unwrap(),
        )
        .configuration("Owner", "Codertocat")
        .configuration("Repo", "Hello-World")
        .configuration("Branch", "master")
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    // A pipeline as AWS accepts it (CreatePipeline checks the structure): an artifact store, and
    // a second stage that reads the source.
    let build = ActionDeclaration::builder()
        .name("Build")
        .action_type_id(
            ActionTypeId::builder()
                .category(ActionCategory::Build)
                .owner(ActionOwner::Aws)
                .provider("CodeBuild")
                .version("1")
                .build()
                .unwrap(),
        )
        .input_artifacts(InputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/codepipeline")
        .artifact_store(
            ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("codepipeline-artifacts").build().unwrap(),
        )
        .stages(StageDeclaration::builder().name("Source").actions(source).build().unwrap())
        .stages(StageDeclaration::builder().name("Build").actions(build).build().unwrap())
        .build()
        .unwrap()
}

fn webhook(name: &str, pipeline: &str, json_path: &str) -> WebhookDefinition {
    WebhookDefinition::builder()
        .name(name)
        .target_pipeline(pipeline)
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path(json_path).match_equals("refs/heads/{Branch}").build().unwrap())
        .authentication(WebhookAuthenticationType::GithubHmac)
        .authentication_configuration(WebhookAuthConfiguration::builder().secret_token(HOOK_SECRET).build())
        .build()
        .unwrap()
}

fn token_of(url: &str) -> String {
    url.split("t=").nth(1).unwrap().trim_end_matches("&v=1").to_owned()
}

/// Every execution id of a pipeline, paging through, in listed order (repeats kept).
async fn all_executions(c: &Client, pipeline: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = None;
    for _ in 0..1000 {
        let page = c
            .list_pipeline_executions()
            .pipeline_name(pipeline)
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        ids.extend(page.pipeline_execution_summaries().iter().map(|e| e.pipeline_execution_id().unwrap().to_owned()));
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            return ids;
        }
    }
    panic!("more than 1000 pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_share_one_postgres_database() {
    let Some(url) = fresh_database("three").await else { return };
    let dir = temp_dir("three");
    let a = Server::on_postgres(&dir, &url);
    let b = Server::on_postgres(&dir, &url);
    let c = Server::on_postgres(&dir, &url);
    let (ca, cb, cc) = (a.client(), b.client(), c.client());

    // Created through one, listed by the others at once (their control planes read the database).
    ca.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    let put = ca.put_webhook().webhook(webhook("hook", "app", "$.ref")).send().await.unwrap();
    let url_a = put.webhook().unwrap().url().to_owned();
    for other in [&cb, &cc] {
        let hooks = other.list_webhooks().send().await.unwrap();
        assert_eq!(hooks.webhooks().len(), 1);
        assert_eq!(hooks.webhooks()[0].url(), url_a, "the same URL on every instance");
        let pipelines = other.list_pipelines().send().await.unwrap();
        assert_eq!(pipelines.pipelines()[0].name(), Some("app"));
    }
    let token = token_of(&url_a);
    let body = push();
    // The data planes of the others hear of the webhook within a second.
    let deadline = Instant::now() + Duration::from_secs(1);
    for server in [&b, &c] {
        loop {
            let got = deliver(server.addr, &token, &body, &format!("warm-{}", server.addr)).await.unwrap();
            if got.0 == 202 {
                break;
            }
            assert_eq!(got.0, 404);
            assert!(Instant::now() < deadline, "instance {} did not hear of the webhook within 1 s", server.addr);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // Signed deliveries round-robin over the three; C is killed -9 in the middle of it.
    const WORKERS: usize = 6;
    const PER_WORKER: usize = 40;
    let addrs = [a.addr, b.addr, c.addr];
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (token, body) = (token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..PER_WORKER {
                let addr = addrs[(w + i) % 3];
                if let Some((status, json)) = deliver(addr, &token, &body, &format!("load-{w}-{i}")).await {
                    if status == 202 {
                        acked.push(json["pipelineExecutionId"].as_str().unwrap().to_owned());
                    } else {
                        assert_eq!(status, 503, "{json}");
                    }
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(tokio::time::timeout(WAIT, t).await.unwrap().unwrap());
    }
    let acked_set: HashSet<&String> = acked.iter().collect();
    assert_eq!(acked_set.len(), acked.len(), "every acknowledged execution id is distinct");
    assert!(acked.len() >= WORKERS * PER_WORKER / 2, "only {} deliveries acknowledged", acked.len());
    for survivor in [&ca, &cb] {
        let listed = all_executions(survivor, "app").await;
        let listed_set: HashSet<&String> = listed.iter().collect();
        assert_eq!(listed_set.len(), listed.len(), "no execution is listed twice");
        let missing: Vec<_> = acked_set.difference(&listed_set).collect();
        assert!(missing.is_empty(), "acknowledged but not listed: {missing:?}");
    }
    // lastTriggered: the latest over every instance, the same through each.
    let la = ca.list_webhooks().send().await.unwrap().webhooks()[0].last_triggered().copied();
    let lb = cb.list_webhooks().send().await.unwrap().webhooks()[0].last_triggered().copied();
    assert!(la.is_some());
    assert_eq!(la, lb);

    // One delivery id sent to two instances at once starts one execution.
    let before = all_executions(&ca, "app").await.len();
    let (x, y) =
        tokio::join!(deliver(a.addr, &token, &body, "same-delivery"), deliver(b.addr, &token, &body, "same-delivery"));
    let mut statuses = [x.unwrap(), y.unwrap()].map(|(s, j)| (s, j["ignored"].as_str().map(str::to_owned)));
    statuses.sort();
    assert_eq!(statuses, [(200, Some("duplicate delivery".to_owned())), (202, None)]);
    assert_eq!(all_executions(&cb, "app").await.len(), before + 1);

    // Deleted through one: the other answers 404 within a second.
    cb.delete_webhook().name("hook").send().await.unwrap();
    let deleted = Instant::now();
    loop {
        let (status, _) =
            deliver(a.addr, &token, &body, &format!("after-delete-{}", deleted.elapsed().as_micros())).await.unwrap();
        if status == 404 {
            break;
        }
        assert!(deleted.elapsed() < Duration::from_secs(1), "still {status} after {:?}", deleted.elapsed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "deletion reached the other instance after {:?}; {} deliveries acknowledged",
        deleted.elapsed(),
        acked.len()
    );
    assert!(ca.list_webhooks().send().await.unwrap().webhooks().is_empty());
    assert!(!a.logs_settled().contains(HOOK_SECRET) && !b.logs_settled().contains(HOOK_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_webhook_races_across_instances() {
    let Some(url) = fresh_database("race").await else { return };
    let dir = temp_dir("race");
    let a = Server::on_postgres(&dir, &url);
    let b = Server::on_postgres(&dir, &url);
    let (ca, cb) = (a.client(), b.client());
    ca.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();

    // One name put from two instances at once: one webhook, one URL, whichever definition won.
    for i in 0..5 {
        let name = format!("same-{i}");
        let (x, y) = tokio::join!(
            ca.put_webhook().webhook(webhook(&name, "app", "$.ref")).send(),
            cb.put_webhook().webhook(webhook(&name, "app", "$['ref']")).send()
        );
        let (x, y) = (x.unwrap(), y.unwrap());
        assert_eq!(x.webhook().unwrap().url(), y.webhook().unwrap().url(), "one URL for {name}");
        for c in [&ca, &cb] {
            let listed = c.list_webhooks().send().await.unwrap();
            let hook = listed.webhooks().iter().find(|w| w.definition().unwrap().name() == name).unwrap();
            assert_eq!(hook.url(), x.webhook().unwrap().url());
        }
    }
    // Up to 299, then the 300th slot raced from both instances: one wins.
    for i in 5..299 {
        let c = if i % 2 == 0 { &ca } else { &cb };
        c.put_webhook().webhook(webhook(&format!("h{i:03}"), "app", "$.ref")).send().await.unwrap();
    }
    let (x, y) = tokio::join!(
        ca.put_webhook().webhook(webhook("last-a", "app", "$.ref")).send(),
        cb.put_webhook().webhook(webhook("last-b", "app", "$.ref")).send()
    );
    let outcomes = [
        x.map(|_| ()).map_err(|e| e.code().unwrap_or("").to_owned()),
        y.map(|_| ()).map_err(|e| e.code().unwrap_or("").to_owned()),
    ];
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    assert!(outcomes.contains(&Err("LimitExceededException".to_owned())), "{outcomes:?}");
    for c in [&ca, &cb] {
        let mut names = HashSet::new();
        let mut next = None;
        loop {
            let page = c.list_webhooks().set_next_token(next).send().await.unwrap();
            names.extend(page.webhooks().iter().map(|w| w.definition().unwrap().name().to_owned()));
            next = page.next_token().map(str::to_owned);
            if next.is_none() {
                break;
            }
        }
        assert_eq!(names.len(), 300);
    }
    // A NextToken issued by one instance pages on the other (the key is in the database).
    let first = ca.list_webhooks().max_results(10).send().await.unwrap();
    let second = cb.list_webhooks().max_results(10).set_next_token(first.next_token().map(str::to_owned)).send();
    let second = second.await.unwrap();
    assert_eq!(second.webhooks()[0].definition().unwrap().name(), "h015");
    // Deleting one frees its slot for either instance.
    ca.delete_webhook().name("h005").send().await.unwrap();
    cb.put_webhook().webhook(webhook("after-delete", "app", "$.ref")).send().await.unwrap();
    let e = ca.put_webhook().webhook(webhook("one-too-many", "app", "$.ref")).send().await.unwrap_err();
    assert_eq!(e.code(), Some("LimitExceededException"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sqlite_server_on_one_data_dir_is_refused() {
    let dir = temp_dir("lock");
    let data = dir.join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let first = Server::start(&dir, &["--data-dir", &data_arg]);
    let (mut cmd, log) = command(&dir, &["--data-dir", &data_arg]);
    let mut second = cmd.spawn().unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the second server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(2));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains(&format!("locked by process {}", first.child.id())), "{stderr}");
    assert!(stderr.contains("serve.lock"), "{stderr}");
    // The same port too (a second start with the same options): the lock is what it reports,
    // not only that the address is in use.
    let same_port = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args(["serve", "--no-auth", "--listen", &first.addr.to_string(), "--data-dir", &data_arg])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&same_port.stderr);
    assert_eq!(same_port.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("locked by process {}", first.child.id())), "{stderr}");
    // The first still serves; once it is gone, the directory can be served again.
    let hooks = first.client().list_webhooks().send().await.unwrap();
    assert!(hooks.webhooks().is_empty());
    first.kill9();
    let again = Server::start(&dir, &["--data-dir", &data_arg]);
    again.client().list_webhooks().send().await.unwrap();
    // The same for --database-url sqlite:PATH.
    let file = format!("sqlite:{}", dir.join("other.sqlite3").display());
    let one = Server::start(&dir, &["--database-url", &file]);
    let (mut cmd, log) = command(&dir, &["--database-url", &file]);
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(2));
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(stderr.contains(&format!("locked by process {}", one.child.id())), "{stderr}");
}
