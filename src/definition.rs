//! The AWS shapes of `PutWebhook`, wire-exact, and the constraints of the AWS service model.
//!
//! Field names are the ones on the wire (`targetPipeline`, `AllowedIPRange`, ...). Unknown fields are
//! refused, because a silently ignored misspelling (`matchEqual`) is a filter that never runs.
//! [`WebhookDefinition::validate`] checks the model constraints of botocore's
//! `codepipeline/2015-07-09/service-2.json` with the checker of `constraints.rs`, which reports them
//! as AWS does: `1 validation error detected: Value 'x' at 'webhook.name' failed to satisfy
//! constraint: ...`.

use std::fmt;

use serde::{Deserialize, Serialize};

pub(crate) use crate::constraints::Violations;
use crate::error::{Error, ErrorCode, REDACTED, escape};
use crate::limits::{MAX_FILTERS, MAX_TAGS};

/// The input of `PutWebhook`, as `aws codepipeline put-webhook --cli-input-json` takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutWebhookInput {
    /// The webhook to create or replace.
    pub webhook: WebhookDefinition,
    /// Tags for the webhook resource.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_default")]
    pub tags: Vec<Tag>,
}

/// A webhook: which pipeline action it starts, the filters a delivery must pass and how it
/// authenticates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookDefinition {
    /// The webhook's name, unique in the account and region.
    pub name: String,
    /// The pipeline the webhook starts.
    pub target_pipeline: String,
    /// The source action of that pipeline whose configuration fills `{Key}` placeholders.
    pub target_action: String,
    /// At most five rules; every one must pass for the pipeline to start.
    pub filters: Vec<WebhookFilterRule>,
    /// How a delivery proves where it comes from.
    pub authentication: WebhookAuthenticationType,
    /// The secret or the IP range that [`authentication`](Self::authentication) needs.
    pub authentication_configuration: WebhookAuthConfiguration,
}

/// One filter: the value that `jsonPath` selects in the payload must equal `matchEquals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookFilterRule {
    /// A JsonPath expression applied to the delivery's JSON body.
    pub json_path: String,
    /// The value the selection must equal; may hold `{Key}` placeholders. Absent: the path must
    /// select something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_equals: Option<String>,
}

/// The authentication types of a webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookAuthenticationType {
    /// A GitHub-style HMAC signature of the body with `SecretToken` (`X-Hub-Signature-256`).
    #[serde(rename = "GITHUB_HMAC")]
    GithubHmac,
    /// The request must come from an address in `AllowedIPRange`.
    #[serde(rename = "IP")]
    Ip,
    /// Anyone who knows the URL may trigger.
    #[serde(rename = "UNAUTHENTICATED")]
    Unauthenticated,
}

impl WebhookAuthenticationType {
    /// The wire name: `GITHUB_HMAC`, `IP` or `UNAUTHENTICATED`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GithubHmac => "GITHUB_HMAC",
            Self::Ip => "IP",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }
}

impl fmt::Display for WebhookAuthenticationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parameters of the authentication type. `Debug` never shows the secret token.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookAuthConfiguration {
    /// For `IP`: one IPv4 or IPv6 CIDR range (a bare address is a single host).
    #[serde(rename = "AllowedIPRange", default, skip_serializing_if = "Option::is_none")]
    pub allowed_ip_range: Option<String>,
    /// For `GITHUB_HMAC`: the secret the sender signs the body with.
    #[serde(
        rename = "SecretToken",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "secret_token"
    )]
    pub secret_token: Option<String>,
}

impl fmt::Debug for WebhookAuthConfiguration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookAuthConfiguration")
            .field("allowed_ip_range", &self.allowed_ip_range)
            .field("secret_token", &self.secret_token.as_ref().map(|_| REDACTED))
            .finish()
    }
}

/// A resource tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// 1 to 128 characters, not starting with `aws:`.
    pub key: String,
    /// 0 to 256 characters.
    pub value: String,
}

impl PutWebhookInput {
    /// Parses a put-webhook input document, refusing unknown fields, as a `ValidationException`
    /// that says where the document is wrong.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        from_json(json)
    }

    /// Checks the model constraints of the webhook and the tags, then the tag rules:
    /// `ValidationException` first, then `TooManyTagsException`, then `InvalidTagsException`.
    pub fn validate(&self) -> Result<(), Error> {
        let mut v = Violations::default();
        self.webhook.collect_violations(&mut v);
        v.into_result()?;
        check_tags("tags", &self.tags)
    }

    /// Returns a copy whose secret token is `****`, as AWS responses show it.
    pub fn redacted(&self) -> Self {
        Self { webhook: self.webhook.redacted(), tags: self.tags.clone() }
    }
}

impl WebhookDefinition {
    /// Parses a webhook definition, refusing unknown fields, as a `ValidationException`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        from_json(json)
    }

    /// Checks the constraints of the AWS service model: lengths (in Unicode scalar values), the
    /// name pattern `[A-Za-z0-9.@\-_]+` and at most five filters. Every violation is reported in
    /// one `ValidationException`, as AWS does; [`Error::field`] names the first.
    pub fn validate(&self) -> Result<(), Error> {
        let mut v = Violations::default();
        self.collect_violations(&mut v);
        v.into_result()
    }

    /// Returns a copy whose secret token is `****`, as AWS responses show it.
    pub fn redacted(&self) -> Self {
        let mut copy = self.clone();
        if let Some(secret) = copy.authentication_configuration.secret_token.as_mut() {
            *secret = REDACTED.to_owned();
        }
        copy
    }

    fn collect_violations(&self, v: &mut Violations) {
        for (field, value) in [
            ("webhook.name", &self.name),
            ("webhook.targetPipeline", &self.target_pipeline),
            ("webhook.targetAction", &self.target_action),
        ] {
            v.length(field, value, 1, 100, false);
            v.name_pattern(field, value);
        }
        if self.filters.len() > MAX_FILTERS {
            v.push(
                "webhook.filters".to_owned(),
                format!(
                    "Value with {} rules at 'webhook.filters' failed to satisfy constraint: Member must have length less than or equal to {MAX_FILTERS}",
                    self.filters.len()
                ),
            );
        }
        for (i, rule) in self.filters.iter().enumerate() {
            v.length(&format!("webhook.filters[{i}].jsonPath"), &rule.json_path, 1, 150, false);
            if let Some(m) = &rule.match_equals {
                v.length(&format!("webhook.filters[{i}].matchEquals"), m, 1, 150, false);
            }
        }
        let auth = &self.authentication_configuration;
        if let Some(range) = &auth.allowed_ip_range {
            v.length("webhook.authenticationConfiguration.AllowedIPRange", range, 1, 100, false);
        }
        if let Some(secret) = &auth.secret_token {
            v.length("webhook.authenticationConfiguration.SecretToken", secret, 1, 100, true);
        }
    }
}

fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, Error> {
    serde_json::from_str(json).map_err(|e| {
        Error::validation(None, format!("the document is not a valid input: {}", crate::error::serde_message(&e)))
    })
}

/// The one tag checker, for pipelines and webhooks: the model's constraints on each tag
/// (`ValidationException` at AWS's paths, `tags.1.member.key`), then at most 50
/// (`TooManyTagsException`), then no `aws:` prefix in any case and no key twice
/// (`InvalidTagsException`). `member` is where the tags are in the input (`tags`).
pub(crate) fn check_tags(member: &str, tags: &[Tag]) -> Result<(), Error> {
    let value = serde_json::to_value(tags).unwrap_or_default();
    crate::model::validate_member("TagList", &value, member)?;
    validate_tags(tags)
}

/// The service rules on tags, after their model constraints: at most 50, no `aws:` prefix, no key
/// twice.
pub(crate) fn validate_tags(tags: &[Tag]) -> Result<(), Error> {
    if tags.len() > MAX_TAGS {
        return Err(Error::new(
            ErrorCode::TooManyTagsException,
            Some("tags".to_owned()),
            format!("{} tags were given; a resource can have at most {MAX_TAGS}", tags.len()),
        ));
    }
    for (i, tag) in tags.iter().enumerate() {
        // Reserved whatever its case: `AWS:x` and `Aws:x` are refused as `aws:x` is.
        if tag.key.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("aws:")) {
            return Err(Error::new(
                ErrorCode::InvalidTagsException,
                Some(format!("tags[{i}].key")),
                format!("tag key '{}' starts with 'aws:', which is reserved for AWS", escape(&tag.key)),
            ));
        }
        if let Some(j) = tags[..i].iter().position(|t| t.key == tag.key) {
            return Err(Error::new(
                ErrorCode::InvalidTagsException,
                Some(format!("tags[{i}].key")),
                format!("tag key '{}' is given twice (tags[{j}] and tags[{i}])", escape(&tag.key)),
            ));
        }
    }
    Ok(())
}

/// For `deserialize_with` on an optional member that is not an `Option`: JSON `null` means absent
/// (the default), as AWS's deserialiser reads it. (`Option` members read `null` as `None` already.)
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `SecretToken`: a string, or `null` / absent. Any other type is refused without its value: serde's
/// own message (`invalid type: integer `12345678`, expected a string`) would show the secret.
fn secret_token<'de, D>(deserializer: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error as _;
    match Option::<serde_json::Value>::deserialize(deserializer)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(secret)) => Ok(Some(secret)),
        Some(other) => {
            let kind = match other {
                serde_json::Value::Bool(_) => "a boolean",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Array(_) => "an array",
                _ => "an object",
            };
            Err(D::Error::custom(format!("invalid type: SecretToken is {kind} (value not shown), expected a string")))
        }
    }
}
