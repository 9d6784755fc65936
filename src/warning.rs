//! Compile warnings: definitions AWS accepts that probably do not do what their author meant.
//! `WebhookOptions::deny_warnings` turns the first one into an error.

use std::fmt;

use crate::error::{Error, ErrorCode};

/// Something in a definition that compiles but is likely a mistake, with the field it is about.
///
/// ```
/// use codepipeline_webhooks::{ActionConfiguration, Webhook, WebhookDefinition};
/// let definition: WebhookDefinition = serde_json::from_str(r#"{
///     "name": "app-main", "targetPipeline": "app", "targetAction": "Source",
///     "filters": [{"jsonPath": "$.ref", "matchEquals": "refs/heads/{branch}"}],
///     "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
/// }"#).unwrap();
/// let config: ActionConfiguration = [("Branch", "main")].into_iter().collect();
/// let webhook = Webhook::new(&definition, &config).unwrap();
/// let warning = &webhook.warnings()[0];
/// assert_eq!(warning.field(), "webhook.filters[0].matchEquals");
/// assert!(warning.message().contains("did you mean `{Branch}`?"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Warning {
    field: String,
    message: String,
    /// The exception the warning becomes under `deny_warnings`.
    code: ErrorCode,
}

impl Warning {
    pub(crate) fn new(code: ErrorCode, field: String, message: String) -> Self {
        Self { field, message, code }
    }

    /// The field it is about, in AWS's dotted form (`webhook.filters[0].matchEquals`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What is wrong and what to write instead.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The error this warning is under `deny_warnings`.
    pub(crate) fn into_error(self) -> Error {
        Error::new(self.code, self.field, format!("{} (warnings are denied)", self.message))
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl fmt::Debug for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
