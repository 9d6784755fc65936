//! No Display or Debug output of any type that holds a secret shows it: definitions, inputs,
//! compiled webhooks, errors, verdicts, requests, sets, registries and their exported state.

mod common;

use codepipeline_webhooks::registry::{DeleteWebhookInput, ListWebhooksInput, PipelineDeclaration, Registry};
use codepipeline_webhooks::{PutWebhookInput, Request, Webhook, WebhookDefinition, WebhookSet, github};
use common::*;
use serde_json::json;

const TOKEN_SECRET: &str = "hunter2-a1b2c3d4e5f6";
const URL_TOKEN: &str = "url-token-9z8y7x6w5v";

#[test]
fn no_output_shows_a_secret() {
    let mut shown: Vec<String> = Vec::new();
    let mut show = |display: String, debug: String| {
        shown.push(display);
        shown.push(debug);
    };

    let input: PutWebhookInput = serde_json::from_value(json!({"webhook": {
        "name": "h", "targetPipeline": "p", "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}, {"jsonPath": "$.commits[*].id"}],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": TOKEN_SECRET}
    }, "tags": [{"key": "k", "value": "v"}]}))
    .unwrap();
    show(String::new(), format!("{input:?}"));
    show(
        serde_json::to_string(&input.redacted()).unwrap(),
        format!("{:?}", input.webhook.authentication_configuration),
    );
    let webhook = Webhook::new(&input.webhook, &config()).unwrap();
    show(String::new(), format!("{webhook:?}"));

    // Errors from every stage, about a definition that holds the secret.
    let mut too_long = input.clone();
    too_long.webhook.authentication_configuration.secret_token = Some(format!("{TOKEN_SECRET}{}", "x".repeat(100)));
    for err in [
        too_long.validate().unwrap_err(),
        Webhook::new(
            &{
                let mut d = input.webhook.clone();
                d.authentication_configuration.allowed_ip_range = Some("10.0.0.0/8".into());
                d
            },
            &config(),
        )
        .unwrap_err(),
        Webhook::new(
            &{
                let mut d = input.webhook.clone();
                d.filters[0].json_path = "$[".into();
                d
            },
            &config(),
        )
        .unwrap_err(),
        Webhook::options()
            .deny_warnings(true)
            .accept_previous_secret(TOKEN_SECRET)
            .build(&input.webhook, &codepipeline_webhooks::ActionConfiguration::new())
            .unwrap_err(),
    ] {
        show(err.to_string(), format!("{err:?}"));
    }

    // Verdicts of every kind.
    let body = r#"{"ref":"refs/heads/main","commits":[{"id":"a"}]}"#;
    let good = github::signature_256(TOKEN_SECRET.as_bytes(), body.as_bytes());
    let requests = [
        Request::new(body).header("X-Hub-Signature-256", &good),
        Request::new(body).header("X-Hub-Signature-256", "sha256=00"),
        Request::new(body),
        Request::new(body).header("X-Hub-Signature-256", &good).header("X-Hub-Signature-256", &good),
        Request::new(r#"{"ref":"refs/heads/dev","commits":[]}"#).header("X-Hub-Signature-256", &good),
    ];
    let rotating = Webhook::options()
        .accept_previous_secret(TOKEN_SECRET)
        .accept_previous_secret("another-old-secret")
        .build(&input.webhook, &config())
        .unwrap();
    show(format!("{rotating:?}"), format!("{:?}", Webhook::options().accept_previous_secret(TOKEN_SECRET)));
    for warning in Webhook::new(&input.webhook, &codepipeline_webhooks::ActionConfiguration::new()).unwrap().warnings()
    {
        show(warning.to_string(), format!("{warning:?}"));
    }
    for request in &requests {
        let verdict = rotating.evaluate(request);
        show(verdict.to_string(), format!("{verdict:?}"));
        let verdict = webhook.evaluate(request);
        show(verdict.to_string(), format!("{verdict:?}"));
        show(serde_json::to_string(&verdict).unwrap(), format!("{request:?}"));
    }
    let set = WebhookSet::new([webhook.clone(), webhook.clone()]);
    let matches = set.matches(&requests[0]);
    assert_eq!(matches.len(), 2);
    show(format!("{:?}", set.explain(0, &requests[1])), format!("{set:?} {matches:?}"));

    // The registry, its responses and its exported state.
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .token_source(|| URL_TOKEN.to_owned())
        .build()
        .unwrap();
    let pipeline: PipelineDeclaration = serde_json::from_value(json!({"name": "p", "stages": [
        {"name": "Source", "actions": [{"name": "Source", "configuration": {"Branch": "main"}}]}]}))
    .unwrap();
    registry.put_pipeline(pipeline).unwrap();
    let out = registry.put_webhook(input.clone()).unwrap();
    show(serde_json::to_string(&out).unwrap(), format!("{out:?}"));
    let listed = registry.list_webhooks(ListWebhooksInput::default()).unwrap();
    show(serde_json::to_string(&listed).unwrap(), format!("{listed:?}"));
    let state = registry.export_state();
    show(String::new(), format!("{state:?} {registry:?}"));
    let err = registry.put_webhook(
        serde_json::from_value(json!({"webhook": {
        "name": "h2", "targetPipeline": "nope", "targetAction": "Source", "filters": [],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": TOKEN_SECRET}}}))
        .unwrap(),
    );
    let err = err.unwrap_err();
    show(err.to_string(), format!("{err:?}"));
    registry.delete_webhook(DeleteWebhookInput { name: "h".into() }).unwrap();

    assert!(shown.len() > 30);
    for text in &shown {
        assert!(!text.contains(TOKEN_SECRET), "the secret token shows in: {text}");
        assert!(!text.contains(&good[7..]), "an expected MAC shows in: {text}");
    }
    // The URL token is in the URL that AWS returns (that is its job), and nowhere else.
    for text in shown.iter().filter(|t| !t.contains("/trigger?t=")) {
        assert!(!text.contains(URL_TOKEN), "the URL token shows in: {text}");
    }
    // The exported state does hold them: it is what a host persists.
    let exported = serde_json::to_string(&state).unwrap();
    assert!(exported.contains(TOKEN_SECRET) && exported.contains(URL_TOKEN));
    let _: WebhookDefinition = input.webhook;
}
