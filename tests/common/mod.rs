//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use codepipeline_webhooks::{ActionConfiguration, Error, Webhook, WebhookDefinition};
use serde_json::{Value, json};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A valid UNAUTHENTICATED definition with these filters, then `edit` applied to its JSON.
pub fn definition_with(filters: Value, edit: impl FnOnce(&mut Value)) -> WebhookDefinition {
    let mut v = json!({
        "name": "hook",
        "targetPipeline": "pipe",
        "targetAction": "Source",
        "filters": filters,
        "authentication": "UNAUTHENTICATED",
        "authenticationConfiguration": {}
    });
    edit(&mut v);
    serde_json::from_value(v).expect("test definition deserialises")
}

pub fn config() -> ActionConfiguration {
    [("Branch", "main"), ("Owner", "octo-org"), ("Repo", "app")].into_iter().collect()
}

/// Compiles an UNAUTHENTICATED webhook with these filters.
pub fn unauthenticated(filters: Value) -> Webhook {
    Webhook::new(&definition_with(filters, |_| {}), &config()).expect("compiles")
}

pub fn compile_err(filters: Value, edit: impl FnOnce(&mut Value)) -> Error {
    Webhook::new(&definition_with(filters, edit), &config()).expect_err("must not compile")
}

pub const SECRET: &str = "It's a Secret to Everybody";

pub fn hmac_webhook(filters: Value) -> Webhook {
    let d = definition_with(filters, |v| {
        v["authentication"] = json!("GITHUB_HMAC");
        v["authenticationConfiguration"] = json!({"SecretToken": SECRET});
    });
    Webhook::new(&d, &config()).expect("compiles")
}

pub fn ip_webhook(range: &str) -> Webhook {
    let d = definition_with(json!([]), |v| {
        v["authentication"] = json!("IP");
        v["authenticationConfiguration"] = json!({"AllowedIPRange": range});
    });
    Webhook::new(&d, &config()).expect("compiles")
}
