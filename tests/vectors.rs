//! One vector set through every implementation of GitHub's signature check, as RustCrypto's
//! `hmac` runs one set through every implementation: GitHub's documented HMAC vector
//! (tests/fixtures/hmac-vectors.json) and the corpus's pushes signed here with the `hmac` crate
//! directly (not with this crate's `github::signature_256`), each through `github::signature_256`
//! and `signature_1`, `github::verify`, `Webhook::evaluate`, `WebhookSet::matches` and the
//! registry's `trigger`.

mod common;

use codepipeline_webhooks::registry::{PipelineDeclaration, Registry};
use codepipeline_webhooks::{
    ActionConfiguration, PutWebhookInput, Rejection, Request, SignatureError, SignatureHeader, Step, Verdict, Webhook,
    WebhookDefinition, WebhookSet, github,
};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};

/// A secret, a body, and the headers GitHub sends for it.
struct Vector {
    name: String,
    secret: String,
    body: Vec<u8>,
    sha256: String,
    sha1: String,
    /// Whether the body is JSON (GitHub's documented vector is not: it passes the signature and
    /// stops at the payload).
    json: bool,
}

fn vectors() -> Vec<Vector> {
    let documented: Value = serde_json::from_slice(&fixture("hmac-vectors.json")).unwrap();
    let mut out: Vec<Vector> = documented
        .as_array()
        .unwrap()
        .iter()
        .map(|v| Vector {
            name: "GitHub's documented vector".into(),
            secret: v["secret"].as_str().unwrap().into(),
            body: v["payload"].as_str().unwrap().as_bytes().to_vec(),
            sha256: v["x_hub_signature_256"].as_str().unwrap().into(),
            sha1: v["x_hub_signature"].as_str().unwrap().into(),
            json: false,
        })
        .collect();
    assert_eq!(out[0].sha256, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
    let dir = fixtures().join("github/push");
    let mut pushes: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    pushes.sort();
    for path in pushes {
        let body = std::fs::read(&path).unwrap();
        let mut sha256 = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        sha256.update(&body);
        let mut sha1 = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
        sha1.update(&body);
        out.push(Vector {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            secret: SECRET.into(),
            body,
            sha256: format!("sha256={}", hex::encode(sha256.finalize().into_bytes())),
            sha1: format!("sha1={}", hex::encode(sha1.finalize().into_bytes())),
            json: true,
        });
    }
    assert!(out.len() >= 5, "the documented vector and the corpus's pushes: {}", out.len());
    out
}

fn definition(secret: &str) -> WebhookDefinition {
    definition_with(json!([]), |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": secret});
    })
}

/// The headers of a delivery: SHA-256, SHA-1 alone, or both.
fn requests(v: &Vector) -> Vec<(&'static str, Request<'_>)> {
    let body = &v.body[..];
    vec![
        ("sha256", Request::new(body).header("X-Hub-Signature-256", &v.sha256)),
        ("sha1", Request::new(body).header("X-Hub-Signature", &v.sha1)),
        ("both", Request::new(body).header("X-Hub-Signature-256", &v.sha256).header("X-Hub-Signature", &v.sha1)),
    ]
}

/// A verdict that got past the signature step: a trigger for JSON, a payload reject otherwise.
fn assert_verified(v: &Vector, how: &str, verdict: &Verdict) {
    if v.json {
        assert!(verdict.is_trigger(), "{} ({how}): {verdict}", v.name);
    } else {
        assert_eq!(verdict.step(), Some(Step::Payload), "{} ({how}): {verdict}", v.name);
    }
}

fn mismatch(header: &str) -> Rejection {
    Rejection::Signature(SignatureError::Mismatch(if header == "sha1" {
        SignatureHeader::Sha1
    } else {
        SignatureHeader::Sha256
    }))
}

#[test]
fn signature_256_and_signature_1_give_the_vectors() {
    for v in vectors() {
        assert_eq!(github::signature_256(v.secret.as_bytes(), &v.body), v.sha256, "{}", v.name);
        assert_eq!(github::signature_1(v.secret.as_bytes(), &v.body), v.sha1, "{}", v.name);
    }
}

#[test]
fn github_verify_accepts_the_vectors_and_nothing_else() {
    for v in vectors() {
        for (how, request) in requests(&v) {
            assert_eq!(github::verify(v.secret.as_bytes(), &request), Ok(()), "{} ({how})", v.name);
            let Rejection::Signature(wrong) = mismatch(how) else { unreachable!() };
            assert_eq!(github::verify(b"another secret", &request), Err(wrong), "{} ({how})", v.name);
        }
        let tampered = [&v.body[..], b" "].concat();
        let request = Request::new(&tampered).header("X-Hub-Signature-256", &v.sha256);
        assert!(github::verify(v.secret.as_bytes(), &request).is_err(), "{}", v.name);
    }
}

#[test]
fn webhook_evaluate_accepts_the_vectors_and_nothing_else() {
    for v in vectors() {
        let webhook = Webhook::new(&definition(&v.secret), &ActionConfiguration::new()).unwrap();
        let other = Webhook::new(&definition("another secret"), &ActionConfiguration::new()).unwrap();
        for (how, request) in requests(&v) {
            assert_verified(&v, how, &webhook.evaluate(&request));
            assert_eq!(other.evaluate(&request).rejection(), Some(&mismatch(how)), "{} ({how})", v.name);
        }
        // Signed with the vector's secret as a previous one: verifies, and says so.
        let rotated = Webhook::options()
            .accept_previous_secret(v.secret.clone())
            .build(&definition("another secret"), &ActionConfiguration::new())
            .unwrap();
        let (_, request) = &requests(&v)[0];
        let verdict = rotated.evaluate(request);
        assert_verified(&v, "previous", &verdict);
        assert_eq!(verdict.used_previous_secret(), v.json, "{}: {verdict}", v.name);
    }
}

#[test]
fn webhook_set_matches_the_vectors_and_nothing_else() {
    for v in vectors() {
        let member = |secret: &str| Webhook::new(&definition(secret), &ActionConfiguration::new()).unwrap();
        let set = WebhookSet::new([member("another secret"), member(&v.secret), member("a third")]);
        for (how, request) in requests(&v) {
            let matches = set.matches(&request);
            let expected: Vec<usize> = if v.json { vec![1] } else { vec![] };
            assert_eq!(matches.iter().collect::<Vec<_>>(), expected, "{} ({how})", v.name);
            // Verified by the one member that holds the secret: the body was parsed for it.
            assert!(matches.body_parsed(), "{} ({how})", v.name);
            assert_eq!(matches.signatures_checked(), 3, "{} ({how})", v.name);
        }
        let alone = WebhookSet::new([member("another secret")]);
        let (_, request) = &requests(&v)[0];
        let matches = alone.matches(request);
        assert!(matches.is_empty() && !matches.body_parsed(), "{}", v.name);
    }
}

#[test]
fn the_registry_triggers_on_the_vectors_and_nothing_else() {
    let pipeline: PipelineDeclaration = serde_json::from_value(json!({
        "name": "pipe", "roleArn": "arn:aws:iam::111111111111:role/r",
        "stages": [{"name": "Source", "actions": [{
            "name": "Source", "runOrder": 1,
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "version": "1", "provider": "GitHub"},
            "configuration": {"Owner": "o", "Repo": "r", "Branch": "main"}, "outputArtifacts": [{"name": "out"}]
        }]}, {"name": "Build", "actions": [{
            "name": "Build", "runOrder": 1,
            "actionTypeId": {"category": "Build", "owner": "AWS", "version": "1", "provider": "CodeBuild"},
            "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "out"}]
        }]}],
        "artifactStore": {"type": "S3", "location": "bucket"}
    }))
    .unwrap();
    for v in vectors() {
        let registry = Registry::builder().region("us-east-1").account_id("111111111111").build().unwrap();
        registry.put_pipeline(pipeline.clone()).unwrap();
        let input: PutWebhookInput =
            serde_json::from_value(json!({"webhook": serde_json::to_value(definition(&v.secret)).unwrap()})).unwrap();
        let url = registry.put_webhook(input).unwrap().webhook.url;
        for (how, request) in requests(&v) {
            assert_verified(&v, how, &registry.trigger(&url, &request).unwrap());
        }
        let zeros = format!("sha256={}", "0".repeat(64));
        let forged = Request::new(&v.body[..]).header("X-Hub-Signature-256", &zeros);
        assert_eq!(registry.trigger(&url, &forged).unwrap().rejection(), Some(&mismatch("sha256")), "{}", v.name);
    }
}
