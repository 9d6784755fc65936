//! The DOM-free lane: one validating pass over the body that picks out the value of every
//! singular path, through a trie of their steps. Subtrees no path enters are validated and skipped
//! without being built; strings without escapes are borrowed from the body, not copied.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::json::{self, Skip};
use super::singular::PathStep;
use crate::verdict::PayloadProblem;

/// What a singular path selected.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Capture<'de> {
    /// Nothing: a step was missing or of the wrong kind.
    #[default]
    Missing,
    /// A string, unescaped.
    Str(Cow<'de, str>),
    /// A number, as serde_json holds it.
    Number(Number),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// An object (never equal to a string).
    Object,
    /// An array (never equal to a string).
    Array,
}

/// The singular paths of a webhook (or a set of them), merged by common prefix.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trie {
    nodes: Vec<Node>,
}

#[derive(Clone, Debug, Default)]
struct Node {
    names: Vec<(Box<str>, usize)>,
    /// The same names hashed, once there are more than a few (a `WebhookSet` of thousands of
    /// members can give one node thousands of names, and every key of the body is looked up).
    by_name: Option<HashMap<Box<str>, usize>>,
    indices: Vec<(usize, usize)>,
    /// The capture slots filled with this node's value.
    slots: Vec<usize>,
    /// Every slot at or below this node: cleared when a duplicate key replaces the subtree, so
    /// that the last key wins as in serde_json.
    subtree: Vec<usize>,
}

/// From this many names on, a node looks names up by hash.
const HASHED_FROM: usize = 8;

impl Node {
    fn child(&self, name: &str) -> Option<usize> {
        match &self.by_name {
            Some(map) => map.get(name).copied(),
            None => self.names.iter().find(|(k, _)| &**k == name).map(|&(_, c)| c),
        }
    }
}

impl Trie {
    pub(crate) fn new() -> Self {
        Self { nodes: vec![Node::default()] }
    }

    /// Adds a path whose value goes to capture `slot`.
    pub(crate) fn insert(&mut self, steps: &[PathStep], slot: usize) {
        let mut at = 0;
        self.nodes[0].subtree.push(slot);
        for step in steps {
            let found = match step {
                PathStep::Name(n) => self.nodes[at].child(n),
                PathStep::Index(i) => self.nodes[at].indices.iter().find(|(k, _)| k == i).map(|&(_, c)| c),
            };
            let child = found.unwrap_or_else(|| {
                let child = self.nodes.len();
                self.nodes.push(Node::default());
                match step {
                    PathStep::Name(n) => {
                        let node = &mut self.nodes[at];
                        match &mut node.by_name {
                            Some(map) => {
                                map.insert(n.clone(), child);
                            }
                            None => {
                                node.names.push((n.clone(), child));
                                if node.names.len() > HASHED_FROM {
                                    node.by_name = Some(node.names.drain(..).collect());
                                }
                            }
                        }
                    }
                    PathStep::Index(i) => self.nodes[at].indices.push((*i, child)),
                }
                child
            });
            at = child;
            self.nodes[at].subtree.push(slot);
        }
        self.nodes[at].slots.push(slot);
    }

    /// Validates all of `text` and fills `captures` (indexed by slot) with what each path
    /// selects. Slots must start out `Missing`.
    pub(crate) fn extract<'de>(
        &self,
        text: &'de str,
        captures: &mut [Capture<'de>],
        max_depth: usize,
    ) -> Result<(), PayloadProblem> {
        json::walk(text, NodeSeed { trie: self, node: 0, captures, level: 0, max_depth }, max_depth)
    }
}

struct NodeSeed<'t, 'c, 'de> {
    trie: &'t Trie,
    node: usize,
    captures: &'c mut [Capture<'de>],
    /// The nesting level of the value's parent.
    level: usize,
    max_depth: usize,
}

impl<'t, 'de> NodeSeed<'t, '_, 'de> {
    fn set(self, capture: Capture<'de>) {
        let slots = &self.trie.nodes[self.node].slots;
        if let Some((&last, rest)) = slots.split_last() {
            for &slot in rest {
                self.captures[slot] = capture.clone();
            }
            self.captures[last] = capture;
        }
    }

    fn child(&mut self, node: usize, level: usize) -> NodeSeed<'t, '_, 'de> {
        NodeSeed { trie: self.trie, node, captures: self.captures, level, max_depth: self.max_depth }
    }
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.set(Capture::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        self.set(Capture::Number(v.into()));
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.set(Capture::Number(v.into()));
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        self.set(json::float(v).map_or(Capture::Null, Capture::Number));
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.set(Capture::Str(Cow::Borrowed(v)));
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.set(Capture::Str(Cow::Owned(v.to_owned())));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.set(Capture::Null);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let level = self.level + 1;
        json::enter(level, self.max_depth)?;
        let node = &self.trie.nodes[self.node];
        let (trie, max_depth) = (self.trie, self.max_depth);
        for &slot in &node.slots {
            self.captures[slot] = Capture::Array;
        }
        let mut index = 0;
        loop {
            let child = trie.nodes[self.node].indices.iter().find(|&&(i, _)| i == index).map(|&(_, c)| c);
            let more = match child {
                Some(child) => seq.next_element_seed(self.child(child, level))?.is_some(),
                None => seq.next_element_seed(Skip { level, max_depth })?.is_some(),
            };
            if !more {
                return Ok(());
            }
            index += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let level = self.level + 1;
        json::enter(level, self.max_depth)?;
        let (trie, max_depth) = (self.trie, self.max_depth);
        for &slot in &trie.nodes[self.node].slots {
            self.captures[slot] = Capture::Object;
        }
        while let Some(child) = map.next_key_seed(KeySeed(&trie.nodes[self.node]))? {
            match child {
                Some(child) => {
                    for &slot in &trie.nodes[child].subtree {
                        self.captures[slot] = Capture::Missing;
                    }
                    map.next_value_seed(self.child(child, level))?;
                }
                None => map.next_value_seed(Skip { level, max_depth })?,
            }
        }
        Ok(())
    }
}

/// Decodes an object key and looks it up among a node's children, without copying it.
struct KeySeed<'t>(&'t Node);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.0.child(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extract<'de>(paths: &[&str], text: &'de str) -> Result<Vec<Capture<'de>>, PayloadProblem> {
        let mut trie = Trie::new();
        for (slot, p) in paths.iter().enumerate() {
            trie.insert(&crate::filter::path::FilterPath::parse(p).unwrap().singular.unwrap(), slot);
        }
        let mut caps = vec![Capture::Missing; paths.len()];
        trie.extract(text, &mut caps, 128)?;
        Ok(caps)
    }

    #[test]
    fn picks_every_path_in_one_pass() {
        let text = r#"{"ref":"refs/heads/main","repository":{"full_name":"o/r","id":12},"commits":[{"id":"a"},{"id":"b"}],"n":null,"f":1.50,"t":true}"#;
        let caps = extract(
            &[
                "$.ref",
                "$.repository.full_name",
                "$.repository.id",
                "$.commits[1].id",
                "$.n",
                "$.f",
                "$.t",
                "$.missing",
                "$.commits",
                "$.ref",
            ],
            text,
        )
        .unwrap();
        assert_eq!(caps[0], Capture::Str("refs/heads/main".into()));
        assert!(matches!(caps[0], Capture::Str(Cow::Borrowed(_))), "unescaped strings are borrowed");
        assert_eq!(caps[1], Capture::Str("o/r".into()));
        assert_eq!(caps[2], Capture::Number(12.into()));
        assert_eq!(caps[3], Capture::Str("b".into()));
        assert_eq!(caps[4], Capture::Null);
        assert_eq!(caps[5], Capture::Number(Number::from_f64(1.5).unwrap()));
        assert_eq!(caps[6], Capture::Bool(true));
        assert_eq!(caps[7], Capture::Missing);
        assert_eq!(caps[8], Capture::Array);
        assert_eq!(caps[9], caps[0]);
    }

    #[test]
    fn last_duplicate_key_wins_and_clears_what_it_replaces() {
        let caps = extract(&["$.a.b", "$.a"], r#"{"a":{"b":1},"a":"x"}"#).unwrap();
        assert_eq!(caps, vec![Capture::Missing, Capture::Str("x".into())]);
        let caps = extract(&["$.a.b"], r#"{"a":{"b":1,"b":2}}"#).unwrap();
        assert_eq!(caps, vec![Capture::Number(2.into())]);
    }

    #[test]
    fn many_names_at_one_node_are_found() {
        let paths: Vec<String> = (0..50).map(|i| format!("$.k{i}")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let body = format!("{{{}}}", (0..50).map(|i| format!("\"k{i}\":{i}")).collect::<Vec<_>>().join(","));
        let caps = extract(&refs, &body).unwrap();
        for (i, cap) in caps.iter().enumerate() {
            assert_eq!(*cap, Capture::Number(i.into()), "k{i}");
        }
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let caps = extract(&["$['k\"']"], r#"{"k\"":"a\nb\u00e9"}"#).unwrap();
        assert_eq!(caps, vec![Capture::Str("a\nb\u{e9}".into())]);
    }

    #[test]
    fn invalid_json_anywhere_fails() {
        assert!(extract(&["$.a"], r#"{"a":"x","b":[1,}"#).is_err());
        assert!(extract(&["$.a"], r#"{"a":"x"} trailing"#).is_err());
        assert!(extract(&["$.a"], r#"{"a":"x","b":1e400}"#).is_err());
    }
}
