//! Evaluation order and semantics, one test per rule, each reject step named (README: "What it decides").

mod common;

use std::net::IpAddr;

use codepipeline_webhooks::{
    Found, Rejection, Request, SignatureError, SignatureHeader, Step, Verdict, Webhook, github,
};
use common::*;
use serde_json::json;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn step(v: &Verdict) -> Option<Step> {
    v.rejection().map(Rejection::step)
}

fn filter_found(v: &Verdict) -> (usize, Found) {
    let f = v.rejection().and_then(Rejection::filter).unwrap_or_else(|| panic!("not a filter reject: {v}"));
    (f.index(), f.found().clone())
}

// --- 1. IP ---------------------------------------------------------------------------------------

#[test]
fn ip_allows_the_range_and_nothing_else() {
    let w = ip_webhook("10.0.0.0/8");
    assert!(w.evaluate(&Request::new("{}").source_ip(ip("10.1.2.3"))).is_trigger());
    let v = w.evaluate(&Request::new("{}").source_ip(ip("11.1.2.3")));
    assert_eq!(
        v.rejection(),
        Some(&Rejection::SourceIpNotAllowed { source_ip: ip("11.1.2.3"), allowed_range: "10.0.0.0/8".into() })
    );
    assert_eq!(
        v.to_string(),
        "reject: webhook 'hook' at source_ip: source address 11.1.2.3 is not in the allowed range 10.0.0.0/8"
    );
}

#[test]
fn ip_without_a_source_address_is_rejected() {
    let v = ip_webhook("0.0.0.0/0").evaluate(&Request::new("{}"));
    assert_eq!(v.rejection(), Some(&Rejection::SourceIpMissing));
    assert_eq!(step(&v), Some(Step::SourceIp));
}

#[test]
fn ipv4_mapped_ipv6_is_matched_as_ipv4() {
    let w = ip_webhook("192.0.2.0/24");
    assert!(w.evaluate(&Request::new("{}").source_ip(ip("::ffff:192.0.2.9"))).is_trigger());
    let v = w.evaluate(&Request::new("{}").source_ip(ip("::ffff:198.51.100.1")));
    assert!(
        matches!(v.rejection(), Some(Rejection::SourceIpNotAllowed { source_ip, .. }) if *source_ip == ip("198.51.100.1"))
    );
}

#[test]
fn ipv6_ranges_and_single_hosts() {
    let w = ip_webhook("2001:db8:1234::/48");
    assert!(w.evaluate(&Request::new("{}").source_ip(ip("2001:db8:1234:ffff::1"))).is_trigger());
    assert!(!w.evaluate(&Request::new("{}").source_ip(ip("2001:db8:1235::1"))).is_trigger());
    assert!(!w.evaluate(&Request::new("{}").source_ip(ip("10.0.0.1"))).is_trigger());
    let host = ip_webhook("2001:db8::1");
    assert!(host.evaluate(&Request::new("{}").source_ip(ip("2001:db8::1"))).is_trigger());
    assert!(
        !host.evaluate(&Request::new("{}").source_ip(ip("2001:db8::2"))).is_trigger(),
        "a bare IPv6 address is /128"
    );
    let host4 = ip_webhook("192.0.2.1");
    assert!(!host4.evaluate(&Request::new("{}").source_ip(ip("192.0.2.2"))).is_trigger(), "a bare IPv4 address is /32");
    let masked = ip_webhook("10.9.9.9/8");
    assert!(masked.evaluate(&Request::new("{}").source_ip(ip("10.0.0.1"))).is_trigger(), "host bits are masked off");
}

#[test]
fn ip_webhooks_ignore_signatures_and_check_the_address_first() {
    let w = ip_webhook("10.0.0.0/8");
    let v = w.evaluate(&Request::new("not json").header("X-Hub-Signature-256", "garbage"));
    assert_eq!(step(&v), Some(Step::SourceIp));
    let v = w.evaluate(&Request::new("not json").source_ip(ip("10.0.0.1")));
    assert_eq!(step(&v), Some(Step::Payload));
}

// --- 2. GITHUB_HMAC --------------------------------------------------------------------------------

const BODY: &str = r#"{"ref":"refs/heads/main"}"#;

fn sig256(body: &str) -> String {
    github::signature_256(SECRET.as_bytes(), body.as_bytes())
}

fn sig1(body: &str) -> String {
    github::signature_1(SECRET.as_bytes(), body.as_bytes())
}

#[test]
fn sha256_signature_over_the_raw_body() {
    let w = hmac_webhook(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]));
    let s = sig256(BODY);
    assert!(w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", &s)).is_trigger());
    // The same JSON with other bytes is another body.
    let spaced = r#"{ "ref": "refs/heads/main" }"#;
    let v = w.evaluate(&Request::new(spaced).header("X-Hub-Signature-256", &s));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha256))));
    assert_eq!(
        v.to_string(),
        "reject: webhook 'hook' at signature: the X-Hub-Signature-256 signature does not match the payload"
    );
}

#[test]
fn header_names_are_case_insensitive_and_hex_either_case() {
    let w = hmac_webhook(json!([]));
    let upper = format!("sha256={}", sig256(BODY)["sha256=".len()..].to_uppercase());
    for name in ["x-hub-signature-256", "X-HUB-SIGNATURE-256", "X-Hub-Signature-256"] {
        assert!(w.evaluate(&Request::new(BODY).header(name, &upper)).is_trigger(), "{name}");
    }
}

#[test]
fn sha1_is_accepted_only_without_a_sha256_header() {
    let w = hmac_webhook(json!([]));
    assert!(w.evaluate(&Request::new(BODY).header("X-Hub-Signature", &sig1(BODY))).is_trigger());
    // A wrong SHA-256 never falls back to a right SHA-1.
    let wrong256 = sig256("other body");
    let v =
        w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", &wrong256).header("X-Hub-Signature", &sig1(BODY)));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha256))));
    // Nor does a malformed one.
    let v =
        w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", "sha256=").header("X-Hub-Signature", &sig1(BODY)));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Malformed(SignatureHeader::Sha256))));
    // A right SHA-256 with a wrong SHA-1 beside it passes: only the SHA-256 is checked.
    let v = w.evaluate(
        &Request::new(BODY).header("X-Hub-Signature-256", &sig256(BODY)).header("X-Hub-Signature", &sig1("x")),
    );
    assert!(v.is_trigger());
    let v = w.evaluate(&Request::new(BODY).header("X-Hub-Signature", &sig1("x")));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha1))));
}

#[test]
fn require_sha256_refuses_sha1_alone() {
    let d = definition_with(json!([]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": SECRET});
    });
    let w = Webhook::options().require_sha256(true).build(&d, &config()).unwrap();
    let v = w.evaluate(&Request::new(BODY).header("X-Hub-Signature", &sig1(BODY)));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Missing { sha256_required: true })));
    assert!(w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", &sig256(BODY))).is_trigger());
}

#[test]
fn missing_malformed_and_repeated_signatures() {
    let w = hmac_webhook(json!([]));
    let v = w.evaluate(&Request::new(BODY));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Missing { sha256_required: false })));
    let good = sig256(BODY);
    for bad in [
        "".to_owned(),
        good.replace("sha256=", "sha1="),
        good.replace("sha256=", "SHA256="),
        good[..good.len() - 1].to_owned(),
        format!("{good}0"),
        good.replace("sha256=", "sha256= "),
        format!("{}z", &good[..good.len() - 1]),
        format!("{good}\r\nX-Injected: 1"),
        hex_only(&good),
    ] {
        let v = w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", &bad));
        assert_eq!(
            v.rejection(),
            Some(&Rejection::Signature(SignatureError::Malformed(SignatureHeader::Sha256))),
            "{bad:?}"
        );
        assert!(
            !v.to_string().contains(&bad[bad.len().min(10)..]) || bad.len() <= 10,
            "verdict echoes the header: {v}"
        );
    }
    let v = w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", &good).header("x-hub-signature-256", &good));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Repeated(SignatureHeader::Sha256))));
    let v =
        w.evaluate(&Request::new(BODY).header("X-Hub-Signature", &sig1(BODY)).header("X-Hub-Signature", &sig1(BODY)));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Repeated(SignatureHeader::Sha1))));
    // HTTP's optional whitespace around a value is not part of it.
    assert!(w.evaluate(&Request::new(BODY).header("X-Hub-Signature-256", &format!(" {good}\t"))).is_trigger());
}

fn hex_only(sig: &str) -> String {
    sig["sha256=".len()..].to_owned()
}

#[test]
fn an_unauthenticated_body_never_reaches_the_parser() {
    let w = hmac_webhook(json!([{"jsonPath": "$.ref"}]));
    // Invalid JSON with a wrong signature: the reject is about the signature, not the JSON.
    let v = w.evaluate(&Request::new("{not json").header("X-Hub-Signature-256", &sig256("x")));
    assert_eq!(step(&v), Some(Step::Signature));
    let v = w.evaluate(&Request::new("{not json").header("X-Hub-Signature-256", &sig256("{not json")));
    assert_eq!(step(&v), Some(Step::Payload));
}

// --- 3. Body ----------------------------------------------------------------------------------------

#[test]
fn form_delivery_signs_raw_bytes_and_filters_the_decoded_json() {
    let w = hmac_webhook(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}]));
    let form = "payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D";
    let s = sig256(form);
    let req = Request::new(form)
        .header("X-Hub-Signature-256", &s)
        .header("Content-Type", "application/x-www-form-urlencoded");
    assert!(w.evaluate(&req).is_trigger());
    // Without the form content type the same bytes are not JSON.
    let v = w.evaluate(&Request::new(form).header("X-Hub-Signature-256", &s));
    assert_eq!(step(&v), Some(Step::Payload));
    // The signature over the decoded JSON is not the signature of the delivery.
    let decoded = r#"{"ref":"refs/heads/main"}"#;
    let decoded_sig = sig256(decoded);
    let req = Request::new(form)
        .header("X-Hub-Signature-256", &decoded_sig)
        .header("Content-Type", "application/x-www-form-urlencoded");
    assert_eq!(step(&w.evaluate(&req)), Some(Step::Signature));
}

#[test]
fn invalid_json_anywhere_is_a_reject_never_a_partial_match() {
    let w = unauthenticated(json!([{"jsonPath": "$.ref", "matchEquals": "x"}]));
    for body in [
        r#"{"ref":"x","after":[1,2,}"#,
        r#"{"ref":"x"} trailing"#,
        r#"{"ref":"x"}{}"#,
        "\u{feff}{\"ref\":\"x\"}",
        r#"{"ref":"x","n":1e400}"#,
        r#"{"ref":"x","s":"\ud800"}"#,
        "{\"ref\":\"x\",\"nul\":\"\u{0}\"}",
        "",
        "   ",
    ] {
        let v = w.evaluate(&Request::new(body));
        assert_eq!(step(&v), Some(Step::Payload), "{body:?}: {v}");
    }
    let v = w.evaluate(&Request::new(b"{\"ref\":\"x\xff\"}"));
    assert!(v.to_string().contains("not UTF-8"), "{v}");
    let v = w.evaluate(&Request::new(r#"{"ref":"x","after":[1,2,}"#));
    assert!(v.to_string().contains("line 1 column"), "{v}");
}

#[test]
fn a_repeated_content_type_is_a_payload_reject() {
    let w = unauthenticated(json!([]));
    let twice =
        Request::new("{}").header("Content-Type", "application/json").header("content-type", "application/json");
    let v = w.evaluate(&twice);
    assert_eq!(step(&v), Some(Step::Payload));
    assert!(v.to_string().contains("the Content-Type header is repeated"), "{v}");
    // Any other single content type is read as JSON.
    assert!(w.evaluate(&Request::new("{}").header("Content-Type", "text/plain")).is_trigger());
}

#[test]
fn duplicate_keys_last_one_wins() {
    for filters in [
        json!([{"jsonPath": "$.ref", "matchEquals": "b"}]),
        json!([{"jsonPath": "$.ref", "matchEquals": "b"}, {"jsonPath": "$..nothing"}]),
    ] {
        let w = unauthenticated(filters.clone());
        let v = w.evaluate(&Request::new(r#"{"ref":"a","ref":"b","nothing":1}"#));
        assert!(v.is_trigger(), "{filters}: {v}");
        assert!(!w.evaluate(&Request::new(r#"{"ref":"b","ref":"a","nothing":1}"#)).is_trigger());
    }
}

#[test]
fn body_size_limit() {
    let d = definition_with(json!([]), |_| {});
    let w = Webhook::options().max_body_bytes(10).build(&d, &config()).unwrap();
    assert!(w.evaluate(&Request::new(r#"{"a":"12"}"#)).is_trigger());
    let v = w.evaluate(&Request::new(r#"{"a":"123"}"#));
    assert_eq!(v.rejection(), Some(&Rejection::PayloadTooLarge { size: 11, limit: 10 }));
    assert_eq!(codepipeline_webhooks::limits::DEFAULT_MAX_BODY_BYTES, 25 * 1024 * 1024);
}

#[test]
fn nesting_depth_limit_in_both_lanes() {
    let nested = |n: usize| format!("{{\"a\":{}{}}}", "[".repeat(n - 1), "]".repeat(n - 1));
    for filters in [json!([{"jsonPath": "$.a"}]), json!([{"jsonPath": "$..a"}])] {
        let w = unauthenticated(filters.clone());
        assert!(w.evaluate(&Request::new(&nested(128))).is_trigger(), "{filters}");
        let v = w.evaluate(&Request::new(&nested(129)));
        assert_eq!(step(&v), Some(Step::Payload), "{filters}");
        assert!(v.to_string().contains("nesting depth exceeds the limit of 128"), "{v}");
        let deep = "[".repeat(1_000_000);
        assert_eq!(step(&w.evaluate(&Request::new(&deep))), Some(Step::Payload));
    }
    let d = definition_with(json!([]), |_| {});
    let w = Webhook::options().max_depth(2).build(&d, &config()).unwrap();
    assert!(w.evaluate(&Request::new(r#"{"a":[1]}"#)).is_trigger());
    assert!(!w.evaluate(&Request::new(r#"{"a":[[1]]}"#)).is_trigger());
}

// --- 4. Filters -------------------------------------------------------------------------------------

#[test]
fn singular_paths_compare_scalars_by_their_text() {
    let body = r#"{"s":"refs/heads/main","esc":"a\"b\u00e9","i":42,"neg":-7,"f":1.50,"e":1e2,"big":12345678901234567890,"t":true,"fa":false,"n":null,"o":{"k":1},"o2":{},"a":[1]}"#;
    for (path, expected, pass) in [
        ("$.s", "refs/heads/main", true),
        ("$.s", "refs/heads/Main", false),
        ("$.s", "refs/heads/main ", false),
        ("$.esc", "a\"b\u{e9}", true),
        ("$.i", "42", true),
        ("$.i", "42.0", false),
        ("$.neg", "-7", true),
        ("$.f", "1.5", true),
        ("$.f", "1.50", false),
        ("$.e", "100.0", true),
        ("$.e", "100", false),
        ("$.big", "12345678901234567890", true),
        ("$.t", "true", true),
        ("$.t", "True", false),
        ("$.fa", "false", true),
        ("$.n", "null", true),
        ("$.n", "Null", false),
        ("$.o2", "{}", false),
        ("$.a", "[1]", false),
        ("$.missing", "x", false),
        ("$['s']", "refs/heads/main", true),
        ("$.a[0]", "1", true),
        ("$.a[1]", "1", false),
    ] {
        let w = unauthenticated(json!([{"jsonPath": path, "matchEquals": expected}]));
        assert_eq!(w.evaluate(&Request::new(body)).is_trigger(), pass, "{path} == {expected:?}");
    }
}

#[test]
fn indefinite_paths_pass_when_any_selected_scalar_equals() {
    let body = r#"{"commits":[{"modified":["src/a.rs"]},{"modified":["README.md","docs/x.md"]}],"labels":[{"name":"bug"},{"name":"deploy"}]}"#;
    for (path, expected, pass) in [
        ("$.commits[*].modified[*]", "README.md", true),
        ("$..modified[*]", "docs/x.md", true),
        ("$.commits[*].modified[*]", "LICENSE", false),
        ("$.labels[?@.name == 'deploy'].name", "deploy", true),
        ("$.labels[*].name", "deploy", true),
        ("$.labels[0:1].name", "deploy", false),
        ("$['labels','commits'][0].name", "bug", true),
        ("$.commits[-1].modified[0]", "README.md", true),
        ("$.commits[*]", "README.md", false),
    ] {
        let w = unauthenticated(json!([{"jsonPath": path, "matchEquals": expected}]));
        assert_eq!(w.evaluate(&Request::new(body)).is_trigger(), pass, "{path} == {expected:?}");
    }
}

#[test]
fn rules_without_match_equals_need_a_selection() {
    let w = unauthenticated(json!([{"jsonPath": "$.pull_request"}, {"jsonPath": "$.labels[?@.name == 'deploy']"}]));
    assert!(w.evaluate(&Request::new(r#"{"pull_request":null,"labels":[{"name":"deploy"}]}"#)).is_trigger());
    let v = w.evaluate(&Request::new(r#"{"labels":[{"name":"deploy"}]}"#));
    assert_eq!(filter_found(&v), (0, Found::Nothing));
    assert_eq!(v.to_string(), "reject: webhook 'hook' at filter: filter 0 ($.pull_request) selected nothing");
    let v = w.evaluate(&Request::new(r#"{"pull_request":{},"labels":[{"name":"bug"}]}"#));
    assert_eq!(filter_found(&v), (1, Found::Nothing));
}

#[test]
fn every_filter_must_pass_and_the_first_failure_is_reported() {
    let w = unauthenticated(json!([
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
        {"jsonPath": "$.repository.name", "matchEquals": "{Repo}"},
        {"jsonPath": "$.deleted", "matchEquals": "false"}
    ]));
    assert!(
        w.evaluate(&Request::new(r#"{"ref":"refs/heads/main","repository":{"name":"app"},"deleted":false}"#))
            .is_trigger()
    );
    let v = w.evaluate(&Request::new(r#"{"ref":"refs/heads/main","repository":{"name":"other"},"deleted":true}"#));
    let failure = v.rejection().unwrap().filter().unwrap();
    assert_eq!((failure.index(), failure.json_path(), failure.expected()), (1, "$.repository.name", Some("app")));
    assert_eq!(failure.found(), &Found::Value(json!("other")));
    let v = w.evaluate(&Request::new(r#"{"ref":"refs/heads/main","repository":{"name":"app"},"deleted":true}"#));
    assert_eq!(v.to_string(), r#"reject: webhook 'hook' at filter: filter 2 ($.deleted) expected "false", found true"#);
}

#[test]
fn found_values_are_shown_as_json_and_truncated() {
    let w = unauthenticated(json!([{"jsonPath": "$.s", "matchEquals": "x"}]));
    let long = "y".repeat(500);
    let v = w.evaluate(&Request::new(&json!({"s": long}).to_string()));
    let Found::Value(serde_json::Value::String(shown)) = filter_found(&v).1 else { panic!("{v}") };
    assert_eq!(shown.chars().count(), Found::MAX_SHOWN + 1);
    assert!(shown.starts_with("yyy") && shown.ends_with('…'));
    let v = w.evaluate(&Request::new(r#"{"s":{"a":1}}"#));
    assert_eq!(filter_found(&v).1, Found::Object);
    let w = unauthenticated(json!([{"jsonPath": "$.a[*]", "matchEquals": "x"}]));
    let v = w.evaluate(&Request::new(r#"{"a":["p","q",3]}"#));
    let first = vec![Found::Value(json!("p")), Found::Value(json!("q")), Found::Value(json!(3))];
    assert_eq!(filter_found(&v).1, Found::Values { count: 3, first });
    assert!(v.to_string().ends_with(r#"expected "x", found 3 values (first: "p", "q", 3)"#), "{v}");
    let w = unauthenticated(json!([{"jsonPath": "$[*]", "matchEquals": "x"}]));
    let v = w.evaluate(&Request::new("[1,2,3,4,5]"));
    assert!(v.to_string().ends_with("found 5 values (first: 1, 2, 3)"), "{v}");
}

#[test]
fn a_webhook_without_filters_triggers_on_any_authenticated_json() {
    let w = unauthenticated(json!([]));
    assert!(w.evaluate(&Request::new("[]")).is_trigger());
    assert!(w.evaluate(&Request::new("\"just a string\"")).is_trigger());
    assert!(!w.evaluate(&Request::new("nope")).is_trigger());
}

// --- 5. Verdict -------------------------------------------------------------------------------------

#[test]
fn verdict_json_names_decision_step_and_filter_index() {
    let w = unauthenticated(json!([{"jsonPath": "$.a", "matchEquals": "1"}, {"jsonPath": "$.b", "matchEquals": "2"}]));
    let trigger = serde_json::to_value(w.evaluate(&Request::new(r#"{"a":1,"b":2}"#))).unwrap();
    assert_eq!(trigger, json!({"decision": "trigger", "webhook": "hook", "pipeline": "pipe", "action": "Source"}));
    let reject = serde_json::to_value(w.evaluate(&Request::new(r#"{"a":1,"b":3}"#))).unwrap();
    assert_eq!(reject["decision"], "reject");
    assert_eq!(reject["step"], "filter");
    assert_eq!(reject["filter_index"], 1);
    assert_eq!(reject["expected"], "2");
    assert_eq!(reject["found"], 3, "found is typed JSON: the number itself");
    assert_eq!((reject["webhook"].as_str(), reject["pipeline"].as_str()), (Some("hook"), Some("pipe")));
    let nothing = serde_json::to_value(w.evaluate(&Request::new(r#"{"a":1}"#))).unwrap();
    assert_eq!(nothing["found"], json!({"type": "nothing"}), "selected nothing is not a JSON null");
    let null = serde_json::to_value(w.evaluate(&Request::new(r#"{"a":1,"b":null}"#))).unwrap();
    assert_eq!(null["found"], serde_json::Value::Null, "a selected JSON null is null");
    let several = unauthenticated(json!([{"jsonPath": "$.a[*]", "matchEquals": "x"}]));
    let several = serde_json::to_value(several.evaluate(&Request::new(r#"{"a":["p",{"q":1},[2]]}"#))).unwrap();
    assert_eq!(several["found"], json!({"count": 3, "first": ["p", {"type": "object"}, {"type": "array"}]}));
    let payload = serde_json::to_value(w.evaluate(&Request::new("x"))).unwrap();
    assert_eq!(payload["step"], "payload");
    assert!(payload.get("filter_index").is_none());
    // Every verdict, trigger or reject, names its webhook.
    for body in [r#"{"a":1,"b":2}"#, r#"{"a":1,"b":3}"#, "x"] {
        let v = w.evaluate(&Request::new(body));
        assert_eq!((v.webhook_name(), v.target_pipeline(), v.target_action()), ("hook", "pipe", "Source"), "{v}");
    }
}

#[test]
fn evaluates_concurrently_from_many_threads() {
    let w = std::sync::Arc::new(hmac_webhook(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}])));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let w = w.clone();
            std::thread::spawn(move || {
                for j in 0..200 {
                    let branch = if (i + j) % 2 == 0 { "main" } else { "dev" };
                    let body = format!(r#"{{"ref":"refs/heads/{branch}"}}"#);
                    let s = sig256(&body);
                    assert_eq!(
                        w.evaluate(&Request::new(&body).header("X-Hub-Signature-256", &s)).is_trigger(),
                        branch == "main"
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

// --- 6. Hosts: rotation and the public signature check ---------------------------------------------

#[test]
fn previous_secrets_verify_with_the_same_rules_and_say_so() {
    let d = definition_with(json!([]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": "current"});
    });
    let webhook = Webhook::options()
        .accept_previous_secret("old-1")
        .accept_previous_secret("old-2")
        .build(&d, &config())
        .unwrap();
    let body = "{}";
    let with = |secret: &str| github::signature_256(secret.as_bytes(), body.as_bytes());
    for (secret, trigger, previous) in
        [("current", true, false), ("old-1", true, true), ("old-2", true, true), ("other", false, false)]
    {
        let v = webhook.evaluate(&Request::new(body).header("X-Hub-Signature-256", &with(secret)));
        assert_eq!((v.is_trigger(), v.used_previous_secret()), (trigger, previous), "{secret}: {v}");
    }
    // No downgrade: a wrong SHA-256 header is not rescued by a SHA-1 header of a previous secret.
    let sha1 = github::signature_1(b"old-1", body.as_bytes());
    let v = webhook
        .evaluate(&Request::new(body).header("X-Hub-Signature-256", &with("other")).header("X-Hub-Signature", &sha1));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha256))));
    // Alone, SHA-1 with a previous secret verifies; with require_sha256 it is missing.
    assert!(webhook.evaluate(&Request::new(body).header("X-Hub-Signature", &sha1)).used_previous_secret());
    let strict = Webhook::options().require_sha256(true).accept_previous_secret("old-1").build(&d, &config()).unwrap();
    let v = strict.evaluate(&Request::new(body).header("X-Hub-Signature", &sha1));
    assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Missing { sha256_required: true })));
    // The verdict's text and JSON say it.
    let v = webhook.evaluate(&Request::new(body).header("X-Hub-Signature-256", &with("old-2")));
    assert!(v.to_string().ends_with("signed with a previous secret"), "{v}");
    assert_eq!(serde_json::to_value(&v).unwrap()["used_previous_secret"], true);
}

#[test]
fn a_previous_secret_past_its_deadline_is_not_tried() {
    use std::time::{Duration, UNIX_EPOCH};
    let d = definition_with(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": "current"});
    });
    let deadline = UNIX_EPOCH + Duration::from_secs(1_700_003_600);
    let webhook = Webhook::options().accept_previous_secret_until("old", deadline).build(&d, &config()).unwrap();
    let body = r#"{"ref":"refs/heads/dev"}"#;
    let old = github::signature_256(b"old", body.as_bytes());
    let request = Request::new(body).header("X-Hub-Signature-256", &old);
    let mismatch = Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha256));
    // Before the deadline the old key verifies and the filter decides; at and after it, and
    // without a clock reading, the key is not tried: a signature reject, the body never parsed.
    let before = webhook.evaluate(&request.now(deadline - Duration::from_secs(1)));
    assert_eq!(before.step(), Some(Step::Filter), "{before}");
    for v in [webhook.evaluate(&request.now(deadline)), webhook.evaluate(&request)] {
        assert_eq!(v.rejection(), Some(&mismatch), "{v}");
    }
    let old_invalid = github::signature_256(b"old", b"{");
    let invalid = Request::new("{").header("X-Hub-Signature-256", &old_invalid);
    assert_eq!(webhook.evaluate(&invalid.now(deadline)).rejection(), Some(&mismatch));
    // The current secret needs no clock.
    let current = github::signature_256(b"current", br#"{"ref":"refs/heads/main"}"#);
    assert!(
        webhook
            .evaluate(&Request::new(r#"{"ref":"refs/heads/main"}"#).header("X-Hub-Signature-256", &current))
            .is_trigger()
    );
    let ok = github::signature_256(b"old", br#"{"ref":"refs/heads/main"}"#);
    let v = webhook
        .evaluate(&Request::new(r#"{"ref":"refs/heads/main"}"#).header("X-Hub-Signature-256", &ok).now(UNIX_EPOCH));
    assert!(v.is_trigger() && v.used_previous_secret(), "{v}");
}

#[test]
fn github_verify_decides_as_evaluate_does() {
    let webhook = hmac_webhook(json!([]));
    let body = "{}";
    let good = sig256(body);
    let sha1 = github::signature_1(SECRET.as_bytes(), body.as_bytes());
    let cases: Vec<Vec<(&str, &str)>> = vec![
        vec![("X-Hub-Signature-256", &good)],
        vec![("x-hub-signature", &sha1)],
        vec![],
        vec![("X-Hub-Signature-256", "sha256=00")],
        vec![("X-Hub-Signature-256", &good), ("X-Hub-Signature-256", &good)],
        vec![("X-Hub-Signature", &sha1), ("X-Hub-Signature", &sha1)],
        vec![("X-Hub-Signature-256", "sha256=zz"), ("X-Hub-Signature", &sha1)],
    ];
    for headers in cases {
        let mut request = Request::new(body);
        for (name, value) in &headers {
            request.add_header(name, value.as_bytes());
        }
        let verified = github::verify(SECRET.as_bytes(), &request);
        let verdict = webhook.evaluate(&request);
        match verified {
            Ok(()) => assert!(verdict.is_trigger(), "{headers:?}: {verdict}"),
            Err(e) => assert_eq!(verdict.rejection(), Some(&Rejection::Signature(e)), "{headers:?}"),
        }
    }
}

// --- The HTTP answer -------------------------------------------------------------------------------

#[test]
fn http_answer_tells_the_reason_only_to_a_sender_that_proved_the_secret() {
    // The forms of the answer, which must agree: the `Value`, the bytes written in one pass, and
    // the status alone.
    let answer = |w: &Webhook, r: &Request<'_>| {
        let verdict = w.evaluate(r);
        let a = verdict.http_answer();
        let (status, bytes) = verdict.http_answer_json();
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).expect("the bytes are JSON");
        assert_eq!((status, &parsed), (a.status(), a.body()), "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(verdict.http_status(), a.status());
        (a.status(), a.body().clone())
    };
    let hmac = hmac_webhook(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}]));
    assert_eq!(answer(&hmac, &Request::new(BODY).header("X-Hub-Signature-256", &sig256(BODY))), (202, json!({})));
    let dev = r#"{"ref":"refs/heads/dev"}"#;
    assert_eq!(
        answer(&hmac, &Request::new(dev).header("X-Hub-Signature-256", &sig256(dev))),
        (200, json!({"ignored": r#"filter 0 ($.ref) expected "refs/heads/main", found "refs/heads/dev""#}))
    );
    // What the payload holds is quoted in the reason as JSON (quotes, a backslash, a newline, a
    // control character escaped; a character outside ASCII as it is), and the reason is escaped
    // once more as the answer's JSON string: both forms of the answer agree (`answer` checks).
    let odd = r#"{"ref":"refs/heads/\"q\\b\nn\u0001é"}"#;
    let (status, body) = answer(&hmac, &Request::new(odd).header("X-Hub-Signature-256", &sig256(odd)));
    assert_eq!(status, 200);
    let reason = body["ignored"].as_str().unwrap();
    assert!(reason.ends_with(r#"found "refs/heads/\"q\\b\nn\u0001é""#), "{reason}");
    // Unsigned, or signed with another secret: 403 and nothing else.
    assert_eq!(answer(&hmac, &Request::new(dev)), (403, json!({})));
    let forged = github::signature_256(b"not the secret", dev.as_bytes());
    assert_eq!(answer(&hmac, &Request::new(dev).header("X-Hub-Signature-256", &forged)), (403, json!({})));
    // Malformed JSON after a good signature: 400 with the reason.
    let (status, body) = answer(&hmac, &Request::new("{").header("X-Hub-Signature-256", &sig256("{")));
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"), "{body}");
    // curl -d declares a form: the reason says so, to the sender that proved the secret.
    let form = r#"{"ref":"refs/heads/main"}"#;
    let (status, body) = answer(
        &hmac,
        &Request::new(form)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Hub-Signature-256", &sig256(form)),
    );
    assert_eq!(status, 400);
    let reason = body["error"].as_str().unwrap();
    assert!(reason.contains("no payload field") && reason.contains("curl -d"), "{reason}");
    // Strangers to an UNAUTHENTICATED or IP webhook learn nothing of its filters.
    let open = unauthenticated(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}]));
    assert_eq!(answer(&open, &Request::new(dev)), (200, json!({})));
    assert_eq!(answer(&open, &Request::new("{")), (400, json!({})));
    assert_eq!(answer(&ip_webhook("10.0.0.0/8"), &Request::new(BODY).source_ip([192, 0, 2, 1])), (403, json!({})));
    // Too large is decided before the signature: it proves nothing.
    let small = Webhook::options()
        .max_body_bytes(4)
        .build(
            &definition_with(json!([{"jsonPath": "$.ref"}]), |v| {
                v["authentication"] = json!("GITHUB_HMAC");
                v["authenticationConfiguration"] = json!({"SecretToken": SECRET});
            }),
            &config(),
        )
        .unwrap();
    assert_eq!(answer(&small, &Request::new(BODY).header("X-Hub-Signature-256", &sig256(BODY))), (413, json!({})));
}
