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
        let (status, told) = self.answer_parts();
        let body = match told {
            // The shape `http_answer_json` writes, made a `Value` (a map of one string: cannot fail).
            Some((key, rejection)) => serde_json::to_value(Told { key, rejection }).unwrap_or_else(|_| json!({})),
            None => json!({}),
        };
        HttpAnswer { status, body }
    }

    /// [`http_answer`](Self::http_answer)'s status and its body as JSON bytes, written in one
    /// pass: the reason is escaped straight into the buffer, with no [`Value`] and no string of
    /// its own in between. For a host that sends the body as it is (on a busy receiver, every
    /// push to a branch no webhook watches is one of these).
    ///
    /// ```
    /// use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let definition: WebhookDefinition = serde_json::from_str(r#"{
    ///     "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
    ///     "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/main"}],
    ///     "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": "s3cr3t"}
    /// }"#)?;
    /// let webhook = Webhook::new(&definition, &ActionConfiguration::new())?;
    /// let body = br#"{"ref":"refs/heads/dev"}"#;
    /// let verdict = webhook.evaluate(&Request::new(body).header("X-Hub-Signature-256", &github::signature_256(b"s3cr3t", body)));
    /// let (status, json) = verdict.http_answer_json();
    /// assert_eq!(status, 200);
    /// assert_eq!(serde_json::from_slice::<serde_json::Value>(&json)?, *verdict.http_answer().body());
    /// # Ok(())
    /// # }
    /// ```
    pub fn http_answer_json(&self) -> (u16, Vec<u8>) {
        let (status, told) = self.answer_parts();
        let body = match told {
            None => b"{}".to_vec(),
            Some((key, rejection)) => {
                let mut out = Vec::with_capacity(key.len() + 128);
                // A map of one string key and a value that is a `Display`: cannot fail.
                let _ = serde_json::to_writer(&mut out, &Told { key, rejection });
                out
            }
        };
        (status, body)
    }

    /// [`http_answer`](Self::http_answer)'s status alone, for a host that decides what else to
    /// send by it (no body is built).
    pub fn http_status(&self) -> u16 {
        self.answer_parts().0
    }

    /// The one mapping the answers are made from: the status, and the field a sender that
    /// proved the secret is told, with the rejection that says why.
    fn answer_parts(&self) -> (u16, Option<(&'static str, &Rejection)>) {
        let Some(rejection) = self.rejection() else {
            return (202, None);
        };
        let told = |key: &'static str| self.proves_secret().then_some((key, rejection));
        match rejection.step() {
            Step::SourceIp | Step::Signature => (403, None),
            Step::Payload if matches!(rejection, Rejection::PayloadTooLarge { .. }) => (413, None),
            Step::Payload => (400, told("error")),
            Step::Filter => (200, told("ignored")),
        }
    }
}

/// `{key: rejection}`, the rejection written through its `Display` (escaped as it is written).
struct Told<'r> {
    key: &'static str,
    rejection: &'r Rejection,
}

impl serde::Serialize for Told<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        struct Reason<'r>(&'r Rejection);
        impl serde::Serialize for Reason<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self.0)
            }
        }
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(self.key, &Reason(self.rejection))?;
        map.end()
    }
}
