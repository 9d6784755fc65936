//! Arbitrary bytes as a put-webhook document (or a bare definition) plus an action configuration:
//! compiling never panics, every error carries an AWS exception name, and no error shows the
//! secret token.
//!
//! Input: the action configuration (a JSON object) up to the first newline, then the document.
#![no_main]

use codepipeline_webhooks::{ActionConfiguration, Error, PutWebhookInput, Request, Webhook, WebhookDefinition};
use libfuzzer_sys::fuzz_target;

fn check(e: &Error, document: &str, secret: Option<&str>) {
    assert!(e.code().ends_with("Exception"), "{e:?}");
    assert!(!e.message().is_empty());
    if let Some(secret) = secret {
        // Only a secret that appears nowhere else in the input can be told apart in a message.
        if secret.len() >= 8 && document.matches(secret).count() == 1 {
            assert!(!e.to_string().contains(secret), "secret in error: {e}");
            assert!(!format!("{e:?}").contains(secret), "secret in error: {e:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (config, document) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (&b"{}"[..], data),
    };
    let config: ActionConfiguration = serde_json::from_slice(config).unwrap_or_default();
    let Ok(text) = std::str::from_utf8(document) else { return };
    let definition = match PutWebhookInput::from_json(text) {
        Ok(input) => {
            let secret = input.webhook.authentication_configuration.secret_token.clone();
            if let Err(e) = input.validate() {
                check(&e, text, secret.as_deref());
            }
            input.webhook
        }
        Err(e) => {
            check(&e, text, None);
            match WebhookDefinition::from_json(text) {
                Ok(d) => d,
                Err(e) => return check(&e, text, None),
            }
        }
    };
    let secret = definition.authentication_configuration.secret_token.as_deref();
    if let Some(secret) = secret {
        if secret.len() >= 8 && text.matches(secret).count() == 1 {
            assert!(!format!("{definition:?}").contains(secret));
        }
    }
    match Webhook::new(&definition, &config) {
        Ok(webhook) => {
            let verdict = webhook.evaluate(&Request::new(document));
            if let Some(secret) = secret {
                if secret.len() >= 8 && text.matches(secret).count() == 1 {
                    assert!(!verdict.to_string().contains(secret));
                    assert!(!format!("{webhook:?}").contains(secret));
                }
            }
        }
        Err(e) => check(&e, text, secret),
    }
});
