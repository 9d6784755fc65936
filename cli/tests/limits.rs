//! `serve` under load and faults: each bound of the service, attacked against the real binary on
//! 127.0.0.1 and measured (RSS from `/proc/PID/status`, the latency of a legitimate loop running
//! beside the attack, the members of a process group from a `/proc` scan). Every load loop is
//! bounded in count and in time. The figures are printed (`--nocapture`).

mod logs_common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, ExecutionMode,
    InputArtifact, OutputArtifact, PipelineDeclaration, PipelineExecutionStatus, PipelineType, StageDeclaration,
    WebhookAuthConfiguration, WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule,
};
use codepipeline_webhooks::github;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "AKIDLIMITSTEST";
const KEY_SECRET: &str = "limits-test-secret-access-key";
const HOOK_SECRET: &str = "hook-secret-for-limits";
const PUBLIC_URL: &str = "https://hooks.example.test";
const WAIT: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Taken by the tests that flood the machine and by those that measure latency beside a
/// flood, so that one's flood is not in the other's measurement (the test threads run them
/// side by side on two cores).
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("cpw-limits-{tag}-{}-{n}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The server's command line: `serve` on port 0 with the test's credentials.
fn serve_command(data_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"));
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--public-url", PUBLIC_URL, "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env("RUST_LOG", "info");
    command
}

/// A running server process; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Server::spawn(serve_command(data_dir, extra), data_dir)
    }

    fn spawn(command: Command, data_dir: &Path) -> Server {
        let log = data_dir.with_extension(format!("log{}", COUNTER.fetch_add(1, Ordering::Relaxed)));
        let stderr = std::fs::File::create(&log).unwrap();
        Server::spawn_with_stderr(command, log, stderr.into())
    }

    /// As [`spawn`](Self::spawn), with the server's stderr going to `stderr` (`log` is where
    /// [`logs_with`](Self::logs_with) reads it).
    fn spawn_with_stderr(mut command: Command, log: PathBuf, stderr: Stdio) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
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
                    panic!("the server did not start: {}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        };
        Server { child, addr, log }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn terminate(mut self) {
        let ok = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + WAIT;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log once it holds `needle` (it lands a moment after it is logged).
    fn logs_with(&self, needle: &str) -> String {
        logs_common::logs_with(&self.log, needle)
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

    /// `(VmRSS, VmHWM)` in MiB, from `/proc/PID/status`.
    fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| -> f64 {
            let line = status.lines().find(|l| l.starts_with(name)).unwrap();
            let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            kib / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
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
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn parse_answer(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    Some(Answer { status, headers, body: raw[split + 4..].to_vec() })
}

fn head_of(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], length: usize) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

async fn http(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> Answer {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        stream.write_all(head_of(addr, method, path, headers, body.len()).as_bytes()).await.unwrap();
        let _ = stream.write_all(body).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(WAIT, work).await.expect("answer in time");
    parse_answer(&raw).unwrap_or_else(|| panic!("no answer: {:?}", String::from_utf8_lossy(&raw)))
}

fn signed_headers(secret: &str, body: &[u8], event: &str, delivery: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-GitHub-Event", event.to_owned()),
        ("X-GitHub-Delivery", delivery.to_owned()),
        ("X-Hub-Signature-256", github::signature_256(secret.as_bytes(), body)),
    ]
}

fn pipeline(name: &str) -> PipelineDeclaration {
    pipeline_with_action(name, "Source")
}

/// A pipeline as AWS accepts it (an artifact store, a second stage that reads the source) whose
/// first-stage action is named `action`.
fn pipeline_with_action(name: &str, action: &str) -> PipelineDeclaration {
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
        // PARALLEL: these tests bound the queue and the programs, so every acknowledged execution
        // must run (the default SUPERSEDED would rightly supersede the waiting ones).
        .pipeline_type(PipelineType::V2)
        .execution_mode(ExecutionMode::Parallel)
        .build()
        .unwrap()
}

/// A webhook on `pipeline` with one filter (`json_path` equals `value`).
fn webhook(
    name: &str,
    pipeline: &str,
    auth: WebhookAuthenticationType,
    json_path: &str,
    value: &str,
) -> WebhookDefinition {
    let config = match auth {
        WebhookAuthenticationType::GithubHmac => WebhookAuthConfiguration::builder().secret_token(HOOK_SECRET).build(),
        _ => WebhookAuthConfiguration::builder().build(),
    };
    WebhookDefinition::builder()
        .name(name)
        .target_pipeline(pipeline)
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path(json_path).match_equals(value).build().unwrap())
        .authentication(auth)
        .authentication_configuration(config)
        .build()
        .unwrap()
}

/// A pipeline and a webhook on it; the webhook's URL token.
async fn setup_hook(c: &Client, pipeline_name: &str, hook: WebhookDefinition) -> String {
    if c.get_pipeline().name(pipeline_name).send().await.is_err() {
        c.create_pipeline().pipeline(pipeline(pipeline_name)).send().await.unwrap();
    }
    let out = c.put_webhook().webhook(hook).send().await.unwrap();
    let url = out.webhook().unwrap().url().to_owned();
    let prefix = format!("{PUBLIC_URL}/trigger?t=");
    url[prefix.len()..url.len() - 4].to_owned()
}

/// The usual signed webhook on `$.ref` = `refs/heads/master`.
async fn setup(c: &Client, pipeline_name: &str, hook: &str) -> String {
    setup_hook(
        c,
        pipeline_name,
        webhook(hook, pipeline_name, WebhookAuthenticationType::GithubHmac, "$.ref", "refs/heads/{Branch}"),
    )
    .await
}

async fn deliver(addr: SocketAddr, token: &str, body: &[u8], headers: &[(&str, String)]) -> Answer {
    http(addr, "POST", &format!("/trigger?t={token}&v=1"), headers, body).await
}

fn push() -> Vec<u8> {
    fixture("github/push/with-new-branch.payload.json")
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn status_of(c: &Client, pipeline: &str, id: &str) -> Option<PipelineExecutionStatus> {
    let got = c.get_pipeline_execution().pipeline_name(pipeline).pipeline_execution_id(id).send().await.ok()?;
    got.pipeline_execution()?.status().cloned()
}

async fn wait_for_status(
    c: &Client,
    pipeline: &str,
    id: &str,
    want: &[PipelineExecutionStatus],
) -> PipelineExecutionStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = status_of(c, pipeline, id).await;
        if let Some(s) = status.as_ref().filter(|s| want.contains(s)) {
            return s.clone();
        }
        assert!(Instant::now() < deadline, "execution {id} is {status:?}, not one of {want:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The live (not zombie) processes of process group `pgid`, from `/proc`.
fn group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2].parse::<i32>().ok() == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) until group `pgid` has no live member; how long it took.
fn wait_group_gone(pgid: i32, limit: Duration) -> Duration {
    let started = Instant::now();
    while !group_members(pgid).is_empty() {
        assert!(started.elapsed() < limit, "group {pgid} still has {:?} after {limit:?}", group_members(pgid));
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && s.ends_with('\n')
        {
            return s;
        }
        assert!(Instant::now() < deadline, "{} never written", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A Postgres database of its own (`TEST_DATABASE_URL`'s cluster), or `None` with a message.
async fn postgres_database(tag: &str) -> Option<String> {
    use sqlx::Connection as _;
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("skipped: set TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/DB to run this test on Postgres");
        return None;
    };
    let name = format!("cpw_limits_{tag}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("TEST_DATABASE_URL connects");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (prefix, _) = base.split('?').next().unwrap().rsplit_once('/').expect("a URL with a database name");
    Some(format!("{prefix}/{name}"))
}

/// One JSON object of `n` pseudo-random 4-letter keys (`{"abcd":1,...}`), 9 bytes a key: what
/// the red team sent (25 MiB, 2.9 M keys).
fn many_keys(bytes: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes + 16);
    out.push(b'{');
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while out.len() + 10 < bytes {
        if out.len() > 1 {
            out.push(b',');
        }
        out.push(b'"');
        for _ in 0..4 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            out.push(b'a' + ((x >> 33) % 26) as u8);
        }
        out.extend_from_slice(b"\":1");
    }
    out.push(b'}');
    out
}

/// Item 1: a legal UpdatePipeline that leaves a webhook in error (the first-stage action renamed,
/// so the webhook's target action is gone) never makes the service unbootable: after SIGTERM and
/// after kill -9 it starts (time measured), the webhook still in error with its reason.
/// (cli/tests/serve.rs covers it on both backends, and the fix.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item1_update_pipeline_keeps_the_service_bootable() {
    let dir = temp_dir("item1");
    let data = dir.join("data");
    let server = Server::start(&data, &[]);
    let c = server.client();
    setup(&c, "app", "hook").await;
    c.update_pipeline().pipeline(pipeline_with_action("app", "Fetch")).send().await.unwrap();
    let in_error = |c: Client| async move {
        let hooks = c.list_webhooks().send().await.unwrap();
        let hook = &hooks.webhooks()[0];
        assert_eq!(hook.error_code(), Some("ValidationException"), "{hook:?}");
        assert!(hook.error_message().unwrap().contains("first stage"), "{:?}", hook.error_message());
    };
    in_error(server.client()).await;
    server.terminate();
    let started = Instant::now();
    let server = Server::start(&data, &[]);
    let after_term = started.elapsed();
    in_error(server.client()).await;
    server.kill9();
    let started = Instant::now();
    let server = Server::start(&data, &[]);
    let after_kill = started.elapsed();
    in_error(server.client()).await;
    println!("item 1: started after SIGTERM in {:.0} ms, after kill -9 in {:.0} ms", ms(after_term), ms(after_kill));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 2: four concurrent large bodies to an UNAUTHENTICATED webhook with `$.commits[*].id`
/// over one object of many 4-letter keys (and two more whose senders go away once sent). The evaluation runs on the bounded pool (here 2 slots,
/// 1 for one webhook), so signed deliveries to another webhook keep a p99 under 500 ms,
/// `/healthz` answers under 100 ms and ListWebhooks stays quick. (A debug build scales the bodies
/// down; the engine is optimised in the test profile, so each still costs seconds.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item2_one_sender_does_not_stall_the_others() {
    let _alone = HEAVY.lock().await;
    // CPW_ATTACK2_MIB=25: the red team's size (the engine is optimised in the test profile too).
    let body_bytes = std::env::var("CPW_ATTACK2_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(if cfg!(debug_assertions) { 8 * MIB } else { 25 * MIB }, |mib: usize| mib * MIB);
    let dir = temp_dir("item2");
    let server = Server::start(&dir.join("data"), &["--eval-threads", "2", "--eval-per-webhook", "1"]);
    let (c, addr) = (server.client(), server.addr);
    let flood = setup_hook(
        &c,
        "victim",
        webhook("flood", "victim", WebhookAuthenticationType::Unauthenticated, "$.commits[*].id", "x"),
    )
    .await;
    let token = setup(&c, "app", "hook").await;
    let big = Arc::new(many_keys(body_bytes));
    let attack_started = Instant::now();
    let attackers: Vec<_> = (0..4)
        .map(|_| {
            let big = big.clone();
            let flood = flood.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let a = deliver(addr, &flood, &big, &[("Content-Type", "application/json".to_owned())]).await;
                (a.status, started.elapsed())
            })
        })
        .collect();
    // Two more that go away once their body is sent: their evaluations still count against the
    // webhook's share until they end.
    let quitters: Vec<_> = (0..2)
        .map(|_| {
            let head = head_of(
                addr,
                "POST",
                &format!("/trigger?t={flood}&v=1"),
                &[("Content-Type", "application/json".to_owned())],
                big.len(),
            );
            let big = big.clone();
            tokio::spawn(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(&big).await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
                drop(stream);
            })
        })
        .collect();
    // Let the bodies arrive and the first evaluation start.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = push();
    let (mut deliveries, mut health, mut api) = (Vec::new(), Vec::new(), Vec::new());
    let loop_deadline = Instant::now() + Duration::from_secs(120);
    let mut i = 0;
    while attackers.iter().any(|a| !a.is_finished()) && i < 2000 && Instant::now() < loop_deadline {
        let started = Instant::now();
        let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", &format!("legit-{i}"))).await;
        assert_eq!(a.status, 202, "{}", a.text());
        deliveries.push(started.elapsed());
        let started = Instant::now();
        let h = http(addr, "GET", "/healthz", &[], b"").await;
        assert_eq!(h.status, 200);
        health.push(started.elapsed());
        if i % 10 == 0 {
            let started = Instant::now();
            c.list_webhooks().send().await.unwrap();
            api.push(started.elapsed());
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for q in quitters {
        q.await.unwrap();
    }
    let mut flood_times = Vec::new();
    for a in attackers {
        let (status, took) = tokio::time::timeout(Duration::from_secs(180), a).await.expect("the attack ends").unwrap();
        assert_eq!(status, 200, "the flood's filter does not match");
        flood_times.push(took);
    }
    let attack = attack_started.elapsed();
    let (dp50, dp99) = (percentile(&mut deliveries, 0.5), percentile(&mut deliveries, 0.99));
    let (hp99, hmax) = (percentile(&mut health, 0.99), percentile(&mut health, 1.0));
    let amax = percentile(&mut api, 1.0);
    flood_times.sort();
    println!(
        "item 2: 4 (+2 gone) x {} MiB bodies, attack {:.1} s (each answered in {:?} s); {} signed deliveries beside it: p50 {:.1} ms, \
         p99 {:.1} ms; /healthz p99 {:.1} ms, max {:.1} ms; ListWebhooks max {:.1} ms",
        body_bytes / MIB,
        attack.as_secs_f64(),
        flood_times.iter().map(|d| (d.as_secs_f64() * 10.0).round() / 10.0).collect::<Vec<_>>(),
        deliveries.len(),
        ms(dp50),
        ms(dp99),
        ms(hp99),
        ms(hmax),
        ms(amax)
    );
    assert!(deliveries.len() >= 20, "the legitimate loop ran beside the attack ({} rounds)", deliveries.len());
    // One webhook gets one slot: the four bodies are evaluated one after the other, so their
    // answers come one evaluation apart (evenly spaced), and the spread is a good part of the
    // first answer's time (which holds the upload and one evaluation). With two slots two gaps
    // would be near zero; with four, the spread would. (The old form, last > 2 x first, failed
    // in CI at 5.78 against 2.95 s: the first answer's upload time is not an evaluation.)
    let gaps: Vec<f64> = flood_times.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
    let widest = gaps.iter().copied().fold(0.0, f64::max);
    let spread = (flood_times[3] - flood_times[0]).as_secs_f64();
    assert!(
        gaps.iter().all(|g| *g >= widest * 0.5) && spread >= flood_times[0].as_secs_f64() * 0.5,
        "the flood queued behind itself: {flood_times:?}"
    );
    assert!(dp99 < Duration::from_millis(500), "deliveries p99 {dp99:?}");
    assert!(hp99 < Duration::from_millis(100), "/healthz p99 {hp99:?}");
    assert!(amax < Duration::from_secs(2), "ListWebhooks {amax:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn sign_at(addr: SocketAddr, target: &str, body: &[u8], at: SystemTime) -> Vec<(&'static str, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let identity = aws_credential_types::Credentials::from_keys(KEY_ID, KEY_SECRET, None).into();
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

/// What a stalling sender saw: the answer (if one came within `hold`), and when.
struct Stalled {
    answer: Option<Answer>,
    after: Duration,
}

/// Sends `head`, then `body` (which may be shorter than its declared length), then stalls with
/// the connection open; reads what the server answers within `hold`.
async fn stall(addr: SocketAddr, head: String, body: Arc<Vec<u8>>, hold: Duration) -> Stalled {
    let started = Instant::now();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
        // Stall: keep the connection open, send nothing more.
        tokio::time::sleep(hold).await;
        drop(wr);
    });
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(hold, rd.read_to_end(&mut raw)).await;
    let after = started.elapsed();
    writer.abort();
    Stalled { answer: parse_answer(&raw), after }
}

/// The server's open file descriptors.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Item 3: the control plane checks `Authorization` before it reads a byte of the body, and
/// refuses a declared length over its limit at once. 1,000 connections without credentials,
/// each declaring 1 MiB and sending 1 MiB - 1, then stalling: each is refused (403) before its
/// body is read, and the server's RSS stays within the body budget (16 MiB here) + 100 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item3_control_plane_reads_no_body_before_credentials() {
    const CONNECTIONS: usize = 1000;
    let dir = temp_dir("item3");
    let server = Server::start(&dir.join("data"), &["--body-budget-mib", "16", "--request-timeout", "10"]);
    let (c, addr) = (server.client(), server.addr);
    c.list_webhooks().send().await.unwrap();
    let (rss_before, _) = server.rss_mib();
    let body = Arc::new(vec![b'{'; MIB - 1]);
    let head = head_of(
        addr,
        "POST",
        "/",
        &[
            ("X-Amz-Target", "CodePipeline_20150709.ListWebhooks".to_owned()),
            ("Content-Type", "application/x-amz-json-1.1".to_owned()),
            ("Content-Length", MIB.to_string()),
        ],
        0,
    );
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        tasks.push(tokio::spawn(stall(addr, head.clone(), body.clone(), Duration::from_secs(15))));
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    let mut slowest = Duration::ZERO;
    let mut hwm_during: f64 = 0.0;
    for t in tasks {
        let s = t.await.unwrap();
        hwm_during = hwm_during.max(server.rss_mib().0);
        let key = s.answer.as_ref().map_or("no answer".to_owned(), |a| a.status.to_string());
        if s.answer.is_some() {
            slowest = slowest.max(s.after);
        }
        *statuses.entry(key).or_default() += 1;
    }
    let took = started.elapsed();
    let (rss, hwm) = server.rss_mib();
    let fds = open_fds(server.pid());
    // A declared length over the limit, with valid credentials: 413 at once, nothing sent.
    let signed = sign_at(addr, "CodePipeline_20150709.ListWebhooks", b"{}", SystemTime::now());
    let mut headers = signed.clone();
    headers.push(("Content-Length", "1000000000".to_owned()));
    let t0 = Instant::now();
    let big = stall(addr, head_of(addr, "POST", "/", &headers, 0), Arc::new(Vec::new()), Duration::from_secs(5)).await;
    let big_after = t0.elapsed();
    // An unknown key, a date out of the skew: refused before the body too.
    let mut stale =
        sign_at(addr, "CodePipeline_20150709.ListWebhooks", b"{}", SystemTime::now() - Duration::from_secs(900));
    stale.push(("Content-Length", MIB.to_string()));
    let old = stall(addr, head_of(addr, "POST", "/", &stale, 0), Arc::new(Vec::new()), Duration::from_secs(5)).await;
    println!(
        "item 3: {CONNECTIONS} unauthenticated 1 MiB - 1 bodies in {:.1} s: answers {statuses:?}, slowest answer {:.0} ms; \
         server RSS {rss_before:.1} MiB before, {hwm_during:.1} MiB max sampled, {rss:.1} MiB after, VmHWM {hwm:.1} MiB \
         (budget 16 MiB); {fds} fds open after; Content-Length 1e9 signed: {:?} in {:.0} ms; stale date: {:?}",
        took.as_secs_f64(),
        ms(slowest),
        big.answer.as_ref().map(|a| a.status),
        ms(big_after),
        old.answer.as_ref().map(|a| (a.status, a.header("x-amzn-errortype").map(str::to_owned))),
    );
    assert_eq!(
        statuses.get("403").copied().unwrap_or(0) + statuses.get("no answer").copied().unwrap_or(0),
        CONNECTIONS
    );
    // Some 403s are lost on the way, not refused otherwise: the server closes a connection whose
    // body it did not read, and the client's kernel, on the reset that follows, drops the answer
    // if the client had not read it yet (1,000 clients on two cores: CI once saw 897 of 1,000).
    // That the body was not read is what the memory bound below and the 1e9 case prove.
    assert!(statuses.get("403").copied().unwrap_or(0) >= CONNECTIONS * 3 / 4, "{statuses:?}");
    assert!(hwm < 16.0 + 100.0, "VmHWM {hwm} MiB");
    assert_eq!(big.answer.as_ref().map(|a| a.status), Some(413));
    assert!(big_after < Duration::from_secs(2), "refused at once, not after a timeout: {big_after:?}");
    let old = old.answer.expect("an answer");
    assert_eq!((old.status, old.header("x-amzn-errortype")), (403, Some("InvalidSignatureException")));
    // The service still works, and did not keep the attackers' connections.
    c.list_webhooks().send().await.unwrap();
    assert!(fds < 200, "{fds} file descriptors still open");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 6: the global budget of buffered delivery bodies. 40 connections to a known URL (the URL
/// alone, no secret), each declaring 25 MiB and sending 24 MiB, then stalling: with a budget of
/// 32 MiB one body is buffered, the others wait 2 s and get 503 with Retry-After; RSS stays
/// within the budget + 100 MiB, and a legitimate small delivery still starts its pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item6_body_budget_bounds_buffered_deliveries() {
    const CONNECTIONS: usize = 40;
    let dir = temp_dir("item6");
    let server = Server::start(&dir.join("data"), &["--body-budget-mib", "32", "--request-timeout", "6"]);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook").await;
    let (rss_before, _) = server.rss_mib();
    let part = Arc::new(vec![b' '; 24 * MIB]);
    let head = head_of(
        addr,
        "POST",
        &format!("/trigger?t={token}&v=1"),
        &[
            ("Content-Type", "application/json".to_owned()),
            ("X-GitHub-Event", "push".to_owned()),
            ("Content-Length", (25 * MIB).to_string()),
        ],
        0,
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| tokio::spawn(stall(addr, head.clone(), part.clone(), Duration::from_secs(20))))
        .collect();
    // Beside it: a legitimate delivery fits in what is left of the budget.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let body = push();
    let t0 = Instant::now();
    let legit = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "legit-1")).await;
    let legit_took = t0.elapsed();
    let mut max_rss: f64 = 0.0;
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    let mut retry_after = 0;
    for t in tasks {
        max_rss = max_rss.max(server.rss_mib().0);
        let s = t.await.unwrap();
        let key = s.answer.as_ref().map_or("no answer".to_owned(), |a| a.status.to_string());
        if s.answer.as_ref().is_some_and(|a| a.status == 503 && a.header("retry-after").is_some()) {
            retry_after += 1;
        }
        *statuses.entry(key).or_default() += 1;
    }
    let (rss, hwm) = server.rss_mib();
    println!(
        "item 6: {CONNECTIONS} x 24 of 25 MiB, stalled, in {:.1} s: answers {statuses:?} ({retry_after} with Retry-After); \
         legitimate delivery {} in {:.0} ms; RSS {rss_before:.1} MiB before, {max_rss:.1} MiB max sampled, {rss:.1} after, \
         VmHWM {hwm:.1} MiB (budget 32 MiB)",
        started.elapsed().as_secs_f64(),
        legit.status,
        ms(legit_took)
    );
    assert_eq!(legit.status, 202, "{}", legit.text());
    assert!(legit_took < Duration::from_secs(1), "a small body is not queued behind the large ones: {legit_took:?}");
    assert!(retry_after >= CONNECTIONS - 2, "{statuses:?}");
    assert!(hwm < 32.0 + 100.0, "VmHWM {hwm} MiB");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The delivery log's bound while its writer is stalled (another process holds SQLite's write
/// lock): each waiting entry holds at most `--deliveries-body-cap` bytes of its body, not the
/// whole body it was cut from. 150 mismatching deliveries of 4 MiB, cap 64 KiB: the bodies the
/// log waits to write are 9.4 MiB, the bodies received 600 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_delivery_log_holds_only_the_kept_bytes() {
    use sqlx::Connection as _;
    const DELIVERIES: usize = 150;
    const CAP: usize = 64 * 1024;
    let dir = temp_dir("stalled-log");
    let data = dir.join("data");
    let cap = CAP.to_string();
    let server = Server::start(
        &data,
        &["--body-budget-mib", "16", "--deliveries-body-cap", &cap, "--deliveries-body-rate", "0"],
    );
    let (c, addr) = (server.client(), server.addr);
    let hook = webhook("hook", "app", WebhookAuthenticationType::Unauthenticated, "$.ref", "refs/heads/never");
    let token = setup_hook(&c, "app", hook).await;
    let (rss_before, _) = server.rss_mib();
    let mut lock = store_connection(&data, &[]).await;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut lock).await.unwrap();
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut max_rss: f64 = 0.0;
    for n in 0..DELIVERIES {
        let body = padded_push(4 * MIB, n);
        let headers = [("Content-Type", "application/json".to_owned()), ("X-GitHub-Event", "push".to_owned())];
        *statuses.entry(deliver(addr, &token, &body, &headers).await.status).or_default() += 1;
        max_rss = max_rss.max(server.rss_mib().0);
    }
    let took = started.elapsed();
    let (rss, hwm) = server.rss_mib();
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    let kept_mib = (DELIVERIES * CAP) as f64 / MIB as f64;
    println!(
        "stalled log: {DELIVERIES} x 4 MiB mismatching deliveries in {:.1} s with the writer locked out: answers \
         {statuses:?}; RSS {rss_before:.1} MiB before, {max_rss:.1} MiB max sampled, {rss:.1} after, VmHWM {hwm:.1} MiB \
         (kept bodies {kept_mib:.1} MiB, budget 16 MiB; the received bodies were {} MiB)",
        took.as_secs_f64(),
        DELIVERIES * 4
    );
    assert_eq!(statuses.get(&200).copied(), Some(DELIVERIES), "{statuses:?}");
    // Holding the received bodies would be 600 MiB; the kept bytes, the budget and the
    // allocator's slack are well under 100 MiB over the start.
    assert!(hwm < rss_before + 16.0 + kept_mib + 64.0, "VmHWM {hwm} MiB");
    // The writer takes up again once the lock is gone; what it wrote was cut at the cap.
    let body = padded_push(1024, 0);
    let headers = [("X-GitHub-Event", "push".to_owned()), ("X-GitHub-Delivery", "after-the-lock".to_owned())];
    let answer = deliver(addr, &token, &body, &headers).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let mut db = store_connection(&data, &[]).await;
    let deadline = Instant::now() + WAIT;
    while sqlx::query("SELECT id FROM delivery_log WHERE delivery = 'after-the-lock'")
        .fetch_optional(&mut db)
        .await
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the delivery log never written after the lock went");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (cut, longest): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), max(length(body)) FROM delivery_log WHERE body_truncated = 1")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(cut > 0, "the stalled deliveries' entries are written once the lock goes");
    assert_eq!(longest, Some(CAP as i64));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An on-trigger program that starts background processes (one of them ignores SIGTERM) and
/// writes its process group id to `OUT/<execution>.pgid`.
fn spawning_script(dir: &Path) -> PathBuf {
    let script = dir.join("spawn.sh");
    std::fs::write(
        &script,
        "out=$1\n\
         sleep 300 &\n\
         sh -c 'sleep 300; true' &\n\
         sh -c 'trap \"\" TERM; sleep 300' &\n\
         echo $$ > \"$out/$CODEPIPELINE_EXECUTION_ID.pgid.tmp\"\n\
         mv \"$out/$CODEPIPELINE_EXECUTION_ID.pgid.tmp\" \"$out/$CODEPIPELINE_EXECUTION_ID.pgid\"\n\
         sleep 300\n",
    )
    .unwrap();
    script
}

/// Waits for the program of `execution` to report its group, and for the group to hold at
/// least `n` processes; the pgid and how many it held.
fn program_group(out: &Path, execution: &str, n: usize) -> (i32, usize) {
    let pgid: i32 = wait_for_file(&out.join(format!("{execution}.pgid"))).trim().parse().unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let members = group_members(pgid).len();
        if members >= n {
            return (pgid, members);
        }
        assert!(Instant::now() < deadline, "group {pgid} has {members} processes");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Item 4: each program runs in a process group of its own, and a timeout, a shutdown (SIGTERM)
/// and a restart after kill -9 end the whole group: SIGTERM, then SIGKILL after the grace period
/// (one background process ignores SIGTERM); after kill -9 also a group the server had not
/// recorded yet. Counted from `/proc` by pgid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item4_no_process_of_a_program_survives() {
    program_groups(&[], &[]).await;
}

/// Item 4 on Postgres (each phase on a database of its own): the dead instance's groups are
/// found through its released liveness lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item4_no_process_of_a_program_survives_on_postgres() {
    let (Some(a), Some(b)) = (postgres_database("groups_a").await, postgres_database("groups_b").await) else {
        return;
    };
    program_groups(&["--database-url", &a], &["--database-url", &b]).await;
}

/// `db_timeout` and `db_restart`: the databases of the two phases (nothing: SQLite).
async fn program_groups(db_timeout: &[&str], db_restart: &[&str]) {
    let dir = temp_dir("item4");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let script = spawning_script(&dir);
    let program =
        ["--on-trigger-grace", "1", "--on-trigger", "/bin/sh", script.to_str().unwrap(), out.to_str().unwrap()];
    let body = push();

    // The timeout.
    let data = dir.join("data-timeout");
    let args: Vec<&str> =
        ["--on-trigger-timeout", "2"].into_iter().chain(db_timeout.iter().copied()).chain(program).collect();
    let server = Server::start(&data, &args);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook").await;
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "t-1")).await;
    let id = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let (pgid, members) = program_group(&out, &id, 5);
    wait_for_status(&c, "app", &id, &[PipelineExecutionStatus::Failed]).await;
    let gone_timeout = wait_group_gone(pgid, Duration::from_secs(10));
    drop(server);

    // Shutdown.
    let data = dir.join("data-restart");
    let args: Vec<&str> =
        ["--on-trigger-timeout", "120"].into_iter().chain(db_restart.iter().copied()).chain(program).collect();
    let server = Server::start(&data, &args);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook").await;
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "s-1")).await;
    let on_term = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let (pgid_term, _) = program_group(&out, &on_term, 5);
    let t0 = Instant::now();
    server.terminate();
    let shutdown_took = t0.elapsed();
    let left_after_term = group_members(pgid_term).len();

    // kill -9: the dead server's group lives on until the next start ends it.
    let server = Server::start(&data, &args);
    let (c, addr) = (server.client(), server.addr);
    assert_eq!(status_of(&c, "app", &on_term).await, Some(PipelineExecutionStatus::Stopped));
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "k-1")).await;
    let on_kill = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let (pgid_kill, _) = program_group(&out, &on_kill, 5);
    // A second one, whose group the server is taken to have died before recording.
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "k-2")).await;
    let unrecorded = a.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    let (pgid_unrecorded, _) = program_group(&out, &unrecorded, 5);
    server.kill9();
    forget_pgid(&data, db_restart, &unrecorded).await;
    std::thread::sleep(Duration::from_millis(300));
    let orphans = group_members(pgid_kill).len();
    assert!(group_members(pgid_unrecorded).len() >= 4);
    let t0 = Instant::now();
    let server = Server::start(&data, &args);
    wait_group_gone(pgid_kill, Duration::from_secs(10));
    wait_group_gone(pgid_unrecorded, Duration::from_secs(10));
    let gone_restart = t0.elapsed();
    let c = server.client();
    assert_eq!(status_of(&c, "app", &on_kill).await, Some(PipelineExecutionStatus::Stopped));
    assert_eq!(status_of(&c, "app", &unrecorded).await, Some(PipelineExecutionStatus::Stopped));
    println!(
        "item 4{}: the program's group held {members} processes; after the timeout all gone {:.0} ms after Failed; \
         SIGTERM: the server exited in {:.0} ms leaving {left_after_term} of the group; kill -9 left {orphans} alive, \
         the next start (from its launch) ended them in {:.0} ms (grace 1 s)",
        if db_timeout.is_empty() { "" } else { " (Postgres)" },
        ms(gone_timeout),
        ms(shutdown_took),
        ms(gone_restart)
    );
    assert_eq!(left_after_term, 0, "shutdown ends the group");
    assert!(orphans >= 4, "kill -9 cannot end the group ({orphans} left): the next start must");
    let needle = "ending the on-trigger processes a previous server left";
    assert!(server.logs_with(needle).contains(needle));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The store of a test server: its SQLite file in `data`, or the Postgres database of `db`
/// (`["--database-url", url]`).
async fn store_connection(data: &Path, db: &[&str]) -> sqlx::AnyConnection {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let url = match db {
        [_, url] => (*url).to_owned(),
        _ => format!("sqlite://{}", data.join(codepipeline_webhooks_cli::serve::store::SQLITE_FILE).display()),
    };
    sqlx::AnyConnection::connect(&url).await.expect("the test server's database opens")
}

/// Erases the process group recorded for `execution`, as if its server had died between
/// starting the program and recording the group.
async fn forget_pgid(data: &Path, db: &[&str], execution: &str) {
    let mut conn = store_connection(data, db).await;
    let n = sqlx::query("UPDATE queue SET pgid = NULL WHERE execution_id = $1")
        .bind(execution)
        .execute(&mut conn)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 1, "{execution} is in the queue, running");
}

/// A push of about `bytes` that matches the `$.ref` filter.
fn padded_push(bytes: usize, n: usize) -> Vec<u8> {
    let pad = "x".repeat(bytes.saturating_sub(64));
    format!("{{\"ref\":\"refs/heads/master\",\"n\":{n},\"pad\":\"{pad}\"}}").into_bytes()
}

/// Item 5 on SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item5_queue_is_durable_and_bounded() {
    queue_round(&[], false).await;
}

/// Item 5 on Postgres, with two instances claiming from the one queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn item5_queue_is_durable_and_bounded_on_postgres_with_two_instances() {
    let Some(url) = postgres_database("queue").await else { return };
    queue_round(&["--database-url", &url], true).await;
}

/// Executions waiting for the program are durable rows, and the queue is bounded: with
/// concurrency 2, a program that sleeps, and `--queue-max 8`, 24 concurrent triggers of 1 MiB get
/// 202 up to the bound and 503 with Retry-After past it (a refused delivery id can be
/// redelivered). kill -9 with two programs running: after the restart every acknowledged
/// execution ends Succeeded (its payload intact), except the ones that were running, Stopped;
/// every execution's program started exactly once.
async fn queue_round(db: &[&str], two_instances: bool) {
    const TRIGGERS: usize = 24;
    const QUEUE_MAX: usize = 8;
    let dir = temp_dir("item5");
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let script = dir.join("run.sh");
    std::fs::write(
        &script,
        "out=$1\n\
         echo \"$CODEPIPELINE_EXECUTION_ID\" >> \"$out/started\"\n\
         cat > \"$out/$CODEPIPELINE_EXECUTION_ID.payload\"\n\
         sleep \"$2\"\n",
    )
    .unwrap();
    let data = dir.join("data");
    let with = |nap: &'static str, concurrency: &'static str| -> Vec<String> {
        let mut v: Vec<String> = db.iter().map(|s| s.to_string()).collect();
        for s in
            ["--queue-max", &QUEUE_MAX.to_string(), "--on-trigger-concurrency", concurrency, "--on-trigger-grace", "1"]
        {
            v.push(s.to_owned());
        }
        for s in ["--on-trigger", "/bin/sh", script.to_str().unwrap(), out.to_str().unwrap(), nap] {
            v.push(s.to_owned());
        }
        v
    };
    let start =
        |args: Vec<String>, data: &Path| Server::start(data, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let concurrency = if two_instances { "1" } else { "2" };
    let server = start(with("60", concurrency), &data);
    let second = two_instances.then(|| start(with("60", concurrency), &dir.join("data-b")));
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook").await;
    let bodies: Vec<Vec<u8>> = (0..TRIGGERS).map(|n| padded_push(MIB, n)).collect();
    let started = Instant::now();
    let tasks: Vec<_> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let (token, body) = (token.clone(), body.clone());
            tokio::spawn(async move {
                let headers = signed_headers(HOOK_SECRET, &body, "push", &format!("d-{n}"));
                deliver(addr, &token, &body, &headers).await
            })
        })
        .collect();
    let mut accepted: Vec<(usize, String)> = Vec::new();
    let mut refused = Vec::new();
    for (n, t) in tasks.into_iter().enumerate() {
        let a = t.await.unwrap();
        match a.status {
            202 => accepted.push((n, a.json()["pipelineExecutionId"].as_str().unwrap().to_owned())),
            503 => {
                assert!(a.header("retry-after").is_some(), "503 says when to retry");
                refused.push(n);
            }
            other => panic!("unexpected {other}: {}", a.text()),
        }
    }
    let answered = started.elapsed();
    let (_, hwm) = server.rss_mib();
    // Two programs run (one per instance with two), the rest wait in the database.
    let deadline = Instant::now() + WAIT;
    let running = loop {
        let s = std::fs::read_to_string(out.join("started")).unwrap_or_default();
        let ids: Vec<String> = s.lines().map(str::to_owned).collect();
        if ids.len() >= 2 {
            break ids;
        }
        assert!(Instant::now() < deadline, "the programs did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(300));
    let running_at_kill: Vec<String> =
        std::fs::read_to_string(out.join("started")).unwrap().lines().map(str::to_owned).collect();
    server.kill9();
    if let Some(b) = second {
        b.kill9();
    }
    let t0 = Instant::now();
    let server = start(with("0", "2"), &data);
    let c = server.client();
    let mut ended = std::collections::BTreeMap::<String, usize>::new();
    for (n, id) in &accepted {
        let want = if running_at_kill.contains(id) {
            vec![PipelineExecutionStatus::Stopped]
        } else {
            vec![PipelineExecutionStatus::Succeeded]
        };
        let got = wait_for_status(&c, "app", id, &want).await;
        *ended.entry(got.as_str().to_owned()).or_default() += 1;
        if got == PipelineExecutionStatus::Succeeded {
            assert_eq!(std::fs::read(out.join(format!("{id}.payload"))).unwrap(), bodies[*n], "payload of {id} intact");
        }
    }
    let drained = t0.elapsed();
    let runs = std::fs::read_to_string(out.join("started")).unwrap();
    for (_, id) in &accepted {
        assert_eq!(runs.lines().filter(|l| l == id).count(), 1, "execution {id} ran once");
    }
    // A refused delivery was not acknowledged: its id is free, a redelivery starts.
    let n = refused[0];
    let a =
        deliver(server.addr, &token, &bodies[n], &signed_headers(HOOK_SECRET, &bodies[n], "push", &format!("d-{n}")))
            .await;
    assert_eq!(a.status, 202, "{}", a.text());
    println!(
        "item 5{}: {TRIGGERS} triggers of 1 MiB answered in {:.1} s: {} x 202, {} x 503 (queue max {QUEUE_MAX}); VmHWM \
         {hwm:.1} MiB; kill -9 with {} running ({:?} seen started); after the restart {ended:?} within {:.1} s",
        if two_instances { " (Postgres, two instances)" } else { "" },
        answered.as_secs_f64(),
        accepted.len(),
        refused.len(),
        running_at_kill.len(),
        running.len(),
        drained.as_secs_f64()
    );
    assert!(!refused.is_empty(), "the queue is bounded");
    assert!(accepted.len() >= QUEUE_MAX && accepted.len() <= QUEUE_MAX + 2, "{} accepted", accepted.len());
    assert_eq!(ended.get("Stopped").copied().unwrap_or(0), running_at_kill.len());
    assert!(hwm < 256.0 + 100.0, "VmHWM {hwm} MiB");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `serve` on `data_dir` expecting a refusal to start; its stderr.
fn refused_start(data_dir: &Path) -> String {
    let mut child =
        serve_command(data_dir, &[]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server started on {}", data_dir.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    err
}

/// Item 7: readiness tells the truth. A zero-length, a non-SQLite and another application's
/// SQLite database file are refused at start with a message (exit 2). A store that cannot write
/// (the server's file-size limit, as a full disk: `ulimit -f`, SIGXFSZ ignored) turns `/healthz`
/// to 503 with the reason, while deliveries get 503 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item7_readiness_reports_a_store_that_cannot_write() {
    use sqlx::Connection as _;
    let dir = temp_dir("item7");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("codepipeline-webhooks.sqlite3"), b"").unwrap();
    let err = refused_start(&empty);
    assert!(err.contains("is empty (0 bytes)"), "{err}");
    let garbage = dir.join("garbage");
    std::fs::create_dir_all(&garbage).unwrap();
    std::fs::write(garbage.join("codepipeline-webhooks.sqlite3"), b"PK\x03\x04 a zip, not a database").unwrap();
    let err = refused_start(&garbage);
    assert!(err.contains("is not a SQLite database"), "{err}");
    let foreign = dir.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    let url = format!("sqlite://{}?mode=rwc", foreign.join("codepipeline-webhooks.sqlite3").display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)").execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let err = refused_start(&foreign);
    assert!(err.contains("of another application"), "{err}");

    // A file-size limit of 8 MiB (dash counts 512-byte blocks) stands in for a full disk.
    let data = dir.join("data");
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 16384; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args(["serve", "--listen", "127.0.0.1:0", "--public-url", PUBLIC_URL, "--data-dir"])
        .arg(&data)
        .args(["--queue-max", "100", "--on-trigger-concurrency", "1", "--on-trigger", "sleep", "60"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .env("RUST_LOG", "info");
    let server = Server::spawn(command, &data);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook").await;
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200);
    let mut failed_at = None;
    for n in 0..30 {
        let body = padded_push(MIB, n);
        let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", &format!("f-{n}"))).await;
        if a.status == 503 {
            failed_at = Some(n);
            break;
        }
        assert_eq!(a.status, 202, "{}", a.text());
    }
    let failed_at = failed_at.expect("the store ran out of room within 30 MiB");
    let t0 = Instant::now();
    let health = http(addr, "GET", "/healthz", &[], b"").await;
    let took = t0.elapsed();
    println!(
        "item 7: empty, foreign and non-SQLite files refused at start; with an 8 MiB file-size limit the delivery of \
         payload {failed_at} got 503, then /healthz {} in {:.0} ms: {:?}",
        health.status,
        ms(took),
        health.text().trim()
    );
    assert_eq!(health.status, 503);
    assert!(health.text().starts_with("store cannot write: "), "{}", health.text());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Item 7 on Postgres: the database turned read-only (for new sessions, whose connections are
/// then cut) makes every write fail; `/healthz` says so with the reason within a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item7_readiness_on_postgres() {
    use sqlx::Connection as _;
    let Some(url) = postgres_database("ready").await else { return };
    let dir = temp_dir("item7pg");
    let server = Server::start(&dir.join("data"), &["--database-url", &url]);
    let addr = server.addr;
    setup(&server.client(), "app", "hook").await;
    assert_eq!(http(addr, "GET", "/healthz", &[], b"").await.status, 200);
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&std::env::var("TEST_DATABASE_URL").unwrap()).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} SET default_transaction_read_only = on"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        .execute(&mut admin)
        .await
        .unwrap();
    let t0 = Instant::now();
    let health = loop {
        let h = http(addr, "GET", "/healthz", &[], b"").await;
        if h.status == 503 || t0.elapsed() > Duration::from_secs(20) {
            break h;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let noticed = t0.elapsed();
    println!("item 7 (Postgres): read-only database noticed in {:.0} ms: {:?}", ms(noticed), health.text().trim());
    assert_eq!(health.status, 503, "{}", health.text());
    assert!(health.text().contains("read-only"), "{}", health.text());
    sqlx::query(&format!("ALTER DATABASE {name} SET default_transaction_read_only = off"))
        .execute(&mut admin)
        .await
        .unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// On Postgres, the server's connections cut (as a restart of the database does): the next
/// delivery still starts its execution, and so do the ones after it, and the instance stays
/// ready. The trigger writer keeps a connection from batch to batch; a batch that fails on it
/// lets it go and is tried once more on one from the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_start_again_after_postgres_cuts_the_connections() {
    use sqlx::Connection as _;
    let Some(url) = postgres_database("cut").await else { return };
    let dir = temp_dir("cutpg");
    let server = Server::start(&dir.join("data"), &["--database-url", &url]);
    let (c, addr) = (server.client(), server.addr);
    let token = setup(&c, "app", "hook").await;
    let body = push();
    let a = deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", "before-cut")).await;
    assert_eq!(a.status, 202, "{}", a.text());
    let name = url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&std::env::var("TEST_DATABASE_URL").unwrap()).await.unwrap();
    let cut: Vec<(bool,)> =
        sqlx::query_as(&format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            .fetch_all(&mut admin)
            .await
            .unwrap();
    assert!(cut.iter().any(|(done,)| *done), "the server's connections were cut");
    for n in 0..3 {
        let a =
            deliver(addr, &token, &body, &signed_headers(HOOK_SECRET, &body, "push", &format!("after-cut-{n}"))).await;
        assert_eq!(a.status, 202, "delivery {n} after the cut: {}", a.text());
    }
    let listed = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(listed.pipeline_execution_summaries().len(), 4);
    // The failure on the cut connection was the writer's own to retry: not one for readiness.
    let health = http(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!((health.status, health.text()), (200, "ok\n".to_owned()));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A control-plane call that cannot finish (another process holds SQLite's write lock past
/// twice --request-timeout) is answered with AWS's JSON error for a timeout, not a bare 408.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_plane_call_past_its_time_gets_a_json_408() {
    use sqlx::Connection as _;
    let dir = temp_dir("api-timeout");
    let data = dir.join("data");
    let server = Server::start(&data, &["--request-timeout", "1"]);
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    let mut lock = store_connection(&data, &[]).await;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut lock).await.unwrap();
    let target = "CodePipeline_20150709.DeletePipeline";
    let body = br#"{"name": "app"}"#;
    let started = Instant::now();
    let answer = http(server.addr, "POST", "/", &sign_at(server.addr, target, body, SystemTime::now()), body).await;
    let took = started.elapsed();
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    lock.close().await.unwrap();
    assert_eq!(answer.status, 408, "{}", answer.text());
    assert_eq!(answer.json()["__type"], "RequestTimeoutException", "{}", answer.text());
    assert!(answer.json()["message"].as_str().unwrap().contains("2 s"), "{}", answer.text());
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(5), "{took:?}");
    // The lock gone, the same call succeeds.
    c.delete_pipeline().name("app").send().await.unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stderr that nobody reads (a pipe whose reader stopped, a stuck log shipper) does not stall
/// the service: serve's log lines go to a thread of its own through a bounded buffer, so the
/// data plane keeps answering, and the lines it could not write are counted in `/metrics`. With a
/// log written on the thread that logs, the first full pipe buffer (64 KiB: a few hundred
/// "delivery refused" lines) held every worker in `write`. The memory the full buffer holds is
/// measured against the same flood with stderr going to a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stderr_nobody_reads_does_not_stall_deliveries() {
    let _alone = HEAVY.lock().await;
    let dir = temp_dir("stuck-stderr");
    let baseline = Server::start(&dir.join("baseline"), &[]);
    let (_, _, grew_baseline) = refused_flood(&baseline).await;
    drop(baseline);
    // A pipe held open by the child handle and never read: it fills, and writes to it block.
    let server = Server::spawn_with_stderr(serve_command(&dir.join("data"), &[]), dir.join("unread"), Stdio::piped());
    let (statuses, took, grew) = refused_flood(&server).await;
    let metrics = http(server.addr, "GET", "/metrics", &[], b"").await.text();
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("codepipeline_webhooks_log_lines_dropped_total "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the dropped-lines counter is in /metrics");
    println!(
        "stuck stderr: {FLOOD} refused deliveries answered in {:.2} s ({statuses:?}); log lines dropped: {dropped}; \
         VmHWM grew {grew:.1} MiB (the same flood logged to a file: {grew_baseline:.1} MiB)",
        took.as_secs_f64()
    );
    assert_eq!(statuses.get(&403), Some(&FLOOD), "every delivery answered: {statuses:?}");
    assert!(dropped > 0, "the lines stderr could not take are dropped and counted");
    // The log holds its buffer (2 MiB) and the one stuck in the write (2 MiB) at most.
    assert!(grew < grew_baseline + 16.0, "the log's buffer is bounded: {grew:.1} MiB against {grew_baseline:.1}");
    // The control plane answers too.
    server.client().list_webhooks().send().await.unwrap();
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Senders at once, and deliveries each, of [`refused_flood`]: their log lines (about 200
/// bytes each, 4 MiB) are more than the log holds once a pipe is full (its 2 MiB buffer, and
/// what is stuck in the write).
const FLOOD_SENDERS: usize = 8;
const FLOOD_EACH: usize = 2_600;
const FLOOD: usize = FLOOD_SENDERS * FLOOD_EACH;

/// [`FLOOD`] deliveries signed with another secret (each refused at the signature and logged at
/// info), from [`FLOOD_SENDERS`] senders at once: the answers by status, the time, and how much
/// the server's VmHWM grew, in MiB.
async fn refused_flood(server: &Server) -> (std::collections::BTreeMap<u16, usize>, Duration, f64) {
    let (c, addr) = (server.client(), server.addr);
    let token = Arc::new(setup(&c, "app", "hook").await);
    let body = push();
    let headers = Arc::new(signed_headers("not-the-secret", &body, "push", "d"));
    let body = Arc::new(body);
    let (_, before) = server.rss_mib();
    let started = Instant::now();
    let senders: Vec<_> = (0..FLOOD_SENDERS)
        .map(|_| {
            let (body, token, headers) = (body.clone(), token.clone(), headers.clone());
            tokio::spawn(async move {
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                for _ in 0..FLOOD_EACH {
                    *statuses.entry(deliver(addr, &token, &body, &headers).await.status).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for sender in senders {
        for (status, n) in sender.await.unwrap() {
            *statuses.entry(status).or_default() += n;
        }
    }
    let took = started.elapsed();
    let (_, after) = server.rss_mib();
    (statuses, took, after - before)
}
