//! Tags: one checker for pipelines and webhooks, and `TagResource`, `UntagResource` and
//! `ListTagsForResource` on their ARNs. A webhook's tags are the ones `PutWebhook` set (one store).
//!
//! The rules, in this order: the model's constraints (key 1 to 128 characters, value 0 to 256;
//! `ValidationException` at AWS's paths, `tags.1.member.key`), at most 50 tags on a resource
//! (`TooManyTagsException`), then no key with the reserved `aws:` prefix, whatever its case, and no
//! key twice in one call (`InvalidTagsException`).

use serde::{Deserialize, Serialize};

use super::Registry;
use crate::definition::Tag;
use crate::error::{Error, ErrorCode, escape};
use crate::limits::MAX_TAGS;

/// The input of `TagResource`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagResourceInput {
    /// A pipeline's or a webhook's ARN.
    pub resource_arn: String,
    /// Tags to add; a key already there gets the new value.
    pub tags: Vec<Tag>,
}

/// The input of `UntagResource`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UntagResourceInput {
    /// A pipeline's or a webhook's ARN.
    pub resource_arn: String,
    /// The keys to remove; a key the resource does not have is ignored.
    pub tag_keys: Vec<String>,
}

/// The input of `ListTagsForResource`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceInput {
    /// A pipeline's or a webhook's ARN.
    pub resource_arn: String,
    /// The `nextToken` of the page before: the listing resumes after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    /// 1 to 100: the most tags in a page (without it, every tag: a resource has at most 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
}

/// What `ListTagsForResource` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTagsForResourceOutput {
    /// The resource's tags, in the order they were set.
    pub tags: Vec<Tag>,
    /// Set when more tags follow: the next call's `nextToken`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// The one tag checker, for pipelines and webhooks (and `PutWebhook`'s tags): the model's
/// constraints on each tag (`ValidationException`, paths under `member`, e.g. `tags`), then at most
/// 50 (`TooManyTagsException`), then no `aws:` prefix in any case and no key twice
/// (`InvalidTagsException`).
///
/// ```
/// use codepipeline_webhooks::Tag;
/// use codepipeline_webhooks::registry::check_tags;
/// let tag = |k: &str| Tag { key: k.to_owned(), value: String::new() };
/// assert!(check_tags("tags", &[tag("team")]).is_ok());
/// assert_eq!(check_tags("tags", &[tag("")]).unwrap_err().message(),
///     "1 validation error detected: Value at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1");
/// assert_eq!(check_tags("tags", &[tag("AWS:x")]).unwrap_err().code(), "InvalidTagsException");
/// ```
pub fn check_tags(member: &str, tags: &[Tag]) -> Result<(), Error> {
    crate::definition::check_tags(member, tags)
}

/// The resource an ARN of this registry names.
pub(super) enum Resource {
    Pipeline(String),
    Webhook(String),
}

fn invalid_arn(arn: &str) -> Error {
    Error::new(
        ErrorCode::InvalidArnException,
        Some("resourceArn".to_owned()),
        format!(
            "The ARN '{}' is not a CodePipeline pipeline or webhook ARN (arn:PARTITION:codepipeline:REGION:ACCOUNT:NAME or ...:webhook:NAME)",
            escape(arn)
        ),
    )
}

fn not_found(arn: &str) -> Error {
    Error::new(
        ErrorCode::ResourceNotFoundException,
        Some("resourceArn".to_owned()),
        format!("The resource with the ARN '{}' was not found", escape(arn)),
    )
}

impl Registry {
    /// The resource `arn` names: `ValidationException` when it breaks the model's pattern,
    /// `InvalidArnException` when its resource part is not a pipeline or webhook name, and
    /// `ResourceNotFoundException` for another partition, region or account.
    pub(super) fn resource(&self, arn: &str) -> Result<Resource, Error> {
        crate::model::validate_member("ResourceArn", &serde_json::Value::String(arn.to_owned()), "resourceArn")?;
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("codepipeline"), Some(region), Some(account), Some(rest)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid_arn(arn));
        };
        let (resource, name) = match rest.strip_prefix("webhook:") {
            Some(name) => (Resource::Webhook(name.to_owned()), name),
            None => (Resource::Pipeline(rest.to_owned()), rest),
        };
        if crate::model::check_name("resourceArn", name).is_err() {
            return Err(invalid_arn(arn));
        }
        if partition != self.partition || region != self.region || account != self.account_id {
            return Err(not_found(arn));
        }
        Ok(resource)
    }

    /// `TagResource`: adds tags to a pipeline or a webhook (a key it has gets the new value).
    /// Errors: `ValidationException` (model), `InvalidArnException`, `ResourceNotFoundException`,
    /// `TooManyTagsException` (more than 50 on the resource after the call), `InvalidTagsException`.
    pub fn tag_resource(&self, input: TagResourceInput) -> Result<(), Error> {
        check_tags("tags", &input.tags)?;
        let resource = self.resource(&input.resource_arn)?;
        let mut state = self.write();
        let tags = match &resource {
            Resource::Pipeline(name) => {
                if !state.pipelines.contains_key(name) {
                    return Err(not_found(&input.resource_arn));
                }
                state.pipeline_tags.entry(name.clone()).or_default()
            }
            Resource::Webhook(name) => {
                &mut state.webhooks.get_mut(name).ok_or_else(|| not_found(&input.resource_arn))?.tags
            }
        };
        let mut merged = tags.clone();
        for tag in input.tags {
            match merged.iter_mut().find(|t| t.key == tag.key) {
                Some(t) => t.value = tag.value,
                None => merged.push(tag),
            }
        }
        if merged.len() > MAX_TAGS {
            return Err(Error::new(
                ErrorCode::TooManyTagsException,
                Some("tags".to_owned()),
                format!("the resource would have {} tags; a resource can have at most {MAX_TAGS}", merged.len()),
            ));
        }
        *tags = merged;
        Ok(())
    }

    /// `UntagResource`: removes tags by key (a key the resource does not have is ignored).
    /// Errors: `ValidationException` (model), `InvalidArnException`, `ResourceNotFoundException`,
    /// `InvalidTagsException` (a key with the reserved `aws:` prefix).
    pub fn untag_resource(&self, input: UntagResourceInput) -> Result<(), Error> {
        let keys = serde_json::to_value(&input.tag_keys)
            .map_err(|_| Error::validation("tagKeys".to_owned(), "tag keys do not serialise"))?;
        crate::model::validate_member("TagKeyList", &keys, "tagKeys")?;
        if let Some(key) = input.tag_keys.iter().find(|k| k.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))) {
            return Err(Error::new(
                ErrorCode::InvalidTagsException,
                Some("tagKeys".to_owned()),
                format!("tag key '{}' starts with 'aws:', which is reserved for AWS", escape(key)),
            ));
        }
        let resource = self.resource(&input.resource_arn)?;
        let mut state = self.write();
        let tags = match &resource {
            Resource::Pipeline(name) => {
                if !state.pipelines.contains_key(name) {
                    return Err(not_found(&input.resource_arn));
                }
                state.pipeline_tags.entry(name.clone()).or_default()
            }
            Resource::Webhook(name) => {
                &mut state.webhooks.get_mut(name).ok_or_else(|| not_found(&input.resource_arn))?.tags
            }
        };
        tags.retain(|t| !input.tag_keys.contains(&t.key));
        if let Resource::Pipeline(name) = resource
            && state.pipeline_tags.get(&name).is_some_and(Vec::is_empty)
        {
            state.pipeline_tags.remove(&name);
        }
        Ok(())
    }

    /// `ListTagsForResource`: a pipeline's or a webhook's tags, in the order they were set, at
    /// most `maxResults` a page (every tag without it). Errors: `ValidationException` (model),
    /// `InvalidArnException`, `ResourceNotFoundException`, `InvalidNextTokenException` (a token
    /// this registry did not issue for this call on this resource).
    pub fn list_tags_for_resource(&self, input: ListTagsForResourceInput) -> Result<ListTagsForResourceOutput, Error> {
        if let Some(max) = input.max_results {
            crate::model::validate_member("MaxResults", &serde_json::Value::from(max), "maxResults")?;
        }
        let resource = self.resource(&input.resource_arn)?;
        let state = self.read();
        // A token is bound to the call and to the resource: "{tags listed before}\n{ARN}".
        let skip = match &input.next_token {
            None => 0,
            Some(token) => {
                let position = super::next_token::verify_for(&state.next_token_key, OPERATION, token)?;
                position
                    .split_once('\n')
                    .filter(|(_, arn)| *arn == input.resource_arn)
                    .and_then(|(n, _)| n.parse::<usize>().ok())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::InvalidNextTokenException,
                            Some("nextToken".to_owned()),
                            "The next token was issued for another resource",
                        )
                    })?
            }
        };
        let tags = match &resource {
            Resource::Pipeline(name) => {
                if !state.pipelines.contains_key(name) {
                    return Err(not_found(&input.resource_arn));
                }
                state.pipeline_tags.get(name).map_or(&[][..], Vec::as_slice)
            }
            Resource::Webhook(name) => {
                state.webhooks.get(name).ok_or_else(|| not_found(&input.resource_arn))?.tags.as_slice()
            }
        };
        // The model bounds maxResults to 1..=100, checked above.
        let max = input.max_results.map_or(usize::MAX, |m| usize::try_from(m).unwrap_or(1));
        let rest = tags.get(skip..).unwrap_or_default();
        let page: Vec<Tag> = rest.iter().take(max).cloned().collect();
        let next_token = (rest.len() > page.len()).then(|| {
            let position = format!("{}\n{}", skip + page.len(), input.resource_arn);
            super::next_token::issue_for(&state.next_token_key, OPERATION, &position)
        });
        Ok(ListTagsForResourceOutput { tags: page, next_token })
    }
}

/// The operation a `ListTagsForResource` token is bound to.
const OPERATION: &str = "ListTagsForResource";
