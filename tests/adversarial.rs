//! Adversarial inputs: each gets the verdict it must, with a bound on the memory evaluate
//! allocates (a counting allocator) and a guard against unbounded time (10 s for work that takes
//! milliseconds: a hang detector, not a speed assertion; speed is in the benchmarks).

mod common;

use std::time::Duration;

use codepipeline_webhooks::{Rejection, Request, SignatureError, SignatureHeader, Step, Verdict, Webhook, github};
use common::*;
use serde_json::json;

#[path = "common/meter.rs"]
mod meter;

/// Evaluates, returning the verdict and the peak bytes allocated during the call.
fn bounded(webhook: &Webhook, request: &Request<'_>) -> (Verdict, usize) {
    let (verdict, peak, elapsed) = meter::measure(|| webhook.evaluate(request));
    assert!(elapsed < Duration::from_secs(10), "unbounded time: {verdict}");
    (verdict, peak)
}

fn step(v: &Verdict) -> Option<Step> {
    v.rejection().map(Rejection::step)
}

fn singular() -> Webhook {
    unauthenticated(json!([{"jsonPath": "$.ref", "matchEquals": "x"}]))
}

fn indefinite() -> Webhook {
    unauthenticated(json!([{"jsonPath": "$..ref", "matchEquals": "x"}]))
}

#[test]
fn nesting_a_million_deep() {
    for body in
        ["[".repeat(1_000_000), "{\"a\":".repeat(1_000_000), format!("{}{}", "[".repeat(500_000), "]".repeat(500_000))]
    {
        for webhook in [singular(), indefinite()] {
            let (v, peak) = bounded(&webhook, &Request::new(&body));
            assert_eq!(step(&v), Some(Step::Payload), "{v}");
            assert!(v.to_string().contains("nesting depth exceeds the limit of 128"), "{v}");
            assert!(peak < 64 * 1024, "{peak} bytes");
        }
    }
}

#[test]
fn a_body_one_byte_over_the_limit_is_refused_before_the_hmac() {
    let limit = codepipeline_webhooks::limits::DEFAULT_MAX_BODY_BYTES;
    let body = vec![b' '; limit + 1];
    let webhook = hmac_webhook(json!([]));
    let (v, peak) = bounded(&webhook, &Request::new(&body).header("X-Hub-Signature-256", "sha256=00"));
    assert_eq!(v.rejection(), Some(&Rejection::PayloadTooLarge { size: limit + 1, limit }));
    assert_eq!(peak, 0);
    // At the limit, it is the signature that decides.
    let (v, _) = bounded(&webhook, &Request::new(&body[..limit]).header("X-Hub-Signature-256", "sha256=00"));
    assert_eq!(step(&v), Some(Step::Signature));
}

#[test]
fn a_wide_ten_megabyte_object_costs_no_memory_in_the_dom_free_lane() {
    let mut body = String::from("{");
    for i in 0..600_000 {
        body.push_str(&format!("\"key{i}\":{i},"));
    }
    body.push_str("\"ref\":\"x\"}");
    assert!(body.len() > 10_000_000);
    let (v, peak) = bounded(&singular(), &Request::new(&body));
    assert!(v.is_trigger(), "{v}");
    assert_eq!(peak, 0);
    // The DOM lane builds the object: memory in proportion to the body, and bounded by it.
    let (v, peak) = bounded(&indefinite(), &Request::new(&body));
    assert!(v.is_trigger(), "{v}");
    assert!(peak < 20 * body.len(), "{peak} bytes for a {} byte body", body.len());
}

#[test]
fn malformed_bodies_are_payload_rejects() {
    let cases: [(&str, &[u8]); 9] = [
        ("invalid UTF-8 in a string", b"{\"ref\":\"x\",\"s\":\"\xc3\x28\"}"),
        ("invalid UTF-8 outside strings", b"{\"ref\":\"x\"}\xff"),
        ("lone high surrogate", br#"{"ref":"x","s":"\ud800"}"#),
        ("lone low surrogate", br#"{"ref":"x","s":"\udc00"}"#),
        ("high surrogate then a letter", br#"{"ref":"x","s":"\ud800\u0041"}"#),
        ("a number out of f64 range", br#"{"ref":"x","n":1e400}"#),
        ("a byte order mark", b"\xef\xbb\xbf{\"ref\":\"x\"}"),
        ("trailing garbage", br#"{"ref":"x"}garbage"#),
        ("a raw NUL in a string", b"{\"ref\":\"x\",\"s\":\"a\x00b\"}"),
    ];
    for (what, body) in cases {
        for webhook in [singular(), indefinite()] {
            let (v, peak) = bounded(&webhook, &Request::new(body));
            assert_eq!(step(&v), Some(Step::Payload), "{what}: {v}");
            assert!(peak < 4096, "{what}: {peak} bytes");
        }
    }
    let (v, _) = bounded(&singular(), &Request::new(b"{\"ref\":\"x\"}\x00"));
    assert_eq!(step(&v), Some(Step::Payload), "a raw NUL after the value");
}

#[test]
fn what_is_valid_stays_valid() {
    // An escaped NUL is a valid string; a 100-digit integer is a valid number (an f64, as in
    // serde_json), compared by serde_json's rendering.
    let w = unauthenticated(json!([{"jsonPath": "$.s", "matchEquals": "a\u{0}b"}]));
    assert!(bounded(&w, &Request::new(r#"{"s":"a\u0000b"}"#)).0.is_trigger());
    let hundred_digits = format!("1{}", "0".repeat(99));
    let body = format!(r#"{{"n":{hundred_digits}}}"#);
    let shown = serde_json::from_str::<serde_json::Value>(&body).unwrap()["n"].to_string();
    assert_eq!(shown, "1e+99");
    let w = unauthenticated(json!([{"jsonPath": "$.n", "matchEquals": shown}]));
    assert!(bounded(&w, &Request::new(&body)).0.is_trigger());
    let w = unauthenticated(json!([{"jsonPath": "$.n", "matchEquals": hundred_digits}]));
    assert!(!bounded(&w, &Request::new(&body)).0.is_trigger());
    // A surrogate pair is a valid escape.
    let w = unauthenticated(json!([{"jsonPath": "$.s", "matchEquals": "😀"}]));
    assert!(bounded(&w, &Request::new(r#"{"s":"\ud83d\ude00"}"#)).0.is_trigger());
    // Duplicate keys: the last one wins, in both lanes.
    for webhook in [
        unauthenticated(json!([{"jsonPath": "$.ref", "matchEquals": "b"}])),
        unauthenticated(json!([{"jsonPath": "$..ref", "matchEquals": "b"}])),
    ] {
        assert!(bounded(&webhook, &Request::new(r#"{"ref":"a","ref":"b"}"#)).0.is_trigger());
    }
}

#[test]
fn hostile_signature_headers() {
    let webhook = hmac_webhook(json!([]));
    let body = "{}";
    let good = github::signature_256(SECRET.as_bytes(), body.as_bytes());
    for value in [format!("{good}\r\n"), format!("{good}\nX-Other: 1"), format!("\r\n{good}"), format!("{good}\0")] {
        let (v, peak) = bounded(&webhook, &Request::new(body).header("X-Hub-Signature-256", &value));
        assert_eq!(
            v.rejection(),
            Some(&Rejection::Signature(SignatureError::Malformed(SignatureHeader::Sha256))),
            "{value:?}"
        );
        assert_eq!(peak, 0);
    }
    let (v, _) = bounded(
        &webhook,
        &Request::new(body).header("X-Hub-Signature-256", &good).header("X-Hub-Signature-256", &good),
    );
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Repeated(SignatureHeader::Sha256))));
    let huge = "a".repeat(1 << 20);
    let (v, peak) = bounded(&webhook, &Request::new(body).header("X-Hub-Signature-256", &huge));
    assert_eq!(step(&v), Some(Step::Signature));
    assert_eq!(peak, 0);
}

#[test]
fn empty_and_hundred_character_secrets() {
    let with_secret = |secret: &str| {
        let d = definition_with(json!([]), |v| {
            v["authentication"] = json!("GITHUB_HMAC");
            v["authenticationConfiguration"] = json!({"SecretToken": secret});
        });
        Webhook::new(&d, &config())
    };
    let err = with_secret("").unwrap_err();
    assert_eq!(
        (err.code(), err.field()),
        ("ValidationException", Some("webhook.authenticationConfiguration.SecretToken"))
    );
    let long = "s".repeat(100);
    let webhook = with_secret(&long).unwrap();
    let sig = github::signature_256(long.as_bytes(), b"{}");
    assert!(bounded(&webhook, &Request::new("{}").header("X-Hub-Signature-256", &sig)).0.is_trigger());
    assert!(with_secret(&"s".repeat(101)).is_err());
    // 100 characters, 400 bytes: lengths count characters.
    let wide = "😀".repeat(100);
    let webhook = with_secret(&wide).unwrap();
    let sig = github::signature_256(wide.as_bytes(), b"{}");
    assert!(bounded(&webhook, &Request::new("{}").header("X-Hub-Signature-256", &sig)).0.is_trigger());
}

#[test]
fn escaped_strings_allocate_in_proportion_to_the_value() {
    let value = "\\n".repeat(500_000);
    let body = format!(r#"{{"ref":"{value}"}}"#);
    let (v, peak) = bounded(&singular(), &Request::new(&body));
    assert_eq!(step(&v), Some(Step::Filter));
    assert!(peak <= 4 * body.len(), "{peak} bytes for {} bytes", body.len());
}

/// The deepest limit a webhook accepts fits the 2 MiB stack of a default thread, in this (debug or
/// release) build, in both lanes.
#[test]
fn the_deepest_allowed_nesting_fits_a_default_thread_stack() {
    let limit = codepipeline_webhooks::limits::MAX_DEPTH_LIMIT;
    let body = format!("{{\"a\":{}{}}}", "[".repeat(limit - 1), "]".repeat(limit - 1));
    for path in ["$.a", "$..a"] {
        let d = definition_with(json!([{ "jsonPath": path }]), |_| {});
        let webhook = Webhook::options().max_depth(limit).build(&d, &config()).unwrap();
        let body = body.clone();
        let verdict = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || webhook.evaluate(&Request::new(&body)))
            .unwrap()
            .join()
            .unwrap();
        assert!(verdict.is_trigger(), "{path}: {verdict}");
    }
}
