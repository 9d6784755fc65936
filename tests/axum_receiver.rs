//! The axum receiver of `examples/axum_receiver.rs`, started on 127.0.0.1 (port 0) and sent real
//! signed GitHub deliveries from the corpus with a real HTTP client, and hostile clients over raw
//! TCP: bodies to unknown tokens, lying lengths, stalls. A counting global allocator bounds the
//! receiver's memory (it runs in this process).

#[path = "../examples/axum_receiver.rs"]
mod receiver;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use codepipeline_webhooks::registry::{ListWebhooksInput, Registry};
use codepipeline_webhooks::{PutWebhookInput, github};
use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Counts the bytes allocated now and the most allocated at once since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counters are atomics,
// which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests of this binary run one at a time, so that one's allocations do not count in
/// another's memory bound.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn serve(registry: Arc<Registry>) -> SocketAddr {
    serve_with(registry, receiver::Limits::default()).await
}

async fn serve_with(registry: Arc<Registry>, limits: receiver::Limits) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(receiver::serve(listener, registry, limits));
    addr
}

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

async fn post(addr: SocketAddr, token: &str, body: &[u8], headers: &[(&str, String)]) -> StatusCode {
    let client = reqwest::Client::new();
    let mut request = client.post(format!("http://{addr}/trigger?t={token}&v=1")).body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status()
}

fn signed(secret: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-GitHub-Event", "push".to_owned()),
        ("X-Hub-Signature-256", github::signature_256(secret.as_bytes(), body)),
    ]
}

const SECRET: &str = "example-secret-do-not-use";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_receiver_over_real_http() {
    let _serial = SERIAL.lock().await;
    let registry = Arc::new(receiver::demo_registry().unwrap());
    let addr = serve(registry.clone()).await;
    let token = receiver::DEMO_TOKEN;

    // The shipped example: a branch push to Codertocat/Hello-World master.
    let push = std::fs::read(format!("{}/examples/push.json", env!("CARGO_MANIFEST_DIR"))).unwrap();
    assert_eq!(post(addr, token, &push, &signed(SECRET, &push)).await, StatusCode::ACCEPTED);
    let listed = registry.list_webhooks(ListWebhooksInput::default()).unwrap();
    assert!(listed.webhooks[0].last_triggered.is_some(), "lastTriggered stamped");

    // The same push signed with another secret, or not at all.
    assert_eq!(post(addr, token, &push, &signed("wrong", &push)).await, StatusCode::FORBIDDEN);
    assert_eq!(post(addr, token, &push, &[]).await, StatusCode::FORBIDDEN);
    // A tag push, correctly signed: received, and ignored by the $.ref filter (200, as
    // Verdict::http_answer maps a filter miss).
    let tag = fixture("github/push/payload.json");
    assert_eq!(post(addr, token, &tag, &signed(SECRET, &tag)).await, StatusCode::OK);
    // An unknown URL looks the same from outside.
    assert_eq!(post(addr, "no-such-token", &push, &signed(SECRET, &push)).await, StatusCode::FORBIDDEN);
    // Every corpus payload, signed: only the master pushes of Codertocat/Hello-World start it.
    let mut accepted = 0;
    for name in [
        "push/with-new-branch.payload.json",
        "push/with-no-username-committer.payload.json",
        "pull_request/opened.payload.json",
        "release/published.payload.json",
        "ping/payload.json",
    ] {
        let body = fixture(&format!("github/{name}"));
        if post(addr, token, &body, &signed(SECRET, &body)).await == StatusCode::ACCEPTED {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_address_and_form_deliveries() {
    let _serial = SERIAL.lock().await;
    let counter = Arc::new(AtomicU64::new(0));
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .token_source(move || format!("t{}", counter.fetch_add(1, Ordering::SeqCst)))
        .build()
        .unwrap();
    registry
        .put_pipeline(
            serde_json::from_value(json!({"name": "p", "stages": [{"name": "Source", "actions": [{"name": "Source", "configuration": {"Branch": "master"}}]}]}))
                .unwrap(),
        )
        .unwrap();
    let put = |name: &str, auth: serde_json::Value| {
        let mut webhook = json!({"name": name, "targetPipeline": "p", "targetAction": "Source",
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]});
        for (k, v) in auth.as_object().unwrap() {
            webhook[k] = v.clone();
        }
        let input: PutWebhookInput = serde_json::from_value(json!({ "webhook": webhook })).unwrap();
        registry.put_webhook(input).unwrap().webhook.url
    };
    let loopback = put(
        "loopback",
        json!({"authentication": "IP", "authenticationConfiguration": {"AllowedIPRange": "127.0.0.0/8"}}),
    );
    let elsewhere = put(
        "elsewhere",
        json!({"authentication": "IP", "authenticationConfiguration": {"AllowedIPRange": "10.0.0.0/8"}}),
    );
    let hmac =
        put("hmac", json!({"authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": SECRET}}));
    let token = |url: &str| url.split("t=").nth(1).unwrap().trim_end_matches("&v=1").to_owned();
    let registry = Arc::new(registry);
    let addr = serve(registry.clone()).await;

    let push = fixture("github/push/with-new-branch.payload.json");
    assert_eq!(post(addr, &token(&loopback), &push, &[]).await, StatusCode::ACCEPTED);
    assert_eq!(post(addr, &token(&elsewhere), &push, &[]).await, StatusCode::FORBIDDEN);

    // GitHub's form delivery: signed over the form bytes, filtered on the decoded JSON.
    let form = format!("payload={}", push.iter().map(|b| format!("%{b:02X}")).collect::<String>()).into_bytes();
    let headers = vec![
        ("Content-Type", "application/x-www-form-urlencoded".to_owned()),
        ("X-Hub-Signature-256", github::signature_256(SECRET.as_bytes(), &form)),
    ];
    assert_eq!(post(addr, &token(&hmac), &form, &headers).await, StatusCode::ACCEPTED);

    let listed = registry.list_webhooks(ListWebhooksInput::default()).unwrap();
    let last = |name: &str| listed.webhooks.iter().find(|w| w.definition.name == name).unwrap().last_triggered;
    assert!(last("loopback").is_some() && last("hmac").is_some());
    assert_eq!(last("elsewhere"), None);
}

/// The README's `curl` line, sent as written (URL, headers, body file) to the demo receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_curl_line_starts_the_pipeline() {
    let _serial = SERIAL.lock().await;
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let line = readme.lines().find(|l| l.starts_with("curl -i -X POST ")).expect("the README has the curl line");
    let quoted: Vec<&str> = line.split('\'').skip(1).step_by(2).collect();
    let (url, headers) = quoted.split_first().unwrap();
    let file = line.rsplit("--data-binary @").next().unwrap();
    let body = std::fs::read(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();

    let addr = serve(Arc::new(receiver::demo_registry().unwrap())).await;
    let url = url.replace("127.0.0.1:3000", &addr.to_string());
    let mut request = reqwest::Client::new().post(url).body(body);
    for header in headers {
        let (name, value) = header.split_once(": ").unwrap();
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status(), StatusCode::ACCEPTED);
}

/// Short limits, so that the tests of stalls take a second or two.
const SHORT: receiver::Limits = receiver::Limits {
    headers: Duration::from_millis(500),
    body_idle: Duration::from_millis(500),
    request: Duration::from_secs(2),
};

/// How long the receiver may hold a stalled connection under [`SHORT`]: its longest limit and a
/// margin for a loaded machine.
const HELD_AT_MOST: Duration = Duration::from_secs(4);

/// What a raw client saw: the bytes of the response (if any) and when the server ended the
/// connection (EOF or reset), or `None` if it was still open after `wait`.
struct Seen {
    response: Vec<u8>,
    ended_after: Option<Duration>,
}

impl Seen {
    fn status(&self) -> Option<&str> {
        std::str::from_utf8(&self.response).ok()?.split(' ').nth(1)
    }
}

/// Sends `head` (and `body`, as far as the server takes it within a second), then stalls and
/// reads until the server ends the connection or `wait` passes.
async fn stall(addr: SocketAddr, head: &str, body: &[u8], wait: Duration) -> Seen {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    if !body.is_empty() {
        // The server may refuse and close while this is written: that is the point.
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(body)).await;
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let ended_after = loop {
        match tokio::time::timeout(wait.saturating_sub(start.elapsed()), stream.read(&mut buf)).await {
            Err(_) => break None,
            Ok(Ok(0)) | Ok(Err(_)) => break Some(start.elapsed()),
            Ok(Ok(n)) => response.extend_from_slice(&buf[..n]),
        }
    };
    Seen { response, ended_after }
}

fn head(token: &str, content_length: u64) -> String {
    format!(
        "POST /trigger?t={token}&v=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
}

/// Twenty clients declare a 25 MiB body to a wrong token and stall, half of them after sending
/// 1 MiB of it. Each is refused without its body being read: the receiver's memory grows by far
/// less than what they sent, and no connection is held past the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_before_their_bodies_are_read() {
    let _serial = SERIAL.lock().await;
    let addr = serve_with(Arc::new(receiver::demo_registry().unwrap()), SHORT).await;
    let megabyte = vec![b'x'; 1 << 20];
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let clients: Vec<_> = (0..20)
        .map(|i| {
            let body = if i % 2 == 0 { Vec::new() } else { megabyte.clone() };
            tokio::spawn(
                async move { stall(addr, &head("wrong-token", 25 << 20), &body, Duration::from_secs(10)).await },
            )
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let seen = client.await.unwrap();
        let held = seen.ended_after.unwrap_or_else(|| panic!("connection {i} still open after 10 s"));
        assert!(held < HELD_AT_MOST, "connection {i} held for {held:?}");
        if i % 2 == 0 {
            // Nothing unread on the server side: a clean close after the answer.
            assert_eq!(seen.status(), Some("403"), "{}", String::from_utf8_lossy(&seen.response));
        }
    }
    // The clients' own 10 MiB of bodies are counted too; the receiver buffered none of the 10 MiB
    // sent to it (reading them would have taken at least as much again).
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(grew < 16 << 20, "peak memory grew by {} KiB", grew >> 10);
}

/// `Content-Length: 999999999` with a 2-byte body: refused at once from the declared length (413),
/// without waiting for bytes that will never come. A length under the limit with a body that
/// stops short is ended by the body timeout (408), not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_lengths_are_refused_without_waiting() {
    let _serial = SERIAL.lock().await;
    let addr = serve_with(Arc::new(receiver::demo_registry().unwrap()), SHORT).await;
    let seen = stall(addr, &head(receiver::DEMO_TOKEN, 999_999_999), b"{}", Duration::from_secs(10)).await;
    assert_eq!(seen.status(), Some("413"), "{}", String::from_utf8_lossy(&seen.response));
    assert!(seen.ended_after.is_some_and(|t| t < HELD_AT_MOST), "held {:?}", seen.ended_after);

    let seen = stall(addr, &head(receiver::DEMO_TOKEN, 1000), b"{}", Duration::from_secs(10)).await;
    assert_eq!(seen.status(), Some("408"), "{}", String::from_utf8_lossy(&seen.response));
    assert!(seen.ended_after.is_some_and(|t| t < HELD_AT_MOST), "held {:?}", seen.ended_after);
}

/// A connection that sends no request, or stops halfway through its headers, is closed after the
/// header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_header_connections_are_closed() {
    let _serial = SERIAL.lock().await;
    let addr = serve_with(Arc::new(receiver::demo_registry().unwrap()), SHORT).await;
    for partial in ["", "POST /trigger?t=demo HTTP/1.1\r\nHost: 127.0.0.1\r\n"] {
        let seen = stall(addr, partial, b"", Duration::from_secs(10)).await;
        let held = seen.ended_after.unwrap_or_else(|| panic!("{partial:?}: still open after 10 s"));
        assert!(held < HELD_AT_MOST, "{partial:?}: held for {held:?}");
    }
}

/// A body larger than the limit that declares no length (chunked) is cut off at the limit: the
/// receiver stops reading and ends the connection instead of buffering it all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_cut_off_at_the_limit() {
    let _serial = SERIAL.lock().await;
    let addr = serve_with(Arc::new(receiver::demo_registry().unwrap()), SHORT).await;
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /trigger?t={}&v=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        receiver::DEMO_TOKEN
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = [format!("{:x}\r\n", 1 << 20).into_bytes(), vec![b' '; 1 << 20], b"\r\n".to_vec()].concat();
    let mut sent = 0usize;
    for _ in 0..40 {
        match tokio::time::timeout(Duration::from_secs(2), stream.write_all(&chunk)).await {
            Ok(Ok(())) => sent += 1 << 20,
            _ => break,
        }
    }
    assert!(sent < 40 << 20, "the receiver read all 40 MiB");
    let mut response = Vec::new();
    let ended = tokio::time::timeout(HELD_AT_MOST, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "connection held after the limit ({:?})", start.elapsed());
    let text = String::from_utf8_lossy(&response);
    assert!(text.is_empty() || text.starts_with("HTTP/1.1 413"), "{text}");
}
