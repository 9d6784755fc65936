//! Strict, depth-limited JSON walks over serde_json's deserializer.
//!
//! serde_json's own recursion guard is switched off (feature `unbounded_depth`) so that the depth
//! limit is ours and configurable; every container passes through [`enter`], so recursion stays
//! bounded by that limit. Both lanes (the DOM-free extraction and the tape) reject what
//! `serde_json::from_str::<Value>` rejects for any reason but its own fixed recursion limit, and
//! whatever nests deeper than ours: strings are decoded (lone surrogates fail) and numbers parsed
//! (`1e400` fails), which `IgnoredAny` does not do.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::verdict::PayloadProblem;
use serde_json::Number;
#[cfg(test)]
use serde_json::{Map, Value};

thread_local! {
    /// Set by [`enter`] when it refuses a container, read by [`walk`]: how a walk tells our depth
    /// limit from serde_json's own errors without reading its message back.
    static TOO_DEEP: Cell<bool> = const { Cell::new(false) };
}

/// Checks the nesting level of a container about to be entered.
pub(crate) fn enter<E: de::Error>(level: usize, max_depth: usize) -> Result<(), E> {
    if level > max_depth {
        TOO_DEEP.set(true);
        Err(E::custom(format_args!("nesting depth exceeds the limit of {max_depth}")))
    } else {
        Ok(())
    }
}

/// Runs `seed` over the whole of `text` and requires nothing but whitespace after it. A failure
/// is the typed problem: our depth limit (`max_depth`, the one the seed was given), or
/// serde_json's own description and position.
pub(crate) fn walk<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
    max_depth: usize,
) -> Result<S::Value, PayloadProblem> {
    TOO_DEEP.set(false);
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = seed.deserialize(&mut de).and_then(|value| de.end().map(|()| value));
    value.map_err(|e| {
        let (line, column) = (e.line(), e.column());
        if TOO_DEEP.replace(false) {
            return PayloadProblem::TooDeep { limit: max_depth, line, column };
        }
        let text = e.to_string();
        let reason = match text.rfind(" at line ") {
            Some(at) => text[..at].to_owned(),
            None => text,
        };
        PayloadProblem::InvalidJson { reason, line, column }
    })
}

/// Number as serde_json's `Value` would hold it: a non-finite float (which the parser never
/// yields) becomes `null` there too.
pub(crate) fn float(v: f64) -> Option<Number> {
    Number::from_f64(v)
}

/// Validates a subtree and discards it.
pub(crate) struct Skip {
    /// The nesting level of the value's parent.
    pub(crate) level: usize,
    pub(crate) max_depth: usize,
}

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let level = self.level + 1;
        enter(level, self.max_depth)?;
        while seq.next_element_seed(Skip { level, max_depth: self.max_depth })?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let level = self.level + 1;
        enter(level, self.max_depth)?;
        while map.next_key_seed(SkipKey)?.is_some() {
            map.next_value_seed(Skip { level, max_depth: self.max_depth })?;
        }
        Ok(())
    }
}

/// An object key, decoded (so that invalid escapes fail) and discarded.
struct SkipKey;

impl<'de> DeserializeSeed<'de> for SkipKey {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for SkipKey {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

/// Builds a `serde_json::Value` exactly as its own `Deserialize` does, with our depth limit: the
/// reference the lanes are tested against.
#[cfg(test)]
pub(crate) struct ValueSeed {
    pub(crate) level: usize,
    pub(crate) max_depth: usize,
}

#[cfg(test)]
impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

#[cfg(test)]
impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(float(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let level = self.level + 1;
        enter(level, self.max_depth)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(ValueSeed { level, max_depth: self.max_depth })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let level = self.level + 1;
        enter(level, self.max_depth)?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Last key wins, as in serde_json and Jayway.
            object.insert(key, map.next_value_seed(ValueSeed { level, max_depth: self.max_depth })?);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, max_depth: usize) -> Result<Value, PayloadProblem> {
        walk(text, ValueSeed { level: 0, max_depth }, max_depth)
    }

    fn skip(text: &str, max_depth: usize) -> Result<(), PayloadProblem> {
        walk(text, Skip { level: 0, max_depth }, max_depth)
    }

    #[test]
    fn value_seed_builds_what_serde_json_builds() {
        for text in [
            r#"{"a":[1,-2,3.5,1e2,-0,true,null,"x\u00e9"],"b":{"c":{}},"a":"dup"}"#,
            "123456789012345678901234567890",
            "  [ ] ",
        ] {
            assert_eq!(parse(text, 128).unwrap(), serde_json::from_str::<Value>(text).unwrap(), "{text}");
        }
    }

    #[test]
    fn depth_limit_counts_containers() {
        let nested = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(parse(&nested(128), 128).is_ok());
        assert!(skip(&nested(128), 128).is_ok());
        assert_eq!(parse(&nested(129), 128), Err(PayloadProblem::TooDeep { limit: 128, line: 1, column: 130 }));
        assert!(matches!(parse("[1,]", 128), Err(PayloadProblem::InvalidJson { .. })));
        assert!(skip(&nested(129), 128).is_err());
        assert!(skip(r#"{"a":{"b":1}}"#, 1).is_err());
        assert!(skip(r#"{"a":1}"#, 1).is_ok());
    }

    #[test]
    fn skip_is_as_strict_as_value() {
        for text in ["1e400", r#""\ud800""#, r#"{"\ud800":1}"#, "[1,]", "01", "\u{feff}{}", "{} x", "nul", "\"a\u{1}\""]
        {
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
            assert!(skip(text, 128).is_err(), "{text}");
            assert!(parse(text, 128).is_err(), "{text}");
        }
    }
}
