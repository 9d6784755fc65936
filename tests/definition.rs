//! The AWS shapes, wire-exact, and the model constraints, all ValidationException (README: "What it decides").

mod common;

use codepipeline_webhooks::{
    ErrorCode, PutWebhookInput, Tag, Webhook, WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule,
};
use common::*;
use serde_json::{Value, json};

fn model_error(edit: impl FnOnce(&mut Value)) -> codepipeline_webhooks::Error {
    let d = definition_with(json!([{"jsonPath": "$.ref"}]), edit);
    let err = d.validate().expect_err("violates the model");
    assert_eq!(err.code(), "ValidationException", "{err}");
    // Webhook::new reports the same error: model constraints come first.
    assert_eq!(Webhook::new(&d, &config()).unwrap_err(), err);
    err
}

#[test]
fn wire_names_round_trip() {
    let text = r#"{"webhook":{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$.ref","matchEquals":"refs/heads/{Branch}"},{"jsonPath":"$.x"}],"authentication":"GITHUB_HMAC","authenticationConfiguration":{"SecretToken":"s"}},"tags":[{"key":"k","value":"v"}]}"#;
    let input = PutWebhookInput::from_json(text).unwrap();
    assert_eq!(input.webhook.target_pipeline, "p");
    assert_eq!(input.webhook.filters[1], WebhookFilterRule { json_path: "$.x".into(), match_equals: None });
    assert_eq!(input.webhook.authentication, WebhookAuthenticationType::GithubHmac);
    assert_eq!(input.tags, vec![Tag { key: "k".into(), value: "v".into() }]);
    assert_eq!(serde_json::to_string(&input).unwrap(), text);
    let ip: WebhookDefinition = serde_json::from_value(json!({
        "name": "n", "targetPipeline": "p", "targetAction": "a", "filters": [],
        "authentication": "IP", "authenticationConfiguration": {"AllowedIPRange": "10.0.0.0/8"}
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&ip).unwrap()["authenticationConfiguration"],
        json!({"AllowedIPRange": "10.0.0.0/8"})
    );
}

#[test]
fn unknown_fields_are_refused_by_name() {
    for (doc, field) in [
        (
            r#"{"webhook":{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{"jsonPath":"$.a","matchEqual":"x"}],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}}}"#,
            "matchEqual",
        ),
        (
            r#"{"webhook":{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{"secretToken":"x"}}}"#,
            "secretToken",
        ),
        (
            r#"{"webhook":{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{},"url":"u"}}"#,
            "url",
        ),
        (
            r#"{"webhook":{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"UNAUTHENTICATED","authenticationConfiguration":{}},"tag":[]}"#,
            "tag",
        ),
    ] {
        let err = PutWebhookInput::from_json(doc).unwrap_err();
        assert_eq!(err.code(), "ValidationException");
        assert!(err.message().contains(&format!("unknown field `{field}`")), "{err}");
    }
}

#[test]
fn required_fields_and_enum_values() {
    let err = WebhookDefinition::from_json(r#"{"name":"n","targetPipeline":"p","targetAction":"a","authentication":"IP","authenticationConfiguration":{}}"#).unwrap_err();
    assert_eq!(err.code(), "ValidationException");
    assert!(err.message().contains("missing field `filters`"), "{err}");
    let err = WebhookDefinition::from_json(
        r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"IP"}"#,
    )
    .unwrap_err();
    assert!(err.message().contains("missing field `authenticationConfiguration`"), "{err}");
    let err = WebhookDefinition::from_json(r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[{}],"authentication":"IP","authenticationConfiguration":{}}"#).unwrap_err();
    assert!(err.message().contains("missing field `jsonPath`"), "{err}");
    let err = WebhookDefinition::from_json(r#"{"name":"n","targetPipeline":"p","targetAction":"a","filters":[],"authentication":"BASIC","authenticationConfiguration":{}}"#).unwrap_err();
    assert!(err.message().contains("GITHUB_HMAC"), "{err}");
}

#[test]
fn names_are_1_to_100_characters_of_the_aws_pattern() {
    for field in ["name", "targetPipeline", "targetAction"] {
        let err = model_error(|v| v[field] = json!(""));
        assert_eq!(err.field(), Some(format!("webhook.{field}").as_str()));
        assert!(err.message().contains("Member must have length greater than or equal to 1"), "{err}");
        let err = model_error(|v| v[field] = json!("a".repeat(101)));
        assert!(err.message().contains("Member must have length less than or equal to 100"), "{err}");
        let err = model_error(|v| v[field] = json!("has space"));
        assert!(err.message().starts_with("1 validation error detected: Value 'has space' at 'webhook."), "{err}");
        assert!(err.message().contains("regular expression pattern: [A-Za-z0-9.@\\-_]+"), "{err}");
        for bad in ["a/b", "a:b", "é", "a+b"] {
            model_error(|v| v[field] = json!(bad));
        }
    }
    let ok = definition_with(json!([]), |v| v["name"] = json!("a".repeat(100)));
    ok.validate().unwrap();
    definition_with(json!([]), |v| v["name"] = json!("Aa0.@-_")).validate().unwrap();
}

#[test]
fn lengths_count_unicode_scalar_values() {
    // 150 characters of 'é' are 300 bytes and still valid.
    let d = definition_with(json!([{"jsonPath": "$.a", "matchEquals": "é".repeat(150)}]), |_| {});
    d.validate().unwrap();
    let err = model_error(|v| v["filters"] = json!([{"jsonPath": "$.a", "matchEquals": "é".repeat(151)}]));
    assert_eq!(err.field(), Some("webhook.filters[0].matchEquals"));
}

#[test]
fn filters_at_most_five_with_bounded_fields() {
    let six: Vec<Value> = (0..6).map(|i| json!({"jsonPath": format!("$.a{i}")})).collect();
    let err = model_error(|v| v["filters"] = json!(six));
    assert_eq!(err.field(), Some("webhook.filters"));
    assert!(err.message().contains("less than or equal to 5"), "{err}");
    let five: Vec<Value> = (0..5).map(|i| json!({"jsonPath": format!("$.a{i}")})).collect();
    definition_with(json!(five), |_| {}).validate().unwrap();
    definition_with(json!([]), |_| {}).validate().unwrap();

    let err = model_error(|v| v["filters"] = json!([{"jsonPath": "$.a"}, {"jsonPath": ""}]));
    assert_eq!(err.field(), Some("webhook.filters[1].jsonPath"));
    let long_path = format!("$.{}", "a".repeat(149));
    let err = model_error(|v| v["filters"] = json!([{"jsonPath": long_path}]));
    assert!(err.message().contains("less than or equal to 150"), "{err}");
    let ok_path = format!("$.{}", "a".repeat(148));
    definition_with(json!([{"jsonPath": ok_path}]), |_| {}).validate().unwrap();
    let err = model_error(|v| v["filters"] = json!([{"jsonPath": "$.a", "matchEquals": ""}]));
    assert_eq!(err.field(), Some("webhook.filters[0].matchEquals"));
}

#[test]
fn secret_and_range_are_1_to_100_characters_and_the_secret_is_never_echoed() {
    let long_secret = "S".repeat(101);
    let err = model_error(|v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": long_secret});
    });
    assert_eq!(err.field(), Some("webhook.authenticationConfiguration.SecretToken"));
    assert!(!err.to_string().contains("SSSS"), "{err}");
    assert!(err.message().contains("Value '****'"), "{err}");
    model_error(|v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": ""});
    });
    let err = model_error(|v| {
        v["authentication"] = json!("IP");
        v["authenticationConfiguration"] = json!({"AllowedIPRange": "1".repeat(101)});
    });
    assert_eq!(err.field(), Some("webhook.authenticationConfiguration.AllowedIPRange"));
    // 100 characters is fine for the model.
    let d = definition_with(json!([]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": "x".repeat(100)});
    });
    Webhook::new(&d, &config()).unwrap();
}

#[test]
fn all_violations_are_reported_in_one_error() {
    let err = model_error(|v| {
        v["name"] = json!("bad name");
        v["targetAction"] = json!("");
    });
    assert!(err.message().starts_with("3 validation errors detected: "), "{err}");
    assert_eq!(err.field(), Some("webhook.name"));
}

fn input(tags: Value) -> PutWebhookInput {
    serde_json::from_value(
        json!({"webhook": serde_json::to_value(definition_with(json!([]), |_| {})).unwrap(), "tags": tags}),
    )
    .unwrap()
}

#[test]
fn tags_model_then_count_then_rules() {
    input(json!([{"key": "k", "value": ""}])).validate().unwrap();
    let err = input(json!([{"key": "", "value": "v"}])).validate().unwrap_err();
    assert_eq!((err.code(), err.field()), ("ValidationException", Some("tags.1.member.key")));
    let err = input(json!([{"key": "k".repeat(129), "value": "v"}])).validate().unwrap_err();
    assert_eq!(err.code(), "ValidationException");
    input(json!([{"key": "k".repeat(128), "value": "v".repeat(256)}])).validate().unwrap();
    let err = input(json!([{"key": "k", "value": "v".repeat(257)}])).validate().unwrap_err();
    assert_eq!((err.code(), err.field()), ("ValidationException", Some("tags.1.member.value")));

    let fifty: Vec<Value> = (0..50).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
    input(json!(fifty)).validate().unwrap();
    let fifty_one: Vec<Value> = (0..51).map(|i| json!({"key": format!("k{i}"), "value": "v"})).collect();
    let err = input(json!(fifty_one)).validate().unwrap_err();
    assert_eq!(err.kind(), ErrorCode::TooManyTagsException);
    assert_eq!(err.code(), "TooManyTagsException");

    let err = input(json!([{"key": "aws:cloudformation:stack", "value": "v"}])).validate().unwrap_err();
    assert_eq!(err.code(), "InvalidTagsException");
    let err = input(json!([{"key": "k", "value": "1"}, {"key": "k", "value": "2"}])).validate().unwrap_err();
    assert_eq!((err.code(), err.field()), ("InvalidTagsException", Some("tags[1].key")));
    // Model constraints come before the tag rules.
    let err = input(json!([{"key": "aws:x", "value": "v".repeat(300)}])).validate().unwrap_err();
    assert_eq!(err.code(), "ValidationException");
}

#[test]
fn debug_and_redacted_never_show_the_secret() {
    let d = definition_with(json!([]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": "hunter2-very-secret"});
    });
    assert!(!format!("{d:?}").contains("hunter2"));
    assert!(format!("{d:?}").contains("****"));
    let webhook = Webhook::new(&d, &config()).unwrap();
    assert!(!format!("{webhook:?}").contains("hunter2"), "{webhook:?}");
    let shown = serde_json::to_string(&d.redacted()).unwrap();
    assert!(shown.contains(r#""SecretToken":"****""#), "{shown}");
    assert!(!shown.contains("hunter2"));
}

/// The value of a secret member is never shown, whatever its type, by `from_json` (the
/// `ValidationException` the CLI and the registry print) or by serde itself.
#[test]
fn a_secret_of_the_wrong_type_is_never_echoed() {
    for secret in [
        json!(12345678),
        json!(12345678.5),
        json!(true),
        json!(["hunter2-in-array"]),
        json!({"k": "hunter2-in-object"}),
    ] {
        let doc = json!({"webhook": {"name": "n", "targetPipeline": "p", "targetAction": "a", "filters": [],
            "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": secret}}});
        let err = PutWebhookInput::from_json(&doc.to_string()).unwrap_err();
        assert_eq!(err.code(), "ValidationException");
        let shown = format!("{err} {err:?}");
        for needle in ["12345678", "true", "hunter2"] {
            assert!(!shown.contains(needle), "{secret}: {shown}");
        }
        assert!(err.message().contains("SecretToken"), "{err}");
        let direct = serde_json::from_value::<PutWebhookInput>(doc).unwrap_err().to_string();
        assert!(!direct.contains("12345678") && !direct.contains("hunter2"), "{direct}");
    }
    // Other members keep serde's message, value kind included but not the value.
    let doc = r#"{"webhook": {"name": 42, "targetPipeline": "p", "targetAction": "a", "filters": [],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}}}"#;
    let err = PutWebhookInput::from_json(doc).unwrap_err();
    assert!(err.message().contains("invalid type: integer, expected a string"), "{err}");
}

/// Control characters from a definition are escaped in every message: a value cannot split the
/// log line its error is written to, nor hide in it.
#[test]
fn control_characters_in_values_are_escaped_in_messages() {
    let ip = |range: &str| {
        Webhook::new(
            &definition_with(json!([]), |v| {
                v["authentication"] = json!("IP");
                v["authenticationConfiguration"] = json!({"AllowedIPRange": range});
            }),
            &config(),
        )
        .unwrap_err()
    };
    let err = ip("1.2.3.4\n");
    assert_eq!(err.code(), "InvalidWebhookAuthenticationParametersException");
    assert!(err.message().contains(r"'1.2.3.4\n'"), "{err}");
    for bad in ["1.2.3.4\n", "1.2.3.4\0", "1.2.3.4\r\nFAKE: log line", "\u{1b}[31m1.2.3.4", "1.2.3.4\u{202e}"] {
        let shown = ip(bad).to_string();
        assert!(!shown.contains(|c: char| c.is_control() || c == '\u{202e}'), "{bad:?}: {shown:?}");
    }
    // Model constraints quote the value: escaped there too.
    let err = model_error(|v| v["name"] = json!("bad\nname\0"));
    assert!(err.message().contains(r"Value 'bad\nname\0' at 'webhook.name'"), "{err}");
    assert!(!err.to_string().contains(|c: char| c.is_control()), "{err:?}");
    // An unknown member's name, as serde reports it.
    let err = PutWebhookInput::from_json(r#"{"webhook": {}, "ta\ngs": []}"#).unwrap_err();
    assert!(!err.to_string().contains(|c: char| c.is_control()), "{err:?}");
    let tags = input(json!([{"key": "aws:\u{7}", "value": ""}])).validate().unwrap_err();
    assert!(!tags.to_string().contains(|c: char| c.is_control()), "{tags:?}");
}

#[test]
fn ip_prefixes_with_leading_zeros_are_refused() {
    for range in ["10.0.0.0/08", "10.0.0.0/008", "10.0.0.0/00", "2001:db8::/032"] {
        let d = definition_with(json!([]), |v| {
            v["authentication"] = json!("IP");
            v["authenticationConfiguration"] = json!({"AllowedIPRange": range});
        });
        let err = Webhook::new(&d, &config()).unwrap_err();
        assert_eq!(err.code(), "InvalidWebhookAuthenticationParametersException", "{range}");
        assert!(err.message().contains("leading zero"), "{err}");
    }
}

#[test]
fn reserved_tag_keys_whatever_their_case() {
    for key in ["aws:x", "AWS:x", "Aws:x", "aWs:", "AWS:"] {
        let err = input(json!([{"key": key, "value": ""}])).validate().unwrap_err();
        assert_eq!(err.code(), "InvalidTagsException", "{key}");
    }
    for key in ["aws", "awsx:", "x-aws:", "é:aws:"] {
        input(json!([{"key": key, "value": ""}])).validate().unwrap();
    }
}
