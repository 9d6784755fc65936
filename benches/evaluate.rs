//! Evaluation cost against its floor (HMAC-SHA256 alone; a validating `IgnoredAny` skip) and
//! against the naive and precompiled-DOM ways, on real GitHub payloads and a synthesised 1 MB push.
//!
//! `cargo bench --bench evaluate` (all), or with a filter: `cargo bench --bench evaluate -- push/`.

use std::hint::black_box;
use std::time::Duration;

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use serde_json_path::JsonPath;
use sha2::Sha256;

const SECRET: &str = "a-webhook-secret-of-reasonable-length";

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A ~1 MB push: the corpus branch push with its one real commit repeated (ids made unique) until
/// the pretty-printed body passes 1 MiB. No public push payload has that many commits.
fn large_push() -> Vec<u8> {
    let mut push: Value = serde_json::from_slice(&fixture("github/push/with-new-branch.payload.json")).unwrap();
    let commit = push["commits"][0].clone();
    let mut commits = Vec::new();
    let mut body = Vec::new();
    while body.len() < 1 << 20 {
        for _ in 0..64 {
            let mut c = commit.clone();
            c["id"] = json!(format!("{:040x}", commits.len()));
            commits.push(c);
        }
        push["commits"] = Value::Array(commits.clone());
        body = serde_json::to_vec_pretty(&push).unwrap();
    }
    body
}

fn definition(auth: &str, filters: Value) -> WebhookDefinition {
    let config = match auth {
        "GITHUB_HMAC" => json!({"SecretToken": SECRET}),
        "IP" => json!({"AllowedIPRange": "192.30.252.0/22"}),
        _ => json!({}),
    };
    serde_json::from_value(json!({
        "name": "bench", "targetPipeline": "pipeline", "targetAction": "Source",
        "filters": filters, "authentication": auth, "authenticationConfiguration": config
    }))
    .unwrap()
}

struct Payload {
    name: &'static str,
    body: Vec<u8>,
    /// Filters that all pass on this payload.
    one: Value,
    five: Value,
    indefinite: Value,
}

fn payloads() -> Vec<Payload> {
    let push_one = json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]);
    let push_five = json!([
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
        {"jsonPath": "$.repository.full_name", "matchEquals": "Codertocat/Hello-World"},
        {"jsonPath": "$.repository.owner.login", "matchEquals": "Codertocat"},
        {"jsonPath": "$.deleted", "matchEquals": "false"},
        {"jsonPath": "$.sender.type", "matchEquals": "User"}
    ]);
    let push_indefinite = json!([
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
        {"jsonPath": "$.commits[*].added[*]", "matchEquals": "README.md"}
    ]);
    vec![
        Payload {
            name: "push",
            body: fixture("github/push/with-new-branch.payload.json"),
            one: push_one.clone(),
            five: push_five.clone(),
            indefinite: push_indefinite.clone(),
        },
        Payload {
            name: "pull_request",
            body: fixture("github/pull_request/opened.payload.json"),
            one: json!([{"jsonPath": "$.action", "matchEquals": "opened"}]),
            five: json!([
                {"jsonPath": "$.action", "matchEquals": "opened"},
                {"jsonPath": "$.pull_request.base.ref", "matchEquals": "{Branch}"},
                {"jsonPath": "$.repository.full_name", "matchEquals": "Codertocat/Hello-World"},
                {"jsonPath": "$.pull_request.draft", "matchEquals": "false"},
                {"jsonPath": "$.number", "matchEquals": "2"}
            ]),
            indefinite: json!([
                {"jsonPath": "$.action", "matchEquals": "opened"},
                {"jsonPath": "$.pull_request.labels[*].name", "matchEquals": "bug"}
            ]),
        },
        Payload { name: "push_1mb", body: large_push(), one: push_one, five: push_five, indefinite: push_indefinite },
    ]
}

/// The naive way: parse the paths per request, build a `Value`, query, verify the HMAC.
fn naive(body: &[u8], signature: &str, filters: &[(String, String)]) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    let Some(hex) = signature.strip_prefix("sha256=") else { return false };
    let Ok(tag) = hex::decode(hex) else { return false };
    if mac.verify_slice(&tag).is_err() {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return false };
    filters.iter().all(|(path, expected)| {
        let path = JsonPath::parse(path).unwrap();
        path.query(&value).iter().any(|v| scalar_equals(v, expected))
    })
}

/// The comparison every implementation must make: a scalar's text, strings unquoted. (Clippy's
/// suggestion, `Value == &str`, is true only for strings, which is not the semantics.)
#[allow(clippy::cmp_owned)]
fn scalar_equals(v: &Value, expected: &str) -> bool {
    match v {
        Value::String(s) => s == expected,
        Value::Array(_) | Value::Object(_) => false,
        scalar => scalar.to_string() == expected,
    }
}

/// Paths compiled once, but still a `Value` per request.
fn precompiled_dom(key: &Hmac<Sha256>, body: &[u8], tag: &[u8], filters: &[(JsonPath, String)]) -> bool {
    let mut mac = key.clone();
    mac.update(body);
    if mac.verify_slice(tag).is_err() {
        return false;
    }
    let Ok(value) = serde_json::from_slice::<Value>(body) else { return false };
    filters.iter().all(|(path, expected)| path.query(&value).iter().any(|v| scalar_equals(v, expected)))
}

fn resolved(filters: &Value) -> Vec<(String, String)> {
    filters
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let m = f["matchEquals"].as_str().unwrap().replace("{Branch}", "master");
            (f["jsonPath"].as_str().unwrap().to_owned(), m)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let config: ActionConfiguration = [("Branch", "master")].into_iter().collect();
    for p in payloads() {
        let mut group = c.benchmark_group(p.name);
        group.throughput(Throughput::Bytes(p.body.len() as u64));
        if p.body.len() > 100_000 {
            group.sample_size(20);
        }
        let body = &p.body;
        let signature = github::signature_256(SECRET.as_bytes(), body);
        let tag = hex::decode(&signature["sha256=".len()..]).unwrap();
        let key = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();

        group.bench_function("floor/hmac_sha256", |b| {
            b.iter(|| {
                let mut mac = key.clone();
                mac.update(black_box(body));
                mac.verify_slice(&tag).is_ok()
            })
        });
        group.bench_function("floor/ignored_any_skip", |b| {
            b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(body)).is_ok())
        });

        let five = resolved(&p.five);
        assert!(naive(body, &signature, &five));
        group.bench_function("naive/5_filters", |b| b.iter(|| naive(black_box(body), &signature, &five)));
        let compiled: Vec<(JsonPath, String)> =
            five.iter().map(|(p, m)| (JsonPath::parse(p).unwrap(), m.clone())).collect();
        assert!(precompiled_dom(&key, body, &tag, &compiled));
        group.bench_function("precompiled_dom/5_filters", |b| {
            b.iter(|| precompiled_dom(&key, black_box(body), &tag, &compiled))
        });

        let request = Request::new(body).header("X-Hub-Signature-256", &signature);
        for (label, filters) in [("1_singular", &p.one), ("5_singular", &p.five), ("indefinite", &p.indefinite)] {
            let webhook = Webhook::new(&definition("GITHUB_HMAC", filters.clone()), &config).unwrap();
            assert!(webhook.evaluate(&request).is_trigger(), "{} {label}", p.name);
            group.bench_function(BenchmarkId::new("evaluate/github_hmac", label), |b| {
                b.iter(|| webhook.evaluate(black_box(&request)))
            });
        }
        let ip = Webhook::new(&definition("IP", p.five.clone()), &config).unwrap();
        let from = Request::new(body).source_ip([192, 30, 252, 1]);
        assert!(ip.evaluate(&from).is_trigger());
        group.bench_function("evaluate/ip/5_singular", |b| b.iter(|| ip.evaluate(black_box(&from))));
        let open = Webhook::new(&definition("UNAUTHENTICATED", p.five.clone()), &config).unwrap();
        let bare = Request::new(body);
        assert!(open.evaluate(&bare).is_trigger());
        group.bench_function("evaluate/unauthenticated/5_singular", |b| b.iter(|| open.evaluate(black_box(&bare))));

        let hmac = Webhook::new(&definition("GITHUB_HMAC", p.five.clone()), &config).unwrap();
        let wrong = github::signature_256(b"not the secret", body);
        let forged = Request::new(body).header("X-Hub-Signature-256", &wrong);
        assert!(!hmac.evaluate(&forged).is_trigger());
        group.bench_function("evaluate/rejected_signature", |b| b.iter(|| hmac.evaluate(black_box(&forged))));
        group.finish();
    }

    let definition = definition("GITHUB_HMAC", payloads().remove(0).five);
    c.bench_function("compile/webhook_new_5_filters", |b| {
        b.iter(|| Webhook::new(black_box(&definition), black_box(&config)).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
