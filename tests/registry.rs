//! The webhook API's state as pure logic (README: "The registry").

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use codepipeline_webhooks::registry::{
    DeleteWebhookInput, DeregisterWebhookWithThirdPartyInput, ListWebhooksInput, ListWebhooksOutput,
    PipelineDeclaration, RegisterWebhookWithThirdPartyInput, Registry, RegistryState,
};
use codepipeline_webhooks::{PutWebhookInput, Request, github};
use serde_json::{Value, json};

/// A pipeline as `aws codepipeline get-pipeline` prints it under `pipeline` (the shape of the AWS
/// CLI reference's example), with a GitHub source action in the first stage.
fn pipeline(branch: &str) -> Value {
    json!({
        "roleArn": "arn:aws:iam::111111111111:role/AWS-CodePipeline-Service",
        "stages": [
            {
                "name": "Source",
                "actions": [
                    {
                        "inputArtifacts": [],
                        "name": "Source",
                        "actionTypeId": {"category": "Source", "owner": "ThirdParty", "version": "1", "provider": "GitHub"},
                        "outputArtifacts": [{"name": "MyApp"}],
                        "configuration": {"Owner": "octo-org", "Repo": "app", "Branch": branch, "OAuthToken": "****", "PollForSourceChanges": "false"},
                        "runOrder": 1
                    }
                ]
            },
            {
                "name": "Beta",
                "actions": [
                    {
                        "inputArtifacts": [{"name": "MyApp"}],
                        "name": "CodePipelineDemoFleet",
                        "actionTypeId": {"category": "Deploy", "owner": "AWS", "version": "1", "provider": "CodeDeploy"},
                        "outputArtifacts": [],
                        "configuration": {"ApplicationName": "CodePipelineDemoApplication", "DeploymentGroupName": "CodePipelineDemoFleet"},
                        "runOrder": 1
                    }
                ]
            }
        ],
        "artifactStore": {"type": "S3", "location": "codepipeline-us-east-1-11EXAMPLE11"},
        "name": "MyFirstPipeline",
        "version": 1
    })
}

fn put_pipeline(registry: &Registry, branch: &str) {
    registry.put_pipeline(serde_json::from_value(pipeline(branch)).unwrap()).unwrap();
}

fn input(name: &str, edit: impl FnOnce(&mut Value)) -> PutWebhookInput {
    let mut v = json!({"webhook": {
        "name": name, "targetPipeline": "MyFirstPipeline", "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "top-secret-token"}
    }});
    edit(&mut v);
    serde_json::from_value(v).unwrap()
}

struct Fixture {
    registry: Registry,
    now: Arc<AtomicU64>,
}

/// A registry with a counting token source and a settable clock (seconds since the epoch).
fn fixture() -> Fixture {
    let counter = Arc::new(AtomicU64::new(0));
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let clock = now.clone();
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .token_source(move || format!("token{}", counter.fetch_add(1, Ordering::SeqCst)))
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
        .build()
        .unwrap();
    put_pipeline(&registry, "main");
    Fixture { registry, now }
}

fn signed(body: &str) -> (String, String) {
    (body.to_owned(), github::signature_256(b"top-secret-token", body.as_bytes()))
}

fn deliver(registry: &Registry, url: &str, body: &str) -> Result<bool, codepipeline_webhooks::Error> {
    let (body, sig) = signed(body);
    registry.trigger(url, &Request::new(&body).header("X-Hub-Signature-256", &sig)).map(|v| v.is_trigger())
}

const MAIN: &str = r#"{"ref":"refs/heads/main"}"#;

#[test]
fn builder_requires_region_and_account_as_a_host_mistake() {
    // The host's own options, not an AWS request: InvalidOptions, naming the option.
    let no_region = Registry::builder().account_id("111111111111").build().unwrap_err();
    assert_eq!((no_region.code(), no_region.field()), ("InvalidOptions", Some("region")));
    let no_account = Registry::builder().region("us-east-1").build().unwrap_err();
    assert_eq!((no_account.code(), no_account.field()), ("InvalidOptions", Some("accountId")));
    let short = Registry::builder().region("us-east-1").account_id("1234").build().unwrap_err();
    assert_eq!(short.code(), "InvalidOptions");
    let spaced = Registry::builder().region("US East").account_id("111111111111").build().unwrap_err();
    assert_eq!(spaced.code(), "InvalidOptions");
    let base = Registry::builder().region("us-east-1").account_id("111111111111").base_url("ftp://x").build();
    assert_eq!(base.unwrap_err().code(), "InvalidOptions");
}

#[test]
fn put_webhook_returns_url_arn_and_redacted_secret() {
    let f = fixture();
    let out = f.registry.put_webhook(input("hook", |_| {})).unwrap();
    assert_eq!(out.webhook.url, "https://us-east-1.webhooks.aws/trigger?t=token0&v=1");
    assert_eq!(out.webhook.arn.as_deref(), Some("arn:aws:codepipeline:us-east-1:111111111111:webhook:hook"));
    assert_eq!(out.webhook.definition.authentication_configuration.secret_token.as_deref(), Some("****"));
    assert_eq!(out.webhook.last_triggered, None);
    let wire = serde_json::to_value(&out).unwrap();
    assert_eq!(wire["webhook"]["definition"]["authenticationConfiguration"]["SecretToken"], "****");
    assert!(!wire.to_string().contains("top-secret-token"));
    let listed = f.registry.list_webhooks(ListWebhooksInput::default()).unwrap();
    assert!(!serde_json::to_string(&listed).unwrap().contains("top-secret-token"));
    assert!(!format!("{:?}", f.registry).contains("top-secret-token"));
}

#[test]
fn partition_follows_the_region() {
    for (region, partition) in [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")] {
        let r = Registry::builder().region(region).account_id("111111111111").build().unwrap();
        put_pipeline(&r, "main");
        let out = r.put_webhook(input("h", |_| {})).unwrap();
        assert_eq!(out.webhook.arn.unwrap(), format!("arn:{partition}:codepipeline:{region}:111111111111:webhook:h"));
        assert!(out.webhook.url.starts_with(&format!("https://{region}.webhooks.aws/trigger?t=")));
        let token = out.webhook.url.split("t=").nth(1).unwrap().trim_end_matches("&v=1");
        assert!(token.len() >= 22, "at least 128 bits, base64url: {token}");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}

#[test]
fn target_checks() {
    let f = fixture();
    let err = f.registry.put_webhook(input("h", |v| v["webhook"]["targetPipeline"] = json!("Nope"))).unwrap_err();
    assert_eq!(err.code(), "PipelineNotFoundException");
    let err = f
        .registry
        .put_webhook(input("h", |v| v["webhook"]["targetAction"] = json!("CodePipelineDemoFleet")))
        .unwrap_err();
    assert_eq!(err.code(), "ValidationException");
    assert_eq!(
        err.message(),
        "Action with name CodePipelineDemoFleet was not found in the first stage of the pipeline"
    );
    // As in AWS, an unknown `{Key}` stays literal; with deny_warnings it is refused.
    f.registry
        .put_webhook(input("literal", |v| v["webhook"]["filters"][0]["matchEquals"] = json!("{NoSuchKey}")))
        .unwrap();
    f.registry.delete_webhook(serde_json::from_value(json!({"name": "literal"})).unwrap()).unwrap();
    let strict = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .webhook_options(codepipeline_webhooks::Webhook::options().deny_warnings(true))
        .build()
        .unwrap();
    put_pipeline(&strict, "main");
    let err = strict
        .put_webhook(input("h", |v| v["webhook"]["filters"][0]["matchEquals"] = json!("{NoSuchKey}")))
        .unwrap_err();
    assert_eq!(err.code(), "InvalidWebhookFilterPatternException");
    assert!(err.message().contains("Branch, OAuthToken, Owner, PollForSourceChanges, Repo"), "{err}");
    let err = f.registry.put_webhook(input("bad name", |_| {})).unwrap_err();
    assert_eq!(err.code(), "ValidationException");
    let err =
        f.registry.put_webhook(input("h", |v| v["webhook"]["authenticationConfiguration"] = json!({}))).unwrap_err();
    assert_eq!(err.code(), "InvalidWebhookAuthenticationParametersException");
    assert!(f.registry.list_webhooks(Default::default()).unwrap().webhooks.is_empty(), "nothing stored on error");
}

#[test]
fn placeholders_resolve_from_the_target_action_and_trigger_by_url() {
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
    assert!(!deliver(&f.registry, &url, r#"{"ref":"refs/heads/dev"}"#).unwrap());
    let err = deliver(&f.registry, "https://us-east-1.webhooks.aws/trigger?t=nope&v=1", MAIN).unwrap_err();
    assert_eq!(err.code(), "WebhookNotFoundException");
    // The token names the webhook whatever the origin (a proxy may rewrite it).
    assert!(deliver(&f.registry, "https://eu-west-1.webhooks.aws/trigger?t=token0&v=1", MAIN).unwrap());
    assert_eq!(deliver(&f.registry, "not a url", MAIN).unwrap_err().code(), "WebhookNotFoundException");
    for near in [
        &url.replace("&v=1", "&v=2"),
        &format!("{url}&t=token0"),
        &url.replace("t=token0", "t="),
        &url.replace("t=token0", "t=token"),
    ] {
        assert_eq!(deliver(&f.registry, near, MAIN).unwrap_err().code(), "WebhookNotFoundException", "{near}");
    }
    // Parameters the registry does not use are ignored, as an HTTP server would.
    assert!(deliver(&f.registry, &format!("{url}&x=1"), MAIN).unwrap());
    let (body, sig) = signed(MAIN);
    assert!(
        f.registry
            .trigger_token("token0", &Request::new(&body).header("X-Hub-Signature-256", &sig))
            .unwrap()
            .is_trigger()
    );
}

#[test]
fn last_triggered_is_stamped_by_the_clock_on_triggers_only() {
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    let last = || f.registry.list_webhooks(Default::default()).unwrap().webhooks[0].last_triggered;
    assert!(!deliver(&f.registry, &url, r#"{"ref":"refs/heads/dev"}"#).unwrap());
    assert_eq!(last(), None);
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
    assert_eq!(last(), Some(1_700_000_000.0));
    f.now.store(1_700_000_100, Ordering::SeqCst);
    assert!(!deliver(&f.registry, &url, "not json").unwrap());
    assert_eq!(last(), Some(1_700_000_000.0));
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
    assert_eq!(last(), Some(1_700_000_100.0));
}

#[test]
fn put_is_an_upsert_and_delete_then_put_gives_a_new_url() {
    let f = fixture();
    let first = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook;
    assert!(deliver(&f.registry, &first.url, MAIN).unwrap());
    let second = f
        .registry
        .put_webhook(input("hook", |v| v["webhook"]["filters"][0]["matchEquals"] = json!("refs/heads/release")))
        .unwrap()
        .webhook;
    assert_eq!((&second.url, &second.arn), (&first.url, &first.arn));
    assert_eq!(second.last_triggered, Some(1_700_000_000.0), "kept across the update");
    assert!(!deliver(&f.registry, &first.url, MAIN).unwrap(), "the new filter applies");
    assert!(deliver(&f.registry, &first.url, r#"{"ref":"refs/heads/release"}"#).unwrap());

    f.registry.delete_webhook(DeleteWebhookInput { name: "hook".into() }).unwrap();
    assert_eq!(deliver(&f.registry, &first.url, MAIN).unwrap_err().code(), "WebhookNotFoundException");
    let third = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook;
    assert_ne!(third.url, first.url);
    assert_eq!(third.arn, first.arn);
    assert_eq!(third.last_triggered, None);
    // Deleting a missing webhook succeeds, as in AWS.
    f.registry.delete_webhook(DeleteWebhookInput { name: "never-existed".into() }).unwrap();
}

#[test]
fn quota_counts_new_webhooks_only() {
    let registry = Registry::builder().region("us-east-1").account_id("111111111111").webhook_quota(2).build().unwrap();
    put_pipeline(&registry, "main");
    registry.put_webhook(input("a", |_| {})).unwrap();
    registry.put_webhook(input("b", |_| {})).unwrap();
    let err = registry.put_webhook(input("c", |_| {})).unwrap_err();
    assert_eq!(err.code(), "LimitExceededException");
    registry.put_webhook(input("a", |_| {})).unwrap();
    registry.delete_webhook(DeleteWebhookInput { name: "a".into() }).unwrap();
    registry.put_webhook(input("c", |_| {})).unwrap();
    let default = Registry::builder().region("us-east-1").account_id("111111111111").build().unwrap();
    put_pipeline(&default, "main");
    for i in 0..300 {
        default.put_webhook(input(&format!("h{i}"), |_| {})).unwrap();
    }
    assert_eq!(default.put_webhook(input("one-more", |_| {})).unwrap_err().code(), "LimitExceededException");
    // MaxResults defaults to 100.
    let page = default.list_webhooks(ListWebhooksInput::default()).unwrap();
    assert_eq!(page.webhooks.len(), 100);
    assert!(page.next_token.is_some());
}

#[test]
fn tags_are_checked_and_returned() {
    let f = fixture();
    let tags = |t: Value| move |v: &mut Value| v["tags"] = t;
    let out = f.registry.put_webhook(input("h", tags(json!([{"key": "team", "value": "ci"}])))).unwrap();
    assert_eq!(serde_json::to_value(out.webhook.tags).unwrap(), json!([{"key": "team", "value": "ci"}]));
    let many: Vec<Value> = (0..51).map(|i| json!({"key": format!("k{i}"), "value": ""})).collect();
    assert_eq!(f.registry.put_webhook(input("h", tags(json!(many)))).unwrap_err().code(), "TooManyTagsException");
    let reserved = json!([{"key": "aws:x", "value": ""}]);
    assert_eq!(f.registry.put_webhook(input("h", tags(reserved))).unwrap_err().code(), "InvalidTagsException");
    let dup = json!([{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]);
    assert_eq!(f.registry.put_webhook(input("h", tags(dup))).unwrap_err().code(), "InvalidTagsException");
}

#[test]
fn register_and_deregister() {
    let f = fixture();
    let missing = RegisterWebhookWithThirdPartyInput { webhook_name: "nope".into() };
    assert_eq!(f.registry.register_webhook_with_third_party(missing).unwrap_err().code(), "WebhookNotFoundException");
    let missing = DeregisterWebhookWithThirdPartyInput { webhook_name: "nope".into() };
    assert_eq!(f.registry.deregister_webhook_with_third_party(missing).unwrap_err().code(), "WebhookNotFoundException");
    f.registry.put_webhook(input("hook", |_| {})).unwrap();
    assert!(!f.registry.is_registered_with_third_party("hook").unwrap());
    f.registry
        .register_webhook_with_third_party(RegisterWebhookWithThirdPartyInput { webhook_name: "hook".into() })
        .unwrap();
    assert!(f.registry.is_registered_with_third_party("hook").unwrap());
    f.registry
        .deregister_webhook_with_third_party(DeregisterWebhookWithThirdPartyInput { webhook_name: "hook".into() })
        .unwrap();
    assert!(!f.registry.is_registered_with_third_party("hook").unwrap());
    let wire: RegisterWebhookWithThirdPartyInput = serde_json::from_str(r#"{"webhookName":"hook"}"#).unwrap();
    assert_eq!(wire.webhook_name, "hook");
}

#[test]
fn list_pages_in_name_order() {
    let f = fixture();
    for name in ["e", "b", "d", "a", "c"] {
        f.registry.put_webhook(input(name, |_| {})).unwrap();
    }
    let mut seen = Vec::new();
    let mut next = None;
    loop {
        let page = f.registry.list_webhooks(ListWebhooksInput { next_token: next, max_results: Some(2) }).unwrap();
        assert!(page.webhooks.len() <= 2);
        seen.extend(page.webhooks.iter().map(|w| w.definition.name.clone()));
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    let all = f.registry.list_webhooks(ListWebhooksInput::default()).unwrap();
    assert_eq!(all.webhooks.len(), 5);
    assert_eq!(all.next_token, None);
    for bad in [0, 101, -1] {
        let err = f.registry.list_webhooks(ListWebhooksInput { next_token: None, max_results: Some(bad) }).unwrap_err();
        assert_eq!(err.code(), "ValidationException");
    }
    for forged in ["%%%", "Yg", "Yw", "YQ"] {
        // Not base64, and the base64 of a name: neither was issued by this registry.
        let input = ListWebhooksInput { next_token: Some(forged.into()), max_results: None };
        assert_eq!(f.registry.list_webhooks(input).unwrap_err().code(), "InvalidNextTokenException", "{forged}");
    }
    let wire: ListWebhooksInput = serde_json::from_str(r#"{"NextToken":"YQ","MaxResults":10}"#).unwrap();
    assert_eq!(wire.max_results, Some(10));
}

#[test]
fn a_pipeline_change_recompiles_its_webhooks() {
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    put_pipeline(&f.registry, "release");
    assert!(!deliver(&f.registry, &url, MAIN).unwrap());
    assert!(deliver(&f.registry, &url, r#"{"ref":"refs/heads/release"}"#).unwrap());

    // The target action leaves the first stage: the webhook stays, with its error, and refuses.
    let mut moved = pipeline("main");
    moved["stages"][0]["actions"][0]["name"] = json!("GitHubSource");
    f.registry.put_pipeline(serde_json::from_value(moved).unwrap()).unwrap();
    let item = f.registry.list_webhooks(Default::default()).unwrap().webhooks.remove(0);
    assert_eq!(item.error_code.as_deref(), Some("ValidationException"));
    assert!(item.error_message.unwrap().contains("Action with name Source was not found"));
    assert_eq!(deliver(&f.registry, &url, MAIN).unwrap_err().code(), "ValidationException");
    put_pipeline(&f.registry, "main");
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
    assert_eq!(f.registry.list_webhooks(Default::default()).unwrap().webhooks[0].error_code, None);
}

#[test]
fn get_pipeline_output_round_trips() {
    let declared: PipelineDeclaration = serde_json::from_value(pipeline("main")).unwrap();
    assert_eq!(declared.stages[0].actions[0].configuration.get("Branch"), Some("main"));
    assert_eq!(serde_json::to_value(&declared).unwrap(), pipeline("main"));
}

/// The wire response of ListWebhooks as the API reference lays it out, with realistic values.
const LIST_WEBHOOKS_RESPONSE: &str = r#"{
  "webhooks": [
    {
      "definition": {
        "name": "my-webhook",
        "targetPipeline": "my-Pipeline",
        "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
        "authentication": "GITHUB_HMAC",
        "authenticationConfiguration": {"SecretToken": "****"}
      },
      "url": "https://us-west-2.webhooks.aws/trigger?t=EXAMPLEDmFuZGFsaXplZCBteSBQb3JzY2hl&v=1",
      "lastTriggered": 1573573251.294,
      "arn": "arn:aws:codepipeline:us-west-2:111122223333:webhook:my-webhook",
      "tags": [{"key": "Project", "value": "ProjectA"}]
    },
    {
      "definition": {
        "name": "ip-webhook",
        "targetPipeline": "other-pipeline",
        "targetAction": "Source",
        "filters": [],
        "authentication": "IP",
        "authenticationConfiguration": {"AllowedIPRange": "192.0.2.0/24"}
      },
      "url": "https://us-west-2.webhooks.aws/trigger?t=EXAMPLEYW5kIG15IEZlcnJhcmkgdG9v&v=1",
      "errorMessage": "Action with name Source was not found in the first stage of the pipeline",
      "errorCode": "ValidationException",
      "arn": "arn:aws:codepipeline:us-west-2:111122223333:webhook:ip-webhook"
    }
  ],
  "NextToken": "eyJuZXh0IjoiMiJ9"
}"#;

#[test]
fn a_real_list_webhooks_response_round_trips() {
    let parsed: ListWebhooksOutput = serde_json::from_str(LIST_WEBHOOKS_RESPONSE).unwrap();
    assert_eq!(parsed.webhooks.len(), 2);
    assert_eq!(parsed.webhooks[0].last_triggered, Some(1573573251.294));
    assert_eq!(parsed.webhooks[1].error_code.as_deref(), Some("ValidationException"));
    assert_eq!(serde_json::to_value(&parsed).unwrap(), serde_json::from_str::<Value>(LIST_WEBHOOKS_RESPONSE).unwrap());
}

#[test]
fn state_exports_and_imports() {
    let f = fixture();
    let url =
        f.registry.put_webhook(input("hook", |v| v["tags"] = json!([{"key": "k", "value": "v"}]))).unwrap().webhook.url;
    f.registry
        .register_webhook_with_third_party(RegisterWebhookWithThirdPartyInput { webhook_name: "hook".into() })
        .unwrap();
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
    let state = f.registry.export_state();
    let text = serde_json::to_string(&state).unwrap();
    assert!(text.contains("top-secret-token"), "the exported state keeps the secret");
    assert!(!format!("{state:?}").contains("top-secret-token"));
    assert!(!format!("{state:?}").contains("token0"), "Debug hides URL tokens");

    let restored: RegistryState = serde_json::from_str(&text).unwrap();
    let other = Registry::builder().region("us-east-1").account_id("111111111111").state(restored).build().unwrap();
    assert_eq!(other.list_webhooks(Default::default()).unwrap(), f.registry.list_webhooks(Default::default()).unwrap());
    assert_eq!(other.export_state(), state);
    assert!(other.is_registered_with_third_party("hook").unwrap());
    assert!(deliver(&other, &url, MAIN).unwrap(), "same URL on another instance");

    let mut twice = state.clone();
    twice.webhooks.push(twice.webhooks[0].clone());
    assert!(f.registry.import_state(twice).is_err());
    assert!(deliver(&f.registry, &url, MAIN).unwrap(), "a failed import changes nothing");
}

#[test]
fn concurrent_triggers_with_puts_and_deletes() {
    fn shared<T: Send + Sync>() {}
    shared::<Registry>();
    let f = fixture();
    let registry = Arc::new(f.registry);
    let url = registry.put_webhook(input("stable", |_| {})).unwrap().webhook.url;
    let stop = Arc::new(Mutex::new(false));
    let writer = {
        let registry = registry.clone();
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while !*stop.lock().unwrap() {
                let name = format!("churn{}", i % 10);
                registry.put_webhook(input(&name, |_| {})).unwrap();
                registry.delete_webhook(DeleteWebhookInput { name }).unwrap();
                i += 1;
            }
            i
        })
    };
    let readers: Vec<_> = (0..8)
        .map(|t| {
            let registry = registry.clone();
            let url = url.clone();
            std::thread::spawn(move || {
                for i in 0..300 {
                    let branch = if (t + i) % 3 == 0 { "dev" } else { "main" };
                    let body = format!(r#"{{"ref":"refs/heads/{branch}"}}"#);
                    assert_eq!(deliver(&registry, &url, &body).unwrap(), branch == "main");
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    *stop.lock().unwrap() = true;
    assert!(writer.join().unwrap() > 0);
    assert!(SystemTime::now() > UNIX_EPOCH);
    assert_eq!(registry.list_webhooks(Default::default()).unwrap().webhooks.len(), 1);
}

fn registry_at(base: &str) -> Registry {
    let counter = Arc::new(AtomicU64::new(0));
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .base_url(base)
        .token_source(move || format!("tok{}", counter.fetch_add(1, Ordering::SeqCst)))
        .build()
        .unwrap();
    put_pipeline(&registry, "main");
    registry
}

#[test]
fn base_url_sets_the_webhook_urls() {
    for (base, url) in [
        ("https://hooks.example.com", "https://hooks.example.com/trigger?t=tok0&v=1"),
        ("https://hooks.example.com/", "https://hooks.example.com/trigger?t=tok0&v=1"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000/trigger?t=tok0&v=1"),
        ("https://example.com:8443/ci/codepipeline/", "https://example.com:8443/ci/codepipeline/trigger?t=tok0&v=1"),
    ] {
        let registry = registry_at(base);
        let out = registry.put_webhook(input("hook", |_| {})).unwrap();
        assert_eq!(out.webhook.url, url, "{base}");
        assert!(deliver(&registry, url, MAIN).unwrap(), "{url}");
    }
    for bad in ["", "hooks.example.com", "ftp://hooks.example.com", "https://h/x?y=1", "https://h/x#y"] {
        let err = Registry::builder().region("us-east-1").account_id("111111111111").base_url(bad).build().unwrap_err();
        assert_eq!(err.code(), "InvalidOptions", "{bad}: the host's own option");
    }
}

#[test]
fn trigger_takes_urls_and_paths_with_queries_in_any_order() {
    let registry = registry_at("http://127.0.0.1:8080/cp/");
    registry.put_webhook(input("hook", |_| {})).unwrap();
    for ok in [
        "http://127.0.0.1:8080/cp/trigger?t=tok0&v=1",
        "http://127.0.0.1:8080/cp/trigger?v=1&t=tok0",
        "http://127.0.0.1:8080/cp/trigger?t=tok0",
        "HTTP://127.0.0.1:8080/cp/trigger?t=tok0",
        "/cp/trigger?t=tok0&v=1",
        "/cp/trigger?v=1&t=tok0",
        "/cp/trigger?t=tok0",
        "/cp/trigger?%74=%74ok0&v=%31",
        "/cp/trigger?t=tok0&v=1#fragment",
        "/cp/trigger?&t=tok0&&v=1&",
        // Behind proxies: the path and the origin are not compared, the token decides.
        "http://127.0.0.1:8081/cp/trigger?t=tok0&v=1",
        "http://localhost:8080/cp/trigger?t=tok0&v=1",
        "https://127.0.0.1:8080/cp/trigger?t=tok0&v=1",
        "https://us-east-1.webhooks.aws/trigger?t=tok0&v=1",
        "/trigger?t=tok0&v=1",
        "/trigger?v=1&t=tok0",
        "/cp/trigger/?t=tok0",
    ] {
        assert!(deliver(&registry, ok, MAIN).unwrap(), "{ok}");
    }
    for unknown in [
        "/cp/trigger",
        "/cp/trigger?v=1",
        "/cp/trigger?t=&v=1",
        "/cp/trigger?t&v=1",
        "/cp/trigger?t=tok0&v=2",
        "/cp/trigger?t=tok0&t=tok0",
        "/trigger?t=tok0&t=tok1",
        "/cp/trigger?t=tok1",
        "/cp/trigger?t=%ZZ",
        "",
    ] {
        assert_eq!(deliver(&registry, unknown, MAIN).unwrap_err().code(), "WebhookNotFoundException", "{unknown}");
    }
    // An empty token is unknown through trigger_token too.
    let err = registry.trigger_token("", &Request::new(MAIN)).unwrap_err();
    assert_eq!(err.code(), "WebhookNotFoundException");
}

type Probe = (Arc<Registry>, Arc<OnceLock<Weak<Registry>>>, Arc<Mutex<Vec<bool>>>);

/// A registry whose token source, once `hook` is filled, runs `during_put` on another thread and
/// waits (at most 5 s) for it, recording whether it finished in time. The token source is called
/// in the same unlocked phase of `put_webhook` as the compile.
fn registry_with_probe(during_put: impl Fn(&Registry) -> bool + Send + Sync + 'static) -> Probe {
    let hook: Arc<OnceLock<Weak<Registry>>> = Arc::default();
    let finished = Arc::new(Mutex::new(Vec::new()));
    let counter = AtomicU64::new(0);
    let during_put = Arc::new(during_put);
    let source = {
        let (hook, finished) = (hook.clone(), finished.clone());
        move || {
            if let Some(registry) = hook.get().and_then(Weak::upgrade) {
                let (tx, rx) = mpsc::channel();
                let during_put = during_put.clone();
                std::thread::spawn(move || tx.send(during_put(&registry)).unwrap_or(()));
                finished.lock().unwrap().push(rx.recv_timeout(Duration::from_secs(5)) == Ok(true));
            }
            format!("token{}", counter.fetch_add(1, Ordering::SeqCst))
        }
    };
    let registry = Arc::new(
        Registry::builder().region("us-east-1").account_id("111111111111").token_source(source).build().unwrap(),
    );
    put_pipeline(&registry, "main");
    (registry, hook, finished)
}

/// Deliveries are not held up by a put: while `put_webhook` prepares a new webhook (compiles it,
/// draws its URL token), a delivery to another webhook completes from another thread. When the
/// put held the write lock throughout, that delivery waited for the whole put and this failed.
#[test]
fn a_delivery_completes_while_a_put_webhook_is_compiling() {
    let (registry, hook, finished) = registry_with_probe(|registry| {
        deliver(registry, "https://us-east-1.webhooks.aws/trigger?t=token0&v=1", MAIN).unwrap_or(false)
    });
    registry.put_webhook(input("stable", |_| {})).unwrap();
    hook.set(Arc::downgrade(&registry)).unwrap();
    registry.put_webhook(input("new", |_| {})).unwrap();
    assert_eq!(*finished.lock().unwrap(), [true], "the delivery finished while the put was under way");
    assert_eq!(registry.list_webhooks(Default::default()).unwrap().webhooks.len(), 2);
}

/// A pipeline that changes while a put compiles against its old version: the put notices at
/// insert time and compiles again, so the webhook ends up compiled against the pipeline in force.
#[test]
fn a_put_webhook_racing_a_put_pipeline_compiles_against_the_pipeline_in_force() {
    let (registry, hook, finished) = registry_with_probe(|registry| {
        let release: PipelineDeclaration = serde_json::from_value(pipeline("release")).unwrap();
        registry.put_pipeline(release).is_ok()
    });
    hook.set(Arc::downgrade(&registry)).unwrap();
    let url = registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    assert!(finished.lock().unwrap()[0], "put_pipeline ran while put_webhook compiled");
    assert!(deliver(&registry, &url, r#"{"ref":"refs/heads/release"}"#).unwrap());
    assert!(!deliver(&registry, &url, MAIN).unwrap());
}

fn page_after(
    registry: &Registry,
    next_token: Option<String>,
) -> Result<ListWebhooksOutput, codepipeline_webhooks::Error> {
    registry.list_webhooks(ListWebhooksInput { next_token, max_results: Some(1) })
}

#[test]
fn next_tokens_are_opaque_and_verified() {
    let f = fixture();
    for name in ["a", "b", "c"] {
        f.registry.put_webhook(input(name, |_| {})).unwrap();
    }
    let first = page_after(&f.registry, None).unwrap();
    let token = first.next_token.unwrap();
    assert!(token.len() <= 2048);
    assert_eq!(page_after(&f.registry, Some(token.clone())).unwrap().webhooks[0].definition.name, "b");
    // Another registry with the same webhooks has another key: the token is not its.
    let other = Registry::builder().region("us-east-1").account_id("111111111111").build().unwrap();
    put_pipeline(&other, "main");
    for name in ["a", "b", "c"] {
        other.put_webhook(input(name, |_| {})).unwrap();
    }
    assert_eq!(page_after(&other, Some(token.clone())).unwrap_err().code(), "InvalidNextTokenException");
    // Instances that load the same state (or restart from it) share the key, and the tokens.
    let state = f.registry.export_state();
    assert!(state.next_token_key.is_some());
    assert!(!format!("{state:?}").contains(state.next_token_key.as_deref().unwrap()), "Debug hides the key");
    other.import_state(state.clone()).unwrap();
    assert_eq!(page_after(&other, Some(token.clone())).unwrap().webhooks[0].definition.name, "b");
    let restarted = Registry::builder().region("us-east-1").account_id("111111111111").state(state).build().unwrap();
    assert_eq!(page_after(&restarted, Some(token)).unwrap().webhooks[0].definition.name, "b");
    // The model bounds NextToken to 1..=2048 characters.
    for bad in [String::new(), "A".repeat(2049)] {
        assert_eq!(page_after(&f.registry, Some(bad)).unwrap_err().code(), "ValidationException");
    }
}

/// An exported state with `edit` applied to its JSON, imported into a fresh registry.
fn import_edited(edit: impl FnOnce(&mut Value)) -> Result<Registry, codepipeline_webhooks::Error> {
    let f = fixture();
    f.registry.put_webhook(input("a", |_| {})).unwrap();
    f.registry.put_webhook(input("b", |_| {})).unwrap();
    let mut state = serde_json::to_value(f.registry.export_state()).unwrap();
    edit(&mut state);
    let state: RegistryState = serde_json::from_value(state).unwrap();
    let registry = Registry::builder().region("us-east-1").account_id("111111111111").webhook_quota(2).build().unwrap();
    put_pipeline(&registry, "main");
    registry.put_webhook(input("before", |_| {})).unwrap();
    registry.import_state(state).map(|()| registry)
}

#[test]
fn import_refuses_what_put_webhook_could_never_have_produced() {
    let ok = import_edited(|_| {}).unwrap();
    assert_eq!(ok.list_webhooks(Default::default()).unwrap().webhooks.len(), 2);
    let code = |edit: fn(&mut Value)| import_edited(edit).map(|_| ()).unwrap_err().code();
    // An empty token would make a URL without `t=` the webhook's; a malformed one no URL at all.
    assert_eq!(code(|s| s["webhooks"][0]["token"] = json!("")), "ValidationException");
    assert_eq!(code(|s| s["webhooks"][0]["token"] = json!("a b")), "ValidationException");
    assert_eq!(code(|s| s["webhooks"][0]["token"] = json!("a&t=b")), "ValidationException");
    assert_eq!(code(|s| s["webhooks"][1]["token"] = s["webhooks"][0]["token"].clone()), "ValidationException");
    assert_eq!(code(|s| s["webhooks"][1]["definition"]["name"] = json!("a")), "ValidationException");
    assert_eq!(code(|s| s["webhooks"][0]["lastTriggered"] = json!(-1.0)), "ValidationException");
    assert_eq!(code(|s| s["nextTokenKey"] = json!("c2hvcnQ")), "ValidationException");
    assert_eq!(code(|s| s["pipelines"][0]["name"] = json!("bad name")), "ValidationException");
    // More webhooks than the quota (2 here).
    assert_eq!(
        code(|s| {
            let mut third = s["webhooks"][0].clone();
            third["definition"]["name"] = json!("c");
            third["token"] = json!("token9");
            s["webhooks"].as_array_mut().unwrap().push(third);
        }),
        "LimitExceededException"
    );
    // A definition PutWebhook refuses, whatever the state says about it.
    assert_eq!(
        code(|s| s["webhooks"][0]["definition"]["filters"][0]["jsonPath"] = json!("$[")),
        "InvalidWebhookFilterPatternException"
    );
    assert_eq!(
        code(|s| {
            s["webhooks"][0]["definition"]["filters"][0]["jsonPath"] = json!("$[");
            s["webhooks"][0]["errorCode"] = json!("ValidationException");
        }),
        "InvalidWebhookFilterPatternException"
    );
    assert_eq!(
        code(|s| s["webhooks"][0]["definition"]["targetAction"] = json!("CodePipelineDemoFleet")),
        "ValidationException"
    );
}

#[test]
fn import_keeps_a_webhook_that_recorded_its_error() {
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    let mut moved = pipeline("main");
    moved["stages"][0]["actions"][0]["name"] = json!("GitHubSource");
    f.registry.put_pipeline(serde_json::from_value(moved).unwrap()).unwrap();
    let state = f.registry.export_state();
    assert_eq!(state.webhooks[0].error_code.as_deref(), Some("ValidationException"));
    let other =
        Registry::builder().region("us-east-1").account_id("111111111111").state(state.clone()).build().unwrap();
    let item = other.list_webhooks(Default::default()).unwrap().webhooks.remove(0);
    assert_eq!(item.error_code.as_deref(), Some("ValidationException"));
    assert_eq!(deliver(&other, &url, MAIN).unwrap_err().code(), "ValidationException");
    // Without its errorCode the same webhook is refused: it does not compile.
    let mut bare = state;
    bare.webhooks[0].error_code = None;
    bare.webhooks[0].error_message = None;
    assert_eq!(other.import_state(bare).unwrap_err().code(), "ValidationException");
    assert_eq!(deliver(&other, &url, MAIN).unwrap_err().code(), "ValidationException", "nothing changed");
}

#[test]
fn a_failed_import_changes_nothing() {
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    let mut state = f.registry.export_state();
    state.webhooks[0].token = String::new();
    assert!(f.registry.import_state(state).is_err());
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
    assert_eq!(
        deliver(&f.registry, "https://us-east-1.webhooks.aws/trigger?v=1", MAIN).unwrap_err().code(),
        "WebhookNotFoundException"
    );
}

#[test]
fn webhook_name_members_have_the_model_constraints_of_put_webhooks_name() {
    let f = fixture();
    let long = "a".repeat(101);
    for bad in ["", "bad name", "a/b", long.as_str()] {
        let err = f.registry.delete_webhook(DeleteWebhookInput { name: bad.into() }).unwrap_err();
        assert_eq!((err.code(), err.field()), ("ValidationException", Some("name")), "{bad}");
        assert!(err.message().contains(" at 'name' failed to satisfy constraint: Member must "), "{err}");
        let input = RegisterWebhookWithThirdPartyInput { webhook_name: bad.into() };
        let err = f.registry.register_webhook_with_third_party(input).unwrap_err();
        assert_eq!((err.code(), err.field()), ("ValidationException", Some("webhookName")), "{bad}");
        let input = DeregisterWebhookWithThirdPartyInput { webhook_name: bad.into() };
        let err = f.registry.deregister_webhook_with_third_party(input).unwrap_err();
        assert_eq!((err.code(), err.field()), ("ValidationException", Some("webhookName")), "{bad}");
    }
    let err = f.registry.delete_webhook(DeleteWebhookInput { name: "bad name".into() }).unwrap_err();
    assert_eq!(
        err.message(),
        "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+"
    );
    let err = f.registry.list_webhooks(ListWebhooksInput { next_token: None, max_results: Some(0) }).unwrap_err();
    assert!(err.message().contains("Value '0' at 'MaxResults' failed to satisfy constraint"), "{err}");
}

#[test]
fn null_means_absent_in_inputs_and_state() {
    let f = fixture();
    let with_nulls = json!({"webhook": {
        "name": "hook", "targetPipeline": "MyFirstPipeline", "targetAction": "Source",
        "filters": [{"jsonPath": "$.ref", "matchEquals": null}],
        "authentication": "IP", "authenticationConfiguration": {"AllowedIPRange": "192.0.2.0/24", "SecretToken": null}
    }, "tags": null});
    let input = PutWebhookInput::from_json(&with_nulls.to_string()).unwrap();
    assert!(input.tags.is_empty());
    f.registry.put_webhook(input).unwrap();
    let list: ListWebhooksInput = serde_json::from_str(r#"{"NextToken": null, "MaxResults": null}"#).unwrap();
    assert_eq!(f.registry.list_webhooks(list).unwrap().webhooks.len(), 1);
    let mut state = serde_json::to_value(f.registry.export_state()).unwrap();
    state["webhooks"][0]["tags"] = Value::Null;
    state["webhooks"][0]["registeredWithThirdParty"] = Value::Null;
    state["webhooks"][0]["lastTriggered"] = Value::Null;
    state["nextTokenKey"] = Value::Null;
    let state: RegistryState = serde_json::from_value(state).unwrap();
    f.registry.import_state(state).unwrap();
    let mut declared = pipeline("main");
    declared["stages"][1]["actions"][0]["configuration"] = Value::Null;
    let declared: PipelineDeclaration = serde_json::from_value(declared).unwrap();
    assert!(declared.stages[1].actions[0].configuration.is_empty());
}

/// `aws codepipeline get-pipeline` output as the CLI prints it: the declaration under `pipeline`,
/// and `metadata`.
fn get_pipeline_output(branch: &str) -> Value {
    json!({
        "pipeline": pipeline(branch),
        "metadata": {
            "pipelineArn": "arn:aws:codepipeline:us-east-1:111111111111:MyFirstPipeline",
            "created": 1573573251.294,
            "updated": 1573573251.294
        }
    })
}

#[test]
fn put_pipeline_takes_get_pipeline_output_as_it_is() {
    let whole = PipelineDeclaration::from_json(&get_pipeline_output("release").to_string()).unwrap();
    let bare = PipelineDeclaration::from_json(&pipeline("release").to_string()).unwrap();
    assert_eq!(whole, bare);
    assert_eq!(serde_json::to_value(&whole).unwrap(), pipeline("release"), "metadata is not part of the pipeline");
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    f.registry.put_pipeline(whole).unwrap();
    assert!(deliver(&f.registry, &url, r#"{"ref":"refs/heads/release"}"#).unwrap());
    assert_eq!(whole_config(&bare, "Source").get("Branch"), Some("release"));
    let err = bare.first_stage_configuration("CodePipelineDemoFleet").unwrap_err();
    assert_eq!(
        err.message(),
        "Action with name CodePipelineDemoFleet was not found in the first stage of the pipeline"
    );

    for bad in [
        json!({"pipeline": pipeline("main"), "metadata": {}, "extra": 1}),
        json!({"pipeline": {"name": "p"}}),
        json!([]),
        json!({"name": "p", "stages": "no"}),
    ] {
        let err = PipelineDeclaration::from_json(&bad.to_string()).unwrap_err();
        assert_eq!(err.code(), "ValidationException", "{bad}");
    }
    // A credential in a configuration given with the wrong type is not echoed.
    let mut leaky = pipeline("main");
    leaky["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!(987654321);
    let err = PipelineDeclaration::from_json(&leaky.to_string()).unwrap_err();
    assert!(!err.to_string().contains("987654321"), "{err}");
}

fn whole_config<'p>(p: &'p PipelineDeclaration, action: &str) -> &'p codepipeline_webhooks::ActionConfiguration {
    p.first_stage_configuration(action).unwrap()
}

#[test]
fn max_body_bytes_answers_before_a_body_is_read() {
    let f = fixture();
    let url = f.registry.put_webhook(input("hook", |_| {})).unwrap().webhook.url;
    assert_eq!(f.registry.max_body_bytes(&url).unwrap(), codepipeline_webhooks::limits::DEFAULT_MAX_BODY_BYTES);
    assert_eq!(
        f.registry.max_body_bytes("/trigger?t=token0").unwrap(),
        codepipeline_webhooks::limits::DEFAULT_MAX_BODY_BYTES
    );
    for unknown in ["/trigger?t=nope", "/trigger?t=", "/trigger"] {
        assert_eq!(f.registry.max_body_bytes(unknown).unwrap_err().code(), "WebhookNotFoundException");
    }
    let mut moved = pipeline("main");
    moved["stages"][0]["actions"][0]["name"] = json!("GitHubSource");
    f.registry.put_pipeline(serde_json::from_value(moved).unwrap()).unwrap();
    assert_eq!(f.registry.max_body_bytes(&url).unwrap_err().code(), "ValidationException", "cannot compile");
}

#[test]
fn webhook_options_apply_to_every_webhook() {
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .base_url("https://hooks.example.com")
        .webhook_options(codepipeline_webhooks::Webhook::options().require_sha256(true).max_body_bytes(64))
        .build()
        .unwrap();
    put_pipeline(&registry, "main");
    let url = registry.put_webhook(input("h", |_| {})).unwrap().webhook.url;
    assert_eq!(registry.max_body_bytes(&url).unwrap(), 64);
    let body = br#"{"ref":"refs/heads/main"}"#;
    let sha1 = github::signature_1(b"top-secret-token", body);
    let v = registry.trigger(&url, &Request::new(body).header("X-Hub-Signature", &sha1)).unwrap();
    assert_eq!(v.rejection().map(|r| r.step()), Some(codepipeline_webhooks::Step::Signature), "{v}");
    let big = format!(r#"{{"ref":"refs/heads/main","pad":"{}"}}"#, "x".repeat(64));
    let sig = github::signature_256(b"top-secret-token", big.as_bytes());
    let v = registry.trigger(&url, &Request::new(&big).header("X-Hub-Signature-256", &sig)).unwrap();
    assert!(v.to_string().contains("over the limit of 64"), "{v}");
}

#[test]
fn rotation_keeps_the_previous_secret_for_the_grace_period() {
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let clock = now.clone();
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
        .rotation_grace(Duration::from_secs(3600))
        .build()
        .unwrap();
    put_pipeline(&registry, "main");
    let url = registry.put_webhook(input("h", |_| {})).unwrap().webhook.url;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let signed = |secret: &str| github::signature_256(secret.as_bytes(), body);
    let deliver = |registry: &Registry, secret: &str| {
        let sig = signed(secret);
        registry.trigger(&url, &Request::new(body).header("X-Hub-Signature-256", &sig)).unwrap()
    };
    // Rotate: the new secret verifies; the old one too, and the verdict says so.
    registry
        .put_webhook(input("h", |v| v["webhook"]["authenticationConfiguration"]["SecretToken"] = json!("new-secret")))
        .unwrap();
    let v = deliver(&registry, "new-secret");
    assert!(v.is_trigger() && !v.used_previous_secret(), "{v}");
    let v = deliver(&registry, "top-secret-token");
    assert!(v.is_trigger() && v.used_previous_secret(), "{v}");
    assert!(!deliver(&registry, "never-a-secret").is_trigger());
    // Re-putting with the same secret keeps the grace period running; export/import keeps it.
    registry
        .put_webhook(input("h", |v| v["webhook"]["authenticationConfiguration"]["SecretToken"] = json!("new-secret")))
        .unwrap();
    let state = registry.export_state();
    assert!(format!("{state:?}").contains("previous_secret_token: Some(\"****\")"), "{state:?}");
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(json["webhooks"][0]["previousSecretToken"], "top-secret-token");
    assert_eq!(json["webhooks"][0]["previousSecretValidUntil"], 1_700_003_600.0);
    let copy = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .clock({
            let now = now.clone();
            move || UNIX_EPOCH + Duration::from_secs(now.load(Ordering::SeqCst))
        })
        .state(state)
        .build()
        .unwrap();
    assert!(deliver(&copy, "top-secret-token").used_previous_secret());
    // After the grace period: a mismatch, on both.
    now.store(1_700_003_600, Ordering::SeqCst);
    for r in [&registry, &copy] {
        let v = deliver(r, "top-secret-token");
        assert_eq!(
            v.rejection(),
            Some(&codepipeline_webhooks::Rejection::Signature(codepipeline_webhooks::SignatureError::Mismatch(
                codepipeline_webhooks::SignatureHeader::Sha256
            ))),
            "{v}"
        );
        assert!(deliver(r, "new-secret").is_trigger());
    }
}

#[test]
fn past_the_grace_period_the_old_secret_is_a_signature_reject_even_when_the_filters_fail() {
    // The filter values must not go to someone who no longer holds the secret: a delivery signed
    // with the expired secret never reaches the parser, whatever its body says.
    let now = Arc::new(AtomicU64::new(1_700_000_000));
    let clock = now.clone();
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .clock(move || UNIX_EPOCH + Duration::from_secs(clock.load(Ordering::SeqCst)))
        .rotation_grace(Duration::from_secs(3600))
        .build()
        .unwrap();
    put_pipeline(&registry, "main");
    let url = registry.put_webhook(input("h", |_| {})).unwrap().webhook.url;
    registry
        .put_webhook(input("h", |v| v["webhook"]["authenticationConfiguration"]["SecretToken"] = json!("new-secret")))
        .unwrap();
    let deliver = |body: &[u8], secret: &str| {
        let sig = github::signature_256(secret.as_bytes(), body);
        registry.trigger(&url, &Request::new(body).header("X-Hub-Signature-256", &sig)).unwrap()
    };
    let dev = br#"{"ref":"refs/heads/dev"}"#;
    let signature_mismatch = codepipeline_webhooks::Rejection::Signature(
        codepipeline_webhooks::SignatureError::Mismatch(codepipeline_webhooks::SignatureHeader::Sha256),
    );
    // Within the grace period the old secret verifies, so the filter decides.
    let v = deliver(dev, "top-secret-token");
    assert_eq!(v.rejection().map(|r| r.step()), Some(codepipeline_webhooks::Step::Filter), "{v}");
    now.store(1_700_003_600, Ordering::SeqCst);
    let v = deliver(dev, "top-secret-token");
    assert_eq!(v.rejection(), Some(&signature_mismatch), "{v}");
    assert!(!v.to_string().contains("refs/heads"), "{v}");
    // Not even invalid JSON is looked at.
    assert_eq!(deliver(b"{not json", "top-secret-token").rejection(), Some(&signature_mismatch));
    // The new secret still reaches the filters.
    let v = deliver(dev, "new-secret");
    assert_eq!(v.rejection().map(|r| r.step()), Some(codepipeline_webhooks::Step::Filter), "{v}");
}

#[test]
fn without_a_grace_period_the_old_secret_stops_at_once() {
    let f = fixture();
    put_pipeline(&f.registry, "main");
    let url = f.registry.put_webhook(input("h", |_| {})).unwrap().webhook.url;
    f.registry
        .put_webhook(input("h", |v| v["webhook"]["authenticationConfiguration"]["SecretToken"] = json!("new-secret")))
        .unwrap();
    let body = br#"{"ref":"refs/heads/main"}"#;
    let old = github::signature_256(b"top-secret-token", body);
    let v = f.registry.trigger(&url, &Request::new(body).header("X-Hub-Signature-256", &old)).unwrap();
    assert!(!v.is_trigger() && !v.used_previous_secret(), "{v}");
    assert!(
        serde_json::to_value(f.registry.export_state()).unwrap()["webhooks"][0].get("previousSecretToken").is_none()
    );
}

#[test]
fn deleting_a_pipeline_leaves_its_webhooks_in_error_until_it_is_back() {
    let f = fixture();
    let url = f.registry.put_webhook(input("h", |_| {})).unwrap().webhook.url;
    f.registry.delete_pipeline("MyFirstPipeline").unwrap();
    f.registry.delete_pipeline("MyFirstPipeline").unwrap();
    let listed = f.registry.list_webhooks(Default::default()).unwrap();
    assert_eq!(listed.webhooks[0].error_code.as_deref(), Some("PipelineNotFoundException"));
    assert_eq!(deliver(&f.registry, &url, MAIN).unwrap_err().code(), "PipelineNotFoundException");
    // That state exports and imports as it is (a registry could have produced it).
    let copy = Registry::builder().region("us-east-1").account_id("111111111111").state(f.registry.export_state());
    let copy = copy.build().unwrap();
    assert_eq!(copy.list_webhooks(Default::default()).unwrap().webhooks.len(), 1);
    put_pipeline(&f.registry, "main");
    assert!(deliver(&f.registry, &url, MAIN).unwrap());
}
