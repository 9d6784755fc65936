//! The delivery log and the console against the real binary: each outcome recorded with its
//! fields, retention under a flood, unknown tokens store nothing, the console's bind and token
//! rules, no secret in any console response, redeliver and its dry run, and the CLI.

mod console_common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use aws_sdk_codepipeline::types::WebhookAuthenticationType;
use codepipeline_webhooks::github;
use console_common::*;
use serde_json::Value;

/// The delivery of `deliveries` whose `deliveryId` is `id`.
fn by_delivery<'v>(list: &'v [Value], id: &str) -> &'v Value {
    list.iter().find(|d| d["deliveryId"] == id).unwrap_or_else(|| panic!("no delivery {id} in {list:?}"))
}

/// The console API's redeliver of log entry `id`, with the header a cross-site form cannot send.
async fn redeliver(console: SocketAddr, id: &Value) -> Answer {
    http(console, "POST", &format!("/api/deliveries/{id}/redeliver"), &[("X-Console-Request", "1".into())], b"").await
}

/// Every console response of a test, kept to be searched for secrets.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    async fn get(&mut self, console: SocketAddr, path: &str) -> Answer {
        let a = get(console, path).await;
        self.0.push(format!("{path}: {:?} {}", a.headers, a.text()));
        a
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_is_logged_with_its_fields() {
    each_outcome(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_outcome_is_logged_with_its_fields_on_postgres() {
    let Some(url) = postgres_database("outcomes").await else { return };
    each_outcome(&["--database-url", &url]).await;
}

/// A database of its own in the cluster of `TEST_DATABASE_URL`, or `None` (with a message).
async fn postgres_database(tag: &str) -> Option<String> {
    use sqlx::Connection as _;
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: set TEST_DATABASE_URL=postgres://USER@127.0.0.1:PORT/DB to run this test on Postgres \
             (bash .ci/run starts a throwaway cluster and sets it)"
        );
        return None;
    };
    let name = format!("cpw_console_{tag}_{}", std::process::id());
    let mut conn = sqlx::PgConnection::connect(&base).await.expect("TEST_DATABASE_URL connects");
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
    let (prefix, _) = base.split('?').next().unwrap().rsplit_once('/').expect("a URL with a database name");
    Some(format!("{prefix}/{name}"))
}

async fn each_outcome(db: &[&str]) {
    let dir = temp_dir("outcomes");
    let server = Server::start(&dir.join("data"), db);
    let c = server.client();
    let hmac = hmac_app(&c).await;
    let ip_token = put(&c, webhook("ip", "app", WebhookAuthenticationType::Ip, "refs/heads/{Branch}")).await;
    let addr = server.addr;
    let body = push();

    // Trigger, with an Authorization header that must not be kept.
    let mut headers = signed_headers(&body, "push", "d-trigger");
    headers.push(("Authorization", "Bearer do-not-keep-me".to_owned()));
    let started = deliver(addr, &hmac, &body, &headers).await;
    assert_eq!(started.status, 202);
    let execution = started.json()["pipelineExecutionId"].as_str().unwrap().to_owned();
    // The same delivery id again: a duplicate.
    assert_eq!(deliver(addr, &hmac, &body, &headers).await.status, 200);
    // Another branch: the filter misses.
    let other = push_to("refs/heads/feature");
    assert_eq!(deliver(addr, &hmac, &other, &signed_headers(&other, "push", "d-miss")).await.status, 200);
    // A wrong signature.
    let mut bad = signed_headers(&body, "push", "d-badsig");
    bad[4].1 = github::signature_256(b"not the secret", &body);
    let refused = deliver(addr, &hmac, &body, &bad).await;
    assert_eq!(refused.status, 403);
    // A large body with a wrong signature: kept only up to 64 KiB.
    let big = format!("{{\"ref\":\"refs/heads/master\",\"pad\":\"{}\"}}", "x".repeat(100 * 1024)).into_bytes();
    let mut big_headers = signed_headers(&big, "push", "d-badsig-big");
    big_headers[4].1 = github::signature_256(b"not the secret", &big);
    assert_eq!(deliver(addr, &hmac, &big, &big_headers).await.status, 403);
    let big_len = big.len();
    // A ping.
    let ping = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
    assert_eq!(deliver(addr, &hmac, ping, &signed_headers(ping, "ping", "d-ping")).await.status, 200);
    // Too large, by its Content-Length (the body is never read).
    let mut large = signed_headers(b"{}", "push", "d-large");
    large.push(("Content-Length", (26 * 1024 * 1024).to_string()));
    assert_eq!(deliver(addr, &hmac, b"{}", &large).await.status, 413);
    // An IP webhook refuses 127.0.0.1 (allowed: 10.0.0.0/8); the sender learns nothing.
    let ip_refused = deliver(addr, &ip_token, &body, &signed_headers(&body, "push", "d-ip")).await;
    assert_eq!(ip_refused.status, 403);
    assert!(ip_refused.body.is_empty());

    let console = server.console();
    let mut seen = Seen::default();
    let list = deliveries(console, "hmac", 7).await;
    assert_eq!(list.len(), 7, "{list:?}");
    let ids: Vec<i64> = list.iter().map(|d| d["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let dup = list.iter().filter(|d| d["deliveryId"] == "d-trigger").collect::<Vec<_>>();
    assert_eq!(dup.len(), 2);
    let (dup, t) = if dup[0]["status"] == 200 { (dup[0], dup[1]) } else { (dup[1], dup[0]) };
    assert_eq!(t["status"], 202);
    assert_eq!(t["outcome"], "started");
    assert_eq!(t["decision"], "trigger");
    assert_eq!(t["executionId"], execution.as_str());
    assert_eq!(t["event"], "push");
    assert_eq!(t["sourceAddress"], "127.0.0.1");
    assert!(t["receivedAt"].as_f64().unwrap() > 1.7e9);
    assert!(t.get("step").is_none() && t.get("reason").is_none());
    assert_eq!(dup["outcome"], "duplicate");
    assert_eq!(dup["decision"], "trigger");
    assert!(dup["executionId"].is_null());
    // The engine let it through; the service says why nothing started.
    let why = dup["reason"].as_str().unwrap();
    assert!(why.contains("repeat of X-GitHub-Delivery d-trigger"), "{dup}");

    let miss = by_delivery(&list, "d-miss");
    assert_eq!(miss["status"], 200);
    assert_eq!(miss["outcome"], "ignored");
    assert_eq!(miss["decision"], "reject");
    assert_eq!(miss["step"], "filter");
    assert_eq!(miss["filterIndex"], 0);
    assert_eq!(miss["jsonPath"], "$.ref");
    assert_eq!(miss["expected"], "refs/heads/master");
    assert_eq!(miss["found"], "refs/heads/feature");
    assert!(miss["reason"].as_str().unwrap().contains("refs/heads/feature"), "{miss}");

    let sig = by_delivery(&list, "d-badsig");
    assert_eq!(
        (sig["status"].as_u64(), sig["outcome"].as_str(), sig["step"].as_str()),
        (Some(403), Some("refused"), Some("signature"))
    );
    assert!(sig["reason"].as_str().unwrap().contains("signature"), "{sig}");

    let big = by_delivery(&list, "d-badsig-big");
    let big = get(console, &format!("/api/deliveries/{}", big["id"])).await.json();
    assert_eq!((big["bodySize"].as_u64(), big["bodyTruncated"].as_bool()), (Some(big_len as u64), Some(true)));
    assert_eq!(big["body"].as_str().unwrap().len(), 64 * 1024, "a refused sender's body is kept up to 64 KiB");

    let ping = by_delivery(&list, "d-ping");
    assert_eq!(
        (ping["status"].as_u64(), ping["outcome"].as_str(), ping["event"].as_str()),
        (Some(200), Some("ping"), Some("ping"))
    );
    // A ping misses the filters, but that is not why it was answered 200.
    assert!(ping["reason"].as_str().unwrap().starts_with("a ping"), "{ping}");
    assert!(ping.get("step").is_none() && ping.get("jsonPath").is_none(), "{ping}");

    let large = by_delivery(&list, "d-large");
    assert_eq!(
        (large["status"].as_u64(), large["outcome"].as_str(), large["step"].as_str()),
        (Some(413), Some("too_large"), Some("payload"))
    );

    let ip_list = deliveries(console, "ip", 1).await;
    let ip = by_delivery(&ip_list, "d-ip");
    assert_eq!(
        (ip["status"].as_u64(), ip["outcome"].as_str(), ip["step"].as_str()),
        (Some(403), Some("refused"), Some("source_ip"))
    );
    assert!(ip["reason"].as_str().unwrap().contains("127.0.0.1"), "the reason is stored: {ip}");

    // One delivery: the kept headers (the signature's value hidden, no Authorization), the body.
    let one = seen.get(console, &format!("/api/deliveries/{}", t["id"])).await;
    assert_eq!(one.status, 200);
    let one = one.json();
    let names: Vec<&str> = one["headers"].as_array().unwrap().iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert!(
        names.contains(&"content-type") && names.contains(&"user-agent") && names.contains(&"x-github-delivery"),
        "{names:?}"
    );
    assert!(!names.contains(&"authorization"), "{names:?}");
    let sig_header = one["headers"].as_array().unwrap().iter().find(|h| h["name"] == "x-hub-signature-256").unwrap();
    assert_eq!(sig_header["value"], "(present)");
    assert_eq!(one["body"].as_str().unwrap().as_bytes(), &body[..]);
    assert_eq!(one["bodySize"], body.len());
    assert_eq!(one["bodyTruncated"], false);
    assert_eq!(one["verdict"]["decision"], "trigger");

    // Every page and API answer, searched for secrets.
    seen.get(console, "/api/webhooks").await;
    seen.get(console, "/").await;
    seen.get(console, "/webhooks/hmac").await;
    seen.get(console, "/webhooks/ip").await;
    for d in list.iter().chain(&ip_list) {
        let page = seen.get(console, &format!("/deliveries/{}", d["id"])).await;
        assert_eq!(page.status, 200);
        seen.get(console, &format!("/api/deliveries/{}", d["id"])).await;
    }
    let webhooks = get(console, "/api/webhooks").await.json();
    let hook = webhooks["webhooks"].as_array().unwrap().iter().find(|w| w["name"] == "hmac").unwrap();
    assert_eq!(hook["authentication"], "GITHUB_HMAC");
    assert_eq!(hook["targetPipeline"], "app");
    assert_eq!(hook["filters"][0]["jsonPath"], "$.ref");
    assert!(hook["lastTriggered"].as_f64().is_some());
    let signature = github::signature_256(HOOK_SECRET.as_bytes(), &body);
    let hex = signature.trim_start_matches("sha256=");
    for text in &seen.0 {
        for secret in [HOOK_SECRET, hmac.as_str(), ip_token.as_str(), hex, "do-not-keep-me", KEY_SECRET] {
            assert!(!text.contains(secret), "a secret in a console answer: {text}");
        }
    }
    // Pages carry the security headers.
    let page = get(console, "/webhooks/hmac").await;
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.text().contains("refs/heads/feature"), "the reason in words");
    // A misspelt webhook's page says so, as the API does.
    let missing = get(console, "/webhooks/hmca").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("no such webhook"), "{}", missing.text());
    // The data plane's listener has no console.
    assert_eq!(get(addr, "/api/webhooks").await.status, 404);
    assert_eq!(get(addr, "/").await.status, 405);
}

/// Deliveries the service refuses before the engine decides (a body too slow or broken off, the
/// webhook in error after an UpdatePipeline) are logged too, with their status and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_evaluation_are_logged() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let dir = temp_dir("unevaluated");
    let server = Server::start(&dir.join("data"), &["--request-timeout", "1"]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let addr = server.addr;
    // Headers, then part of the body it promised: `half` says whether the sender then closes its
    // side (a body broken off) or waits (a body too slow). Returns the status line.
    let partial = |delivery: &'static str, half: bool| {
        let token = token.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            let head = format!(
                "POST /trigger?t={token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 X-GitHub-Event: push\r\nX-GitHub-Delivery: {delivery}\r\nContent-Length: 1000\r\n\r\n{{\"ref\":"
            );
            s.write_all(head.as_bytes()).await.unwrap();
            if half {
                s.shutdown().await.unwrap();
            }
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut answer)).await;
            String::from_utf8_lossy(&answer).lines().next().unwrap_or_default().to_owned()
        }
    };
    assert!(partial("d-slow", false).await.starts_with("HTTP/1.1 408"));
    partial("d-broken", true).await;
    // The pipeline's source action renamed: the webhook is in error (its target action is gone).
    c.update_pipeline().pipeline(pipeline_with_source("app", "Fetch")).send().await.unwrap();
    let body = push();
    assert_eq!(deliver(addr, &token, &body, &signed_headers(&body, "push", "d-error")).await.status, 409);

    let list = deliveries(server.console(), "hmac", 3).await;
    let slow = by_delivery(&list, "d-slow");
    assert_eq!((slow["status"].as_u64(), slow["step"].as_str()), (Some(408), Some("payload")));
    assert!(slow["reason"].as_str().unwrap().contains("not received within 1 s"), "{slow}");
    let broken = by_delivery(&list, "d-broken");
    assert_eq!((broken["status"].as_u64(), broken["step"].as_str()), (Some(400), Some("payload")));
    let error = by_delivery(&list, "d-error");
    assert_eq!((error["status"].as_u64(), error["step"].as_str()), (Some(409), Some("webhook")));
    assert!(error["reason"].as_str().unwrap().contains("Source"), "the reason names the missing action: {error}");
    // Their bodies were never read (refused before, or cut off): they cannot be delivered again.
    for (entry, size) in [(slow, 1000), (error, body.len() as u64)] {
        let one = get(server.console(), &format!("/api/deliveries/{}", entry["id"])).await.json();
        assert_eq!((one["bodySize"].as_u64(), one["bodyTruncated"].as_bool()), (Some(size), Some(true)));
        assert_eq!(one["body"].as_str().map(str::len), Some(0), "no body kept");
        let again = redeliver(server.console(), &entry["id"]).await;
        assert_eq!(again.status, 409, "{}", again.text());
    }

    // Deleting the webhook deletes its log: a webhook put again under its name starts with none.
    c.delete_webhook().name("hmac").send().await.unwrap();
    c.update_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    put(&c, webhook("hmac", "app", WebhookAuthenticationType::GithubHmac, "refs/heads/{Branch}")).await;
    let page = get(server.console(), "/api/webhooks/hmac/deliveries").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.json()["deliveries"].as_array().unwrap().len(), 0, "{}", page.text());
}

/// Past `--deliveries-body-rate`, deliveries are still logged, without their bodies (counted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_body_rate_entries_are_logged_without_bodies() {
    let dir = temp_dir("bodyrate");
    // 10 KiB/s, and a bucket of 10 KiB: one 8.8 KB push is kept, the next at once is not.
    let server =
        Server::start(&dir.join("data"), &["--deliveries-body-rate", "0.01", "--deliveries-body-cap", "10000"]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let body = push();
    for id in ["d-1", "d-2"] {
        assert_eq!(deliver(server.addr, &token, &body, &signed_headers(&body, "push", id)).await.status, 202);
    }
    let list = deliveries(server.console(), "hmac", 2).await;
    let (first, second) = (by_delivery(&list, "d-1"), by_delivery(&list, "d-2"));
    let first = get(server.console(), &format!("/api/deliveries/{}", first["id"])).await.json();
    let second = get(server.console(), &format!("/api/deliveries/{}", second["id"])).await.json();
    assert_eq!(first["body"].as_str().unwrap().as_bytes(), &body[..]);
    assert_eq!((second["body"].as_str(), second["bodyTruncated"].as_bool()), (Some(""), Some(true)));
    assert_eq!(second["status"], 202, "the delivery itself is logged as usual");
    let webhooks = get(server.console(), "/api/webhooks").await.json();
    assert_eq!(webhooks["bodiesNotKept"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_store_nothing() {
    let dir = temp_dir("unknown");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    hmac_app(&c).await;
    let body = push();
    for i in 0..50 {
        let a =
            deliver(server.addr, &format!("not-a-token-{i}"), &body, &signed_headers(&body, "push", &format!("u{i}")))
                .await;
        assert_eq!(a.status, 404);
    }
    // A known delivery after them: once it is logged, the unknown ones would have been too.
    let token = c.get_pipeline().name("app").send().await.map(|_| ()).ok();
    assert!(token.is_some());
    let list_hooks = c.list_webhooks().send().await.unwrap();
    let url = list_hooks.webhooks()[0].url().to_owned();
    let known = url.split("t=").nth(1).unwrap().trim_end_matches("&v=1").to_owned();
    deliver(server.addr, &known, &body, &signed_headers(&body, "push", "known")).await;
    let list = deliveries(server.console(), "hmac", 1).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["deliveryId"], "known");
    let metrics = get(server.addr, "/metrics").await.text();
    assert!(
        metrics.lines().any(|l| l.contains("outcome=\"unknown_token\"") && l.trim_end().ends_with(" 50")),
        "counted in the metrics: {metrics}"
    );
    // The database holds one row (read with the SQLite file's own reader is not needed: the API
    // lists every webhook's deliveries, and unknown tokens have no webhook).
    let hooks = get(server.console(), "/api/webhooks").await.json();
    assert_eq!(hooks["webhooks"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retention_keeps_the_last_n_under_a_flood() {
    let dir = temp_dir("retention");
    let server = Server::start(&dir.join("data"), &["--deliveries-keep", "10"]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let addr = server.addr;
    // 400 filter misses from 8 senders at once (bounded in count).
    let mut tasks = Vec::new();
    for sender in 0..8 {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let body = push_to("refs/heads/flood");
            for i in 0..50 {
                let a = deliver(addr, &token, &body, &signed_headers(&body, "push", &format!("f{sender}-{i}"))).await;
                assert_eq!(a.status, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let body = push_to("refs/heads/flood");
    deliver(addr, &token, &body, &signed_headers(&body, "push", "last")).await;
    // The last delivery is logged and, once the writer trims (every 250 ms while entries come,
    // 250 ms after the last), the log holds exactly the newest 10.
    let deadline = std::time::Instant::now() + WAIT;
    let list = loop {
        let list = deliveries(server.console(), "hmac", 1).await;
        if list[0]["deliveryId"] == "last" && list.len() <= 10 {
            break list;
        }
        assert!(std::time::Instant::now() < deadline, "not logged and trimmed in time: {} {:?}", list.len(), list[0]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(list.len(), 10, "{list:?}");
    // Pages by cursor: 4 + 4 + 2, no repeats.
    let console = server.console();
    let mut cursor = String::new();
    let mut seen = Vec::new();
    for (expected, more) in [(4, true), (4, true), (2, false)] {
        let page = get(console, &format!("/api/webhooks/hmac/deliveries?limit=4&cursor={cursor}")).await.json();
        let rows = page["deliveries"].as_array().unwrap();
        assert_eq!(rows.len(), expected, "{page}");
        assert_eq!(page["nextCursor"].is_string(), more, "a cursor only while there is more: {page}");
        seen.extend(rows.iter().map(|d| d["id"].as_i64().unwrap()));
        cursor = page["nextCursor"].as_str().unwrap_or_default().to_owned();
    }
    // A page that holds exactly the rest offers no next page either.
    let page = get(console, "/api/webhooks/hmac/deliveries?limit=10").await.json();
    assert_eq!((page["deliveries"].as_array().unwrap().len(), &page["nextCursor"]), (10, &Value::Null), "{page}");
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(sorted, seen);
    assert_eq!(get(console, "/api/webhooks/hmac/deliveries?cursor=x").await.status, 400);
}

#[test]
fn a_console_off_loopback_needs_a_token() {
    let dir = temp_dir("bind");
    let out = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
        .args(["serve", "--listen", "127.0.0.1:0", "--console-listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address") && stderr.contains("--console-token-file"), "{stderr}");
    assert!(!dir.join("data").exists(), "refused before anything is created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_guards_the_console_and_loopback_guards_the_host() {
    let dir = temp_dir("token");
    let token_file = dir.join("console-token");
    let token = "console-token-0123456789abcdef";
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let server = Server::start(
        &dir.join("data"),
        &["--console-listen", "0.0.0.0:0", "--console-token-file", token_file.to_str().unwrap()],
    );
    let console: SocketAddr = format!("127.0.0.1:{}", server.console().port()).parse().unwrap();
    assert_eq!(get(console, "/api/webhooks").await.status, 401);
    let page = get(console, "/").await;
    assert_eq!((page.status, page.header("location")), (303, Some("/login")));
    let bearer = [("Authorization", format!("Bearer {token}"))];
    assert_eq!(http(console, "GET", "/api/webhooks", &bearer, b"").await.status, 200);
    let wrong = [("Authorization", "Bearer console-token-0123456789abcdeX".to_owned())];
    assert_eq!(http(console, "GET", "/api/webhooks", &wrong, b"").await.status, 401);
    // The login form sets the cookie, given the form's CSRF token with the right console token.
    let form_page = get(console, "/login").await;
    assert_eq!(form_page.status, 200);
    let csrf = form_page.text().split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let post_login = |form: String| async move {
        http(
            console,
            "POST",
            "/login",
            &[("Content-Type", "application/x-www-form-urlencoded".into())],
            form.as_bytes(),
        )
        .await
    };
    let no_csrf = post_login(format!("token={token}")).await;
    assert_eq!((no_csrf.status, no_csrf.header("set-cookie")), (401, None), "a form from elsewhere");
    let wrong_token = post_login(format!("csrf={csrf}&token=console-token-0123456789abcdeX")).await;
    assert_eq!((wrong_token.status, wrong_token.header("set-cookie")), (401, None));
    let login = post_login(format!("csrf={csrf}&token={token}")).await;
    assert_eq!(login.status, 303);
    let cookie = login.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    assert!(login.header("set-cookie").unwrap().contains("HttpOnly"));
    assert_eq!(http(console, "GET", "/", &[("Cookie", cookie)], b"").await.status, 200);
    drop(server);

    // Without a token, on loopback: a request for another host name is refused (DNS rebinding).
    let server = Server::start(&dir.join("data2"), &[]);
    let console = server.console();
    assert!(console.ip().is_loopback());
    assert_eq!(get(console, "/api/webhooks").await.status, 200);
    let rebound = http(console, "GET", "/api/webhooks", &[("Host", "attacker.example:80".into())], b"").await;
    assert_eq!(rebound.status, 421);
    let localhost =
        http(console, "GET", "/api/webhooks", &[("Host", format!("localhost:{}", console.port()))], b"").await;
    assert_eq!(localhost.status, 200);
}

fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks")).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliver_after_fixing_the_filter_starts_the_pipeline() {
    let dir = temp_dir("redeliver");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let body = push_to("refs/heads/main");
    assert_eq!(deliver(server.addr, &token, &body, &signed_headers(&body, "push", "d-main")).await.status, 200);
    let console = server.console();
    let list = deliveries(console, "hmac", 1).await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["step"], "filter");
    let url = format!("http://{console}");

    // The API's POSTs need the header a cross-site form cannot send.
    let forged = http(console, "POST", &format!("/api/deliveries/{id}/redeliver"), &[], b"").await;
    assert_eq!(forged.status, 403);
    let api = [("X-Console-Request", "1".to_owned())];
    let dry = http(console, "POST", &format!("/api/deliveries/{id}/redeliver?dryRun=true"), &api, b"").await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    let dry = dry.json();
    assert_eq!(dry["verdict"]["decision"], "reject");
    assert_eq!(dry["verdict"]["found"], "refs/heads/main");
    let (code, out, err) = cli(&["redeliver", "--console-url", &url, &id.to_string(), "--dry-run"]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("would not start") && out.contains("refs/heads/main"), "{out}");

    // Fix the filter with PutWebhook: the dry run now says trigger, and stamps nothing.
    put(&c, webhook("hmac", "app", WebhookAuthenticationType::GithubHmac, "refs/heads/main")).await;
    let dry = http(console, "POST", &format!("/api/deliveries/{id}/redeliver?dryRun=true"), &api, b"").await.json();
    assert_eq!(dry["verdict"]["decision"], "trigger", "{dry}");
    let (code, out, _) = cli(&["redeliver", "--console-url", &url, &id.to_string(), "--dry-run", "--json"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["verdict"]["decision"], "trigger");
    let hooks = c.list_webhooks().send().await.unwrap();
    assert!(hooks.webhooks()[0].last_triggered().is_none(), "a dry run starts nothing");
    assert_eq!(deliveries(console, "hmac", 1).await.len(), 1, "a dry run logs nothing");

    // Redeliver: a new delivery through the data plane's path, linked to the original.
    let (code, out, err) = cli(&["redeliver", "--console-url", &url, &id.to_string()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("started execution"), "{out}");
    let list = deliveries(console, "hmac", 2).await;
    let again = &list[0];
    assert_eq!(again["redeliveryOf"], id);
    assert_eq!(again["status"], 202);
    assert_eq!(again["outcome"], "started");
    let execution = again["executionId"].as_str().unwrap();
    let executions = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(executions.pipeline_execution_summaries()[0].pipeline_execution_id(), Some(execution));
    // Again: the same X-GitHub-Delivery within the hour is a duplicate, as on the data plane.
    let stamp = |hooks: Value| hooks["webhooks"][0]["lastTriggered"].as_f64().expect("stamped by the start");
    let started_at = stamp(get(console, "/api/webhooks").await.json());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let twice = http(console, "POST", &format!("/api/deliveries/{id}/redeliver"), &api, b"").await.json();
    assert_eq!(twice["status"], 200);
    assert_eq!(twice["recorded"]["outcome"], "duplicate");
    // It started nothing: lastTriggered stays, in the console as in ListWebhooks.
    assert_eq!(stamp(get(console, "/api/webhooks").await.json()), started_at);
    let listed = c.list_webhooks().send().await.unwrap().webhooks()[0].last_triggered().unwrap().as_secs_f64();
    assert!((listed - started_at).abs() < 1e-3, "{listed} vs {started_at}");

    // The CLI's list.
    let (code, out, err) = cli(&["deliveries", "--console-url", &url, "--webhook", "hmac"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("started") && out.contains("d-main") && out.contains(execution), "{out}");
    let (code, out, _) = cli(&["deliveries", "--console-url", &url, "--webhook", "hmac", "--json", "--limit", "1"]);
    assert_eq!(code, Some(0));
    let page: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["deliveries"].as_array().unwrap().len(), 1);
    assert!(page["nextCursor"].is_string());
    let (code, _, err) = cli(&["deliveries", "--console-url", &url, "--webhook", "nope"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("404"), "{err}");
    // serve's main listener instead of the console: said so, with where to look.
    let main = format!("http://{}", server.addr);
    let (code, _, err) = cli(&["deliveries", "--console-url", &main, "--webhook", "hmac"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("is it the console?") && err.contains("console on http://"), "{err}");

    // The page's forms: CSRF checked.
    let form = http(
        console,
        "POST",
        &format!("/deliveries/{id}/test"),
        &[("Content-Type", "application/x-www-form-urlencoded".into())],
        b"csrf=wrong",
    )
    .await;
    assert_eq!(form.status, 403);
    let page = get(console, &format!("/deliveries/{id}")).await.text();
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let tested = http(
        console,
        "POST",
        &format!("/deliveries/{id}/test"),
        &[("Content-Type", "application/x-www-form-urlencoded".into()), ("Origin", format!("http://{console}"))],
        format!("csrf={csrf}").as_bytes(),
    )
    .await;
    assert_eq!(tested.status, 200);
    assert!(tested.text().contains("It would start the pipeline."), "{}", tested.text());
    let cross = http(
        console,
        "POST",
        &format!("/deliveries/{id}/test"),
        &[("Content-Type", "application/x-www-form-urlencoded".into()), ("Origin", "http://attacker.example".into())],
        format!("csrf={csrf}").as_bytes(),
    )
    .await;
    assert_eq!(cross.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_older_than_the_retention_period_are_deleted() {
    let dir = temp_dir("days");
    // 0.00002 days: 1.728 s.
    let server = Server::start(&dir.join("data"), &["--deliveries-days", "0.00002"]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let body = push_to("refs/heads/old");
    deliver(server.addr, &token, &body, &signed_headers(&body, "push", "old")).await;
    assert_eq!(deliveries(server.console(), "hmac", 1).await[0]["deliveryId"], "old");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    deliver(server.addr, &token, &body, &signed_headers(&body, "push", "new")).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let list = deliveries(server.console(), "hmac", 0).await;
        let ids: Vec<&str> = list.iter().map(|d| d["deliveryId"].as_str().unwrap()).collect();
        if ids == ["new"] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the old delivery is kept: {ids:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_with_keep_0() {
    let dir = temp_dir("keep0");
    let server = Server::start(&dir.join("data"), &["--deliveries-keep", "0"]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let body = push();
    assert_eq!(deliver(server.addr, &token, &body, &signed_headers(&body, "push", "k0")).await.status, 202);
    // The log would have written it within this (the other tests wait for far less).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(deliveries(server.console(), "hmac", 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_compiles_as_the_data_plane_does_under_aws_exact() {
    use aws_sdk_codepipeline::types::{WebhookAuthConfiguration, WebhookDefinition, WebhookFilterRule};
    let dir = temp_dir("dry-exact");
    let server = Server::start(&dir.join("data"), &["--aws-exact"]);
    let c = server.client();
    c.create_pipeline().pipeline(pipeline("app")).send().await.unwrap();
    let body = push();
    let id: String = serde_json::from_slice::<Value>(&body).unwrap()["commits"][0]["id"].as_str().unwrap().to_owned();
    // An indefinite path naming the push's commit: it passes as a member of the list, but never
    // under --aws-exact (AWS compares the list it selects).
    let hook = WebhookDefinition::builder()
        .name("mono")
        .target_pipeline("app")
        .target_action("Source")
        .filters(WebhookFilterRule::builder().json_path("$.commits[*].id").match_equals(&id).build().unwrap())
        .authentication(WebhookAuthenticationType::Unauthenticated)
        .authentication_configuration(WebhookAuthConfiguration::builder().build())
        .build()
        .unwrap();
    let token = put(&c, hook).await;
    let headers = [("Content-Type", "application/json".to_owned()), ("X-GitHub-Event", "push".to_owned())];
    let answer = deliver(server.addr, &token, &body, &headers).await;
    assert_eq!(answer.status, 200, "--aws-exact: ignored: {}", answer.text());
    let console = server.console();
    let logged = deliveries(console, "mono", 1).await;
    let delivery = logged[0]["id"].as_i64().unwrap();
    let api = [("X-Console-Request", "1".to_owned())];
    let dry = http(console, "POST", &format!("/api/deliveries/{delivery}/redeliver?dryRun=true"), &api, b"").await;
    assert_eq!(dry.status, 200, "{}", dry.text());
    assert_eq!(
        dry.json()["verdict"]["decision"],
        "reject",
        "the dry run gives the data plane's verdict: {}",
        dry.text()
    );
}

/// An `X-GitHub-Delivery` longer than the duplicate window keeps (128 bytes) is logged as its
/// key (`sha256:` and its digest), and a redelivery of its entry is that same id: a duplicate
/// within the hour, as a redelivery of a short id is. (Before, the log kept the id cut at 1,024
/// characters, and its redelivery was a new delivery that started the pipeline again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_delivery_id_is_logged_as_its_key_and_redelivered_as_itself() {
    use sha2::Digest as _;
    let dir = temp_dir("longid");
    let server = Server::start(&dir.join("data"), &[]);
    let c = server.client();
    let token = hmac_app(&c).await;
    let body = push();
    let long: String = (0..40u32).map(|i| github::signature_256(b"noise", &i.to_le_bytes())[7..].to_owned()).collect();
    assert_eq!(long.len(), 2_560);
    assert_eq!(deliver(server.addr, &token, &body, &signed_headers(&body, "push", &long)).await.status, 202);
    let key = format!("sha256:{}", hex::encode(sha2::Sha256::digest(long.as_bytes())));
    let list = deliveries(server.console(), "hmac", 1).await;
    let entry = by_delivery(&list, &key);
    let again = redeliver(server.console(), &entry["id"]).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert!(again.text().contains("duplicate delivery"), "{}", again.text());
    let runs = c.list_pipeline_executions().pipeline_name("app").send().await.unwrap();
    assert_eq!(runs.pipeline_execution_summaries().len(), 1, "the redelivery started nothing");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
