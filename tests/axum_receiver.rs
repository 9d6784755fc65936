//! The axum receiver of `examples/axum_receiver.rs`, started on 127.0.0.1 (port 0) and sent real
//! signed GitHub deliveries from the corpus with a real HTTP client.

#[path = "../examples/axum_receiver.rs"]
mod receiver;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use codepipeline_webhooks::registry::{ListWebhooksInput, Registry};
use codepipeline_webhooks::{PutWebhookInput, github};
use reqwest::StatusCode;
use serde_json::json;

async fn serve(registry: Arc<Registry>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = receiver::app(registry).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
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
    // A tag push, correctly signed: refused by the $.ref filter.
    let tag = fixture("github/push/payload.json");
    assert_eq!(post(addr, token, &tag, &signed(SECRET, &tag)).await, StatusCode::FORBIDDEN);
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
