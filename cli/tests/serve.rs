//! `codepipeline-webhooks serve` as a real process on 127.0.0.1 (port 0; the bound address is
//! read from its stdout), driven by the AWS SDK for Rust (control plane) and by raw HTTP/1.1
//! (deliveries, SigV4 failures the SDK cannot produce). No mocks; every wait is bounded.

mod logs_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, InputArtifact,
    OutputArtifact, PipelineDeclaration, PipelineExecutionStatus, StageDeclaration, TriggerType,
    WebhookAuthConfiguration, WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule,
};
use codepipeline_webhooks::github;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "AKIDSERVETEST";
const KEY_SECRET: &str = "serve-test-secret-access-key";
const HOOK_SECRET: &str = "hook-secret-for-tests";
const PUBLIC_URL: &str = "https://hooks.example.test";
const WAIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir.
fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("cpw-serve-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A running server process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let log = data_dir.with_extension(format!("log{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            // PUBLIC_URL unless the test gives its own.
            .args(if extra.contains(&"--public-url") { &[][..] } else { &["--public-url", PUBLIC_URL][..] })
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
            // Keep draining stdout (the on-trigger program inherits it) after the first line.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
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

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up.
    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status (bounded).
    fn terminate(mut self) -> ExitStatus {
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log once it holds `needle` (it lands a moment after it is logged).
    fn logs_with(&self, needle: &str) -> String {
        logs_common::logs_with(&self.log, needle)
    }

    /// The log once it stops growing, for what it must not hold.
    fn logs_settled(&self) -> String {
        logs_common::logs_settled(&self.log)
    }

    fn client(&self) -> Client {
        client(self.addr, KEY_ID, KEY_SECRET)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client(addr: SocketAddr, id: &str, secret: &str) -> Client {
    let config = aws_sdk_codepipeline::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{addr}"))
        .credentials_provider(Credentials::new(id, secret, None, None, "tests"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// A raw HTTP/1.1 answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        if !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding"))
        {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
        // The server may answer (413, 404) and close before the body is sent.
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(WAIT, work).await.expect("answer in time");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    Answer { status, headers, body: raw[split + 4..].to_vec() }
}

fn signed_headers(secret: &str, body: &[u8], event: &str, delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Delivery", delivery.to_owned()),
        ("X-Hub-Signature-256", github::signature_256(secret.as_bytes(), body)),
    ]
}

fn pipeline(name: &str, branch: &str) -> PipelineDeclaration {
    pipeline_with_action(name, branch, "Source")
}

/// A pipeline whose first-stage action is named `action`.
fn pipeline_with_action(name: &str, branch: &str, action: &str) -> PipelineDeclaration {
    let source = ActionDeclaration::builder()
        .name(action)
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
        .configuration("Branch", branch)
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    // A pipeline as AWS accepts it: an artifact store, and a second stage that reads the source.
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

fn webhook(name: &str, pipeline: &str, auth: WebhookAuthenticationType) -> WebhookDefinition {
    let config = match auth {
        WebhookAuthenticationType::GithubHmac => WebhookAuthConfiguration::builder().secret_token(HOOK_SECRET).build(),
        WebhookAuthenticationType::Ip => WebhookAuthConfiguration::builder().allowed_ip_range("10.0.0.0/8").build(),
        _ => WebhookAuthConfiguration::builder().build(),
    };
    WebhookDefinition::builder()
        .name(name)
        .target_pipeline(pipeline)
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path("$.ref").match_equals("refs/heads/{Branch}").build().unwrap())
        .authentication(auth)
        .authentication_configuration(config)
        .build()
        .unwrap()
}

/// Creates a pipeline on `master` and a webhook on it; the webhook's URL token.
async fn setup(client: &Client, pipeline_name: &str, hook: &str, auth: WebhookAuthenticationType) -> String {
    client.create_pipeline().pipeline(pipeline(pipeline_name, "master")).send().await.unwrap();
    let out = client.put_webhook().webhook(webhook(hook, pipeline_name, auth)).send().await.unwrap();
    let url = out.webhook().unwrap().url().to_owned();
    let prefix = format!("{PUBLIC_URL}/trigger?t=");
    assert!(url.starts_with(&prefix) && url.ends_with("&v=1"), "{url}");
    url[prefix.len()..url.len() - 4].to_owned()
}

async fn deliver(addr: SocketAddr, token: &str, body: &[u8], headers: &[(&str, String)]) -> Answer {
    http(addr, "POST", &format!("/trigger?t={token}&v=1"), headers, body).await
}

fn push() -> Vec<u8> {
    fixture("github/push/with-new-branch.payload.json")
}

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or("<none>").to_owned()
}

#[test]
fn refuses_to_start_without_credentials() {
    let dir = temp_dir("nocreds");
    let out = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AWS_ACCESS_KEY_ID") && stderr.contains("--no-auth"), "{stderr}");
    assert!(!dir.join("data").exists(), "nothing is created when it refuses");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_over_the_sdk() {
    let dir = temp_dir("pipelines");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();

    let created = c.create_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();
    assert_eq!(created.pipeline().unwrap().version(), Some(1));
    let again = c.create_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap_err();
    assert_eq!(code(&again), "PipelineNameInUseException");

    let got = c.get_pipeline().name("app").send().await.unwrap();
    let meta = got.metadata().unwrap();
    assert_eq!(meta.pipeline_arn(), Some("arn:aws:codepipeline:us-east-1:123456789012:app"));
    assert!(meta.created().is_some() && meta.updated().is_some());
    assert_eq!(got.pipeline().unwrap().role_arn(), "arn:aws:iam::123456789012:role/codepipeline", "stored as given");

    let updated = c.update_pipeline().pipeline(pipeline("app", "main")).send().await.unwrap();
    assert_eq!(updated.pipeline().unwrap().version(), Some(2));
    let v1 = c.get_pipeline().name("app").version(1).send().await.unwrap();
    assert_eq!(v1.pipeline().unwrap().stages()[0].actions()[0].configuration().unwrap()["Branch"], "master");
    let v2 = c.get_pipeline().name("app").send().await.unwrap();
    assert_eq!(v2.pipeline().unwrap().version(), Some(2));
    assert_eq!(
        code(&c.get_pipeline().name("app").version(9).send().await.unwrap_err()),
        "PipelineVersionNotFoundException"
    );
    assert_eq!(code(&c.get_pipeline().name("nope").send().await.unwrap_err()), "PipelineNotFoundException");
    assert_eq!(
        code(&c.update_pipeline().pipeline(pipeline("nope", "main")).send().await.unwrap_err()),
        "PipelineNotFoundException"
    );

    for name in ["b-app", "c-app", "d-app"] {
        c.create_pipeline().pipeline(pipeline(name, "master")).send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut next = None;
    loop {
        let page = c.list_pipelines().max_results(3).set_next_token(next).send().await.unwrap();
        assert!(page.pipelines().len() <= 3);
        names.extend(page.pipelines().iter().map(|p| p.name().unwrap().to_owned()));
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(names, ["app", "b-app", "c-app", "d-app"]);
    // Declared without a type or a mode: the summaries say AWS's defaults.
    for summary in c.list_pipelines().send().await.unwrap().pipelines() {
        assert_eq!(summary.pipeline_type(), Some(&aws_sdk_codepipeline::types::PipelineType::V1), "{summary:?}");
        assert_eq!(summary.execution_mode(), Some(&aws_sdk_codepipeline::types::ExecutionMode::Superseded));
    }
    assert_eq!(code(&c.list_pipelines().max_results(0).send().await.unwrap_err()), "ValidationException");
    assert_eq!(code(&c.list_pipelines().next_token("!!").send().await.unwrap_err()), "InvalidNextTokenException");

    c.delete_pipeline().name("b-app").send().await.unwrap();
    assert_eq!(code(&c.get_pipeline().name("b-app").send().await.unwrap_err()), "PipelineNotFoundException");
    assert_eq!(c.list_pipelines().send().await.unwrap().pipelines().len(), 3);
    assert_eq!(
        code(&c.list_pipeline_executions().pipeline_name("b-app").send().await.unwrap_err()),
        "PipelineNotFoundException"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_over_the_sdk() {
    let dir = temp_dir("webhooks");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();

    let out =
        c.put_webhook().webhook(webhook("hook-a", "app", WebhookAuthenticationType::GithubHmac)).send().await.unwrap();
    let item = out.webhook().unwrap();
    assert!(item.url().starts_with(&format!("{PUBLIC_URL}/trigger?t=")));
    assert_eq!(item.arn(), Some("arn:aws:codepipeline:us-east-1:123456789012:webhook:hook-a"));
    let shown = item.definition().unwrap().authentication_configuration().unwrap().secret_token();
    assert_eq!(shown, Some("****"), "the secret is never returned");
    // Same name: replaced, same URL.
    let again =
        c.put_webhook().webhook(webhook("hook-a", "app", WebhookAuthenticationType::GithubHmac)).send().await.unwrap();
    assert_eq!(again.webhook().unwrap().url(), item.url());

    for name in ["hook-b", "hook-c"] {
        c.put_webhook().webhook(webhook(name, "app", WebhookAuthenticationType::Unauthenticated)).send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut next = None;
    loop {
        let page = c.list_webhooks().max_results(2).set_next_token(next).send().await.unwrap();
        names.extend(page.webhooks().iter().map(|w| w.definition().unwrap().name().to_owned()));
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(names, ["hook-a", "hook-b", "hook-c"]);

    c.register_webhook_with_third_party().webhook_name("hook-a").send().await.unwrap();
    c.deregister_webhook_with_third_party().webhook_name("hook-a").send().await.unwrap();
    c.delete_webhook().name("hook-c").send().await.unwrap();
    c.delete_webhook().name("never-existed").send().await.unwrap();
    assert_eq!(c.list_webhooks().send().await.unwrap().webhooks().len(), 2);

    // Errors, as the SDK sees them.
    let e = c
        .put_webhook()
        .webhook(webhook("x", "missing", WebhookAuthenticationType::Unauthenticated))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "PipelineNotFoundException");
    assert!(e.into_service_error().is_pipeline_not_found_exception(), "a modeled error");
    let bad_filter = WebhookDefinition::builder()
        .name("bad")
        .target_pipeline("app")
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path("$.ref[").match_equals("refs/heads/{Branch}").build().unwrap())
        .authentication(WebhookAuthenticationType::Unauthenticated)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .unwrap();
    let e = c.put_webhook().webhook(bad_filter).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidWebhookFilterPatternException");
    let no_secret = WebhookDefinition::builder()
        .name("nosecret")
        .target_pipeline("app")
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path("$.ref").build().unwrap())
        .authentication(WebhookAuthenticationType::GithubHmac)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .unwrap();
    assert_eq!(
        code(&c.put_webhook().webhook(no_secret).send().await.unwrap_err()),
        "InvalidWebhookAuthenticationParametersException"
    );
    let wrong_action = WebhookDefinition::builder()
        .name("wrong")
        .target_pipeline("app")
        .target_action("Build")
        .filters(WebhookFilterRule::builder().json_path("$.ref").build().unwrap())
        .authentication(WebhookAuthenticationType::Unauthenticated)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .unwrap();
    assert_eq!(code(&c.put_webhook().webhook(wrong_action).send().await.unwrap_err()), "ValidationException");
    let e = c.register_webhook_with_third_party().webhook_name("missing").send().await.unwrap_err();
    assert_eq!(code(&e), "WebhookNotFoundException");
    let e = c.deregister_webhook_with_third_party().webhook_name("missing").send().await.unwrap_err();
    assert_eq!(code(&e), "WebhookNotFoundException");
    let tag = |k: &str| aws_sdk_codepipeline::types::Tag::builder().key(k).value("v").build().unwrap();
    let e = c
        .put_webhook()
        .webhook(webhook("tagged", "app", WebhookAuthenticationType::Unauthenticated))
        .tags(tag("aws:reserved"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "InvalidTagsException");
    let mut many = c.put_webhook().webhook(webhook("tagged", "app", WebhookAuthenticationType::Unauthenticated));
    for i in 0..51 {
        many = many.tags(tag(&format!("k{i}")));
    }
    assert_eq!(code(&many.send().await.unwrap_err()), "TooManyTagsException");
    let e = c.create_pipeline().pipeline(pipeline("tagged", "master")).tags(tag("aws:x")).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidTagsException");
    assert_eq!(code(&c.list_webhooks().max_results(101).send().await.unwrap_err()), "ValidationException");
    assert_eq!(code(&c.list_webhooks().next_token("%%%").send().await.unwrap_err()), "InvalidNextTokenException");
    let logs = server.logs_settled();
    assert!(!logs.contains(HOOK_SECRET), "the webhook secret never reaches the log");
}

/// Signs a control-plane request as of `at` with aws-sigv4 (the SDK always signs with "now").
fn sign_at(addr: SocketAddr, target: &str, body: &[u8], at: SystemTime, secret: &str) -> Vec<(&'static str, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::from_keys(KEY_ID, secret, None).into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("codepipeline")
        .time(at)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let host = addr.to_string();
    let base = [("host", host.as_str()), ("x-amz-target", target), ("content-type", "application/x-amz-json-1.1")];
    let out =
        sign(SignableRequest::new("POST", "/", base.into_iter(), SignableBody::Bytes(body)).unwrap(), &params).unwrap();
    let (instructions, _) = out.into_parts();
    let mut headers: Vec<(&'static str, String)> =
        vec![("X-Amz-Target", target.to_owned()), ("Content-Type", "application/x-amz-json-1.1".to_owned())];
    for (n, v) in instructions.headers() {
        let name: &'static str = match n {
            "authorization" => "Authorization",
            "x-amz-date" => "X-Amz-Date",
            other => panic!("unexpected signing header {other}"),
        };
        headers.push((name, v.to_owned()));
    }
    headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_quota_is_300() {
    let dir = temp_dir("quota");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();
    for i in 0..300 {
        c.put_webhook()
            .webhook(webhook(&format!("h{i:03}"), "app", WebhookAuthenticationType::Unauthenticated))
            .send()
            .await
            .unwrap();
    }
    let e = c
        .put_webhook()
        .webhook(webhook("one-too-many", "app", WebhookAuthenticationType::Unauthenticated))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");
    // Replacing one is not a new one.
    c.put_webhook().webhook(webhook("h000", "app", WebhookAuthenticationType::Unauthenticated)).send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_quota_and_the_body_limit_are_options() {
    let dir = temp_dir("options");
    let body = push();
    let limit = body.len().to_string();
    let server = Server::start(&dir.join("data"), &["--webhook-quota", "2", "--max-body-bytes", &limit]);
    let c = server.client();
    let token = setup(&c, "app", "h1", WebhookAuthenticationType::GithubHmac).await;
    c.put_webhook().webhook(webhook("h2", "app", WebhookAuthenticationType::Unauthenticated)).send().await.unwrap();
    let e = c
        .put_webhook()
        .webhook(webhook("h3", "app", WebhookAuthenticationType::Unauthenticated))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "LimitExceededException");
    // A body at the limit is read; one byte more is 413.
    let a = deliver(server.addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    let mut over = body.clone();
    over.push(b' ');
    let a = deliver(server.addr, &token, &over, &signed_headers(HOOK_SECRET, &over, "push", "d-2")).await;
    assert_eq!(a.status, 413);
    drop(server);
    // An --on-trigger program that does not exist is refused at start, not at the first trigger.
    let out = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args(["serve", "--no-auth", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data2"))
        .args(["--on-trigger", "/no/such/deploy.sh"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--on-trigger: '/no/such/deploy.sh' is not an executable file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_and_health() {
    let dir = temp_dir("jsonlogs");
    let server = Server::start(&dir.join("data"), &["--log-format", "json"]);
    let c = server.client();
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    let body = push();
    let a = deliver(server.addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    assert_eq!(a.status, 202);
    let h = http(server.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(h.status, 200);
    let logs = server.logs_with("pipeline started");
    let lines: Vec<Value> =
        logs.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "pipeline started" && l["fields"]["webhook"] == "hook"),
        "{logs}"
    );
    assert!(lines.iter().any(|l| l["fields"]["operation"] == "PutWebhook"), "{logs}");
    assert!(!logs.contains(HOOK_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_and_protocol_errors() {
    let dir = temp_dir("sigv4");
    let server = Server::start(&dir.join("data"), &[]);
    let addr = server.addr;

    let e = client(addr, "AKIDUNKNOWN", KEY_SECRET).list_webhooks().send().await.unwrap_err();
    assert_eq!(code(&e), "UnrecognizedClientException");
    let e = client(addr, KEY_ID, "not-the-secret").list_webhooks().send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidSignatureException");

    let target = "CodePipeline_20150709.ListWebhooks";
    let a = http(addr, "POST", "/", &[("X-Amz-Target", target.to_owned())], b"{}").await;
    assert_eq!(a.status, 403);
    assert_eq!(a.header("x-amzn-ErrorType"), Some("MissingAuthenticationTokenException"));
    assert_eq!(a.json()["__type"], "MissingAuthenticationTokenException");
    assert!(a.header("x-amzn-RequestId").is_some_and(|id| id.len() == 36));

    // Signed correctly with aws-sigv4 directly: accepted.
    let ok = http(addr, "POST", "/", &sign_at(addr, target, b"{}", SystemTime::now(), KEY_SECRET), b"{}").await;
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(ok.json()["webhooks"], serde_json::json!([]));
    assert!(ok.header("x-amzn-RequestId").is_some());
    // Ten minutes old: expired.
    let old = SystemTime::now() - Duration::from_secs(600);
    let a = http(addr, "POST", "/", &sign_at(addr, target, b"{}", old, KEY_SECRET), b"{}").await;
    assert_eq!(a.status, 403);
    assert_eq!(a.json()["__type"], "InvalidSignatureException");
    assert!(a.json()["message"].as_str().unwrap().starts_with("Signature expired"));
    // Ten minutes ahead: also refused.
    let ahead = SystemTime::now() + Duration::from_secs(600);
    let a = http(addr, "POST", "/", &sign_at(addr, target, b"{}", ahead, KEY_SECRET), b"{}").await;
    assert_eq!(a.json()["__type"], "InvalidSignatureException");
    // Body changed after signing.
    let a =
        http(addr, "POST", "/", &sign_at(addr, target, b"{}", SystemTime::now(), KEY_SECRET), b"{\"MaxResults\":1}")
            .await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (403, Some("InvalidSignatureException")));

    // Protocol errors, signed.
    let unknown = "CodePipeline_20150709.RetryStageExecution";
    let a = http(addr, "POST", "/", &sign_at(addr, unknown, b"{}", SystemTime::now(), KEY_SECRET), b"{}").await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("UnknownOperationException")));
    assert_eq!(a.header("x-amzn-ErrorType"), Some("UnknownOperationException"));
    let body = b"{not json";
    let a = http(addr, "POST", "/", &sign_at(addr, target, body, SystemTime::now(), KEY_SECRET), body).await;
    assert_eq!((a.status, a.json()["__type"].as_str()), (400, Some("SerializationException")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_over_real_http() {
    let dir = temp_dir("deliveries");
    let server = Server::start(&dir.join("data"), &[]);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    let body = push();

    // A signed push to master starts the pipeline.
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
    let id = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    let summary = &listed.pipeline_execution_summaries()[0];
    assert_eq!(summary.pipeline_execution_id(), Some(id.as_str()));
    assert_eq!(summary.status(), Some(&PipelineExecutionStatus::Succeeded), "no --on-trigger: Succeeded at once");
    let trigger = summary.trigger().unwrap();
    assert_eq!(trigger.trigger_type(), Some(&TriggerType::Webhook));
    assert_eq!(trigger.trigger_detail(), Some("arn:aws:codepipeline:us-east-1:123456789012:webhook:hook"));
    let got = c.get_pipeline_execution().pipeline_name("app").pipeline_execution_id(&id).send().await.unwrap();
    let execution = got.pipeline_execution().unwrap();
    assert_eq!(execution.pipeline_version(), Some(1));
    assert_eq!(
        execution.execution_mode(),
        Some(&aws_sdk_codepipeline::types::ExecutionMode::Superseded),
        "AWS's default"
    );
    assert_eq!(execution.status(), Some(&PipelineExecutionStatus::Succeeded));
    let unknown = "00000000-0000-0000-0000-000000000000";
    let e = c.get_pipeline_execution().pipeline_name("app").pipeline_execution_id(unknown).send().await.unwrap_err();
    assert_eq!(code(&e), "PipelineExecutionNotFoundException");
    // Not an execution id by the model's pattern: ValidationException, as AWS answers.
    let e = c.get_pipeline_execution().pipeline_name("app").pipeline_execution_id("nope").send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let hooks = c.list_webhooks().send().await.unwrap();
    let stamped = hooks.webhooks()[0].last_triggered().copied().expect("lastTriggered kept");
    assert!(
        stamped.secs() >= summary.start_time().unwrap().secs(),
        "lastTriggered is the execution's start: {stamped:?} vs {:?}",
        summary.start_time()
    );

    // The same delivery id again: nothing starts, and lastTriggered stays (it is set by a
    // delivery that starts the pipeline, not by one that passes the filters and starts nothing).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    assert_eq!((a.status, a.json()["ignored"].as_str()), (200, Some("duplicate delivery")));
    // A signed ping of the push's body (its filters pass; a ping starts nothing).
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "ping", "d-ping-push")).await;
    assert_eq!((a.status, a.json()["ignored"].as_str()), (200, Some("ping")));
    let hooks = c.list_webhooks().send().await.unwrap();
    assert_eq!(hooks.webhooks()[0].last_triggered(), Some(&stamped), "no execution started: lastTriggered unchanged");
    // An upsert keeps it, and answers it as ListWebhooks does.
    let again = c.put_webhook().webhook(webhook("hook", "app", WebhookAuthenticationType::GithubHmac)).send().await;
    assert_eq!(again.unwrap().webhook().unwrap().last_triggered(), Some(&stamped));

    // GitHub's form encoding: payload=<urlencoded JSON>, signed over the form bytes.
    let form = format!("payload={}", percent_encode(&body));
    let mut headers = signed_headers(HOOK_SECRET, form.as_bytes(), "push", "d-form");
    headers[0].1 = "application/x-www-form-urlencoded".to_owned();
    let a = deliver(addr, &token, form.as_bytes(), &headers).await;
    assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));

    // A tag push: authenticated, filter does not match: 200 with the reason.
    let tag = fixture("github/push/payload.json");
    let a = deliver(addr, &token, &tag, &signed_headers(HOOK_SECRET, &tag, "push", "d-tag")).await;
    assert_eq!(a.status, 200);
    assert!(a.json()["ignored"].as_str().unwrap().contains("refs/heads/master"), "{}", a.json());

    // An authenticated ping.
    let ping = fixture("github/ping/payload.json");
    let a = deliver(addr, &token, &ping, &signed_headers(HOOK_SECRET, &ping, "ping", "d-ping")).await;
    assert_eq!((a.status, a.json()["ignored"].as_str()), (200, Some("ping")));

    // Every push of the corpus, signed: a branch push to master starts, any other is ignored with
    // its reason.
    let mut corpus: Vec<PathBuf> =
        std::fs::read_dir(format!("{}/../tests/fixtures/github/push", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    corpus.push(
        format!("{}/../tests/fixtures/github-extra/go-playground-webhooks/push.json", env!("CARGO_MANIFEST_DIR"))
            .into(),
    );
    corpus.sort();
    let mut corpus_starts = 0;
    for (i, path) in corpus.iter().enumerate() {
        let payload = std::fs::read(path).unwrap();
        let r#ref = serde_json::from_slice::<Value>(&payload).unwrap()["ref"].as_str().unwrap().to_owned();
        let a = deliver(addr, &token, &payload, &signed_headers(HOOK_SECRET, &payload, "push", &format!("corpus-{i}")))
            .await;
        if r#ref == "refs/heads/master" {
            assert_eq!(a.status, 202, "{}", path.display());
            corpus_starts += 1;
        } else {
            assert_eq!(a.status, 200, "{}", path.display());
            assert!(a.json()["ignored"].as_str().unwrap().contains("filter"), "{}: {}", path.display(), a.json());
        }
    }
    assert_eq!(corpus_starts, 3, "with-new-branch, with-no-username-committer, go-playground");

    // A signed body that is not JSON: 400, the reason told to the sender that proved the secret.
    let broken = b"{\"ref\": ".to_vec();
    let a = deliver(addr, &token, &broken, &signed_headers(HOOK_SECRET, &broken, "push", "d-broken")).await;
    assert_eq!(a.status, 400, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.json()["error"].as_str().unwrap().contains("malformed"), "{}", a.json());

    // Rejects: wrong secret, no signature (403, no reason); unknown token (404); too large (413).
    let a = deliver(addr, &token, &body, &signed_headers("wrong", &body, "push", "d-bad")).await;
    assert_eq!((a.status, a.body.len()), (403, 0));
    let a = deliver(addr, &token, &body, &[("Content-Type", "application/json".to_owned())]).await;
    assert_eq!((a.status, a.body.len()), (403, 0));
    let a = deliver(addr, "no-such-token", &body, &signed_headers(HOOK_SECRET, &body, "push", "d-x")).await;
    assert_eq!(a.status, 404);
    // The data plane is answered before the router: every answer still has its request id, any
    // other method on /trigger is 405 and another path 404, as the router answers them.
    let a = deliver(addr, &token, &tag, &signed_headers(HOOK_SECRET, &tag, "push", "d-id")).await;
    let id = a.header("x-amzn-requestid").expect("a request id on a delivery's answer").to_owned();
    let b = deliver(addr, "no-such-token", &body, &[]).await;
    assert!(id.len() == 36 && b.header("x-amzn-requestid").is_some_and(|other| other != id), "{a:?} {b:?}");
    let a = http(addr, "GET", &format!("/trigger?t={token}&v=1"), &[], b"").await;
    assert_eq!((a.status, a.header("allow"), a.header("x-amzn-requestid").is_some()), (405, Some("POST"), true));
    let a = http(addr, "POST", &format!("/trigger/?t={token}&v=1"), &[], &body).await;
    assert_eq!(a.status, 404);
    let a = deliver(addr, &token, b"", &[("Content-Length", (26 * 1024 * 1024).to_string())]).await;
    assert_eq!(a.status, 413);
    // Streamed (no Content-Length): cut at the limit.
    let size = 25 * 1024 * 1024 + 1;
    let mut chunked = format!("{size:x}\r\n").into_bytes();
    chunked.resize(chunked.len() + size, b' ');
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    let a = http(
        addr,
        "POST",
        &format!("/trigger?t={token}&v=1"),
        &[("Transfer-Encoding", "chunked".to_owned())],
        &chunked,
    )
    .await;
    assert_eq!(a.status, 413);

    // Push, form and the corpus's three started; the duplicate, tag, ping and rejects nothing.
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(listed.pipeline_execution_summaries().len(), 2 + corpus_starts);

    // UNAUTHENTICATED and IP webhooks: a mismatch is 200 with no reason; an address outside the
    // range is 403.
    let open = c
        .put_webhook()
        .webhook(webhook("open", "app", WebhookAuthenticationType::Unauthenticated))
        .send()
        .await
        .unwrap();
    let open_token = open.webhook().unwrap().url().split("t=").nth(1).unwrap().trim_end_matches("&v=1").to_owned();
    let a = deliver(addr, &open_token, &tag, &[("Content-Type", "application/json".to_owned())]).await;
    assert_eq!((a.status, a.json()), (200, serde_json::json!({})));
    let a = deliver(addr, &open_token, &body, &[("Content-Type", "application/json".to_owned())]).await;
    assert_eq!(a.status, 202);
    let ip = c.put_webhook().webhook(webhook("ip", "app", WebhookAuthenticationType::Ip)).send().await.unwrap();
    let ip_token = ip.webhook().unwrap().url().split("t=").nth(1).unwrap().trim_end_matches("&v=1").to_owned();
    let a = deliver(addr, &ip_token, &body, &[("Content-Type", "application/json".to_owned())]).await;
    assert_eq!((a.status, a.body.len()), (403, 0), "127.0.0.1 is outside 10.0.0.0/8");

    // Metrics saw them by outcome and step.
    let m = http(addr, "GET", "/metrics", &[], b"").await;
    let text = String::from_utf8(m.body).unwrap();
    for line in [
        "codepipeline_webhooks_deliveries_total{outcome=\"started\",step=\"none\"} 6",
        "codepipeline_webhooks_deliveries_total{outcome=\"duplicate\",step=\"none\"} 1",
        "codepipeline_webhooks_deliveries_total{outcome=\"rejected\",step=\"signature\"} 2",
        "codepipeline_webhooks_deliveries_total{outcome=\"rejected\",step=\"source_ip\"} 1",
        "codepipeline_webhooks_deliveries_total{outcome=\"unknown_token\",step=\"none\"} 2",
        "codepipeline_webhooks_deliveries_total{outcome=\"ping\",step=\"none\"} 2",
        "codepipeline_webhooks_delivery_seconds_count",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    let h = http(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!((h.status, h.body.as_slice()), (200, &b"ok\n"[..]));

    // The pipeline deleted: its webhooks stay listed, in error, and refuse deliveries (409).
    c.delete_pipeline().name("app").send().await.unwrap();
    let hooks = c.list_webhooks().send().await.unwrap();
    assert!(hooks.webhooks().iter().all(|w| w.error_code() == Some("PipelineNotFoundException")));
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-after-delete")).await;
    assert_eq!((a.status, a.body.len()), (409, 0));
    // Created again: they work again.
    c.create_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-after-create")).await;
    assert_eq!(a.status, 202);
    assert!(!server.logs_settled().contains(HOOK_SECRET));
}

fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Waits until the process `pid` has a child (the on-trigger program it started).
async fn wait_for_child_of(pid: u32) {
    let deadline = Instant::now() + WAIT;
    let parent = pid.to_string();
    loop {
        // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so after the last ')'.
        let has_child = std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
            std::fs::read_to_string(entry.path().join("stat")).ok().is_some_and(|stat| {
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)) == Some(parent.as_str())
            })
        });
        if has_child {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} started no program");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_for_status(c: &Client, pipeline: &str, id: &str, want: &PipelineExecutionStatus) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = c.get_pipeline_execution().pipeline_name(pipeline).pipeline_execution_id(id).send().await.unwrap();
        let execution = got.pipeline_execution().unwrap();
        if execution.status() == Some(want) {
            return execution.status_summary().unwrap_or_default().to_owned();
        }
        assert!(Instant::now() < deadline, "execution {id} is {:?}, not {want:?}", execution.status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_trigger_program_runs_with_payload_and_environment() {
    let dir = temp_dir("ontrigger");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let script = dir.join("on-trigger.sh");
    std::fs::write(
        &script,
        "out=$1\n\
         cat > \"$out/$CODEPIPELINE_EXECUTION_ID.payload\"\n\
         env | grep -E '^(CODEPIPELINE|GITHUB)_' | sort > \"$out/$CODEPIPELINE_EXECUTION_ID.env\"\n\
         [ \"$GITHUB_EVENT\" = slow ] && sleep 2\n\
         [ \"$GITHUB_EVENT\" = fail ] && exit 3\n\
         exit 0\n",
    )
    .unwrap();
    let server = Server::start(
        &dir.join("data"),
        &["--on-trigger-timeout", "20", "--on-trigger", "/bin/sh", script.to_str().unwrap(), out.to_str().unwrap()],
    );
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    let body = push();

    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-ok")).await;
    assert_eq!(a.status, 202);
    let ok = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    wait_for_status(&c, "app", &ok, &PipelineExecutionStatus::Succeeded).await;
    assert_eq!(std::fs::read(out.join(format!("{ok}.payload"))).unwrap(), body, "the payload on stdin, exact");
    let env = std::fs::read_to_string(out.join(format!("{ok}.env"))).unwrap();
    assert_eq!(
        env,
        format!(
            "CODEPIPELINE_EXECUTION_ID={ok}\nCODEPIPELINE_PIPELINE=app\n\
             CODEPIPELINE_REVISION_ID=6113728f27ae82c7b1a177c8d03f9e96e0adf246\nCODEPIPELINE_REVISION_SUMMARY=Initial commit\n\
             CODEPIPELINE_REVISION_URL=https://github.com/Codertocat/Hello-World/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246\n\
             CODEPIPELINE_SOURCE_ACTION=Source\nCODEPIPELINE_TRIGGER_TYPE=Webhook\n\
             CODEPIPELINE_WEBHOOK=hook\nGITHUB_DELIVERY=d-ok\nGITHUB_EVENT=push\n"
        )
    );

    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "slow", "d-slow")).await;
    let slow = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let got = c.get_pipeline_execution().pipeline_name("app").pipeline_execution_id(&slow).send().await.unwrap();
    assert_eq!(got.pipeline_execution().unwrap().status(), Some(&PipelineExecutionStatus::InProgress));
    wait_for_status(&c, "app", &slow, &PipelineExecutionStatus::Succeeded).await;

    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "fail", "d-fail")).await;
    let fail = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let summary = wait_for_status(&c, "app", &fail, &PipelineExecutionStatus::Failed).await;
    assert!(summary.contains("exit"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_trigger_timeout_fails_the_execution() {
    let dir = temp_dir("timeout");
    let server = Server::start(&dir.join("data"), &["--on-trigger-timeout", "1", "--on-trigger", "sleep", "30"]);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    let body = push();
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    let id = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let summary = wait_for_status(&c, "app", &id, &PipelineExecutionStatus::Failed).await;
    assert!(summary.contains("killed"), "{summary}");
}

/// A database of its own in the Postgres cluster of `TEST_DATABASE_URL` (`--database-url` and
/// its URL), or `None`, with a message saying how to run the test, when it is not set.
async fn postgres_database(tag: &str) -> Option<String> {
    use sqlx::Connection as _;
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: set TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/DB to run this test on Postgres \
             (bash .ci/run starts a throwaway cluster and sets it)"
        );
        return None;
    };
    let name = format!("cpw_serve_{tag}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("TEST_DATABASE_URL connects");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (prefix, _) = base.split('?').next().unwrap().rsplit_once('/').expect("a URL with a database name");
    Some(format!("{prefix}/{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_kill9_lose_nothing_acknowledged() {
    restart_and_kill9(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_kill9_lose_nothing_acknowledged_on_postgres() {
    let Some(url) = postgres_database("restart").await else { return };
    restart_and_kill9(&["--database-url", &url]).await;
}

/// Deliveries, a pipeline update, a registration and a deletion survive `kill -9` and SIGTERM;
/// `db` chooses the database (nothing: SQLite under the data dir).
async fn restart_and_kill9(db: &[&str]) {
    let dir = temp_dir("restart");
    let data = dir.join("data");
    let with = |extra: &[&'static str]| -> Vec<String> { db.iter().chain(extra).map(|s| s.to_string()).collect() };
    let start = |extra: Vec<String>| Server::start(&data, &extra.iter().map(String::as_str).collect::<Vec<_>>());
    // A child that outlives the server's kill -9.
    let server = start(with(&["--on-trigger", "sleep", "3"]));
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    c.update_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();
    c.register_webhook_with_third_party().webhook_name("hook").send().await.unwrap();
    let body = push();
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    assert_eq!(a.status, 202);
    let first = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let hooks_before = c.list_webhooks().send().await.unwrap();
    // Killed while its program runs (claimed from the queue): not before, when the execution
    // would still wait in the queue, where on Postgres it waits for any instance with a program.
    wait_for_child_of(server.pid()).await;
    server.kill9();

    #[cfg(unix)]
    if db.is_empty() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("codepipeline-webhooks.sqlite3")), 0o600);
    }

    let server = start(with(&[]));
    let (c, addr) = (server.client(), server.addr);
    let hooks_after = c.list_webhooks().send().await.unwrap();
    let (before, after) = (&hooks_before.webhooks()[0], &hooks_after.webhooks()[0]);
    assert_eq!(after.url(), before.url(), "same URL token");
    assert_eq!(after.definition(), before.definition());
    let (lb, la) = (before.last_triggered().unwrap().as_secs_f64(), after.last_triggered().unwrap().as_secs_f64());
    assert!((lb - la).abs() < 1.0, "lastTriggered kept: {lb} vs {la}");
    assert_eq!(c.get_pipeline().name("app").send().await.unwrap().pipeline().unwrap().version(), Some(2));
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    let e = &listed.pipeline_execution_summaries()[0];
    assert_eq!(e.pipeline_execution_id(), Some(first.as_str()));
    // Its runner died with the process. On SQLite the directory's lock proves that at once; on
    // Postgres the dead process's liveness lock is released when its database session ends,
    // which the database notices a moment after the kill: the new instance sweeps again 1 s
    // after it starts, then every 10 s.
    let summary = wait_for_status(&c, "app", &first, &PipelineExecutionStatus::Stopped).await;
    assert_eq!(summary, "the server restarted while it ran");
    // The delivery id is remembered across the restart; the secret still verifies.
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-1")).await;
    assert_eq!((a.status, a.json()["ignored"].as_str()), (200, Some("duplicate delivery")));
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-2")).await;
    assert_eq!(a.status, 202);
    let second = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();

    // Graceful stop (SIGTERM): exit 0, and again nothing lost.
    assert!(server.terminate().success());
    let server = start(with(&[]));
    let c = server.client();
    let ids: Vec<_> = c
        .list_pipeline_executions()
        .pipeline_name("app")
        .send()
        .await
        .unwrap()
        .pipeline_execution_summaries()
        .iter()
        .map(|e| e.pipeline_execution_id().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [second, first], "newest first");
    // Deleting survives a restart too.
    c.delete_webhook().name("hook").send().await.unwrap();
    server.kill9();
    let server = start(with(&[]));
    assert!(server.client().list_webhooks().send().await.unwrap().webhooks().is_empty());
    let a = deliver(server.addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-3")).await;
    assert_eq!(a.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_in_error_stays_in_error_across_restarts() {
    webhook_in_error_across_restarts(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_in_error_stays_in_error_across_restarts_on_postgres() {
    let Some(url) = postgres_database("inerror").await else { return };
    webhook_in_error_across_restarts(&["--database-url", &url]).await;
}

/// A legal UpdatePipeline that renames the first-stage action leaves the webhook in error; the
/// server still starts after SIGTERM and after kill -9, and the webhook is still in error with
/// its reason until the pipeline is fixed.
async fn webhook_in_error_across_restarts(db: &[&str]) {
    let dir = temp_dir("inerror");
    let data = dir.join("data");
    let server = Server::start(&data, db);
    let c = server.client();
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    c.update_pipeline().pipeline(pipeline_with_action("app", "master", "Renamed")).send().await.unwrap();
    let reason = "Action with name Source was not found in the first stage of the pipeline";
    let body = push();
    let check = |server: &Server| {
        let (c, addr) = (server.client(), server.addr);
        let body = body.clone();
        let token = token.clone();
        async move {
            let hooks = c.list_webhooks().send().await.unwrap();
            let hook = &hooks.webhooks()[0];
            assert_eq!(hook.error_code(), Some("ValidationException"));
            assert!(hook.error_message().unwrap().contains(reason), "{:?}", hook.error_message());
            let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-in-error")).await;
            assert_eq!(a.status, 409, "a webhook in error refuses deliveries");
        }
    };
    check(&server).await;
    assert!(server.terminate().success());
    let server = Server::start(&data, db);
    check(&server).await;
    server.kill9();
    let server = Server::start(&data, db);
    check(&server).await;
    // Fixed: it triggers again, and still after a restart.
    let c = server.client();
    c.update_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();
    let a = deliver(server.addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "d-fixed")).await;
    assert_eq!(a.status, 202);
    server.kill9();
    let server = Server::start(&data, db);
    let hooks = server.client().list_webhooks().send().await.unwrap();
    assert_eq!(hooks.webhooks()[0].error_code(), None);
    let got = server.client().get_pipeline().name("app").send().await.unwrap();
    assert_eq!(got.pipeline().unwrap().version(), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_follow_the_registrys_rules_for_tags_and_next_tokens() {
    use aws_sdk_codepipeline::types::Tag;
    let dir = temp_dir("rules");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    let tag = |k: &str| Tag::builder().key(k).value("v").build().unwrap();
    // The tag rule of PutWebhook: `aws:` in any case, key lengths.
    let e = c.create_pipeline().pipeline(pipeline("app", "master")).tags(tag("AWS:x")).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidTagsException");
    let long = "k".repeat(10 * 1024);
    let e = c.create_pipeline().pipeline(pipeline("app", "master")).tags(tag(&long)).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    let many = (0..51).map(|i| tag(&format!("k{i}"))).collect();
    let e = c.create_pipeline().pipeline(pipeline("app", "master")).set_tags(Some(many)).send().await;
    assert_eq!(code(&e.unwrap_err()), "TooManyTagsException");
    for name in ["app", "b-app", "c-app"] {
        c.create_pipeline().pipeline(pipeline(name, "master")).send().await.unwrap();
    }
    c.create_pipeline().pipeline(pipeline("other", "master")).send().await.unwrap();
    let token = setup_hook(&c, "app").await;
    let body = push();
    for i in 0..3 {
        let a =
            deliver(server.addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", &format!("r-{i}"))).await;
        assert_eq!(a.status, 202);
    }
    // Signed NextTokens: the base64 of a name, a negative number, or a token of another pipeline
    // or another operation are refused.
    let page = c.list_pipelines().max_results(1).send().await.unwrap();
    let pipelines_token = page.next_token().unwrap().to_owned();
    let e = c.list_pipelines().next_token("cC0").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
    let e = c.list_pipeline_executions().pipeline_name("app").next_token("-5").send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
    let e = c.list_pipeline_executions().pipeline_name("app").next_token(&pipelines_token).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
    let page = c.list_pipeline_executions().pipeline_name("app").max_results(1).send().await.unwrap();
    let executions_token = page.next_token().unwrap().to_owned();
    let e = c.list_pipeline_executions().pipeline_name("other").next_token(&executions_token).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidNextTokenException");
    let next = c.list_pipeline_executions().pipeline_name("app").next_token(&executions_token).send().await.unwrap();
    assert_eq!(next.pipeline_execution_summaries().len(), 2);
    let e = c.list_pipelines().max_results(1001).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    // Tokens survive a restart (the key is in the database).
    server.kill9();
    let server = Server::start(&dir.join("data"), &[]);
    let next = server.client().list_pipelines().next_token(&pipelines_token).send().await.unwrap();
    assert_eq!(next.pipelines().iter().map(|p| p.name().unwrap()).collect::<Vec<_>>(), ["b-app", "c-app", "other"]);
}

/// A GitHub HMAC webhook named `hook` on `pipeline`; its URL token.
async fn setup_hook(c: &Client, pipeline: &str) -> String {
    let out = c.put_webhook().webhook(webhook("hook", pipeline, WebhookAuthenticationType::GithubHmac)).send().await;
    let url = out.unwrap().webhook().unwrap().url().to_owned();
    url.split("t=").nth(1).unwrap().trim_end_matches("&v=1").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_concurrent_deliveries_and_api_calls() {
    const TASKS: usize = 8;
    const PER_TASK: usize = 40;
    let dir = temp_dir("load");
    let server = Server::start(&dir.join("data"), &[]);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    let body = push();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (token, body) = (token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..PER_TASK {
                let a =
                    deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", &format!("d-{t}-{i}")))
                        .await;
                assert_eq!(a.status, 202, "{}", String::from_utf8_lossy(&a.body));
                ids.push(a.json()["pipelineExecutionId"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    let api = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut calls = 0;
            for i in 0..40 {
                c.list_webhooks().send().await.unwrap();
                c.get_pipeline().name("app").send().await.unwrap();
                c.put_webhook()
                    .webhook(webhook(&format!("extra-{i}"), "app", WebhookAuthenticationType::Unauthenticated))
                    .send()
                    .await
                    .unwrap();
                calls += 3;
            }
            calls
        })
    };
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        ids.extend(tokio::time::timeout(WAIT, t).await.unwrap().unwrap());
    }
    let calls = tokio::time::timeout(WAIT, api).await.unwrap().unwrap();
    assert_eq!(calls, 120);
    assert_eq!(ids.len(), TASKS * PER_TASK, "every execution id distinct");
    // Every trigger recorded: page through the executions.
    let mut seen = std::collections::HashSet::new();
    let mut next = None;
    loop {
        let page = c
            .list_pipeline_executions()
            .pipeline_name("app")
            .max_results(100)
            .set_next_token(next)
            .send()
            .await
            .unwrap();
        assert!(page.pipeline_execution_summaries().len() <= 100);
        seen.extend(page.pipeline_execution_summaries().iter().map(|e| e.pipeline_execution_id().unwrap().to_owned()));
        next = page.next_token().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(seen, ids);
    assert_eq!(c.list_webhooks().send().await.unwrap().webhooks().len(), 41);
    eprintln!("{} deliveries and {calls} API calls in {:?}", TASKS * PER_TASK, started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_senders_are_cut_off() {
    let dir = temp_dir("slow");
    let server = Server::start(&dir.join("data"), &["--request-timeout", "1"]);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;

    // Headers that never end: the connection is closed after the header read timeout.
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"POST /trigger?t=x&v=1 HTTP/1.1\r\nHost: a\r\nX-Slow: ").await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await.expect("closed in time");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());

    // A body that never arrives, to a known token: 408 after the read timeout, nothing started.
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /trigger?t={token}&v=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{{");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ =
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.expect("answered in time");
    assert!(answer.starts_with(b"HTTP/1.1 408"), "{}", String::from_utf8_lossy(&answer));
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(
        c.list_pipeline_executions()
            .pipeline_name("app")
            .send()
            .await
            .unwrap()
            .pipeline_execution_summaries()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_url_with_a_path_is_answered_there_and_at_trigger() {
    let dir = temp_dir("public-path");
    let server = Server::start(&dir.join("data"), &["--public-url", "https://hooks.example.test/cp/"]);
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app", "master")).send().await.unwrap();
    let out =
        c.put_webhook().webhook(webhook("hook", "app", WebhookAuthenticationType::GithubHmac)).send().await.unwrap();
    let url = out.webhook().unwrap().url().to_owned();
    let query = url.strip_prefix("https://hooks.example.test/cp/trigger?").expect(&url).to_owned();
    let body = push();
    let post = |path: String, delivery: &'static str| {
        let headers = signed_headers(HOOK_SECRET, &body, "push", delivery);
        let (addr, body) = (server.addr, body.clone());
        async move { http(addr, "POST", &path, &headers, &body).await }
    };
    // The advertised URL's path (no proxy in front), and /trigger (a proxy that strips /cp).
    for (path, delivery) in [("/cp/trigger", "d-1"), ("/trigger", "d-2")] {
        let a = post(format!("{path}?{query}"), delivery).await;
        assert_eq!(a.status, 202, "{path}: {}", String::from_utf8_lossy(&a.body));
    }
    assert_eq!(post(format!("/other/trigger?{query}"), "d-3").await.status, 404);
    // The query read as the engine's Registry::trigger reads it: percent-encoded, `v` 1 or absent.
    let token = query.strip_prefix("t=").and_then(|q| q.strip_suffix("&v=1")).expect(&query).to_owned();
    for (query, delivery, want) in [
        (format!("v=%31&%74={token}"), "d-4", 202),
        (format!("t={token}"), "d-5", 202),
        (format!("t={token}&v=2"), "d-6", 404),
        (format!("t={token}&t={token}"), "d-7", 404),
    ] {
        let a = post(format!("/cp/trigger?{query}"), delivery).await;
        assert_eq!(a.status, want, "{query}: {}", String::from_utf8_lossy(&a.body));
    }
    drop(server);

    // A query or a fragment in --public-url would land inside every webhook URL: refused.
    let out = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args([
            "serve",
            "--no-auth",
            "--listen",
            "127.0.0.1:0",
            "--public-url",
            "https://h.example/cp?x=1",
            "--data-dir",
        ])
        .arg(dir.join("data2"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--public-url"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delivery_id_is_told_apart_by_its_digest() {
    long_delivery_ids(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delivery_id_is_told_apart_by_its_digest_on_postgres() {
    let Some(url) = postgres_database("longid").await else { return };
    long_delivery_ids(&["--database-url", &url]).await;
}

/// An `X-GitHub-Delivery` of 20,000 characters that do not compress (an authenticated sender
/// may send anything): before, on Postgres, its row was past what the primary key's index takes,
/// so its batch of triggers failed (503, the others in the batch too) and `/healthz` went 503.
/// Now it starts once, keyed by its digest (on SQLite an on-trigger program shows the key it
/// gets in `GITHUB_DELIVERY`), its repeat is a duplicate, an id that differs only in its last
/// character starts, and the store stays ready.
async fn long_delivery_ids(db: &[&str]) {
    use sha2::Digest as _;
    let dir = temp_dir("longid");
    let seen = dir.join("deliveries");
    let script = dir.join("record.sh");
    std::fs::write(&script, "printf '%s\\n' \"$GITHUB_DELIVERY\" >> \"$1\"\n").unwrap();
    let program = ["--on-trigger", "/bin/sh", script.to_str().unwrap(), seen.to_str().unwrap()];
    let args: Vec<&str> = if db.is_empty() { program.to_vec() } else { db.to_vec() };
    let server = Server::start(&dir.join("data"), &args);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook", WebhookAuthenticationType::GithubHmac).await;
    let body = push();
    let noise: String =
        (0..320u32).map(|i| github::signature_256(b"noise", &i.to_le_bytes())[7..].to_owned()).collect();
    let long = &noise[..20_000];
    let other = format!("{}x", &long[..19_999]);
    let send = |id: &str| {
        let headers = signed_headers(HOOK_SECRET, &body, "push", id);
        let (token, body) = (&token, &body);
        async move { deliver(addr, token, body, &headers).await }
    };
    let first = send(long).await;
    assert_eq!(first.status, 202, "{}", String::from_utf8_lossy(&first.body));
    if db.is_empty() {
        let key = format!("sha256:{}", hex::encode(sha2::Sha256::digest(long.as_bytes())));
        let deadline = Instant::now() + WAIT;
        let got = loop {
            let got = std::fs::read_to_string(&seen).unwrap_or_default();
            if got.ends_with('\n') || Instant::now() >= deadline {
                break got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(got, format!("{key}\n"), "the program gets the id's key");
    }
    let again = send(long).await;
    assert_eq!((again.status, again.json()["ignored"].as_str()), (200, Some("duplicate delivery")));
    assert_eq!(send(&other).await.status, 202, "a different long id is a different delivery");
    assert_eq!(send("d-1").await.status, 202);
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200, "the store stays ready");
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(listed.pipeline_execution_summaries().len(), 3);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
