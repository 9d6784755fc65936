//! Authentication parameters, placeholders and JsonPath, each with its exception (README: "What it decides").

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
fn unknown_placeholder_keys_stay_literal_with_a_warning_naming_the_keys_that_exist() {
    let filters = json!([{"jsonPath": "$.a"}, {"jsonPath": "$.ref", "matchEquals": "refs/heads/{branch}"}]);
    let d = definition_with(filters, |_| {});
    let webhook = Webhook::new(&d, &config()).unwrap();
    assert_eq!(webhook.expected_values().collect::<Vec<_>>(), [None, Some("refs/heads/{branch}")]);
    let [warning] = webhook.warnings() else { panic!("{:?}", webhook.warnings()) };
    assert_eq!(warning.field(), "webhook.filters[1].matchEquals");
    assert!(warning.message().contains("`{branch}` is not a key"), "{warning}");
    assert!(warning.message().contains("keys: Branch, Owner, Repo"), "{warning}");
    assert!(warning.message().contains("did you mean `{Branch}`?"), "{warning}");
    // It is matched literally, as AWS's plain replacement leaves it.
    let body = r#"{"a":1,"ref":"refs/heads/{branch}"}"#;
    assert!(webhook.evaluate(&codepipeline_webhooks::Request::new(body)).is_trigger());
    // deny_warnings makes it the exception AWS users would want.
    let err = Webhook::options().deny_warnings(true).build(&d, &config()).unwrap_err();
    assert_eq!(err.code(), "InvalidWebhookFilterPatternException");
    assert_eq!(err.field(), Some("webhook.filters[1].matchEquals"));
    assert!(err.message().contains("`{branch}` is not a key"), "{err}");

    let d = definition_with(json!([{"jsonPath": "$.ref", "matchEquals": "{Branch}"}]), |_| {});
    let webhook = Webhook::new(&d, &ActionConfiguration::new()).unwrap();
    assert!(webhook.warnings()[0].message().contains("it has no keys"), "{:?}", webhook.warnings());
}

#[test]
fn github_url_templates_are_values_not_placeholders() {
    let template = "https://api.github.com/users/octocat/starred{/owner}{/repo}";
    let d = definition_with(json!([{"jsonPath": "$.sender.starred_url", "matchEquals": template}]), |_| {});
    let webhook = Webhook::new(&d, &config()).unwrap();
    let body = json!({"sender": {"starred_url": template}}).to_string();
    assert!(webhook.evaluate(&codepipeline_webhooks::Request::new(&body)).is_trigger());
    assert_eq!(webhook.warnings().len(), 2, "{:?}", webhook.warnings());
    assert!(webhook.warnings()[0].message().contains("did you mean `{Owner}`?"), "{:?}", webhook.warnings());
}

#[test]
fn secret_keys_of_the_action_are_resolved_but_never_shown() {
    let config: ActionConfiguration =
        [("OAuthToken", "gh0_s3cret"), ("ApiKey", "k3y"), ("Branch", "main")].into_iter().collect();
    let filters = json!([
        {"jsonPath": "$.token", "matchEquals": "{OAuthToken}"},
        {"jsonPath": "$.key", "matchEquals": "key={ApiKey}"},
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}
    ]);
    let d = definition_with(filters, |_| {});
    let webhook = Webhook::options().secret_key("ApiKey").build(&d, &config).unwrap();
    assert_eq!(
        webhook.expected_values().collect::<Vec<_>>(),
        [Some("{OAuthToken}"), Some("key={ApiKey}"), Some("refs/heads/main")]
    );
    fn request(body: &str) -> codepipeline_webhooks::Request<'_> {
        codepipeline_webhooks::Request::new(body)
    }
    let ok = r#"{"token":"gh0_s3cret","key":"key=k3y","ref":"refs/heads/main"}"#;
    assert!(webhook.evaluate(&request(ok)).is_trigger());
    let v = webhook.evaluate(&request(r#"{"token":"x"}"#));
    let shown = format!("{v} {v:?} {} {webhook:?}", serde_json::to_string(&v).unwrap());
    assert!(shown.contains("{OAuthToken}"), "{shown}");
    let v = webhook.evaluate(&request(r#"{"token":"gh0_s3cret","key":"nope"}"#));
    let shown = format!("{shown} {v} {v:?} {}", serde_json::to_string(&v).unwrap());
    assert!(shown.contains("key={ApiKey}"), "{shown}");
    assert!(!shown.contains("gh0_s3cret") && !shown.contains("k3y"), "{shown}");
}

#[test]
fn filter_traps_are_warnings() {
    let d = definition_with(json!([{"jsonPath": "$[?@.ref == 'refs/heads/main']"}]), |_| {});
    let webhook = Webhook::new(&d, &config()).unwrap();
    let [warning] = webhook.warnings() else { panic!("{:?}", webhook.warnings()) };
    assert_eq!(warning.field(), "webhook.filters[0].jsonPath");
    assert!(warning.message().contains("each top-level value"), "{warning}");
    assert!(warning.message().contains("`$.ref`"), "{warning}");
    // A filter below the root, or on the root's own members through `$`, is not the trap.
    for path in ["$.commits[?@.id == 'a']", "$[?$.ref == 'x']", "$..[?@.ref]"] {
        let d = definition_with(json!([{ "jsonPath": path }]), |_| {});
        assert!(Webhook::new(&d, &config()).unwrap().warnings().is_empty(), "{path}");
    }
    let d = definition_with(json!([{"jsonPath": "$.commits[*].modified[*]", "matchEquals": "services/api/*"}]), |_| {});
    let webhook = Webhook::new(&d, &config()).unwrap();
    let [on_aws, warning] = webhook.warnings() else { panic!("{:?}", webhook.warnings()) };
    assert_eq!(warning.field(), "webhook.filters[0].matchEquals");
    assert!(warning.message().contains("search()"), "{warning}");
    assert_eq!(on_aws.field(), "webhook.filters[0].matchEquals");
    assert!(on_aws.message().contains("on AWS this filter never passes"), "{on_aws}");
    // On a singular path a `*` is just a character to compare.
    let d = definition_with(json!([{"jsonPath": "$.ref", "matchEquals": "refs/heads/*"}]), |_| {});
    assert!(Webhook::new(&d, &config()).unwrap().warnings().is_empty());
}

#[test]
fn an_indefinite_path_with_match_equals_warns_that_on_aws_it_never_passes() {
    use codepipeline_webhooks::{Request, WebhookSet};
    let filters = json!([
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/main"},
        {"jsonPath": "$.commits[*].modified[*]", "matchEquals": "README.md"}
    ]);
    let d = definition_with(filters, |_| {});
    let push = Request::new(r#"{"ref":"refs/heads/main","commits":[{"modified":["README.md"]}]}"#);
    let extension = Webhook::new(&d, &config()).unwrap();
    let aws = Webhook::options().aws_exact(true).build(&d, &config()).unwrap();
    for webhook in [&extension, &aws] {
        let [warning] = webhook.warnings() else { panic!("{:?}", webhook.warnings()) };
        assert_eq!(warning.field(), "webhook.filters[1].matchEquals");
        assert!(warning.message().contains("on AWS this filter never passes"), "{warning}");
    }
    assert!(extension.warnings()[0].message().contains("any selected value"));
    assert!(extension.evaluate(&push).is_trigger());
    // As on AWS: the list never equals the string; the verdict shows what was selected.
    let v = aws.evaluate(&push);
    assert_eq!(v.to_string(), aws.evaluate(&push).to_string());
    assert!(
        v.to_string().contains(r#"filter 1 ($.commits[*].modified[*]) expected "README.md", found "README.md""#),
        "{v}"
    );
    let set = WebhookSet::new([extension.clone(), aws.clone()]);
    assert_eq!(set.matches(&push).into_iter().collect::<Vec<_>>(), vec![0]);
    // Without matchEquals, or with a singular path, the two modes agree.
    for filters in [
        json!([{"jsonPath": "$.commits[*].modified[*]"}]),
        json!([{"jsonPath": "$.commits[0].modified[0]", "matchEquals": "README.md"}]),
    ] {
        let d = definition_with(filters, |_| {});
        let aws = Webhook::options().aws_exact(true).build(&d, &config()).unwrap();
        assert!(aws.warnings().is_empty(), "{:?}", aws.warnings());
        assert!(aws.evaluate(&push).is_trigger());
    }
    // deny_warnings refuses it.
    let err = Webhook::options().deny_warnings(true).build(&d, &config()).unwrap_err();
    assert_eq!(err.field(), Some("webhook.filters[1].matchEquals"));
}

#[test]
fn secrets_that_hmac_treats_as_shorter_ones_are_warned_about() {
    for (secret, what) in
        [("abc\u{0}", "ends with a NUL"), ("\u{0}", "only of control characters"), ("\u{1}\u{2}", "only of control")]
    {
        let d = definition_with(json!([]), |v| {
            v["authentication"] = json!("GITHUB_HMAC");
            v["authenticationConfiguration"] = json!({"SecretToken": secret});
        });
        let webhook = Webhook::new(&d, &config()).unwrap();
        let [warning] = webhook.warnings() else { panic!("{secret:?}: {:?}", webhook.warnings()) };
        assert_eq!(warning.field(), "webhook.authenticationConfiguration.SecretToken");
        assert!(warning.message().contains(what), "{warning}");
        let err = Webhook::options().deny_warnings(true).build(&d, &config()).unwrap_err();
        assert_eq!(err.code(), "InvalidWebhookAuthenticationParametersException");
        // Why it matters: HMAC pads keys with zeros, so "abc\0" also accepts MACs keyed "abc".
        if secret == "abc\u{0}" {
            let body = b"{}";
            let forged = codepipeline_webhooks::github::signature_256(b"abc", body);
            let request = codepipeline_webhooks::Request::new(body).header("X-Hub-Signature-256", &forged);
            assert!(webhook.evaluate(&request).is_trigger());
        }
    }
    let d = definition_with(json!([]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": "a\u{0}b"});
    });
    assert!(Webhook::new(&d, &config()).unwrap().warnings().is_empty(), "a NUL inside is not the padding trap");
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
fn jsonpath_errors_come_before_denied_warnings() {
    let denied = |filters| Webhook::options().deny_warnings(true).build(&definition_with(filters, |_| {}), &config());
    let err = denied(json!([{"jsonPath": "$[", "matchEquals": "{Nope}"}])).unwrap_err();
    assert_eq!(err.field(), Some("webhook.filters[0].jsonPath"));
    // Every path compiles before any warning is denied.
    let err = denied(json!([{"jsonPath": "$.a", "matchEquals": "{Nope}"}, {"jsonPath": "$["}])).unwrap_err();
    assert_eq!(err.field(), Some("webhook.filters[1].jsonPath"));
    let err = denied(json!([{"jsonPath": "$.a", "matchEquals": "{Nope}"}, {"jsonPath": "$.b"}])).unwrap_err();
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
    assert_eq!(Webhook::options().max_depth(0).build(&d, &config()).unwrap_err().code(), "InvalidOptions");
    assert!(Webhook::options().max_depth(513).build(&d, &config()).is_err());
    assert!(Webhook::options().max_depth(512).build(&d, &config()).is_ok());
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
