//! Real GitHub deliveries from the corpus (tests/fixtures), signed here, against realistic
//! definitions; and GitHub's documented HMAC test vector.

mod common;

use codepipeline_webhooks::{ActionConfiguration, Request, Step, Webhook, WebhookDefinition, github};
use common::*;
use serde_json::{Value, json};

/// Every payload file in the corpus, with its path.
fn payloads() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![fixtures().join("github"), fixtures().join("github-extra")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let name = path.strip_prefix(fixtures()).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    assert!(out.len() == 32, "the whole corpus is here: {}", out.len());
    out
}

fn hmac_definition(filters: Value) -> WebhookDefinition {
    definition_with(filters, |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": SECRET});
    })
}

fn deliver(webhook: &Webhook, body: &[u8]) -> codepipeline_webhooks::Verdict {
    let sig = github::signature_256(SECRET.as_bytes(), body);
    webhook.evaluate(&Request::new(body).header("X-Hub-Signature-256", &sig).header("Content-Type", "application/json"))
}

/// What the realistic definitions should decide for each payload, from the payload itself.
fn facts(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

#[test]
fn branch_push_via_branch_placeholder() {
    let definition = hmac_definition(json!([
        {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"},
        {"jsonPath": "$.repository.full_name", "matchEquals": "{Owner}/{Repo}"}
    ]));
    let config: ActionConfiguration =
        [("Owner", "Codertocat"), ("Repo", "Hello-World"), ("Branch", "master")].into_iter().collect();
    let webhook = Webhook::new(&definition, &config).unwrap();
    let mut triggered = Vec::new();
    for (name, body) in payloads() {
        let f = facts(&body);
        let expected = f["ref"] == "refs/heads/master" && f["repository"]["full_name"] == "Codertocat/Hello-World";
        let verdict = deliver(&webhook, &body);
        assert_eq!(verdict.is_trigger(), expected, "{name}: {verdict}");
        if verdict.is_trigger() {
            triggered.push(name);
        } else {
            assert_eq!(verdict.rejection().unwrap().step(), Step::Filter, "{name}: {verdict}");
        }
    }
    assert_eq!(
        triggered,
        ["github/push/with-new-branch.payload.json", "github/push/with-no-username-committer.payload.json"]
    );
}

#[test]
fn tag_push() {
    let webhook = Webhook::new(
        &hmac_definition(json!([{"jsonPath": "$.ref", "matchEquals": "refs/tags/simple-tag"}])),
        &config(),
    )
    .unwrap();
    let mut count = 0;
    for (name, body) in payloads() {
        let expected = facts(&body)["ref"] == "refs/tags/simple-tag";
        count += usize::from(expected);
        assert_eq!(deliver(&webhook, &body).is_trigger(), expected, "{name}");
    }
    assert_eq!(count, 5, "four octokit tag pushes and the GHES one");
}

#[test]
fn pull_request_action_and_base_branch() {
    let webhook = Webhook::new(
        &hmac_definition(json!([
            {"jsonPath": "$.action", "matchEquals": "opened"},
            {"jsonPath": "$.pull_request.base.ref", "matchEquals": "{Branch}"}
        ])),
        &[("Branch", "master")].into_iter().collect(),
    )
    .unwrap();
    for (name, body) in payloads() {
        let f = facts(&body);
        let expected = f["action"] == "opened" && f["pull_request"]["base"]["ref"] == "master";
        assert_eq!(deliver(&webhook, &body).is_trigger(), expected, "{name}");
    }
    let body = fixture("github/pull_request/opened.with-null-body.json");
    assert!(deliver(&webhook, &body).is_trigger());
}

#[test]
fn release_published() {
    let webhook = Webhook::new(
        &hmac_definition(
            json!([{"jsonPath": "$.action", "matchEquals": "published"}, {"jsonPath": "$.release.tag_name"}]),
        ),
        &config(),
    )
    .unwrap();
    for (name, body) in payloads() {
        let f = facts(&body);
        let expected = f["action"] == "published" && f.get("release").is_some();
        assert_eq!(deliver(&webhook, &body).is_trigger(), expected, "{name}");
    }
}

#[test]
fn repository_name_with_indefinite_commit_filter_any_commit_added_readme() {
    let webhook = Webhook::new(
        &hmac_definition(json!([
            {"jsonPath": "$.repository.name", "matchEquals": "Hello-World"},
            {"jsonPath": "$.commits[*].added[*]", "matchEquals": "README.md"}
        ])),
        &config(),
    )
    .unwrap();
    let mut triggers = 0;
    for (name, body) in payloads() {
        let f = facts(&body);
        let touched = f["commits"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["added"].as_array().into_iter().flatten().any(|m| m == "README.md"));
        let expected = f["repository"]["name"] == "Hello-World" && touched;
        triggers += usize::from(expected);
        assert_eq!(deliver(&webhook, &body).is_trigger(), expected, "{name}");
    }
    assert_eq!(triggers, 2);
}

#[test]
fn every_payload_with_a_wrong_signature_is_rejected_at_the_signature() {
    let webhook = Webhook::new(&hmac_definition(json!([])), &config()).unwrap();
    for (name, body) in payloads() {
        assert!(deliver(&webhook, &body).is_trigger(), "{name}");
        let mut tampered = body.clone();
        let last = tampered.len() - 2;
        tampered[last] ^= 0x20;
        let sig = github::signature_256(SECRET.as_bytes(), &body);
        let v = webhook.evaluate(&Request::new(&tampered).header("X-Hub-Signature-256", &sig));
        assert_eq!(v.rejection().map(|r| r.step()), Some(Step::Signature), "{name}");
    }
}

#[test]
fn githubs_documented_hmac_vector() {
    let vectors: Value = serde_json::from_slice(&fixture("hmac-vectors.json")).unwrap();
    for vector in vectors.as_array().unwrap() {
        let secret = vector["secret"].as_str().unwrap();
        let payload = vector["payload"].as_str().unwrap();
        let sha256 = vector["x_hub_signature_256"].as_str().unwrap();
        let sha1 = vector["x_hub_signature"].as_str().unwrap();
        assert_eq!(github::signature_256(secret.as_bytes(), payload.as_bytes()), sha256);
        assert_eq!(github::signature_1(secret.as_bytes(), payload.as_bytes()), sha1);
        // The payload is not JSON, so a webhook accepts the signature and rejects the body.
        let d = definition_with(json!([]), |v| {
            v["authentication"] = json!("GITHUB_HMAC");
            v["authenticationConfiguration"] = json!({"SecretToken": secret});
        });
        let webhook = Webhook::new(&d, &config()).unwrap();
        let v = webhook.evaluate(&Request::new(payload).header("X-Hub-Signature-256", sha256));
        assert_eq!(v.rejection().map(|r| r.step()), Some(Step::Payload), "{v}");
        let v = webhook.evaluate(&Request::new(payload).header("X-Hub-Signature", sha1));
        assert_eq!(v.rejection().map(|r| r.step()), Some(Step::Payload), "{v}");
        let v =
            webhook.evaluate(&Request::new(format!("{payload}\n").as_bytes()).header("X-Hub-Signature-256", sha256));
        assert_eq!(v.rejection().map(|r| r.step()), Some(Step::Signature), "{v}");
    }
}
