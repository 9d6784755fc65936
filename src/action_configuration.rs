//! The target action's `configuration`: the keys that `{Key}` placeholders read.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

/// The `configuration` map of a pipeline action, for example
/// `{"Owner": "octo-org", "Repo": "app", "Branch": "main"}`.
///
/// Keys are case-sensitive. Build it from pairs or a map (`BTreeMap` or `HashMap`), deserialize it
/// from a JSON object of strings (the `configuration` object of an action), or take it from
/// `aws codepipeline get-pipeline` output with [`ActionConfiguration::from_pipeline_json`].
///
/// ```
/// use codepipeline_webhooks::ActionConfiguration;
/// let config: ActionConfiguration = [("Branch", "main")].into_iter().collect();
/// assert_eq!(config.get("Branch"), Some("main"));
/// let same: ActionConfiguration = serde_json::from_str(r#"{"Branch": "main"}"#).unwrap();
/// assert_eq!(config, same);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionConfiguration(BTreeMap<String, String>);

impl ActionConfiguration {
    /// An empty configuration: any placeholder then fails to resolve.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `key`, if the configuration has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Sets `key` to `value`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.0.insert(key.into(), value.into())
    }

    /// The keys, in sorted order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The configuration of `action` in the first stage of a pipeline, as
    /// `aws codepipeline get-pipeline` prints it (whole, or its `pipeline` object): the one a
    /// webhook that targets `action` fills its placeholders from. `ValidationException` when the
    /// document is not a pipeline, or when the first stage has no such action ("Action with name
    /// X was not found in the first stage of the pipeline", as `PutWebhook` says). The same
    /// parse as [`PipelineDeclaration::from_json`](crate::registry::PipelineDeclaration::from_json).
    ///
    /// *Available with the `registry` feature (a default one).*
    ///
    /// ```
    /// use codepipeline_webhooks::ActionConfiguration;
    ///
    /// fn main() -> Result<(), codepipeline_webhooks::Error> {
    ///     let get_pipeline = r#"{"pipeline": {"name": "app", "stages": [
    ///         {"name": "Source", "actions": [{"name": "Source", "configuration": {"Branch": "main"}}]},
    ///         {"name": "Build", "actions": [{"name": "Build"}]}]}}"#;
    ///     let config = ActionConfiguration::from_pipeline_json(get_pipeline, "Source")?;
    ///     assert_eq!(config.get("Branch"), Some("main"));
    ///     let missing = ActionConfiguration::from_pipeline_json(get_pipeline, "Build").unwrap_err();
    ///     assert_eq!(missing.code(), "ValidationException");
    ///     Ok(())
    /// }
    /// ```
    #[cfg(feature = "registry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "registry")))]
    pub fn from_pipeline_json(json: &str, action: &str) -> Result<Self, crate::Error> {
        crate::registry::PipelineDeclaration::from_json(json)?.first_stage_configuration(action).cloned()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ActionConfiguration {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl From<BTreeMap<String, String>> for ActionConfiguration {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

impl<S: BuildHasher> From<HashMap<String, String, S>> for ActionConfiguration {
    fn from(map: HashMap<String, String, S>) -> Self {
        Self(map.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_a_hash_map_and_a_btree_map_alike() {
        let hash: HashMap<String, String> = [("Branch".to_owned(), "main".to_owned())].into();
        let btree: BTreeMap<String, String> = [("Branch".to_owned(), "main".to_owned())].into();
        assert_eq!(ActionConfiguration::from(hash), ActionConfiguration::from(btree));
    }
}
