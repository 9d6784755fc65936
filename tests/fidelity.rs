//! CodePipeline fidelity (issue 19), the engine's half: pipeline declarations as `CreatePipeline`
//! validates them (model constraints by class, then each structure rule), one name checker, one
//! tag checker and the tag operations, source-only webhook targets, secrets masked, and deliveries
//! found by token whatever the path.

use codepipeline_webhooks::registry::{
    ListTagsForResourceInput, PipelineDeclaration, Registry, TagResourceInput, UntagResourceInput, check_name,
    validate_pipeline_input,
};
use codepipeline_webhooks::{PutWebhookInput, Request, Tag};
use serde_json::{Value, json};

fn valid() -> Value {
    json!({
        "name": "app", "roleArn": "arn:aws:iam::123456789012:role/cp",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Source",
                "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                "outputArtifacts": [{"name": "src"}],
                "configuration": {"Owner": "o", "Repo": "r", "Branch": "main", "OAuthToken": "ghp_do_not_show"}}]},
            {"name": "Build", "actions": [{"name": "Build",
                "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                "inputArtifacts": [{"name": "src"}]}]}
        ]
    })
}

fn create(edit: impl FnOnce(&mut Value)) -> Result<(), codepipeline_webhooks::Error> {
    let mut p = valid();
    edit(&mut p);
    validate_pipeline_input("CreatePipeline", &json!({ "pipeline": p }))
}

/// A change to the valid declaration.
type Edit = Box<dyn FnOnce(&mut Value)>;

fn err(edit: impl FnOnce(&mut Value)) -> (String, String) {
    let e = create(edit).unwrap_err();
    (e.code().to_owned(), e.message().to_owned())
}

#[test]
fn a_valid_declaration_is_accepted_by_create_and_update() {
    create(|_| {}).unwrap();
    validate_pipeline_input("UpdatePipeline", &json!({"pipeline": valid()})).unwrap();
}

#[test]
fn model_constraints_by_class_with_aws_paths_and_counts() {
    let one = |m: &str| format!("1 validation error detected: {m}");
    // Required member.
    assert_eq!(
        err(|p| {
            p["stages"][0].as_object_mut().unwrap().remove("name");
        }),
        (
            "ValidationException".into(),
            one("Value null at 'pipeline.stages.1.member.name' failed to satisfy constraint: Member must not be null")
        )
    );
    // Two at once, counted.
    let (code, message) = err(|p| {
        p.as_object_mut().unwrap().remove("roleArn");
        p["stages"][1]["actions"][0]["name"] = json!("bad name");
    });
    assert_eq!(code, "ValidationException");
    assert_eq!(
        message,
        "2 validation errors detected: Value null at 'pipeline.roleArn' failed to satisfy constraint: Member must not be null; Value at 'pipeline.stages.2.member.actions.1.member.name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+"
    );
    // Pattern.
    assert_eq!(
        err(|p| p["roleArn"] = json!("role/cp")).1,
        one(
            "Value at 'pipeline.roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws(-[\\w]+)*:iam::[0-9]{12}:role/.*"
        )
    );
    // Length.
    assert_eq!(
        err(|p| p["stages"][0]["name"] = json!("s".repeat(101))).1,
        one(
            "Value at 'pipeline.stages.1.member.name' failed to satisfy constraint: Member must have length less than or equal to 100"
        )
    );
    // Enum.
    assert_eq!(
        err(|p| p["executionMode"] = json!("FAST")).1,
        one(
            "Value at 'pipeline.executionMode' failed to satisfy constraint: Member must satisfy enum value set: [QUEUED, SUPERSEDED, PARALLEL]"
        )
    );
    assert_eq!(
        err(|p| p["pipelineType"] = json!("V3")).1,
        one(
            "Value at 'pipeline.pipelineType' failed to satisfy constraint: Member must satisfy enum value set: [V1, V2]"
        )
    );
    assert_eq!(
        err(|p| p["stages"][1]["onFailure"] = json!({"result": "EXPLODE"})).1,
        one(
            "Value at 'pipeline.stages.2.member.onFailure.result' failed to satisfy constraint: Member must satisfy enum value set: [ROLLBACK, FAIL, RETRY, SKIP]"
        )
    );
    // Range.
    assert_eq!(
        err(|p| p["stages"][1]["actions"][0]["runOrder"] = json!(0)).1,
        one(
            "Value at 'pipeline.stages.2.member.actions.1.member.runOrder' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
    // A bad actionTypeId.
    assert_eq!(
        err(|p| p["stages"][1]["actions"][0]["actionTypeId"]["provider"] = json!("integrations/github")).1,
        one(
            "Value at 'pipeline.stages.2.member.actions.1.member.actionTypeId.provider' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9A-Za-z_-]+"
        )
    );
    // Map values.
    assert_eq!(
        err(|p| p["stages"][0]["actions"][0]["configuration"]["Branch"] = json!("")).1,
        one(
            "Value at 'pipeline.stages.1.member.actions.1.member.configuration' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 1000, Member must have length greater than or equal to 1]"
        )
    );
    // List size.
    assert_eq!(
        err(|p| p["stages"][1]["actions"][0]["outputVariables"] = json!([])).1,
        one(
            "Value at 'pipeline.stages.2.member.actions.1.member.outputVariables' failed to satisfy constraint: Member must have length greater than or equal to 1"
        )
    );
    // Tags on CreatePipeline.
    for (tags, fragment) in [
        (
            json!([{"key": "", "value": "v"}]),
            "Value at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1",
        ),
        (
            json!([{"key": "k".repeat(129), "value": "v"}]),
            "Value at 'tags.1.member.key' failed to satisfy constraint: Member must have length less than or equal to 128",
        ),
        (
            json!([{"key": "k", "value": "v".repeat(257)}]),
            "Value at 'tags.1.member.value' failed to satisfy constraint: Member must have length less than or equal to 256",
        ),
    ] {
        let e = validate_pipeline_input("CreatePipeline", &json!({"pipeline": valid(), "tags": tags})).unwrap_err();
        assert_eq!((e.code(), e.message()), ("ValidationException", one(fragment).as_str()));
    }
}

#[test]
fn wrong_types_never_echo_a_value() {
    let (code, message) = err(|p| p["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!(13579246));
    assert_eq!(code, "SerializationException");
    assert!(!message.contains("13579246"), "{message}");
    let (code, _) = err(|p| p["stages"] = json!({"name": "x"}));
    assert_eq!(code, "SerializationException");
}

#[test]
fn structure_rules_with_the_exceptions_aws_names() {
    let cases: Vec<(Edit, &str, &str)> = vec![
        (
            Box::new(|p| p["stages"].as_array_mut().unwrap().truncate(1)),
            "InvalidStructureException",
            "A pipeline must contain at least two stages",
        ),
        (
            Box::new(|p| {
                p.as_object_mut().unwrap().remove("artifactStore");
            }),
            "InvalidStructureException",
            "You must include either artifactStore or artifactStores in your pipeline",
        ),
        (
            Box::new(|p| p["artifactStores"] = json!({"us-east-1": {"type": "S3", "location": "bucket"}})),
            "InvalidStructureException",
            "but you cannot use both",
        ),
        (
            Box::new(|p| p["stages"][1]["actions"] = json!([])),
            "InvalidStageDeclarationException",
            "Stage 'Build' must contain at least one action",
        ),
        (
            Box::new(|p| p["stages"][1]["name"] = json!("Source")),
            "InvalidStageDeclarationException",
            "Stage name 'Source' is used more than once",
        ),
        (
            Box::new(|p| {
                let a = p["stages"][1]["actions"][0].clone();
                p["stages"][1]["actions"].as_array_mut().unwrap().push(a);
            }),
            "InvalidActionDeclarationException",
            "Action name 'Build' is used more than once in stage 'Build'",
        ),
        (
            Box::new(|p| {
                let a = p["stages"][1]["actions"][0].clone();
                p["stages"][0]["actions"].as_array_mut().unwrap().push(a);
            }),
            "InvalidStructureException",
            "Pipeline should start with a stage that only contains source actions",
        ),
        (
            Box::new(|p| {
                let mut a = p["stages"][0]["actions"][0].clone();
                a["name"] = json!("Late");
                a["outputArtifacts"] = json!([{"name": "late"}]);
                p["stages"][1]["actions"].as_array_mut().unwrap().push(a);
            }),
            "InvalidStructureException",
            "Source actions can only be included in the first stage of the pipeline",
        ),
        (
            Box::new(|p| p["stages"][1]["actions"][0]["inputArtifacts"] = json!([{"name": "nowhere"}])),
            "InvalidStructureException",
            "Input artifact 'nowhere' of action 'Build' is not the output artifact of a preceding action",
        ),
        (
            Box::new(|p| p["stages"][1]["actions"][0]["outputArtifacts"] = json!([{"name": "src"}])),
            "InvalidStructureException",
            "Output artifact names must be unique within a pipeline",
        ),
        (
            Box::new(|p| p["variables"] = json!([{"name": "v"}])),
            "InvalidStructureException",
            "Pipeline variable can only be used with V2 pipelines",
        ),
        (
            Box::new(
                |p| p["triggers"] = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {"sourceActionName": "Source"}}]),
            ),
            "InvalidStructureException",
            "Triggers on tag can only be used with V2 pipelines",
        ),
        (
            Box::new(|p| p["executionMode"] = json!("QUEUED")),
            "InvalidStructureException",
            "QUEUED or PARALLEL mode can only be used with V2 pipelines",
        ),
        (
            Box::new(|p| {
                p["pipelineType"] = json!("V2");
                p["triggers"] = json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {"sourceActionName": "Nope"}}]);
            }),
            "InvalidStructureException",
            "Triggers for connections must reference a CodeStarSourceConnection action.",
        ),
        (
            Box::new(|p| {
                p["pipelineType"] = json!("V2");
                p["variables"] = json!([{"name": "v"}, {"name": "v"}]);
            }),
            "InvalidStructureException",
            "Variable names must be unique. The following variable name is already in use: v",
        ),
    ];
    for (edit, code, fragment) in cases {
        let (got, message) = err(edit);
        assert_eq!(got, code, "{message}");
        assert!(message.contains(fragment), "expected `{fragment}` in `{message}`");
    }
    // V2 fields on a V2 pipeline, a trigger on a connection source action: accepted.
    create(|p| {
        p["pipelineType"] = json!("V2");
        p["executionMode"] = json!("PARALLEL");
        p["variables"] = json!([{"name": "v", "defaultValue": "1"}]);
        p["stages"][0]["actions"][0]["actionTypeId"]["provider"] = json!("CodeStarSourceConnection");
        p["stages"][0]["actions"][0]["actionTypeId"]["owner"] = json!("AWS");
        p["triggers"] =
            json!([{"providerType": "CodeStarSourceConnection", "gitConfiguration": {"sourceActionName": "Source"}}]);
    })
    .unwrap();
}

#[test]
fn one_name_checker_for_every_name_member() {
    for bad in ["", "!", &"n".repeat(101)] {
        assert_eq!(check_name("name", bad).unwrap_err().code(), "ValidationException", "{bad:?}");
    }
    check_name("name", "a.b@c-d_e").unwrap();
}

fn registry() -> Registry {
    let n = std::sync::atomic::AtomicU64::new(0);
    let r = Registry::builder()
        .region("us-east-1")
        .account_id("123456789012")
        .base_url("https://hooks.example.com/cp")
        .token_source(move || format!("tok{}", n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
        .build()
        .unwrap();
    r.put_pipeline(serde_json::from_value::<PipelineDeclaration>(valid()).unwrap()).unwrap();
    r
}

fn hook(target: &str) -> PutWebhookInput {
    PutWebhookInput::from_json(
        &json!({"webhook": {"name": "hook", "targetPipeline": "app", "targetAction": target,
            "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
            "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}},
            "tags": [{"key": "team", "value": "a"}]})
        .to_string(),
    )
    .unwrap()
}

#[test]
fn a_webhook_targets_only_a_source_action_of_the_first_stage() {
    let r = registry();
    let e = r.put_webhook(hook("Build")).unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        ("ValidationException", "Action with name Build was not found in the first stage of the pipeline")
    );
    let mut p = valid();
    p["stages"][0]["actions"][0]["actionTypeId"]["category"] = json!("Build");
    r.put_pipeline(serde_json::from_value(p).unwrap()).unwrap();
    let e = r.put_webhook(hook("Source")).unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        ("ValidationException", "The action must be from the source (first) stage of the pipeline")
    );
}

#[test]
fn tags_of_pipelines_and_webhooks_in_one_store_with_one_checker() {
    let r = registry();
    r.put_webhook(hook("Source")).unwrap();
    let list = |arn: &str| {
        r.list_tags_for_resource(ListTagsForResourceInput {
            resource_arn: arn.into(),
            next_token: None,
            max_results: None,
        })
    };
    let tag = |k: &str, v: &str| Tag { key: k.into(), value: v.into() };
    let webhook = "arn:aws:codepipeline:us-east-1:123456789012:webhook:hook";
    let pipeline = "arn:aws:codepipeline:us-east-1:123456789012:app";
    assert_eq!(r.pipeline_arn("app"), pipeline);
    // PutWebhook's tags are the webhook's.
    assert_eq!(list(webhook).unwrap().tags, vec![tag("team", "a")]);
    r.tag_resource(TagResourceInput { resource_arn: webhook.into(), tags: vec![tag("team", "b"), tag("env", "prod")] })
        .unwrap();
    assert_eq!(list(webhook).unwrap().tags, vec![tag("team", "b"), tag("env", "prod")]);
    // Paged with maxResults: a token resumes this resource's listing and no other.
    let page = |arn: &str, next_token: Option<String>| {
        r.list_tags_for_resource(ListTagsForResourceInput {
            resource_arn: arn.into(),
            next_token,
            max_results: Some(1),
        })
    };
    let first = page(webhook, None).unwrap();
    assert_eq!(first.tags, vec![tag("team", "b")]);
    let token = first.next_token.expect("more follow");
    let second = page(webhook, Some(token.clone())).unwrap();
    assert_eq!((second.tags, second.next_token), (vec![tag("env", "prod")], None));
    let elsewhere = page("arn:aws:codepipeline:us-east-1:123456789012:app", Some(token)).unwrap_err();
    assert_eq!(elsewhere.code(), "InvalidNextTokenException");
    let other_call = r.issue_next_token("ListWebhooks", "0\narn:aws:codepipeline:us-east-1:123456789012:webhook:hook");
    assert_eq!(page(webhook, Some(other_call)).unwrap_err().code(), "InvalidNextTokenException");
    assert_eq!(page(webhook, Some(String::new())).unwrap_err().code(), "ValidationException");
    assert_eq!(r.list_webhooks(Default::default()).unwrap().webhooks[0].tags.as_ref().unwrap().len(), 2);
    r.untag_resource(UntagResourceInput {
        resource_arn: webhook.into(),
        tag_keys: vec!["team".into(), "absent".into()],
    })
    .unwrap();
    assert_eq!(list(webhook).unwrap().tags, vec![tag("env", "prod")]);
    // Pipelines.
    assert!(list(pipeline).unwrap().tags.is_empty());
    r.tag_resource(TagResourceInput { resource_arn: pipeline.into(), tags: vec![tag("k", "")] }).unwrap();
    assert_eq!(list(pipeline).unwrap().tags, vec![tag("k", "")]);
    // Survives export and import.
    let state = r.export_state();
    assert_eq!(state.pipeline_tags["app"], vec![tag("k", "")]);
    let again = Registry::builder().region("us-east-1").account_id("123456789012").state(state).build().unwrap();
    assert_eq!(
        again
            .list_tags_for_resource(ListTagsForResourceInput {
                resource_arn: pipeline.into(),
                next_token: None,
                max_results: None
            })
            .unwrap()
            .tags,
        vec![tag("k", "")]
    );
    // The rules, one checker.
    let code = |arn: &str, tags: Vec<Tag>| {
        r.tag_resource(TagResourceInput { resource_arn: arn.into(), tags }).unwrap_err().code()
    };
    assert_eq!(code(pipeline, vec![tag("", "v")]), "ValidationException");
    assert_eq!(code(pipeline, vec![tag("Aws:x", "v")]), "InvalidTagsException");
    assert_eq!(code(pipeline, vec![tag("d", "1"), tag("d", "2")]), "InvalidTagsException");
    assert_eq!(code(pipeline, (0..50).map(|i| tag(&format!("t{i}"), "")).collect()), "TooManyTagsException");
    assert_eq!(
        r.untag_resource(UntagResourceInput { resource_arn: pipeline.into(), tag_keys: vec!["aws:x".into()] })
            .unwrap_err()
            .code(),
        "InvalidTagsException"
    );
    // ARNs.
    assert_eq!(code("arn:aws:codepipeline:us-east-1:123456789012:nope", vec![]), "ResourceNotFoundException");
    assert_eq!(code("arn:aws:codepipeline:us-east-1:123456789012:webhook:nope", vec![]), "ResourceNotFoundException");
    assert_eq!(code("arn:aws:codepipeline:eu-west-1:123456789012:app", vec![]), "ResourceNotFoundException");
    assert_eq!(code("arn:aws:codepipeline:us-east-1:123456789012:a/b", vec![]), "InvalidArnException");
    assert_eq!(code("arn:aws:s3:::bucket", vec![]), "ValidationException");
    // Deleting a pipeline drops its tags.
    r.delete_pipeline("app").unwrap();
    assert!(r.export_state().pipeline_tags.is_empty());
}

#[test]
fn secrets_are_masked_whatever_their_type() {
    let r = Registry::builder()
        .region("us-east-1")
        .account_id("123456789012")
        .webhook_options(codepipeline_webhooks::WebhookOptions::default().secret_key("ApiKey"))
        .build()
        .unwrap();
    let mut p = valid();
    p["stages"][0]["actions"][0]["configuration"]["ApiKey"] = json!("k-123");
    r.mask_secrets(&mut p);
    let config = &p["stages"][0]["actions"][0]["configuration"];
    assert_eq!(
        (config["OAuthToken"].as_str(), config["ApiKey"].as_str(), config["Branch"].as_str()),
        (Some("****"), Some("****"), Some("main"))
    );
    assert!(!p.to_string().contains("ghp_do_not_show"));
}

#[test]
fn deliveries_are_found_by_token_whatever_the_path_and_two_tokens_are_refused() {
    let r = registry();
    let url = r.put_webhook(hook("Source")).unwrap().webhook.url;
    assert_eq!(url, "https://hooks.example.com/cp/trigger?t=tok0&v=1");
    let push = Request::new(r#"{"ref":"refs/heads/main"}"#);
    for ok in ["/trigger?v=1&t=tok0", "https://other.example/trigger?t=tok0", "/cp/trigger?t=tok0&v=1", &url] {
        assert!(r.trigger(ok, &push).unwrap().is_trigger(), "{ok}");
    }
    for refused in ["/trigger?t=tok0&t=tok0", "/trigger?t=tok0&t=other", "/trigger?v=1", "/trigger?t=tok0&v=2"] {
        assert_eq!(r.trigger(refused, &push).unwrap_err().code(), "WebhookNotFoundException", "{refused}");
    }
}

#[test]
fn a_state_that_tags_a_missing_pipeline_or_breaks_the_tag_rules_does_not_load() {
    let r = registry();
    let mut state = r.export_state();
    state.pipeline_tags.insert("ghost".into(), vec![Tag { key: "k".into(), value: "v".into() }]);
    let e = Registry::builder().region("us-east-1").account_id("123456789012").state(state).build().unwrap_err();
    assert_eq!(e.code(), "ValidationException");
    let mut state = r.export_state();
    state.pipeline_tags.insert("app".into(), vec![Tag { key: "aws:k".into(), value: "v".into() }]);
    let e = Registry::builder().region("us-east-1").account_id("123456789012").state(state).build().unwrap_err();
    assert_eq!(e.code(), "InvalidTagsException");
}
