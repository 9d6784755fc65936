//! Arbitrary JSON bytes and a singular path: the DOM-free lane (a webhook whose only filter is
//! that path) agrees with serde_json_path over a `serde_json::Value`: both reject the body, or
//! both select the same value.
//!
//! Input: the path up to the first newline, then the JSON bytes.
#![no_main]

use codepipeline_webhooks::{ActionConfiguration, Request, Step, Webhook, WebhookDefinition};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use serde_json_path::JsonPath;

/// The text `matchEquals` must hold to equal a scalar (README: "What it decides", filters).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
        scalar => Some(scalar.to_string()),
    }
}

fn webhook(path: &str, expected: Option<&str>) -> Option<Webhook> {
    let rule = match expected {
        Some(e) => json!({"jsonPath": path, "matchEquals": e}),
        None => json!({"jsonPath": path}),
    };
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "fuzz", "targetPipeline": "p", "targetAction": "a", "filters": [rule],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
    }))
    .ok()?;
    // serde_json's own recursion limit refuses 128 nested containers; so does a limit of 127.
    Webhook::options().max_depth(127).build(&d, &ActionConfiguration::new()).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(at) = data.iter().position(|&b| b == b'\n') else { return };
    let (Ok(path), body) = (std::str::from_utf8(&data[..at]), &data[at + 1..]) else { return };
    // Our compile first: it refuses the paths on which serde_json_path 0.7.2 panics.
    let Some(exists) = webhook(path, None) else { return };
    let query = JsonPath::parse(path).expect("a path the webhook compiled");
    if exists.builds_dom() {
        return; // the DOM-free lane answers singular paths only
    }
    let request = Request::new(body);
    let verdict = exists.evaluate(&request);
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        assert_eq!(verdict.rejection().map(|r| r.step()), Some(Step::Payload), "{verdict}");
        return;
    };
    assert_ne!(verdict.rejection().map(|r| r.step()), Some(Step::Payload), "{verdict}");
    let nodes = query.query(&value);
    assert!(nodes.len() <= 1, "a singular path selected {} nodes", nodes.len());
    assert_eq!(verdict.is_trigger(), nodes.len() == 1, "{verdict}");
    if let Some(text) = nodes.iter().next().and_then(|v| text_of(v)) {
        // matchEquals is 1..=150 characters and `{...}` would be a placeholder.
        if !text.is_empty() && text.chars().count() <= 150 && !text.contains('{') {
            let equals = webhook(path, Some(&text)).unwrap();
            assert!(equals.evaluate(&request).is_trigger(), "{path} selected {text:?}");
        }
    }
    let other = webhook(path, Some("\u{1}no JSON value is this\u{1}")).unwrap();
    assert!(!other.evaluate(&request).is_trigger());
});
