//! The target action's `configuration`: the keys that `{Key}` placeholders read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The `configuration` map of a pipeline action, for example
/// `{"Owner": "octo-org", "Repo": "app", "Branch": "main"}`.
///
/// Keys are case-sensitive. Build it from pairs, or deserialize it from a JSON object of strings
/// (the `configuration` object of an action in `aws codepipeline get-pipeline`).
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
