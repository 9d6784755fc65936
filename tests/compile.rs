//! DESIGN.md §2: authentication parameters, placeholders and JsonPath, each with its exception.

mod common;

use codepipeline_webhooks::{ActionConfiguration, Webhook, WebhookAuthenticationType};
use common::*;
use serde_json::{Value, json};

fn auth_error(kind: &str, config: Value) -> codepipeline_webhooks::Error {
    compile_err(json!([]), |v| {
        v["authentication"] = json!(kind);
        v["authenticationConfiguration"] = config;
    })
}

#[test]
fn authentication_parameters_must_fit_the_type() {
    for (kind, config, field) in [
        ("GITHUB_HMAC", json!({}), "SecretToken"),
        ("GITHUB_HMAC", json!({"SecretToken": "s", "AllowedIPRange": "10.0.0.0/8"}), "AllowedIPRange"),
        ("IP", json!({}), "AllowedIPRange"),
        ("IP", json!({"AllowedIPRange": "10.0.0.0/8", "SecretToken": "s"}), "SecretToken"),
        ("IP", json!({"AllowedIPRange": "not-an-ip"}), "AllowedIPRange"),
        ("IP", json!({"AllowedIPRange": "10.0.0.0/33"}), "AllowedIPRange"),
        ("IP", json!({"AllowedIPRange": "2001:db8::/129"}), "AllowedIPRange"),
        ("IP", json!({"AllowedIPRange": "fe80::1%eth0"}), "AllowedIPRange"),
        ("IP", json!({"AllowedIPRange": "10/8"}), "AllowedIPRange"),
        ("UNAUTHENTICATED", json!({"SecretToken": "s"}), "SecretToken"),
        ("UNAUTHENTICATED", json!({"AllowedIPRange": "10.0.0.0/8"}), "AllowedIPRange"),
    ] {
        let err = auth_error(kind, config.clone());
        assert_eq!(err.code(), "InvalidWebhookAuthenticationParametersException", "{kind} {config}: {err}");
        assert_eq!(
            err.field(),
            Some(format!("webhook.authenticationConfiguration.{field}").as_str()),
            "{kind} {config}"
        );
        assert!(!err.to_string().contains("\"s\""), "{err}");
    }
}

#[test]
fn valid_authentication_compiles() {
    for (kind, auth, expected) in [
        ("GITHUB_HMAC", json!({"SecretToken": "s"}), WebhookAuthenticationType::GithubHmac),
        ("IP", json!({"AllowedIPRange": "10.0.0.0/8"}), WebhookAuthenticationType::Ip),
        ("IP", json!({"AllowedIPRange": "192.0.2.1"}), WebhookAuthenticationType::Ip),
        ("IP", json!({"AllowedIPRange": "2001:db8::/32"}), WebhookAuthenticationType::Ip),
        ("UNAUTHENTICATED", json!({}), WebhookAuthenticationType::Unauthenticated),
    ] {
        let d = definition_with(json!([]), |v| {
            v["authentication"] = json!(kind);
            v["authenticationConfiguration"] = auth;
        });
        assert_eq!(Webhook::new(&d, &config()).unwrap().authentication(), expected);
    }
}

#[test]
fn placeholders_resolve_once_from_the_action_configuration() {
    let webhook = unauthenticated(json!([
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
        {"jsonPath": "$.repository.full_name", "matchEquals": "{Owner}/{Repo}"},
        {"jsonPath": "$.x", "matchEquals": "{{Branch}} {} a}b{"},
        {"jsonPath": "$.y"}
    ]));
    let expected: Vec<Option<&str>> = webhook.expected_values().collect();
    assert_eq!(expected, vec![Some("refs/heads/main"), Some("octo-org/app"), Some("{main} {} a}b{"), None]);
}

#[test]
fn unknown_placeholder_keys_are_named_with_the_keys_that_exist() {
    let err =
        compile_err(json!([{"jsonPath": "$.a"}, {"jsonPath": "$.ref", "matchEquals": "refs/heads/{branch}"}]), |_| {});
    assert_eq!(err.code(), "InvalidWebhookFilterPatternException");
    assert_eq!(err.field(), Some("webhook.filters[1].matchEquals"));
    assert!(err.message().contains("no key 'branch'"), "{err}");
    assert!(err.message().contains("Branch, Owner, Repo"), "{err}");

    let d = definition_with(json!([{"jsonPath": "$.ref", "matchEquals": "{Branch}"}]), |_| {});
    let err = Webhook::new(&d, &ActionConfiguration::new()).unwrap_err();
    assert!(err.message().contains("it has no keys"), "{err}");
}

#[test]
fn jsonpath_that_does_not_parse_points_at_the_fault() {
    for path in ["$.", "$[", "$.a[?@.b ==]", "$..", "$['a'", "ref", "$.commits.length()", "$.a-b", "$[?(@.a =~ /x/)]"] {
        let err = compile_err(json!([{"jsonPath": path, "matchEquals": "x"}]), |_| {});
        assert_eq!(err.code(), "InvalidWebhookFilterPatternException", "{path}");
        assert_eq!(err.field(), Some("webhook.filters[0].jsonPath"), "{path}");
        assert!(err.message().contains("does not parse at character"), "{path}: {err}");
        assert!(err.message().contains(&format!("\n  {path}\n")), "{path}: {err}");
    }
    let err = compile_err(json!([{"jsonPath": "ref", "matchEquals": "x"}]), |_| {});
    assert!(err.message().contains("'$.ref'"), "{err}");
}

#[test]
fn jsonpath_error_comes_before_the_placeholder_of_the_same_rule() {
    let err = compile_err(json!([{"jsonPath": "$[", "matchEquals": "{Nope}"}]), |_| {});
    assert_eq!(err.field(), Some("webhook.filters[0].jsonPath"));
    let err = compile_err(json!([{"jsonPath": "$.a", "matchEquals": "{Nope}"}, {"jsonPath": "$["}]), |_| {});
    assert_eq!(err.field(), Some("webhook.filters[0].matchEquals"));
}

#[test]
fn authentication_is_checked_before_filters() {
    let err = compile_err(json!([{"jsonPath": "$["}]), |v| v["authentication"] = json!("IP"));
    assert_eq!(err.code(), "InvalidWebhookAuthenticationParametersException");
}

#[test]
fn depth_option_is_bounded() {
    let d = definition_with(json!([]), |_| {});
    assert_eq!(Webhook::builder(&d, &config()).max_depth(0).build().unwrap_err().code(), "ValidationException");
    assert!(Webhook::builder(&d, &config()).max_depth(513).build().is_err());
    assert!(Webhook::builder(&d, &config()).max_depth(512).build().is_ok());
}

#[test]
fn jayway_forms_of_the_readme_table() {
    // Parenthesised filters, Jayway's required form, are RFC 9535 too.
    let w = unauthenticated(json!([{"jsonPath": "$.labels[?(@.name == 'deploy')].name", "matchEquals": "deploy"}]));
    let body = r#"{"labels":[{"name":"bug"},{"name":"deploy"}],"commits":[{"added":[]},{"added":["a"]}]}"#;
    assert!(w.evaluate(&codepipeline_webhooks::Request::new(body)).is_trigger());
    let w = unauthenticated(json!([{"jsonPath": "$.commits[?length(@.added) > 0]"}]));
    assert!(w.evaluate(&codepipeline_webhooks::Request::new(body)).is_trigger());
    for jayway_only in [
        "$.labels[?(@.name in ['deploy'])]",
        "$.labels[?(@.name nin ['deploy'])]",
        "$.labels[?(@.name =~ /dep.*/)]",
        "$.labels.length()",
        "$.labels[?(@.name size 6)]",
        "$.labels[?(@.name empty false)]",
        "labels[0].name",
    ] {
        let err = compile_err(json!([{"jsonPath": jayway_only}]), |_| {});
        assert_eq!(err.code(), "InvalidWebhookFilterPatternException", "{jayway_only}");
    }
}

#[test]
fn builds_dom_only_for_paths_outside_the_singular_forms() {
    assert!(
        !unauthenticated(json!([{"jsonPath": "$.ref"}, {"jsonPath": "$['a'][0].b", "matchEquals": "x"}])).builds_dom()
    );
    assert!(!unauthenticated(json!([])).builds_dom());
    assert!(unauthenticated(json!([{"jsonPath": "$.ref"}, {"jsonPath": "$.a[*]"}])).builds_dom());
    assert!(unauthenticated(json!([{"jsonPath": "$.a[-1]"}])).builds_dom());
}

/// Regression: fuzz/artifacts/differential/crash-ad641e53 (`$['\u` then JSON). serde_json_path
/// 0.7.2 panics on a path that ends inside a `\u` escape; compiling refuses it instead.
#[test]
fn a_path_ending_inside_a_unicode_escape_is_refused() {
    for path in [r"$['\u", r"$['\uD", r"$['\uD834\u", r#"$[?@ == "\u"#] {
        let err = compile_err(json!([{"jsonPath": path}]), |_| {});
        assert_eq!(err.code(), "InvalidWebhookFilterPatternException", "{path}");
    }
}
