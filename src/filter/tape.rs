//! The compact document the bounded lane evaluates over: every JSON value and object key is one
//! 12-byte node in a preorder tape, strings stay in the body.
//!
//! `serde_json::Value` costs ~95× the body on small objects (a B-tree node each); this costs at
//! most 6× (`[0,0,…]`: one node per two bytes), plus the unescaped copies of strings that had
//! escapes (at most the body again). The node vector is sized exactly once from a count of the
//! body's structural characters, so it never grows by doubling.
//!
//! Layout: a container is followed by its members (objects: a key node, then the value's
//! subtree), and every node records where its subtree ends, so that siblings are one jump apart
//! and a descendant walk is a scan of a range. Duplicate keys are resolved when an object
//! closes: every member but the last of each name is marked shadowed, as serde_json's map keeps
//! only the last.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::json;
use crate::verdict::PayloadProblem;

/// The largest body the tape can index: node positions and tags share one `u32`.
pub(crate) const MAX_TAPE_BYTES: usize = 1 << 28;

const TAG_SHIFT: u32 = 28;
const NEXT_MASK: u32 = (1 << TAG_SHIFT) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum NodeType {
    Null,
    False,
    True,
    PosInt,
    NegInt,
    Float,
    /// A string borrowed from the body: `a` = offset, `b` = length.
    Str,
    /// A string unescaped into the side buffer.
    StrDecoded,
    /// `a` = element count.
    Array,
    /// `a` = member count (distinct names).
    Object,
    /// An object key; the value's node follows.
    Key,
    KeyDecoded,
    /// A key that a later duplicate replaced: it and its value are skipped.
    Shadowed,
}

const NODE_TYPES: [NodeType; 13] = [
    NodeType::Null,
    NodeType::False,
    NodeType::True,
    NodeType::PosInt,
    NodeType::NegInt,
    NodeType::Float,
    NodeType::Str,
    NodeType::StrDecoded,
    NodeType::Array,
    NodeType::Object,
    NodeType::Key,
    NodeType::KeyDecoded,
    NodeType::Shadowed,
];

#[cfg(any(test, fuzzing))]
thread_local! {
    static TOUCHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts reads of the tape, where tests and fuzzing can see them: every step of an evaluation
/// reads it, so the count is an independent measure of the work the budget charges for.
#[inline]
fn touched() {
    #[cfg(any(test, fuzzing))]
    TOUCHES.with(|t| t.set(t.get() + 1));
}

/// Tape reads on this thread so far (tests and fuzzing builds only).
#[cfg(any(test, fuzzing))]
pub fn touches() -> u64 {
    TOUCHES.with(std::cell::Cell::get)
}

#[derive(Clone, Copy, Debug)]
struct Node {
    a: u32,
    b: u32,
    /// NodeType in the top 4 bits, the index after this node's subtree below.
    c: u32,
}

/// A node's position in the tape.
pub(crate) type Id = u32;

/// A scalar or container, as the evaluator sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Kind<'t> {
    Null,
    Bool(bool),
    Number(NumberRef),
    Str(&'t str),
    Array(u32),
    Object(u32),
}

/// A number as the body wrote it: serde_json's three representations.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum NumberRef {
    PosInt(u64),
    NegInt(i64),
    Float(f64),
}

impl NumberRef {
    pub(crate) fn as_f64(self) -> f64 {
        match self {
            NumberRef::PosInt(v) => v as f64,
            NumberRef::NegInt(v) => v as f64,
            NumberRef::Float(v) => v,
        }
    }

    /// The `serde_json::Number` a `Value` would hold.
    pub(crate) fn to_number(self) -> Number {
        match self {
            NumberRef::PosInt(v) => v.into(),
            NumberRef::NegInt(v) => v.into(),
            NumberRef::Float(v) => Number::from_f64(v).unwrap_or_else(|| 0.into()),
        }
    }
}

/// A parsed body.
pub(crate) struct Tape<'t> {
    text: &'t str,
    decoded: String,
    nodes: Vec<Node>,
    /// The most nodes the body can have: the node vector never grows past it.
    bound: usize,
}

/// Nodes reserved before parsing (48 KiB): a body that fails early (too deep, malformed) costs no
/// more; past it the vector doubles, up to the bound.
const FIRST_RESERVE: usize = 4096;

impl<'t> Tape<'t> {
    /// Parses `text` strictly (as serde_json's `Value` would, with our depth limit).
    pub(crate) fn parse(text: &'t str, max_depth: usize) -> Result<Self, PayloadProblem> {
        let bound = node_bound(text);
        let mut tape =
            Tape { text, decoded: String::new(), nodes: Vec::with_capacity(bound.min(FIRST_RESERVE)), bound };
        let mut scratch = Vec::new();
        json::walk(text, Builder { tape: &mut tape, scratch: &mut scratch, level: 0, max_depth }, max_depth)?;
        Ok(tape)
    }

    /// The root value.
    pub(crate) const ROOT: Id = 0;

    /// Nodes (values and keys).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Bytes held: the nodes and the unescaped strings.
    #[cfg(test)]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>() + self.decoded.capacity()
    }

    pub(crate) fn tag(&self, id: Id) -> NodeType {
        touched();
        NODE_TYPES[(self.nodes[id as usize].c >> TAG_SHIFT) as usize]
    }

    /// The position after `id`'s subtree.
    pub(crate) fn end(&self, id: Id) -> Id {
        touched();
        self.nodes[id as usize].c & NEXT_MASK
    }

    fn str_at(&self, node: Node, decoded: bool) -> &str {
        let (start, len) = (node.a as usize, node.b as usize);
        if decoded { &self.decoded[start..start + len] } else { &self.text[start..start + len] }
    }

    pub(crate) fn kind(&self, id: Id) -> Kind<'_> {
        touched();
        let node = self.nodes[id as usize];
        let wide = u64::from(node.a) | (u64::from(node.b) << 32);
        match self.tag(id) {
            NodeType::Null => Kind::Null,
            NodeType::False => Kind::Bool(false),
            NodeType::True => Kind::Bool(true),
            NodeType::PosInt => Kind::Number(NumberRef::PosInt(wide)),
            NodeType::NegInt => Kind::Number(NumberRef::NegInt(wide as i64)),
            NodeType::Float => Kind::Number(NumberRef::Float(f64::from_bits(wide))),
            NodeType::Str => Kind::Str(self.str_at(node, false)),
            NodeType::StrDecoded => Kind::Str(self.str_at(node, true)),
            NodeType::Array => Kind::Array(node.a),
            NodeType::Object => Kind::Object(node.a),
            // Keys are never values; callers step over them.
            NodeType::Key | NodeType::KeyDecoded | NodeType::Shadowed => Kind::Null,
        }
    }

    /// The name of a key node.
    pub(crate) fn key(&self, id: Id) -> &str {
        let node = self.nodes[id as usize];
        self.str_at(node, self.tag(id) == NodeType::KeyDecoded)
    }

    /// The first member (a value for arrays, a key for objects) of the container `id`.
    pub(crate) fn first_child(id: Id) -> Id {
        id + 1
    }

    fn push(&mut self, tag: NodeType, a: u32, b: u32) -> Id {
        if self.nodes.len() == self.nodes.capacity() {
            // Doubling, but never past the bound: memory stays within 12 bytes a possible node.
            let more = self.nodes.capacity().max(1).min(self.bound.saturating_sub(self.nodes.len()).max(1));
            self.nodes.reserve_exact(more);
        }
        let id = self.nodes.len() as Id;
        self.nodes.push(Node { a, b, c: ((tag as u32) << TAG_SHIFT) | (id + 1) });
        id
    }

    /// Records that `id`'s subtree ends here.
    fn set_end(&mut self, id: Id) {
        let end = self.nodes.len() as u32;
        let node = &mut self.nodes[id as usize];
        node.c = (node.c & !NEXT_MASK) | end;
    }

    fn close(&mut self, id: Id, count: u32) {
        self.set_end(id);
        self.nodes[id as usize].a = count;
    }

    fn push_str(&mut self, plain: NodeType, decoded: NodeType, borrowed: Option<&'t str>, transient: &str) -> Id {
        match borrowed {
            Some(s) => {
                let offset = s.as_ptr() as usize - self.text.as_ptr() as usize;
                self.push(plain, offset as u32, s.len() as u32)
            }
            None => {
                let offset = self.decoded.len() as u32;
                self.decoded.push_str(transient);
                self.push(decoded, offset, transient.len() as u32)
            }
        }
    }

    fn push_number(&mut self, tag: NodeType, bits: u64) {
        self.push(tag, bits as u32, (bits >> 32) as u32);
    }
}

/// An upper bound on the nodes of `text` if it is valid JSON: every value but the root follows a
/// `[`, `,` or `:`, and every key a `{` or `,`; counted anywhere (inside strings too, which only
/// raises the bound), with memchr's vectorised search. Valid JSON has at most one node per two
/// bytes (`0,0,…`), which caps it.
fn node_bound(text: &str) -> usize {
    let bytes = text.as_bytes();
    let count = 1 + memchr::memchr3_iter(b',', b':', b'[', bytes).count() + memchr::memchr_iter(b'{', bytes).count();
    count.min(bytes.len() / 2 + 2)
}

struct Builder<'a, 't> {
    tape: &'a mut Tape<'t>,
    /// Reused across objects to find duplicate keys.
    scratch: &'a mut Vec<Id>,
    level: usize,
    max_depth: usize,
}

impl<'t> Builder<'_, 't> {
    fn child(&mut self, level: usize) -> Builder<'_, 't> {
        Builder { tape: self.tape, scratch: self.scratch, level, max_depth: self.max_depth }
    }
}

impl<'de> DeserializeSeed<'de> for Builder<'_, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Builder<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<(), E> {
        self.tape.push(if v { NodeType::True } else { NodeType::False }, 0, 0);
        Ok(())
    }
    fn visit_i64<E>(self, v: i64) -> Result<(), E> {
        // serde_json gives non-negative integers to visit_u64, so this is negative.
        self.tape.push_number(NodeType::NegInt, v as u64);
        Ok(())
    }
    fn visit_u64<E>(self, v: u64) -> Result<(), E> {
        self.tape.push_number(NodeType::PosInt, v);
        Ok(())
    }
    fn visit_f64<E>(self, v: f64) -> Result<(), E> {
        // A non-finite float (never produced by the parser) is `null` in a `Value` too.
        match json::float(v) {
            Some(_) => self.tape.push_number(NodeType::Float, v.to_bits()),
            None => {
                self.tape.push(NodeType::Null, 0, 0);
            }
        }
        Ok(())
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<(), E> {
        self.tape.push_str(NodeType::Str, NodeType::StrDecoded, Some(v), v);
        Ok(())
    }
    fn visit_str<E>(self, v: &str) -> Result<(), E> {
        self.tape.push_str(NodeType::Str, NodeType::StrDecoded, None, v);
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.tape.push(NodeType::Null, 0, 0);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let level = self.level + 1;
        json::enter(level, self.max_depth)?;
        let id = self.tape.push(NodeType::Array, 0, 0);
        let mut count = 0u32;
        while seq.next_element_seed(self.child(level))?.is_some() {
            count += 1;
        }
        self.tape.close(id, count);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let level = self.level + 1;
        json::enter(level, self.max_depth)?;
        let id = self.tape.push(NodeType::Object, 0, 0);
        let mut count = 0u32;
        while let Some(key) = map.next_key_seed(KeyBuilder(self.tape))? {
            map.next_value_seed(self.child(level))?;
            self.tape.set_end(key);
            count += 1;
        }
        count -= shadow_duplicates(self.tape, self.scratch, id);
        self.tape.close(id, count);
        Ok(())
    }
}

/// Marks every member of object `id` but the last of each name as shadowed; returns how many.
fn shadow_duplicates(tape: &mut Tape<'_>, scratch: &mut Vec<Id>, id: Id) -> u32 {
    scratch.clear();
    let end = tape.nodes.len() as Id;
    let mut key = Tape::first_child(id);
    while key < end {
        scratch.push(key);
        key = tape.end(key);
    }
    if scratch.len() < 2 {
        return 0;
    }
    // Stable: among equal names, the later member sorts after the earlier one.
    scratch.sort_by(|&x, &y| tape.key(x).cmp(tape.key(y)));
    let mut shadowed = 0;
    for i in 1..scratch.len() {
        let (earlier, later) = (scratch[i - 1], scratch[i]);
        if tape.key(earlier) == tape.key(later) {
            let node = &mut tape.nodes[earlier as usize];
            node.c = ((NodeType::Shadowed as u32) << TAG_SHIFT) | (node.c & NEXT_MASK);
            shadowed += 1;
        }
    }
    shadowed
}

struct KeyBuilder<'a, 't>(&'a mut Tape<'t>);

impl<'de> DeserializeSeed<'de> for KeyBuilder<'_, 'de> {
    type Value = Id;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Id, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyBuilder<'_, 'de> {
    type Value = Id;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Id, E> {
        Ok(self.0.push_str(NodeType::Key, NodeType::KeyDecoded, Some(v), v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Id, E> {
        Ok(self.0.push_str(NodeType::Key, NodeType::KeyDecoded, None, v))
    }
}

/// The `Value` of a node, for tests against the reference.
#[cfg(test)]
pub(crate) fn to_value(tape: &Tape<'_>, id: Id) -> serde_json::Value {
    use serde_json::Value;
    match tape.kind(id) {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(b),
        Kind::Number(n) => Value::Number(n.to_number()),
        Kind::Str(s) => Value::String(s.to_owned()),
        Kind::Array(_) => {
            let mut items = Vec::new();
            let mut at = Tape::first_child(id);
            while at < tape.end(id) {
                items.push(to_value(tape, at));
                at = tape.end(at);
            }
            Value::Array(items)
        }
        Kind::Object(_) => {
            let mut map = serde_json::Map::new();
            let mut key = Tape::first_child(id);
            while key < tape.end(id) {
                if tape.tag(key) != NodeType::Shadowed {
                    map.insert(tape.key(key).to_owned(), to_value(tape, key + 1));
                }
                key = tape.end(key);
            }
            Value::Object(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 12);
    }

    #[test]
    fn lays_out_a_document_in_preorder() {
        let text = r#"{"a":[1,-2,1.5,"x\n"],"b":{"c":null},"a":true}"#;
        let tape = Tape::parse(text, 128).unwrap();
        assert_eq!(tape.kind(0), Kind::Object(2), "duplicate names count once");
        assert_eq!(tape.tag(1), NodeType::Shadowed);
        assert_eq!(tape.key(1), "a");
        assert_eq!(tape.kind(2), Kind::Array(4));
        assert_eq!(tape.end(2), 7);
        assert_eq!(tape.kind(3), Kind::Number(NumberRef::PosInt(1)));
        assert_eq!(tape.kind(4), Kind::Number(NumberRef::NegInt(-2)));
        assert_eq!(tape.kind(5), Kind::Number(NumberRef::Float(1.5)));
        assert_eq!(tape.kind(6), Kind::Str("x\n"));
        assert_eq!(tape.key(7), "b");
        assert_eq!(tape.kind(8), Kind::Object(1));
        assert_eq!(tape.key(9), "c");
        assert_eq!(tape.kind(10), Kind::Null);
        assert_eq!(tape.key(11), "a");
        assert_eq!(tape.kind(12), Kind::Bool(true));
        assert_eq!(tape.end(0), 13);
        assert_eq!(tape.end(1), 7, "a shadowed member still spans its value");
        assert!(tape.len() <= node_bound(text), "a bound");
    }

    #[test]
    fn the_worst_shapes_cost_at_most_six_times_the_body() {
        let shapes: [(&str, &str); 6] = [
            ("zeros", "0,"),
            ("empty arrays", "[],"),
            ("empty objects", "{},"),
            ("tiny objects", r#"{"":0},"#),
            ("empty strings", r#""","#),
            ("escaped strings", r#""\n","#),
        ];
        for (what, item) in shapes {
            let body = format!("[{}0]", item.repeat(100_000));
            let tape = Tape::parse(&body, 128).unwrap();
            let ratio = tape.heap_bytes() as f64 / body.len() as f64;
            assert!(ratio <= 6.01, "{what}: {ratio:.2}x");
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for text in ["1e400", r#""\ud800""#, "[1,]", "{} x", "[[[]]]"] {
            assert!(Tape::parse(text, 2).is_err(), "{text}");
        }
    }

    #[test]
    fn the_bound_holds_for_every_shape() {
        for text in ["[]", "{}", "0", " -1.5e3 ", r#"{"a":{"b":[[],{}]}}"#, r#"["a,b:c[d{","\"",[0,true,null]]"#] {
            let tape = Tape::parse(text, 128).unwrap();
            assert!(tape.len() <= node_bound(text), "{text}");
            assert!(tape.nodes.capacity() <= node_bound(text).max(1), "{text}: never past the bound");
        }
        let deep = Tape::parse(&"[".repeat(1 << 20), 128).map(|_| ()).unwrap_err();
        assert!(deep.to_string().contains("nesting depth"), "{deep}");
    }
}
