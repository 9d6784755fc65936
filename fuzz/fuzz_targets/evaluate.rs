//! Arbitrary body, headers and source address against a fixed set of compiled webhooks covering
//! every authentication type and both path kinds: evaluation never panics and always gives a
//! verdict without the secret; a `WebhookSet` of them agrees with each member's own verdict.
//!
//! Input: a flags byte (bit 0: sign the body with SHA-256; bit 1: sign with SHA-1; bit 2: form
//! content type; bits 3-4: source address; bit 5: add the extra header value as another
//! `X-Hub-Signature-256`; bit 6: as `X-Hub-Signature`), a length byte n, n bytes of extra header
//! value, then the body.
#![no_main]

use std::net::IpAddr;
use std::sync::OnceLock;

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, WebhookSet, github};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const SECRET: &str = "fuzz-secret-5f1d8c2a";

fn webhook(auth: &str, config: serde_json::Value, filters: serde_json::Value, require_sha256: bool) -> Webhook {
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "fuzz", "targetPipeline": "p", "targetAction": "Source", "filters": filters,
        "authentication": auth, "authenticationConfiguration": config
    }))
    .unwrap();
    let action: ActionConfiguration = [("Branch", "main")].into_iter().collect();
    Webhook::options().require_sha256(require_sha256).max_body_bytes(1 << 16).build(&d, &action).unwrap()
}

fn webhooks() -> &'static (Vec<Webhook>, WebhookSet) {
    static HOOKS: OnceLock<(Vec<Webhook>, WebhookSet)> = OnceLock::new();
    HOOKS.get_or_init(|| {
        let singular = json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}, {"jsonPath": "$.repository['full_name']"}]);
        let indefinite = json!([{"jsonPath": "$.commits[*].added[*]", "matchEquals": "README.md"}, {"jsonPath": "$..name"}]);
        let hooks = vec![
            webhook("GITHUB_HMAC", json!({"SecretToken": SECRET}), singular.clone(), false),
            webhook("GITHUB_HMAC", json!({"SecretToken": SECRET}), indefinite.clone(), true),
            webhook("IP", json!({"AllowedIPRange": "10.0.0.0/8"}), singular.clone(), false),
            webhook("IP", json!({"AllowedIPRange": "2001:db8::/32"}), indefinite.clone(), false),
            webhook("UNAUTHENTICATED", json!({}), singular, false),
            webhook("UNAUTHENTICATED", json!({}), indefinite, false),
            webhook("UNAUTHENTICATED", json!({}), json!([]), false),
        ];
        let set = WebhookSet::new(hooks.clone());
        (hooks, set)
    })
}

fuzz_target!(|data: &[u8]| {
    let [flags, n, rest @ ..] = data else { return };
    let n = usize::from(*n).min(rest.len());
    let (extra, body) = rest.split_at(n);
    let sha256 = github::signature_256(SECRET.as_bytes(), body);
    let sha1 = github::signature_1(SECRET.as_bytes(), body);
    let mut request = Request::new(body);
    if flags & 1 != 0 {
        request = request.header("X-Hub-Signature-256", &sha256);
    }
    if flags & 2 != 0 {
        request = request.header("x-hub-signature", &sha1);
    }
    if flags & 4 != 0 {
        request = request.header("Content-Type", "application/x-www-form-urlencoded");
    }
    let source: Option<IpAddr> = match (flags >> 3) & 3 {
        0 => None,
        1 => Some([10, 0, 0, 1].into()),
        2 => Some("::ffff:10.1.1.1".parse().unwrap()),
        _ => Some("2001:db8::1".parse().unwrap()),
    };
    if let Some(ip) = source {
        request = request.source_ip(ip);
    }
    if flags & 32 != 0 {
        request = request.header("X-Hub-Signature-256", extra);
    }
    if flags & 64 != 0 {
        request = request.header("X-Hub-Signature", extra);
    }
    let (hooks, set) = webhooks();
    let matches = set.matches(&request);
    for (i, webhook) in hooks.iter().enumerate() {
        let verdict = webhook.evaluate(&request);
        assert_eq!(matches.matched(i), verdict.is_trigger(), "member {i}: {verdict}");
        let shown = format!("{verdict} {verdict:?}");
        assert!(!shown.contains(SECRET));
        assert!(!shown.contains(&sha256[7..]), "a verdict shows the expected MAC");
    }
});
