//! Evaluation allocates nothing for a webhook whose paths are singular, when the selected strings
//! hold no escapes: shown with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
use serde_json::json;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is a
// const-initialised thread-local Cell, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

fn webhook(auth: &str, config: serde_json::Value) -> Webhook {
    let definition: WebhookDefinition = serde_json::from_value(json!({
        "name": "n", "targetPipeline": "p", "targetAction": "Source",
        "filters": [
            {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
            {"jsonPath": "$.repository.full_name", "matchEquals": "Codertocat/Hello-World"},
            {"jsonPath": "$['repository']['owner'].login", "matchEquals": "Codertocat"},
            {"jsonPath": "$.commits[0].added[0]", "matchEquals": "README.md"},
            {"jsonPath": "$.repository.size", "matchEquals": "0"}
        ],
        "authentication": auth, "authenticationConfiguration": config
    }))
    .unwrap();
    let action: ActionConfiguration = [("Branch", "master")].into_iter().collect();
    Webhook::new(&definition, &action).unwrap()
}

#[test]
fn evaluate_with_singular_paths_does_not_allocate() {
    let body =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github/push/with-new-branch.payload.json"))
            .unwrap();
    let secret = "s3cr3t";
    let hmac = webhook("GITHUB_HMAC", json!({"SecretToken": secret}));
    let signature = github::signature_256(secret.as_bytes(), &body);
    let sha1 = github::signature_1(secret.as_bytes(), &body);
    let ip = webhook("IP", json!({"AllowedIPRange": "192.30.252.0/22"}));
    let open = webhook("UNAUTHENTICATED", json!({}));
    let wrong = github::signature_256(b"other", &body);

    let signed =
        Request::new(&body).header("X-Hub-Signature-256", &signature).header("Content-Type", "application/json");
    let signed_sha1 = Request::new(&body).header("X-Hub-Signature", &sha1);
    let from = Request::new(&body).source_ip([192, 30, 252, 7]);
    let bare = Request::new(&body);
    let forged = Request::new(&body).header("X-Hub-Signature-256", &wrong);
    let cases: [(&str, &Webhook, &Request<'_>, bool); 5] = [
        ("GITHUB_HMAC sha256", &hmac, &signed, true),
        ("GITHUB_HMAC sha1", &hmac, &signed_sha1, true),
        ("IP", &ip, &from, true),
        ("UNAUTHENTICATED", &open, &bare, true),
        ("rejected signature", &hmac, &forged, false),
    ];
    for (name, webhook, request, trigger) in cases {
        let (verdict, count) = allocations_during(|| webhook.evaluate(request));
        assert_eq!(verdict.is_trigger(), trigger, "{name}: {verdict}");
        assert_eq!(count, 0, "{name}: {count} allocations");
        // Dropping the verdict frees nothing it allocated either.
        let (_, count) = allocations_during(|| drop(verdict));
        assert_eq!(count, 0);
    }

    // The counter works: an indefinite path builds a tape (its node vector once, sized exactly,
    // and a buffer for unescaped strings as it grows: a handful of allocations, not one per
    // node), and an escaped string is copied.
    let indefinite: WebhookDefinition = serde_json::from_value(json!({
        "name": "n", "targetPipeline": "p", "targetAction": "a",
        "filters": [{"jsonPath": "$.commits[*].id"}],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
    }))
    .unwrap();
    let indefinite = Webhook::new(&indefinite, &ActionConfiguration::new()).unwrap();
    let (verdict, count) = allocations_during(|| indefinite.evaluate(&bare));
    assert!(verdict.is_trigger());
    assert!((1..=24).contains(&count), "{count}");
    // A rejected signature never reaches the parser: the same webhook, whose path would build a
    // Value, allocates nothing when the signature is wrong.
    let indefinite_hmac: WebhookDefinition = serde_json::from_value(json!({
        "name": "n", "targetPipeline": "p", "targetAction": "a",
        "filters": [{"jsonPath": "$.commits[*].id"}],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": secret}
    }))
    .unwrap();
    let indefinite_hmac = Webhook::new(&indefinite_hmac, &ActionConfiguration::new()).unwrap();
    let (verdict, count) = allocations_during(|| indefinite_hmac.evaluate(&forged));
    assert_eq!(verdict.rejection().map(|r| r.step()), Some(codepipeline_webhooks::Step::Signature));
    assert_eq!(count, 0, "the body was parsed");
    let (verdict, count) = allocations_during(|| indefinite_hmac.evaluate(&signed));
    assert!(verdict.is_trigger());
    assert!((1..=24).contains(&count), "{count}");
    let escaped = br#"{"ref":"refs\/heads\/master"}"#;
    let (_, count) = allocations_during(|| open.evaluate(&Request::new(escaped)));
    assert!(count >= 1, "{count}");
}
