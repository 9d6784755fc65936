//! The RFC 9535 JSONPath Compliance Test Suite, run through webhook filters: every invalid selector
//! is refused when the webhook compiles, and for every valid one the filter verdicts agree with the
//! suite's results.

mod common;

use codepipeline_webhooks::{Request, Webhook};
use common::*;
use serde_json::{Value, json};

/// Valid in RFC 9535, refused by this crate when the webhook compiles: a `match()`/`search()`
/// pattern must be a string literal (a pattern read from the payload could not be compiled once,
/// and its cost could not be bounded). The README lists this rule.
const REFUSED_BY_DESIGN: &[&str] = &[
    "functions, match, regex from the document",
    "functions, search, regex from the document",
    "functions, match, arg is a function expression",
    "functions, search, arg is a function expression",
];

struct Counts {
    refused_by_design: usize,
    invalid_refused: usize,
    invalid_too_long: usize,
    valid_checked: usize,
    valid_too_long: usize,
    equal_checks: usize,
}

/// The text a scalar must be given as `matchEquals` to equal it (README: "What it decides", filters).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".to_owned()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn compile(selector: &str, match_equals: Option<&str>) -> Result<Webhook, codepipeline_webhooks::Error> {
    let rule = match match_equals {
        Some(m) => json!({"jsonPath": selector, "matchEquals": m}),
        None => json!({"jsonPath": selector}),
    };
    Webhook::new(&definition_with(json!([rule]), |_| {}), &config())
}

#[test]
fn compliance_suite() {
    let suite: Value = serde_json::from_slice(&fixture("cts.json")).unwrap();
    let tests = suite["tests"].as_array().unwrap();
    assert_eq!(tests.len(), 703);
    let mut counts = Counts {
        refused_by_design: 0,
        invalid_refused: 0,
        invalid_too_long: 0,
        valid_checked: 0,
        valid_too_long: 0,
        equal_checks: 0,
    };
    let mut failures = Vec::new();
    for case in tests {
        let name = case["name"].as_str().unwrap();
        let selector = case["selector"].as_str().unwrap();
        let fits = (1..=150).contains(&selector.chars().count());
        if case["invalid_selector"] == true {
            let err = compile(selector, None).expect_err(name);
            if fits {
                if err.code() != "InvalidWebhookFilterPatternException" {
                    failures.push(format!("{name}: {selector:?} refused as {err}"));
                }
                counts.invalid_refused += 1;
            } else {
                assert_eq!(err.code(), "ValidationException", "{name}");
                counts.invalid_too_long += 1;
            }
            continue;
        }
        if !fits {
            counts.valid_too_long += 1;
            continue;
        }
        if REFUSED_BY_DESIGN.contains(&name) {
            let err = compile(selector, None).expect_err(name);
            assert_eq!(err.code(), "InvalidWebhookFilterPatternException", "{name}");
            assert!(err.message().contains("is refused") && err.message().contains("string literal"), "{err}");
            counts.refused_by_design += 1;
            continue;
        }
        // Nondeterministic cases list every allowed order; membership is the same in each.
        let result = case.get("result").or_else(|| case["results"].get(0)).and_then(Value::as_array).expect(name);
        let body = serde_json::to_string(&case["document"]).unwrap();
        let request = Request::new(&body);

        let exists = compile(selector, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        if exists.evaluate(&request).is_trigger() == result.is_empty() {
            failures.push(format!("{name}: {selector} selects {} nodes but exists-rule said otherwise", result.len()));
        }
        for node in result {
            let Some(text) = text_of(node) else { continue };
            // matchEquals is 1..=150 characters, and `{...}` would be a placeholder.
            if text.is_empty() || text.chars().count() > 150 || text.contains('{') {
                continue;
            }
            let webhook = compile(selector, Some(&text)).unwrap();
            counts.equal_checks += 1;
            if !webhook.evaluate(&request).is_trigger() {
                failures.push(format!("{name}: {selector} selects {node} but matchEquals {text:?} did not pass"));
            }
        }
        let absent = compile(selector, Some("no value in the suite is this")).unwrap();
        if absent.evaluate(&request).is_trigger() {
            failures.push(format!("{name}: {selector} passed with a value it does not select"));
        }
        counts.valid_checked += 1;
    }
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(counts.invalid_refused + counts.invalid_too_long, 247);
    assert_eq!(counts.refused_by_design, REFUSED_BY_DESIGN.len());
    assert_eq!(counts.valid_checked + counts.valid_too_long + counts.refused_by_design, 703 - 247);
    assert!(
        counts.valid_checked > 400 && counts.equal_checks > 350,
        "{} {}",
        counts.valid_checked,
        counts.equal_checks
    );
    eprintln!(
        "cts: {} invalid refused ({} over 150 characters, refused by the model), {} valid checked ({} over 150 skipped), {} equality checks",
        counts.invalid_refused,
        counts.invalid_too_long,
        counts.valid_checked,
        counts.valid_too_long,
        counts.equal_checks
    );
}
