//! The AWS service model's constraints on every operation's input, checked on the raw JSON as the
//! AWS front end checks them, before anything reads the input as typed data.
//!
//! The table (`codepipeline-2015-07-09.json`) is extracted from botocore's
//! `codepipeline/2015-07-09/service-2.json` (Apache License 2.0, Copyright Amazon.com, Inc. or its
//! affiliates) by `tools/extract-codepipeline-model.py`: for each input shape its type, required
//! members, members in model order, and `min`, `max`, `pattern`, `enum`.
//!
//! Two passes, as AWS's JSON 1.1 front end makes them:
//! 1. Types. A member of the wrong JSON type is a `SerializationException` worded as AWS words it
//!    (`class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an
//!    String`, `Start of list found where not expected`, ...). The value is never quoted, so a
//!    secret given as a number is not echoed (where AWS quotes a string given for a boolean,
//!    `'X' can not be converted to an Boolean`, this says `class java.lang.String` instead).
//!    Unknown members are ignored, as AWS ignores them; `null` is an absent member.
//! 2. Constraints. Every violation, in model order, up to ten, in one `ValidationException`:
//!    `2 validation errors detected: Value null at 'pipeline.roleArn' failed to satisfy constraint:
//!    Member must not be null; Value at 'pipeline.stages.1.member.name' failed to satisfy
//!    constraint: Member must have length less than or equal to 100`. Paths are AWS's: list
//!    elements `stages.1.member` (from 1), map values `artifactStores.us-east-1.member`. As
//!    CodePipeline does, a value present is never quoted (`Value at '…'`): AWS's own answers read
//!    `Value at 'pipeline.stages.1.member.actions.1.member.actionTypeId.provider' failed to satisfy
//!    constraint: Member must satisfy regular expression pattern: [0-9A-Za-z_-]+`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, ErrorCode, escape};
use crate::filter::regex::Pattern;

/// How many violations one `ValidationException` lists at most, as AWS lists them.
pub const MAX_REPORTED_VIOLATIONS: usize = 10;

const TABLE: &str = include_str!("codepipeline-2015-07-09.json");

/// One shape of the table.
#[derive(Debug, Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: Kind,
    #[serde(default)]
    min: Option<i64>,
    #[serde(default)]
    max: Option<i64>,
    #[serde(default)]
    pattern: Option<String>,
    #[serde(default, rename = "enum")]
    values: Vec<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    members: Vec<(String, String)>,
    #[serde(default)]
    member: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Structure,
    List,
    Map,
    String,
    Integer,
    Boolean,
}

#[derive(Deserialize)]
struct Table {
    operations: Vec<(String, String)>,
    shapes: Vec<(String, Shape)>,
}

struct Model {
    operations: Vec<(String, String)>,
    shapes: HashMap<String, Shape>,
    /// Each distinct pattern, compiled once (full match, as AWS's Java `matches()`).
    patterns: HashMap<String, Option<Pattern>>,
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let table: Table = serde_json::from_str(TABLE).expect("the checked-in model table parses");
        let mut patterns = HashMap::new();
        for (_, shape) in &table.shapes {
            if let Some(p) = &shape.pattern {
                // Java's `\w` is ASCII unless told otherwise; the model's anchors are redundant
                // under a full match.
                let java = p.replace("\\w", "A-Za-z0-9_");
                let java = java.strip_prefix('^').unwrap_or(&java);
                let java = java.strip_suffix('$').unwrap_or(java);
                patterns.insert(p.clone(), Pattern::compile(java, true).ok());
            }
        }
        Model { operations: table.operations, shapes: table.shapes.into_iter().collect(), patterns }
    })
}

/// The operations whose inputs the model table describes, in the table's order.
pub fn model_operations() -> impl Iterator<Item = &'static str> {
    model().operations.iter().map(|(op, _)| op.as_str())
}

/// Checks an operation's input (the request body, parsed as JSON) against the AWS service model:
/// `SerializationException` for a body that is not a JSON object or a member of the wrong JSON
/// type, then `ValidationException` listing the constraint violations as AWS lists them. An
/// operation the table does not describe is `UnknownOperationException`.
///
/// ```
/// use codepipeline_webhooks::registry::validate_input;
/// let err = validate_input("GetPipeline", &serde_json::json!({"name": "a b"})).unwrap_err();
/// assert_eq!(err.code(), "ValidationException");
/// assert_eq!(err.message(), "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+");
/// ```
pub fn validate_input(operation: &str, input: &Value) -> Result<(), Error> {
    let model = model();
    let Some((_, shape)) = model.operations.iter().find(|(op, _)| op == operation) else {
        return Err(Error::new(
            ErrorCode::UnknownOperationException,
            None,
            format!("{} is not an operation of CodePipeline_20150709", escape(operation)),
        ));
    };
    validate_shape(shape, input, "")
}

/// Checks `value` against the model's shape `shape` as the member at `path` (`""` for a whole
/// input): types, then constraints.
fn validate_shape(shape: &str, value: &Value, path: &str) -> Result<(), Error> {
    if !value.is_object() {
        return Err(serialization(type_error(Kind::Structure, value)));
    }
    validate_member(shape, value, path)
}

/// Checks one member's value against its model shape (`TagList`, `ResourceArn`, ...), at `path`.
pub(crate) fn validate_member(shape: &str, value: &Value, path: &str) -> Result<(), Error> {
    let model = model();
    let shape = &model.shapes[shape];
    check_types(model, shape, value)?;
    let mut v = Violations::default();
    check_constraints(model, shape, value, path, &mut v);
    v.into_result()
}

/// The one name checker: a name member of any operation (`name`, `pipelineName`,
/// `webhookName`, `targetPipeline`, ...) holds 1 to 100 characters of `[A-Za-z0-9.@\-_]+`
/// (the model's `PipelineName`, `WebhookName`, `ActionName` and `StageName`). `member` is the
/// member's path as AWS writes it. `ValidationException` with both violations when both fail.
///
/// ```
/// use codepipeline_webhooks::registry::check_name;
/// assert!(check_name("name", "my-pipeline@v1.2_x").is_ok());
/// let err = check_name("pipelineName", "").unwrap_err();
/// assert!(err.message().starts_with("2 validation errors detected: Value at 'pipelineName' failed to satisfy constraint: Member must have length greater than or equal to 1; "));
/// ```
pub fn check_name(member: &str, name: &str) -> Result<(), Error> {
    let model = model();
    let mut v = Violations::default();
    check_constraints(model, &model.shapes["PipelineName"], &Value::String(name.to_owned()), member, &mut v);
    v.into_result()
}

fn serialization(message: &str) -> Error {
    Error::new(ErrorCode::SerializationException, None, message)
}

/// AWS's words for a JSON value of the wrong type where `expected` is wanted.
fn type_error(expected: Kind, found: &Value) -> &'static str {
    match (expected, found) {
        (_, Value::Array(_)) => "Start of list found where not expected",
        (_, Value::Object(_)) => "Start of structure or map found where not expected.",
        (Kind::Structure, _) => "Expected null",
        (Kind::List, _) => "Expected list or null",
        (Kind::Map, _) => "Expected map or null",
        (Kind::String, Value::Bool(_)) => "class java.lang.Boolean can not be converted to an String",
        (Kind::String, _) => {
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
        }
        (Kind::Integer, Value::Bool(_)) => "class java.lang.Boolean can not be converted to an Integer",
        (Kind::Integer, _) => "class java.lang.String can not be converted to an Integer",
        (Kind::Boolean, Value::Number(_)) => {
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean"
        }
        (Kind::Boolean, _) => "class java.lang.String can not be converted to an Boolean",
    }
}

fn fits(kind: Kind, value: &Value) -> bool {
    matches!(
        (kind, value),
        (Kind::Structure | Kind::Map, Value::Object(_))
            | (Kind::List, Value::Array(_))
            | (Kind::String, Value::String(_))
            | (Kind::Integer, Value::Number(_))
            | (Kind::Boolean, Value::Bool(_))
    )
}

/// Pass 1: every member present has its shape's JSON type. Iterative, so that nesting is bounded
/// by the shapes (the model has no recursive shape) and never by the input.
fn check_types(model: &Model, shape: &Shape, value: &Value) -> Result<(), Error> {
    let mut stack: Vec<(&Shape, &Value)> = vec![(shape, value)];
    while let Some((shape, value)) = stack.pop() {
        if value.is_null() {
            continue;
        }
        if !fits(shape.kind, value) {
            return Err(serialization(type_error(shape.kind, value)));
        }
        match (shape.kind, value) {
            (Kind::Structure, Value::Object(map)) => {
                // In reverse, so that the first member is checked first.
                for (name, member) in shape.members.iter().rev() {
                    if let Some(v) = map.get(name) {
                        stack.push((&model.shapes[member], v));
                    }
                }
            }
            (Kind::List, Value::Array(items)) => {
                let member = &model.shapes[shape.member.as_deref().unwrap_or_default()];
                stack.extend(items.iter().rev().map(|v| (member, v)));
            }
            (Kind::Map, Value::Object(map)) => {
                let member = &model.shapes[shape.value.as_deref().unwrap_or_default()];
                stack.extend(map.values().map(|v| (member, v)));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Violations gathered for one `ValidationException`.
#[derive(Default)]
pub(crate) struct Violations {
    items: Vec<(String, String)>,
    total: usize,
}

impl Violations {
    fn push(&mut self, path: &str, constraint: &str, null: bool) {
        self.total += 1;
        if self.items.len() < MAX_REPORTED_VIOLATIONS {
            let value = if null { "Value null" } else { "Value" };
            self.items.push((
                path.to_owned(),
                format!("{value} at '{}' failed to satisfy constraint: {constraint}", escape(path)),
            ));
        }
    }

    fn full(&self) -> bool {
        self.items.len() >= MAX_REPORTED_VIOLATIONS
    }

    pub(crate) fn into_result(self) -> Result<(), Error> {
        let Some((field, _)) = self.items.first() else { return Ok(()) };
        let n = self.items.len();
        let plural = if n == 1 { "error" } else { "errors" };
        let details: Vec<&str> = self.items.iter().map(|(_, m)| m.as_str()).collect();
        Err(Error::validation(Some(field.clone()), format!("{n} validation {plural} detected: {}", details.join("; "))))
    }
}

fn join(path: &str, member: &str) -> String {
    if path.is_empty() { member.to_owned() } else { format!("{path}.{member}") }
}

/// The constraints of a scalar shape, in AWS's words, each with whether `value` breaks it.
fn scalar_constraints(model: &Model, shape: &Shape, value: &Value) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    match (shape.kind, value) {
        (Kind::String, Value::String(s)) => {
            let len = s.chars().count() as i64;
            if let Some(max) = shape.max {
                out.push((format!("Member must have length less than or equal to {max}"), len > max));
            }
            if let Some(min) = shape.min {
                out.push((format!("Member must have length greater than or equal to {min}"), len < min));
            }
            if let Some(p) = &shape.pattern {
                let ok = match model.patterns.get(p) {
                    Some(Some(pattern)) => pattern.is_match(s),
                    _ => true,
                };
                out.push((format!("Member must satisfy regular expression pattern: {p}"), !ok));
            }
            if !shape.values.is_empty() {
                out.push((
                    format!("Member must satisfy enum value set: [{}]", shape.values.join(", ")),
                    !shape.values.iter().any(|e| e == s),
                ));
            }
        }
        (Kind::Integer, Value::Number(n)) => {
            // AWS reads a fraction as its integer part and clamps what does not fit.
            let n = n.as_i64().unwrap_or_else(|| n.as_f64().map_or(0, |f| f.floor() as i64));
            if let Some(max) = shape.max {
                out.push((format!("Member must have value less than or equal to {max}"), n > max));
            }
            if let Some(min) = shape.min {
                out.push((format!("Member must have value greater than or equal to {min}"), n < min));
            }
        }
        _ => {}
    }
    out
}

/// Pass 2: the constraints, depth first in model order, the value's own before its members'.
fn check_constraints(model: &Model, shape: &Shape, value: &Value, path: &str, v: &mut Violations) {
    if v.full() {
        return;
    }
    match (shape.kind, value) {
        (Kind::Structure, Value::Object(map)) => {
            for (name, member) in &shape.members {
                let at = join(path, name);
                match map.get(name) {
                    None | Some(Value::Null) => {
                        if shape.required.iter().any(|r| r == name) {
                            v.push(&at, "Member must not be null", true);
                        }
                    }
                    Some(value) => check_constraints(model, &model.shapes[member], value, &at, v),
                }
            }
        }
        (Kind::List, Value::Array(items)) => {
            size(shape, items.len(), path, v);
            let member = &model.shapes[shape.member.as_deref().unwrap_or_default()];
            if member.kind == Kind::Structure {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("{path}.{}.member", i + 1);
                    if item.is_null() {
                        v.push(&at, "Member must not be null", true);
                    } else {
                        check_constraints(model, member, item, &at, v);
                    }
                }
            } else if let Some(all) = broken(model, member, items.iter()) {
                v.push(path, &format!("Member must satisfy constraint: [{all}]"), false);
            }
        }
        (Kind::Map, Value::Object(map)) => {
            size(shape, map.len(), path, v);
            let key = &model.shapes[shape.key.as_deref().unwrap_or_default()];
            let keys: Vec<Value> = map.keys().map(|k| Value::String(k.clone())).collect();
            if let Some(all) = broken(model, key, keys.iter()) {
                v.push(path, &format!("Map keys must satisfy constraint: [{all}]"), false);
            }
            let member = &model.shapes[shape.value.as_deref().unwrap_or_default()];
            if member.kind == Kind::Structure {
                for (k, item) in map {
                    if !item.is_null() {
                        check_constraints(model, member, item, &format!("{path}.{k}.member"), v);
                    }
                }
            } else if let Some(all) = broken(model, member, map.values()) {
                v.push(path, &format!("Map value must satisfy constraint: [{all}]"), false);
            }
        }
        _ => {
            for (constraint, bad) in scalar_constraints(model, shape, value) {
                if bad {
                    v.push(path, &constraint, false);
                }
            }
        }
    }
}

/// When one of `items` breaks a constraint of the scalar shape `member`: all of that shape's
/// constraints, as AWS lists them for a member of a list or map.
fn broken<'v>(model: &Model, member: &Shape, items: impl Iterator<Item = &'v Value>) -> Option<String> {
    let mut all: Option<Vec<String>> = None;
    for item in items.filter(|i| !i.is_null()) {
        let constraints = scalar_constraints(model, member, item);
        if constraints.iter().any(|(_, bad)| *bad) {
            all = Some(constraints.into_iter().map(|(c, _)| c).collect());
            break;
        }
    }
    all.map(|a| a.join(", "))
}

fn size(shape: &Shape, len: usize, path: &str, v: &mut Violations) {
    let len = len as i64;
    if let Some(max) = shape.max.filter(|max| len > *max) {
        v.push(path, &format!("Member must have length less than or equal to {max}"), false);
    }
    if let Some(min) = shape.min.filter(|min| len < *min) {
        v.push(path, &format!("Member must have length greater than or equal to {min}"), false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_pattern_of_the_model_compiles() {
        for (p, compiled) in &model().patterns {
            assert!(compiled.is_some(), "{p}");
        }
        for shape in model().shapes.values() {
            for name in shape.members.iter().map(|(_, s)| s).chain(&shape.member).chain(&shape.key).chain(&shape.value)
            {
                assert!(model().shapes.contains_key(name), "{name}");
            }
        }
    }

    #[test]
    fn patterns_match_whole_values_as_java_does() {
        let role = |arn: &str| {
            validate_input("CreatePipeline", &json!({"pipeline": {"name": "p", "roleArn": arn, "stages": []}}))
        };
        assert!(role("arn:aws:iam::123456789012:role/cp").is_ok());
        assert!(role("arn:aws-us-gov:iam::123456789012:role/a/b").is_ok());
        for bad in ["", "arn:aws:iam::12345678901:role/cp", "xarn:aws:iam::123456789012:role/cp", "arn:aws:s3:::b"] {
            let err = role(bad).unwrap_err();
            assert!(err.message().contains("at 'pipeline.roleArn' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws(-[\\w]+)*:iam::[0-9]{12}:role/.*"), "{bad}: {err}");
        }
    }

    #[test]
    fn wrong_types_are_serialization_exceptions_without_the_value() {
        let err = validate_input(
            "CreatePipeline",
            &json!({"pipeline": {"name": "p", "roleArn": "r", "stages": [{"name": "s", "actions": [{"name": "a",
                "actionTypeId": {}, "configuration": {"OAuthToken": 13579246}}]}]}}),
        )
        .unwrap_err();
        assert_eq!(err.code(), "SerializationException");
        assert!(!err.message().contains("13579246"), "{err}");
        assert_eq!(
            err.message(),
            "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"
        );
        for (body, message) in [
            (json!(["x"]), "Start of list found where not expected"),
            (json!("x"), "Expected null"),
            (json!({"name": {}}), "Start of structure or map found where not expected."),
            (json!({"name": true}), "class java.lang.Boolean can not be converted to an String"),
            (json!({"name": "p", "version": "1"}), "class java.lang.String can not be converted to an Integer"),
        ] {
            let err = validate_input("GetPipeline", &body).unwrap_err();
            assert_eq!((err.code(), err.message()), ("SerializationException", message), "{body}");
        }
    }

    #[test]
    fn violations_are_counted_and_capped_as_aws_does() {
        let tags: Vec<Value> = (0..12).map(|_| json!({"key": "", "value": "v"})).collect();
        let err = validate_input(
            "TagResource",
            &json!({"resourceArn": "arn:aws:codepipeline:us-east-1:123456789012:p", "tags": tags}),
        )
        .unwrap_err();
        assert!(err.message().starts_with("10 validation errors detected: Value at 'tags.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1; Value at 'tags.2.member.key'"), "{err}");
        assert_eq!(err.field(), Some("tags.1.member.key"));
        let err = validate_input(
            "UntagResource",
            &json!({"resourceArn": "arn:aws:codepipeline:us-east-1:123456789012:p", "tagKeys": ["ok", ""]}),
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "1 validation error detected: Value at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]"
        );
    }

    #[test]
    fn the_name_checker_says_what_the_model_says() {
        assert!(check_name("name", &"a".repeat(100)).is_ok());
        let err = check_name("name", &"a".repeat(101)).unwrap_err();
        assert_eq!(
            err.message(),
            "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must have length less than or equal to 100"
        );
        let err = check_name("webhookName", "!").unwrap_err();
        assert_eq!(
            err.message(),
            "1 validation error detected: Value at 'webhookName' failed to satisfy constraint: Member must satisfy regular expression pattern: [A-Za-z0-9.@\\-_]+"
        );
        assert_eq!(check_name("name", "").unwrap_err().message().matches("failed to satisfy").count(), 2);
    }
}
