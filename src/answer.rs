//! The HTTP answer a receiver gives for a verdict: one mapping, so that every host (the `serve`
//! command, the axum example, a service of yours) tells senders the same thing.
//!
//! The rule is who may learn what. A stranger learns nothing beyond the status: an `IP` or
//! `UNAUTHENTICATED` webhook's filters, or why a signature failed, would teach an attacker what to
//! send. A sender that proved the secret (a `GITHUB_HMAC` delivery whose signature verified) is
//! told why its delivery was ignored, since it holds the secret and the definition is its own.

use serde_json::{Value, json};

use crate::verdict::{Rejection, Step, Verdict};

/// What a receiver answers for a [`Verdict`]: [`Verdict::http_answer`].
///
/// | verdict | status | body |
/// |---|---|---|
/// | trigger | 202 Accepted | `{}` (add your own fields, such as an execution id) |
/// | source address missing or not allowed | 403 Forbidden | `{}` |
/// | signature missing, malformed, repeated or wrong | 403 Forbidden | `{}` |
/// | payload too large (checked before the signature) | 413 Payload Too Large | `{}` |
/// | payload malformed (not JSON, a form without `payload`, too deep) | 400 Bad Request | `{"error": reason}` when the sender proved the secret, else `{}` |
/// | a filter did not pass, or its work budget ran out | 200 OK | `{"ignored": reason}` when the sender proved the secret, else `{}` |
///
/// A filter miss is a 200: the delivery was received and understood, and GitHub marks a non-2xx
/// answer as a failed delivery (a push to a branch that no webhook watches is not a failure).
///
/// ```
/// use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let definition: WebhookDefinition = serde_json::from_str(r#"{
///         "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
///         "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
///         "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "s3cr3t"}
///     }"#)?;
///     let webhook = Webhook::new(&definition, &ActionConfiguration::new())?;
///
///     let body = br#"{"ref":"refs/heads/dev"}"#;
///     let signed = github::signature_256(b"s3cr3t", body);
///     let answer = webhook.evaluate(&Request::new(body).header("X-Hub-Signature-256", &signed)).http_answer();
///     assert_eq!(answer.status(), 200);
///     assert_eq!(answer.body()["ignored"], r#"filter 0 ($.ref) expected "refs/heads/main", found "refs/heads/dev""#);
///
///     // A stranger without the secret learns only the status.
///     let answer = webhook.evaluate(&Request::new(body)).http_answer();
///     assert_eq!((answer.status(), answer.body().to_string()), (403, "{}".to_owned()));
///     Ok(())
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    status: u16,
    body: Value,
}

impl HttpAnswer {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The JSON body, an object: safe to send to whoever sent the delivery.
    pub fn body(&self) -> &Value {
        &self.body
    }

    /// The JSON body, to add fields to before sending it.
    pub fn into_body(self) -> Value {
        self.body
    }
}

impl Verdict {
    /// The HTTP answer for this verdict, as the table on [`HttpAnswer`] gives it.
    pub fn http_answer(&self) -> HttpAnswer {
        let Some(rejection) = self.rejection() else {
            return HttpAnswer { status: 202, body: json!({}) };
        };
        let told = |key: &str| if self.proves_secret() { json!({ key: rejection.to_string() }) } else { json!({}) };
        let (status, body) = match rejection.step() {
            Step::SourceIp | Step::Signature => (403, json!({})),
            Step::Payload if matches!(rejection, Rejection::PayloadTooLarge { .. }) => (413, json!({})),
            Step::Payload => (400, told("error")),
            Step::Filter => (200, told("ignored")),
        };
        HttpAnswer { status, body }
    }
}
