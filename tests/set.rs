//! `WebhookSet`: the set and every member decide as an independent oracle does (serde_json and
//! serde_json_path, the documented steps), authentication is shared, and an unauthenticated
//! delivery is never parsed.

mod common;

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, WebhookSet, github};
use proptest::prelude::*;
use serde_json::{Value, json};

const PATHS: &[&str] = &[
    "$.ref",
    "$.repository.full_name",
    "$['repository']['name']",
    "$.n",
    "$.flag",
    "$.commits[0].id",
    "$.commits[*].id",
    "$..name",
    "$.missing",
    "$.commits[-1].id",
];
const VALUES: &[&str] = &["refs/heads/main", "refs/heads/dev", "octo/app", "app", "1.5", "true", "null", "a", "b", "x"];
const SECRETS: &[&str] = &["secret-one", "secret-two"];

fn member(
    auth: usize,
    filters: &[(usize, Option<usize>)],
    max_body: Option<usize>,
    max_depth: Option<usize>,
) -> Webhook {
    let (kind, config, require_sha256) = match auth {
        0 => ("GITHUB_HMAC", json!({"SecretToken": SECRETS[0]}), false),
        1 => ("GITHUB_HMAC", json!({"SecretToken": SECRETS[1]}), false),
        2 => ("GITHUB_HMAC", json!({"SecretToken": SECRETS[0]}), true),
        3 => ("IP", json!({"AllowedIPRange": "10.0.0.0/8"}), false),
        4 => ("IP", json!({"AllowedIPRange": "2001:db8::/32"}), false),
        _ => ("UNAUTHENTICATED", json!({}), false),
    };
    let filters: Vec<Value> = filters
        .iter()
        .map(|&(p, v)| match v {
            Some(v) => json!({"jsonPath": PATHS[p], "matchEquals": VALUES[v]}),
            None => json!({"jsonPath": PATHS[p]}),
        })
        .collect();
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "m", "targetPipeline": "p", "targetAction": "a", "filters": filters,
        "authentication": kind, "authenticationConfiguration": config
    }))
    .unwrap();
    let config = ActionConfiguration::new();
    let mut b = Webhook::options().require_sha256(require_sha256);
    if let Some(n) = max_body {
        b = b.max_body_bytes(n);
    }
    if let Some(n) = max_depth {
        b = b.max_depth(n);
    }
    b.build(&d, &config).unwrap()
}

fn bodies() -> Vec<String> {
    vec![
        json!({"ref": "refs/heads/main", "repository": {"full_name": "octo/app", "name": "app"}, "n": 1.5, "flag": true,
               "commits": [{"id": "a"}, {"id": "b"}]})
        .to_string(),
        json!({"ref": "refs/heads/dev", "repository": {"full_name": "octo/app", "name": "x"}, "n": null, "flag": false,
               "commits": [{"id": "x", "name": "app"}]})
        .to_string(),
        r#"{"ref":"refs/heads/main","ref":"refs/heads/dev","repository":{"full_name":"octo/app"},"commits":[]}"#.to_owned(),
        r#"{"ref":"refs/heads/main","deep":[[[[[[1]]]]]],"repository":{"name":"app"}}"#.to_owned(),
        r#"{"ref":"refs/heads/main", "bad": [1,}"#.to_owned(),
        "[]".to_owned(),
    ]
}

#[derive(Debug, Clone)]
struct Delivery {
    body: usize,
    signature: usize,
    source: usize,
    form: bool,
}

/// What a member was built from: what the oracle decides by.
#[derive(Debug, Clone)]
struct Spec {
    auth: usize,
    filters: Vec<(usize, Option<usize>)>,
    max_body: Option<usize>,
    max_depth: Option<usize>,
}

/// The nesting depth of a JSON value (a scalar is 0).
fn depth(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The documented equality rule, written out again from the README: strings by their value,
/// numbers as `serde_json::Number` displays them, `true`/`false`/`null` by their literals,
/// containers never.
fn equals(v: &Value, expected: &str) -> bool {
    match v {
        Value::String(s) => s == expected,
        Value::Number(n) => n.to_string() == expected,
        Value::Bool(b) => b.to_string() == expected,
        Value::Null => expected == "null",
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// An oracle independent of the engine: whether `spec`'s webhook starts its pipeline for this
/// delivery, from the documented steps, with serde_json for the body and serde_json_path for the
/// paths (the reference both lanes are held to).
fn oracle(spec: &Spec, delivery: &Delivery, body_len: usize) -> bool {
    let authenticated = match spec.auth {
        // Secret one, SHA-256 or (sent alone) SHA-1; secret two; secret one with SHA-256 required.
        0 => delivery.signature == 0 || delivery.signature == 2,
        1 => delivery.signature == 1,
        2 => delivery.signature == 0,
        3 => delivery.source == 0,
        4 => delivery.source == 1,
        _ => true,
    };
    if !authenticated || body_len > spec.max_body.unwrap_or(25 * 1024 * 1024) {
        return false;
    }
    let Ok(doc) = serde_json::from_str::<Value>(&bodies()[delivery.body]) else { return false };
    if depth(&doc) > spec.max_depth.unwrap_or(128) {
        return false;
    }
    spec.filters.iter().all(|&(p, v)| {
        let selected = serde_json_path::JsonPath::parse(PATHS[p]).unwrap().query(&doc).all();
        match v {
            None => !selected.is_empty(),
            Some(v) => selected.iter().any(|node| equals(node, VALUES[v])),
        }
    })
}

fn check(specs: &[Spec], delivery: &Delivery) -> Result<(), TestCaseError> {
    let members: Vec<Webhook> = specs.iter().map(|s| member(s.auth, &s.filters, s.max_body, s.max_depth)).collect();
    let json_body = &bodies()[delivery.body];
    let body = if delivery.form {
        format!("payload={}", json_body.bytes().map(|b| format!("%{b:02X}")).collect::<String>())
    } else {
        json_body.clone()
    };
    let (name, sig) = match delivery.signature {
        0 => ("X-Hub-Signature-256", github::signature_256(SECRETS[0].as_bytes(), body.as_bytes())),
        1 => ("X-Hub-Signature-256", github::signature_256(SECRETS[1].as_bytes(), body.as_bytes())),
        2 => ("X-Hub-Signature", github::signature_1(SECRETS[0].as_bytes(), body.as_bytes())),
        3 => ("X-Hub-Signature-256", github::signature_256(b"wrong", body.as_bytes())),
        _ => ("X-Other", String::new()),
    };
    let mut request = Request::new(&body).header(name, &sig);
    if delivery.form {
        request = request.header("Content-Type", "application/x-www-form-urlencoded");
    }
    match delivery.source {
        0 => request = request.source_ip([10, 1, 2, 3]),
        1 => request = request.source_ip("2001:db8::7".parse::<std::net::IpAddr>().unwrap()),
        2 => request = request.source_ip([192, 0, 2, 1]),
        _ => {}
    }
    let expected: Vec<usize> =
        specs.iter().enumerate().filter(|(_, s)| oracle(s, delivery, body.len())).map(|(i, _)| i).collect();
    let set = WebhookSet::new(members.iter().cloned());
    let matches = set.matches(&request);
    prop_assert_eq!(matches.iter().collect::<Vec<_>>(), expected.clone(), "the set against the oracle");
    for (i, w) in members.iter().enumerate() {
        let verdict = w.evaluate(&request);
        prop_assert_eq!(verdict.is_trigger(), expected.contains(&i), "member {} against the oracle: {}", i, verdict);
        prop_assert_eq!(matches.matched(i), expected.contains(&i));
    }
    Ok(())
}

fn arb_spec() -> impl Strategy<Value = Spec> {
    (
        0..6usize,
        prop::collection::vec((0..PATHS.len(), prop::option::weighted(0.8, 0..VALUES.len())), 0..4),
        prop::option::weighted(0.1, 10..200usize),
        prop::option::weighted(0.1, 2..6usize),
    )
        .prop_map(|(auth, filters, max_body, max_depth)| Spec { auth, filters, max_body, max_depth })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
    #[test]
    fn every_member_is_decided_as_the_oracle_decides(
        specs in prop::collection::vec(arb_spec(), 0..12),
        body in 0..6usize, signature in 0..5usize, source in 0..4usize, form in prop::bool::weighted(0.15),
    ) {
        check(&specs, &Delivery { body, signature, source, form })?;
    }
}

fn hmac_member(secret: &str, repo: &str) -> Webhook {
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "m", "targetPipeline": "p", "targetAction": "a",
        "filters": [{"jsonPath": "$.repository.full_name", "matchEquals": repo}, {"jsonPath": "$.commits[*].id", "matchEquals": "a"}],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": secret}
    }))
    .unwrap();
    Webhook::new(&d, &ActionConfiguration::new()).unwrap()
}

#[test]
fn each_distinct_secret_is_verified_once_and_a_forged_body_is_never_parsed() {
    let members: Vec<Webhook> =
        (0..1000).map(|i| hmac_member(&format!("secret-{}", i % 10), &format!("octo/repo-{i}"))).collect();
    let set = WebhookSet::new(members);
    let body = r#"{"repository":{"full_name":"octo/repo-7"},"commits":[{"id":"a"}]}"#;
    let sig = github::signature_256(b"secret-7", body.as_bytes());
    let m = set.matches(&Request::new(body).header("X-Hub-Signature-256", &sig));
    assert_eq!(m.iter().collect::<Vec<_>>(), vec![7]);
    assert_eq!(m.signatures_checked(), 10);
    assert!(m.body_parsed());

    // Invalid JSON with a wrong signature: every secret checked once, the body never parsed.
    let forged = "{not json";
    let sig = github::signature_256(b"nobody's secret", forged.as_bytes());
    let m = set.matches(&Request::new(forged).header("X-Hub-Signature-256", &sig));
    assert!(m.is_empty());
    assert_eq!(m.signatures_checked(), 10);
    assert!(!m.body_parsed());
    let m = set.matches(&Request::new(forged));
    assert!(!m.body_parsed());
    assert_eq!(
        set.explain(3, &Request::new(forged)).rejection().unwrap().step(),
        codepipeline_webhooks::Step::Signature
    );
}

#[test]
fn github_app_fan_out_on_a_real_push() {
    // One shared secret, one member per repository and branch; the corpus push is Codertocat/Hello-World on master.
    let body = common::fixture("github/push/with-new-branch.payload.json");
    let member = |repo: &str, branch: &str| {
        let d: WebhookDefinition = serde_json::from_value(json!({
            "name": "m", "targetPipeline": "p", "targetAction": "Source",
            "filters": [{"jsonPath": "$.repository.full_name", "matchEquals": repo}, {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}],
            "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "app-secret"}
        }))
        .unwrap();
        Webhook::new(&d, &[("Branch", branch)].into_iter().collect()).unwrap()
    };
    let mut members: Vec<Webhook> = (0..2000).map(|i| member(&format!("org/repo-{i}"), "main")).collect();
    members.insert(1234, member("Codertocat/Hello-World", "master"));
    members.push(member("Codertocat/Hello-World", "main"));
    let set = WebhookSet::new(members);
    let sig = github::signature_256(b"app-secret", &body);
    let m = set.matches(&Request::new(&body).header("X-Hub-Signature-256", &sig));
    assert_eq!(m.iter().collect::<Vec<_>>(), vec![1234]);
    assert_eq!(m.signatures_checked(), 1);
    let why = set.explain(set.len() - 1, &Request::new(&body).header("X-Hub-Signature-256", &sig));
    assert_eq!(why.rejection().unwrap().filter().unwrap().index(), 1);
}

#[test]
fn an_empty_set_matches_nothing() {
    let set = WebhookSet::new(Vec::new());
    assert!(set.is_empty());
    assert!(set.matches(&Request::new("{}")).is_empty());
}

#[test]
fn a_set_collects_from_an_iterator_of_webhooks() {
    let members = [hmac_member("s", "octo/a"), hmac_member("s", "octo/b")];
    let set: WebhookSet = members.iter().cloned().collect();
    assert_eq!(set.len(), 2);
    assert_eq!(set.get(1).map(Webhook::name), Some("m"));
    assert_eq!(set.iter().count(), 2);
}

#[test]
fn a_singular_member_is_decided_as_its_own_evaluate_even_when_the_set_builds_a_tape() {
    // Member 0 is singular (its own evaluate is one pass, no budget); member 1 makes the set build
    // a tape. A long name looked up across many short keys must not run out of a budget member 0
    // never had.
    let name = "a".repeat(140);
    let mut body = String::from("{");
    for i in 0..100_000 {
        body.push_str(&format!("\"k{i}\":0,"));
    }
    body.push_str(&format!("\"{name}\":\"x\"}}"));
    let singular = common::unauthenticated(json!([{"jsonPath": format!("$['{name}']"), "matchEquals": "x"}]));
    let indefinite = common::unauthenticated(json!([{"jsonPath": "$..nothing", "matchEquals": "x"}]));
    let request = Request::new(&body);
    assert!(singular.evaluate(&request).is_trigger());
    let set = WebhookSet::new([singular, indefinite]);
    assert_eq!(set.matches(&request).iter().collect::<Vec<_>>(), vec![0]);
}
