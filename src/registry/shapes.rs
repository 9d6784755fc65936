//! The AWS shapes of the webhook API calls and of a pipeline declaration, wire-exact.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::action_configuration::ActionConfiguration;
use crate::definition::{Tag, WebhookDefinition};
use crate::error::Error;

/// A pipeline as `aws codepipeline get-pipeline` returns it under `pipeline`. Only the names and
/// the actions' `configuration` are read; every other field (`roleArn`, `artifactStore`,
/// `actionTypeId`, `runOrder`, ...) is kept as it is, so the declaration round-trips.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PipelineDeclaration {
    /// The pipeline's name.
    pub name: String,
    /// The stages, in order; webhooks target actions of the first.
    pub stages: Vec<StageDeclaration>,
    /// Every other field, unchanged.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl PipelineDeclaration {
    /// Parses a pipeline as `aws codepipeline get-pipeline` prints it, whole (`{"pipeline": ...,
    /// "metadata": ...}`, the `metadata` ignored) or its `pipeline` object alone.
    /// `ValidationException` when the document is neither; the message never quotes a value (an
    /// action's configuration can hold credentials).
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let invalid = |e: serde_json::Error| {
            Error::validation(
                "pipeline".to_owned(),
                format!(
                    "the document is not a pipeline declaration or get-pipeline output: {}",
                    crate::error::serde_message(&e)
                ),
            )
        };
        let value: Value = serde_json::from_str(json).map_err(invalid)?;
        match value {
            Value::Object(mut map) if map.contains_key("pipeline") && !map.contains_key("stages") => {
                if let Some(other) = map.keys().find(|k| *k != "pipeline" && *k != "metadata") {
                    return Err(Error::validation(
                        "pipeline".to_owned(),
                        format!(
                            "the get-pipeline output has an unknown member `{}`; it has `pipeline` and `metadata`",
                            crate::error::escape(other)
                        ),
                    ));
                }
                serde_json::from_value(map.remove("pipeline").unwrap_or_default()).map_err(invalid)
            }
            value => serde_json::from_value(value).map_err(invalid),
        }
    }

    /// The configuration of `action` in the first stage, the one a webhook that targets `action`
    /// fills its placeholders from (`ValidationException` "Action with name X was not found in the
    /// first stage of the pipeline" when there is none, as `PutWebhook` says).
    ///
    /// The action must also be a source action (`actionTypeId.category` `Source`; an action
    /// declared without `actionTypeId` is taken as one): otherwise `ValidationException` "The
    /// action must be from the source (first) stage of the pipeline", as AWS words it.
    pub fn first_stage_configuration(&self, action: &str) -> Result<&ActionConfiguration, Error> {
        let found =
            self.stages.first().and_then(|stage| stage.actions.iter().find(|a| a.name == action)).ok_or_else(|| {
                Error::validation(
                    Some("webhook.targetAction".to_owned()),
                    format!(
                        "Action with name {} was not found in the first stage of the pipeline",
                        crate::error::escape(action)
                    ),
                )
            })?;
        let category = found.other.get("actionTypeId").and_then(|t| t.get("category"));
        if category.is_some_and(|c| c != "Source") {
            return Err(Error::validation(
                Some("webhook.targetAction".to_owned()),
                "The action must be from the source (first) stage of the pipeline",
            ));
        }
        Ok(&found.configuration)
    }
}

/// One stage of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageDeclaration {
    /// The stage's name.
    pub name: String,
    /// Its actions.
    pub actions: Vec<ActionDeclaration>,
    /// Every other field, unchanged.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// One action of a stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionDeclaration {
    /// The action's name, which a webhook's `targetAction` names.
    pub name: String,
    /// The configuration that fills `{Key}` placeholders.
    #[serde(default, deserialize_with = "crate::definition::null_as_default")]
    pub configuration: ActionConfiguration,
    /// Every other field, unchanged.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// What `PutWebhook` returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PutWebhookOutput {
    /// The webhook as stored, its secret shown as `****`.
    pub webhook: ListWebhookItem,
}

/// One webhook as `ListWebhooks` and `PutWebhook` return it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListWebhookItem {
    /// The definition, its secret shown as `****`.
    pub definition: WebhookDefinition,
    /// The URL that triggers it.
    pub url: String,
    /// Why the webhook cannot currently trigger (for example, its target action left the first
    /// stage when the pipeline changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The AWS exception name of that error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// When a delivery last started the pipeline, in seconds since the Unix epoch (the wire form
    /// of an AWS timestamp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered: Option<f64>,
    /// `arn:{partition}:codepipeline:{region}:{account}:webhook:{name}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The webhook's tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
}

/// The input of `ListWebhooks`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListWebhooksInput {
    /// Where the previous page ended.
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// 1 to 100 items per page (default 100).
    #[serde(rename = "MaxResults", default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
}

/// What `ListWebhooks` returns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ListWebhooksOutput {
    /// One page of webhooks, ordered by name.
    pub webhooks: Vec<ListWebhookItem>,
    /// Present when more pages follow.
    #[serde(rename = "NextToken", default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// The input of `DeleteWebhook`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteWebhookInput {
    /// The webhook to delete.
    pub name: String,
}

/// The input of `RegisterWebhookWithThirdParty`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterWebhookWithThirdPartyInput {
    /// The webhook to register.
    pub webhook_name: String,
}

/// The input of `DeregisterWebhookWithThirdParty`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeregisterWebhookWithThirdPartyInput {
    /// The webhook to deregister.
    pub webhook_name: String,
}

/// A registry's whole state, for a host to persist and load. It holds the secret tokens, the URL
/// tokens and the key that signs `NextToken`s in clear: store it as a secret. `Debug` shows none of
/// them.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryState {
    /// Every pipeline put.
    pub pipelines: Vec<PipelineDeclaration>,
    /// Every webhook, with what the API does not show.
    pub webhooks: Vec<WebhookState>,
    /// Each tagged pipeline's tags, by pipeline name (`TagResource`); a webhook's tags are in its
    /// [`WebhookState`].
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub pipeline_tags: std::collections::BTreeMap<String, Vec<Tag>>,
    /// The key (32 bytes, base64url) that signs and checks `ListWebhooks`' `NextToken`. Part of the
    /// state so that every instance that loads it, and one that restarts, accepts the tokens the
    /// others issued. Absent: the registry keeps its own (random) key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token_key: Option<String>,
}

impl std::fmt::Debug for RegistryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryState")
            .field("pipelines", &self.pipelines)
            .field("webhooks", &self.webhooks)
            .field("pipeline_tags", &self.pipeline_tags)
            .field("next_token_key", &self.next_token_key.as_ref().map(|_| crate::error::REDACTED))
            .finish()
    }
}

/// One webhook in a [`RegistryState`]. `Debug` shows neither the secret nor the URL token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookState {
    /// The definition, secret included.
    pub definition: WebhookDefinition,
    /// The webhook's tags.
    #[serde(default, deserialize_with = "crate::definition::null_as_default")]
    pub tags: Vec<Tag>,
    /// The URL token (`t=`).
    pub token: String,
    /// Whether it was registered with the third party.
    #[serde(default, deserialize_with = "crate::definition::null_as_default")]
    pub registered_with_third_party: bool,
    /// Seconds since the Unix epoch of the last trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_triggered: Option<f64>,
    /// The AWS exception name of the error the webhook had when exported (its target action had
    /// left the first stage, say). A webhook that does not compile against its pipeline loads only
    /// with the `errorCode` of the error it gives: a definition `PutWebhook` would refuse never
    /// slips in through a state file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// That error's message (informative; recomputed on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// The `SecretToken` a `PutWebhook` replaced, still accepted until `previousSecretValidUntil`
    /// (the registry's `rotation_grace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_token: Option<String>,
    /// Seconds since the Unix epoch until which `previousSecretToken` is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_valid_until: Option<f64>,
}

impl std::fmt::Debug for WebhookState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookState")
            .field("definition", &self.definition)
            .field("tags", &self.tags)
            .field("token", &crate::error::REDACTED)
            .field("registered_with_third_party", &self.registered_with_third_party)
            .field("last_triggered", &self.last_triggered)
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("previous_secret_token", &self.previous_secret_token.as_ref().map(|_| crate::error::REDACTED))
            .field("previous_secret_valid_until", &self.previous_secret_valid_until)
            .finish()
    }
}
