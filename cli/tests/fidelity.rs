//! CodePipeline fidelity (issue 19) through the real `serve` binary on 127.0.0.1: the AWS SDK for
//! Rust for the wired operations (pipeline validation, names, tags, secrets masked), and the
//! generated test: every operation served, one invalid input per model constraint, over raw
//! HTTP, each a `ValidationException` in AWS's words.

#[path = "../../tests/support/model_cases.rs"]
mod model_cases;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use aws_sdk_codepipeline::types::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, ArtifactStore, ArtifactStoreType, InputArtifact,
    OutputArtifact, PipelineDeclaration, StageDeclaration, Tag,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "AKIDFIDELITYTEST";
const KEY_SECRET: &str = "fidelity-test-secret-access-key";
const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "ghp_never_shown_0123456789";

/// A running server; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
        let dir: PathBuf = std::env::temp_dir().join(format!("cpw-fidelity-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Server::start_in(&dir, extra)
    }

    fn start_in(dir: &std::path::Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_codepipeline-webhooks"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--public-url", "https://hooks.example.test", "--data-dir"])
            .arg(dir)
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", KEY_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + WAIT;
        let addr = loop {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).expect("the address");
            if let Some(a) = line.strip_prefix("listening on http://") {
                break a.parse().unwrap();
            }
        };
        Server { child, addr }
    }

    fn client(&self) -> Client {
        let config = aws_sdk_codepipeline::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(format!("http://{}", self.addr))
            .credentials_provider(Credentials::new(KEY_ID, KEY_SECRET, None, None, "tests"))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build();
        Client::from_conf(config)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An unsigned control-plane call (the server runs with `--no-auth`): status and JSON answer.
async fn call(addr: SocketAddr, operation: &str, body: &[u8]) -> (u16, Value) {
    let work = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: CodePipeline_20150709.{operation}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        raw
    };
    let raw = tokio::time::timeout(WAIT, work).await.expect("an answer in time");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete head");
    let status = String::from_utf8_lossy(&raw[..split]).split(' ').nth(1).unwrap().parse().unwrap();
    let body = &raw[split + 4..];
    (status, serde_json::from_slice(body).unwrap_or(Value::Null))
}

fn code<E: ProvideErrorMetadata>(e: &E) -> &str {
    e.code().unwrap_or_default()
}

fn action(
    name: &str,
    category: ActionCategory,
    provider: &str,
) -> aws_sdk_codepipeline::types::builders::ActionDeclarationBuilder {
    ActionDeclaration::builder().name(name).action_type_id(
        ActionTypeId::builder()
            .category(category)
            .owner(ActionOwner::ThirdParty)
            .provider(provider)
            .version("1")
            .build()
            .unwrap(),
    )
}

fn pipeline(name: &str) -> aws_sdk_codepipeline::types::builders::PipelineDeclarationBuilder {
    let source = action("Source", ActionCategory::Source, "GitHub")
        .configuration("Owner", "Codertocat")
        .configuration("Repo", "Hello-World")
        .configuration("Branch", "main")
        .configuration("OAuthToken", TOKEN)
        .output_artifacts(OutputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    let build = action("Build", ActionCategory::Build, "CodeBuild")
        .input_artifacts(InputArtifact::builder().name("src").build().unwrap())
        .build()
        .unwrap();
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/codepipeline")
        .artifact_store(
            ArtifactStore::builder().r#type(ArtifactStoreType::S3).location("artifact-bucket").build().unwrap(),
        )
        .stages(StageDeclaration::builder().name("Source").actions(source).build().unwrap())
        .stages(StageDeclaration::builder().name("Build").actions(build).build().unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn create_and_update_pipeline_validate_as_aws_and_never_show_the_oauth_token() {
    let server = Server::start(&[]);
    let c = server.client();
    let created = c
        .create_pipeline()
        .pipeline(pipeline("app").build().unwrap())
        .tags(Tag::builder().key("team").value("ci").build().unwrap())
        .send()
        .await
        .unwrap();
    let config = created.pipeline().unwrap().stages()[0].actions()[0].configuration().unwrap();
    assert_eq!(config.get("OAuthToken").map(String::as_str), Some("****"), "CreatePipeline masks OAuthToken");
    let updated = c.update_pipeline().pipeline(pipeline("app").build().unwrap()).send().await.unwrap();
    let config = updated.pipeline().unwrap().stages()[0].actions()[0].configuration().unwrap();
    assert_eq!(config.get("OAuthToken").map(String::as_str), Some("****"), "UpdatePipeline masks OAuthToken");
    let got = c.get_pipeline().name("app").send().await.unwrap();
    assert_eq!(got.pipeline().unwrap().stages()[0].actions()[0].configuration().unwrap()["OAuthToken"], "****");

    // One stage: the structure rule, as AWS names it.
    let one_stage =
        pipeline("one").set_stages(Some(vec![pipeline("x").build().unwrap().stages()[0].clone()])).build().unwrap();
    let e = c.create_pipeline().pipeline(one_stage).send().await.unwrap_err();
    assert_eq!(code(&e), "InvalidStructureException");
    // A source action after the first stage.
    let late = action("Late", ActionCategory::Source, "GitHub").build().unwrap();
    let p = pipeline("late")
        .stages(StageDeclaration::builder().name("Again").actions(late).build().unwrap())
        .build()
        .unwrap();
    assert_eq!(code(&c.create_pipeline().pipeline(p).send().await.unwrap_err()), "InvalidStructureException");
    // No artifact store.
    let p = pipeline("nostore").set_artifact_store(None).build().unwrap();
    let e = c.create_pipeline().pipeline(p).send().await.unwrap_err();
    assert_eq!(
        (code(&e), e.message()),
        ("InvalidStructureException", Some("You must include either artifactStore or artifactStores in your pipeline"))
    );
    // Model constraints: a bad role ARN and a runOrder of 0, counted.
    let mut bad = pipeline("bad").role_arn("not-an-arn").build().unwrap();
    bad.stages[1].actions[0].run_order = Some(0);
    let e = c.create_pipeline().pipeline(bad).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    assert_eq!(
        e.message(),
        Some(
            "2 validation errors detected: Value at 'pipeline.roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws(-[\\w]+)*:iam::[0-9]{12}:role/.*; Value at 'pipeline.stages.2.member.actions.1.member.runOrder' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )
    );
    // An empty tag key on CreatePipeline.
    let e = c
        .create_pipeline()
        .pipeline(pipeline("tagged").build().unwrap())
        .tags(Tag::builder().key("").value("v").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    // Nothing was created by the refused calls.
    let names: Vec<String> = c
        .list_pipelines()
        .send()
        .await
        .unwrap()
        .pipelines()
        .iter()
        .filter_map(|p| p.name().map(str::to_owned))
        .collect();
    assert_eq!(names, vec!["app".to_owned()]);

    // A number for OAuthToken: AWS's SerializationException, never the value.
    let mut raw = serde_json::to_value(json!({"pipeline": {"name": "num", "roleArn": "arn:aws:iam::123456789012:role/cp",
        "artifactStore": {"type": "S3", "location": "bucket"}, "stages": [{"name": "S", "actions": [{"name": "A",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}, "configuration": {"OAuthToken": 13579246}}]}]}})).unwrap();
    let server2 = Server::start(&["--no-auth"]);
    let (status, answer) = call(server2.addr, "CreatePipeline", raw.to_string().as_bytes()).await;
    assert_eq!((status, answer["__type"].as_str()), (400, Some("SerializationException")));
    assert!(!answer.to_string().contains("13579246"), "{answer}");
    raw["pipeline"]["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!({"nested": "13579246"});
    let (_, answer) = call(server2.addr, "CreatePipeline", raw.to_string().as_bytes()).await;
    assert!(!answer.to_string().contains("13579246"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_names_are_validation_exceptions_on_every_operation() {
    let server = Server::start(&[]);
    let c = server.client();
    for bad in ["", "!", &"n".repeat(101)] {
        let codes = [
            code(&c.get_pipeline().name(bad).send().await.unwrap_err()).to_owned(),
            code(&c.delete_pipeline().name(bad).send().await.unwrap_err()).to_owned(),
            code(&c.list_pipeline_executions().pipeline_name(bad).send().await.unwrap_err()).to_owned(),
            code(
                &c.get_pipeline_execution()
                    .pipeline_name(bad)
                    .pipeline_execution_id("00000000-0000-0000-0000-000000000000")
                    .send()
                    .await
                    .unwrap_err(),
            )
            .to_owned(),
            code(&c.update_pipeline().pipeline(pipeline(bad).build().unwrap()).send().await.unwrap_err()).to_owned(),
            code(&c.delete_webhook().name(bad).send().await.unwrap_err()).to_owned(),
        ];
        assert!(codes.iter().all(|c| c == "ValidationException"), "{bad:?}: {codes:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_resource_untag_resource_and_list_tags_for_resource() {
    let server = Server::start(&[]);
    let c = server.client();
    c.create_pipeline()
        .pipeline(pipeline("app").build().unwrap())
        .tags(Tag::builder().key("team").value("ci").build().unwrap())
        .send()
        .await
        .unwrap();
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:app";
    let tags = |out: aws_sdk_codepipeline::operation::list_tags_for_resource::ListTagsForResourceOutput| {
        out.tags().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect::<Vec<_>>()
    };
    // CreatePipeline's tags can be read back.
    let listed = c.list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    assert_eq!(tags(listed), vec![("team".to_owned(), "ci".to_owned())]);
    c.tag_resource()
        .resource_arn(arn)
        .tags(Tag::builder().key("env").value("prod").build().unwrap())
        .send()
        .await
        .unwrap();
    // maxResults pages them, in the order they were set, with a token bound to the resource.
    c.create_pipeline().pipeline(pipeline("other").build().unwrap()).send().await.unwrap();
    let mut pages = Vec::new();
    let mut next = None;
    loop {
        let out =
            c.list_tags_for_resource().resource_arn(arn).max_results(1).set_next_token(next).send().await.unwrap();
        next = out.next_token().map(str::to_owned);
        pages.push(tags(out));
        if next.is_none() {
            break;
        }
        let elsewhere = c
            .list_tags_for_resource()
            .resource_arn("arn:aws:codepipeline:us-east-1:123456789012:other")
            .next_token(next.clone().unwrap())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&elsewhere), "InvalidNextTokenException");
    }
    assert_eq!(
        pages,
        vec![vec![("team".to_owned(), "ci".to_owned())], vec![("env".to_owned(), "prod".to_owned())]],
        "one tag a page, then no nextToken"
    );
    let forged = c.list_tags_for_resource().resource_arn(arn).next_token("bm90LWEtdG9rZW4").send().await.unwrap_err();
    assert_eq!(code(&forged), "InvalidNextTokenException");
    c.untag_resource().resource_arn(arn).tag_keys("team").send().await.unwrap();
    assert_eq!(
        tags(c.list_tags_for_resource().resource_arn(arn).send().await.unwrap()),
        vec![("env".to_owned(), "prod".to_owned())]
    );
    let reserved = Tag::builder().key("aws:x").value("v").build().unwrap();
    assert_eq!(
        code(&c.tag_resource().resource_arn(arn).tags(reserved).send().await.unwrap_err()),
        "InvalidTagsException"
    );
    let missing = "arn:aws:codepipeline:us-east-1:123456789012:nope";
    assert_eq!(
        code(&c.list_tags_for_resource().resource_arn(missing).send().await.unwrap_err()),
        "ResourceNotFoundException"
    );
    assert_eq!(
        code(
            &c.list_tags_for_resource()
                .resource_arn("arn:aws:codepipeline:us-east-1:123456789012:a/b")
                .send()
                .await
                .unwrap_err()
        ),
        "InvalidArnException"
    );
    assert_eq!(code(&c.list_tags_for_resource().resource_arn("nope").send().await.unwrap_err()), "ValidationException");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_tags_set_by_tag_resource_survive_a_restart() {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("cpw-fidelity-restart-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:webhook:hook";
    {
        let server = Server::start_in(&dir, &[]);
        let c = server.client();
        c.create_pipeline().pipeline(pipeline("app").build().unwrap()).send().await.unwrap();
        let hook = aws_sdk_codepipeline::types::WebhookDefinition::builder()
            .name("hook")
            .target_pipeline("app")
            .target_action("Source")
            .filters(aws_sdk_codepipeline::types::WebhookFilterRule::builder().json_path("$.ref").build().unwrap())
            .authentication(aws_sdk_codepipeline::types::WebhookAuthenticationType::Unauthenticated)
            .authentication_configuration(aws_sdk_codepipeline::types::WebhookAuthConfiguration::builder().build())
            .build()
            .unwrap();
        c.put_webhook()
            .webhook(hook)
            .tags(Tag::builder().key("from").value("put").build().unwrap())
            .send()
            .await
            .unwrap();
        c.tag_resource()
            .resource_arn(arn)
            .tags(Tag::builder().key("env").value("prod").build().unwrap())
            .send()
            .await
            .unwrap();
        // A webhook can target only a source action of the first stage.
        let build_target = aws_sdk_codepipeline::types::WebhookDefinition::builder()
            .name("hook2")
            .target_pipeline("app")
            .target_action("Build")
            .filters(aws_sdk_codepipeline::types::WebhookFilterRule::builder().json_path("$.ref").build().unwrap())
            .authentication(aws_sdk_codepipeline::types::WebhookAuthenticationType::Unauthenticated)
            .authentication_configuration(aws_sdk_codepipeline::types::WebhookAuthConfiguration::builder().build())
            .build()
            .unwrap();
        assert_eq!(code(&c.put_webhook().webhook(build_target).send().await.unwrap_err()), "ValidationException");
    }
    let server = Server::start_in(&dir, &[]);
    let listed = server.client().list_tags_for_resource().resource_arn(arn).send().await.unwrap();
    let tags: Vec<(&str, &str)> = listed.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, vec![("from", "put"), ("env", "prod")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_must_be_json_objects() {
    let server = Server::start(&["--no-auth"]);
    for (operation, body) in [("DeleteWebhook", &b"[\"x\"]"[..]), ("ListPipelines", b"7"), ("GetPipeline", b"\"app\"")]
    {
        let (status, answer) = call(server.addr, operation, body).await;
        assert_eq!((status, answer["__type"].as_str()), (400, Some("SerializationException")), "{operation}");
    }
}

/// The operations the service serves.
const SERVED: [&str; 19] = [
    "PutWebhook",
    "ListWebhooks",
    "DeleteWebhook",
    "RegisterWebhookWithThirdParty",
    "DeregisterWebhookWithThirdParty",
    "CreatePipeline",
    "UpdatePipeline",
    "GetPipeline",
    "DeletePipeline",
    "ListPipelines",
    "ListPipelineExecutions",
    "GetPipelineExecution",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "StartPipelineExecution",
    "StopPipelineExecution",
    "GetPipelineState",
    "ListActionExecutions",
];

#[tokio::test(flavor = "multi_thread")]
async fn generated_every_served_operation_one_invalid_input_per_model_constraint() {
    let server = Server::start(&["--no-auth"]);
    let model = model_cases::Model::load();
    let mut total = 0;
    for operation in SERVED {
        let (_, cases) = model.cases(operation);
        assert!(!cases.is_empty(), "{operation}");
        for case in cases {
            let (status, answer) = call(server.addr, operation, case.input.to_string().as_bytes()).await;
            assert_eq!(
                (status, answer["__type"].as_str()),
                (400, Some("ValidationException")),
                "{operation}: {}: {answer}",
                case.expected
            );
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(&case.expected), "{operation}: expected `{}` in `{message}`", case.expected);
            total += 1;
        }
    }
    eprintln!("{total} generated cases through the service");
    assert!(total > 250, "{total} generated cases");
}
