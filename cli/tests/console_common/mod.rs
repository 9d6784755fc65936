//! What the console's tests share: `serve` as a real process on 127.0.0.1 (its data plane, API
//! and console addresses read from its stdout), the AWS SDK for the control plane, raw HTTP/1.1
//! for deliveries and the console.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, InputArtifact,
    OutputArtifact, PipelineDeclaration, StageDeclaration, WebhookAuthConfiguration, WebhookAuthenticationType,
    WebhookDefinition, WebhookFilterRule,
};
use codepipeline_webhooks::github;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const KEY_ID: &str = "AKIDCONSOLETEST";
pub const KEY_SECRET: &str = "console-test-secret-access-key";
pub const HOOK_SECRET: &str = "hook-secret-for-console-tests";
pub const PUBLIC_URL: &str = "https://hooks.example.test";
pub const WAIT: Duration = Duration::from_secs(30);

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("cpw-console-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn push() -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/github/push/with-new-branch.payload.json", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
}

/// The push fixture with another `ref`.
pub fn push_to(git_ref: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(&push()).unwrap();
    v["ref"] = Value::String(git_ref.to_owned());
    serde_json::to_vec(&v).unwrap()
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub console: Option<SocketAddr>,
    log: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let log = data_dir.with_extension(format!("log{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
        let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--public-url", PUBLIC_URL, "--data-dir"])
            .arg(data_dir)
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
        let mut addr = None;
        let console_off = extra.windows(2).any(|w| w[0] == "--console-listen" && w[1] == "off");
        let mut console = None;
        while addr.is_none() || (console.is_none() && !console_off) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(a) = line.strip_prefix("listening on http://") {
                        addr = Some(a.parse().unwrap());
                    } else if let Some(a) = line.strip_prefix("console on http://") {
                        console = Some(a.parse().unwrap());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "the server did not report its addresses: {}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        }
        Server { child, addr: addr.unwrap(), console, log }
    }

    pub fn console(&self) -> SocketAddr {
        self.console.expect("the console listens")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn client(&self) -> Client {
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

/// A raw HTTP/1.1 answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request; `Host` is `addr` unless `headers` name one.
pub async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut head = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {addr}\r\n"));
        }
        if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.unwrap();
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

pub fn signed_headers(body: &[u8], event: &str, delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        ("User-Agent", "GitHub-Hookshot/console-test".to_owned()),
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Delivery", delivery.to_owned()),
        ("X-Hub-Signature-256", github::signature_256(HOOK_SECRET.as_bytes(), body)),
    ]
}

pub fn pipeline(name: &str) -> PipelineDeclaration {
    pipeline_with_source(name, "Source")
}

/// [`pipeline`] with its source action named `action` (a webhook that targets `Source` is then
/// in error: its target action is gone).
pub fn pipeline_with_source(name: &str, action: &str) -> PipelineDeclaration {
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
        .configuration("Branch", "master")
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

/// A webhook on `pipeline` whose one filter is `$.ref` = `match_equals`.
pub fn webhook(name: &str, pipeline: &str, auth: WebhookAuthenticationType, match_equals: &str) -> WebhookDefinition {
    let config = match auth {
        WebhookAuthenticationType::GithubHmac => WebhookAuthConfiguration::builder().secret_token(HOOK_SECRET).build(),
        WebhookAuthenticationType::Ip => WebhookAuthConfiguration::builder().allowed_ip_range("10.0.0.0/8").build(),
        _ => WebhookAuthConfiguration::builder().build(),
    };
    WebhookDefinition::builder()
        .name(name)
        .target_pipeline(pipeline)
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path("$.ref").match_equals(match_equals).build().unwrap())
        .authentication(auth)
        .authentication_configuration(config)
        .build()
        .unwrap()
}

/// Puts a webhook; its URL token.
pub async fn put(client: &Client, definition: WebhookDefinition) -> String {
    let out = client.put_webhook().webhook(definition).send().await.unwrap();
    let url = out.webhook().unwrap().url().to_owned();
    let prefix = format!("{PUBLIC_URL}/trigger?t=");
    url[prefix.len()..url.len() - 4].to_owned()
}

/// Pipeline `app` and its `GITHUB_HMAC` webhook `hmac` on `refs/heads/{Branch}`; the webhook's
/// URL token.
pub async fn hmac_app(client: &Client) -> String {
    client.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    put(client, webhook("hmac", "app", WebhookAuthenticationType::GithubHmac, "refs/heads/{Branch}")).await
}

pub async fn deliver(addr: SocketAddr, token: &str, body: &[u8], headers: &[(&str, String)]) -> Answer {
    http(addr, "POST", &format!("/trigger?t={token}&v=1"), headers, body).await
}

pub async fn get(console: SocketAddr, path: &str) -> Answer {
    http(console, "GET", path, &[], b"").await
}

/// A webhook's deliveries (newest first), once the log holds at least `n` (bounded wait).
pub async fn deliveries(console: SocketAddr, webhook: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let a = get(console, &format!("/api/webhooks/{webhook}/deliveries?limit=500")).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let list = a.json()["deliveries"].as_array().unwrap().clone();
        if list.len() >= n {
            return list;
        }
        assert!(Instant::now() < deadline, "{n} deliveries of {webhook} not logged in time: {list:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
