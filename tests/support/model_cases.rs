//! Invalid inputs generated from the AWS service model (the table extracted from botocore's
//! `codepipeline/2015-07-09/service-2.json`, `src/model/codepipeline-2015-07-09.json`): for an
//! operation, one valid input built from its shapes, then one input per model constraint that
//! breaks only that constraint, with the words AWS answers it with. Shared by the engine's test
//! (`tests/model_generated.rs`) and the service's (`cli/tests/fidelity.rs`).
//!
//! The expected words are built here from the constraint's kind, independently of the crate's
//! checker: `Value null at 'P' failed to satisfy constraint: Member must not be null`, `Value at
//! 'P' failed to satisfy constraint: Member must have length less than or equal to N`, ...,
//! `Member must satisfy constraint: [...]` for a list of scalars, `Map keys must satisfy
//! constraint: [...]` and `Map value must satisfy constraint: [...]` for maps.

#![allow(dead_code)]

use std::collections::HashMap;

use serde_json::{Map, Value, json};

const TABLE: &str = include_str!("../../src/model/codepipeline-2015-07-09.json");

/// One generated input.
#[derive(Debug, Clone)]
pub struct Case {
    /// The operation.
    pub operation: String,
    /// The request body.
    pub input: Value,
    /// A fragment the `ValidationException` message must contain.
    pub expected: String,
}

pub struct Model {
    shapes: HashMap<String, Value>,
    operations: Vec<(String, String)>,
}

impl Model {
    pub fn load() -> Model {
        let table: Value = serde_json::from_str(TABLE).unwrap();
        let shapes = table["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].clone()))
            .collect();
        let operations = table["operations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned()))
            .collect();
        Model { shapes, operations }
    }

    fn shape(&self, name: &str) -> &Value {
        &self.shapes[name]
    }

    fn input_shape(&self, operation: &str) -> &str {
        &self.operations.iter().find(|(o, _)| o == operation).unwrap().1
    }

    /// A valid value of a shape: every member present, one element per list and map.
    pub fn sample(&self, name: &str) -> Value {
        let s = self.shape(name);
        match s["type"].as_str().unwrap() {
            "structure" => {
                let mut out = Map::new();
                for m in s["members"].as_array().unwrap() {
                    out.insert(m[0].as_str().unwrap().to_owned(), self.sample(m[1].as_str().unwrap()));
                }
                Value::Object(out)
            }
            "list" => json!([self.sample(s["member"].as_str().unwrap())]),
            "map" => {
                let key = self.sample(s["key"].as_str().unwrap());
                json!({ key.as_str().unwrap(): self.sample(s["value"].as_str().unwrap()) })
            }
            "integer" => json!(s["min"].as_i64().unwrap_or(1).max(1).min(s["max"].as_i64().unwrap_or(i64::MAX))),
            "boolean" => json!(true),
            _ => Value::String(valid_string(s)),
        }
    }

    /// The valid input of `operation`, and one invalid input per model constraint.
    pub fn cases(&self, operation: &str) -> (Value, Vec<Case>) {
        let shape = self.input_shape(operation).to_owned();
        let base = self.sample(&shape);
        let mut cases = Vec::new();
        self.walk(
            &shape,
            &base,
            &mut Vec::new(),
            "",
            &mut |pointer: &[Step], value: Option<Value>, expected: String| {
                let mut input = base.clone();
                set(&mut input, pointer, value);
                cases.push(Case { operation: operation.to_owned(), input, expected });
            },
        );
        (base, cases)
    }

    fn walk(&self, name: &str, value: &Value, pointer: &mut Vec<Step>, path: &str, emit: &mut Emit<'_>) {
        let s = self.shape(name);
        match s["type"].as_str().unwrap() {
            "structure" => {
                let required: Vec<&str> = s
                    .get("required")
                    .and_then(Value::as_array)
                    .map_or(Vec::new(), |r| r.iter().filter_map(Value::as_str).collect());
                for m in s["members"].as_array().unwrap() {
                    let member = m[0].as_str().unwrap();
                    let at = if path.is_empty() { member.to_owned() } else { format!("{path}.{member}") };
                    pointer.push(Step::Key(member.to_owned()));
                    if required.contains(&member) {
                        emit(
                            pointer,
                            None,
                            format!("Value null at '{at}' failed to satisfy constraint: Member must not be null"),
                        );
                    }
                    self.walk(m[1].as_str().unwrap(), &value[member], pointer, &at, emit);
                    pointer.pop();
                }
            }
            "list" => {
                let member = s["member"].as_str().unwrap();
                self.sizes(s, value, pointer, path, emit);
                let m = self.shape(member);
                if m["type"] == "structure" {
                    pointer.push(Step::Index(0));
                    self.walk(member, &value[0], pointer, &format!("{path}.1.member"), emit);
                    pointer.pop();
                } else {
                    for bad in invalid_scalars(m) {
                        pointer.push(Step::Index(0));
                        emit(
                            pointer,
                            Some(bad),
                            format!(
                                "Value at '{path}' failed to satisfy constraint: Member must satisfy constraint: [{}]",
                                constraints(m).join(", ")
                            ),
                        );
                        pointer.pop();
                    }
                }
            }
            "map" => {
                self.sizes(s, value, pointer, path, emit);
                let key_shape = self.shape(s["key"].as_str().unwrap());
                let (key, item) =
                    value.as_object().unwrap().iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap();
                for bad in invalid_scalars(key_shape) {
                    let mut map = Map::new();
                    map.insert(bad.as_str().unwrap().to_owned(), item.clone());
                    emit(
                        pointer,
                        Some(Value::Object(map)),
                        format!(
                            "Value at '{path}' failed to satisfy constraint: Map keys must satisfy constraint: [{}]",
                            constraints(key_shape).join(", ")
                        ),
                    );
                }
                let value_name = s["value"].as_str().unwrap();
                let v = self.shape(value_name);
                pointer.push(Step::Key(key.clone()));
                if v["type"] == "structure" {
                    self.walk(value_name, &item, pointer, &format!("{path}.{key}.member"), emit);
                } else {
                    for bad in invalid_scalars(v) {
                        emit(
                            pointer,
                            Some(bad),
                            format!(
                                "Value at '{path}' failed to satisfy constraint: Map value must satisfy constraint: [{}]",
                                constraints(v).join(", ")
                            ),
                        );
                    }
                }
                pointer.pop();
            }
            _ => {
                for (bad, constraint) in invalid_with_constraint(s) {
                    emit(pointer, Some(bad), format!("Value at '{path}' failed to satisfy constraint: {constraint}"));
                }
            }
        }
    }

    /// List and map sizes: `min` (an empty one) and `max` (one too many copies of the sample).
    fn sizes(&self, s: &Value, value: &Value, pointer: &[Step], path: &str, emit: &mut Emit<'_>) {
        if let Some(max) = s["max"].as_u64() {
            let big = match value {
                Value::Array(items) => Value::Array(std::iter::repeat_n(items[0].clone(), max as usize + 1).collect()),
                Value::Object(map) => {
                    let item = map.values().next().unwrap().clone();
                    Value::Object((0..=max).map(|i| (format!("key{i}"), item.clone())).collect())
                }
                _ => unreachable!(),
            };
            emit(
                pointer,
                Some(big),
                format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
                ),
            );
        }
        if let Some(min) = s["min"].as_u64().filter(|m| *m > 0) {
            let empty = if value.is_array() { json!([]) } else { json!({}) };
            emit(
                pointer,
                Some(empty),
                format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
                ),
            );
        }
    }
}

/// Receives each case: where in the input, the new value (`None`: the member removed), the words.
type Emit<'a> = dyn FnMut(&[Step], Option<Value>, String) + 'a;

/// A step of a JSON pointer into the input.
#[derive(Debug, Clone)]
pub enum Step {
    Key(String),
    Index(usize),
}

fn set(value: &mut Value, pointer: &[Step], new: Option<Value>) {
    let (last, parents) = pointer.split_last().expect("a member");
    let mut at = value;
    for step in parents {
        at = match step {
            Step::Key(k) => &mut at[k.as_str()],
            Step::Index(i) => &mut at[*i],
        };
    }
    match (last, new) {
        (Step::Key(k), None) => {
            at.as_object_mut().unwrap().remove(k);
        }
        (Step::Key(k), Some(v)) => at[k.as_str()] = v,
        (Step::Index(i), Some(v)) => at[*i] = v,
        (Step::Index(_), None) => unreachable!(),
    }
}

/// A string meeting the shape's pattern, length and enum.
fn valid_string(s: &Value) -> String {
    if let Some(values) = s["enum"].as_array() {
        return values[0].as_str().unwrap().to_owned();
    }
    let base = match s["pattern"].as_str() {
        Some("arn:aws(-[\\w]+)*:iam::[0-9]{12}:role/.*") => "arn:aws:iam::123456789012:role/cp".to_owned(),
        Some("arn:aws(-[\\w]+)*:codepipeline:.+:[0-9]{12}:.+") => {
            "arn:aws:codepipeline:us-east-1:123456789012:p".to_owned()
        }
        Some("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}") => {
            "00000000-0000-0000-0000-000000000000".to_owned()
        }
        _ => "a".to_owned(),
    };
    let min = s["min"].as_u64().unwrap_or(1) as usize;
    let len = base.chars().count();
    if len < min { format!("{base}{}", "a".repeat(min - len)) } else { base }
}

/// The shape's constraints as AWS lists them for a list's or map's member.
fn constraints(s: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(max) = s["max"].as_i64() {
        out.push(format!("Member must have length less than or equal to {max}"));
    }
    if let Some(min) = s["min"].as_i64() {
        out.push(format!("Member must have length greater than or equal to {min}"));
    }
    if let Some(p) = s["pattern"].as_str() {
        out.push(format!("Member must satisfy regular expression pattern: {p}"));
    }
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        out.push(format!("Member must satisfy enum value set: [{}]", values.join(", ")));
    }
    out
}

fn invalid_scalars(s: &Value) -> Vec<Value> {
    invalid_with_constraint(s).into_iter().map(|(v, _)| v).collect()
}

/// One value per constraint of a scalar shape that breaks it, with the constraint's words.
fn invalid_with_constraint(s: &Value) -> Vec<(Value, String)> {
    let mut out = Vec::new();
    if s["type"] == "integer" {
        if let Some(min) = s["min"].as_i64() {
            out.push((json!(min - 1), format!("Member must have value greater than or equal to {min}")));
        }
        if let Some(max) = s["max"].as_i64() {
            out.push((json!(max + 1), format!("Member must have value less than or equal to {max}")));
        }
        return out;
    }
    if s["type"] != "string" {
        return out;
    }
    let valid = valid_string(s);
    if let Some(max) = s["max"].as_u64() {
        let long: String = valid.chars().chain(std::iter::repeat('a')).take(max as usize + 1).collect();
        out.push((json!(long), format!("Member must have length less than or equal to {max}")));
    }
    if let Some(min) = s["min"].as_u64().filter(|m| *m > 0) {
        let short: String = valid.chars().take(min as usize - 1).collect();
        out.push((json!(short), format!("Member must have length greater than or equal to {min}")));
    }
    if let Some(p) = s["pattern"].as_str() {
        let bad = if p == ".*" || p == "^.*$" { "a\nb" } else { "a!b" };
        let mut bad = bad.to_owned();
        let min = s["min"].as_u64().unwrap_or(0) as usize;
        while bad.chars().count() < min {
            bad.push('!');
        }
        out.push((json!(bad), format!("Member must satisfy regular expression pattern: {p}")));
    }
    if let Some(values) = s["enum"].as_array() {
        let values: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
        out.push((
            json!("NOT_A_MEMBER_OF_THE_SET"),
            format!("Member must satisfy enum value set: [{}]", values.join(", ")),
        ));
    }
    out
}
