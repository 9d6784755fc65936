//! The lanes agree with the reference, serde_json_path over a `serde_json::Value`: for every path
//! the singular recogniser accepts, the DOM-free extraction gives what the reference gives; for
//! every path, the bounded lane's evaluator over the tape selects the same nodes (as a multiset:
//! RFC 9535 leaves the order of an object's members open); and all refuse the same bodies.

use proptest::prelude::*;
use serde_json::Value;
use serde_json_path::JsonPath;

use super::eval::{Eval, Flow};
use super::extract::{Capture, Trie};
use super::json::{self, ValueSeed};
use super::path::FilterPath;
use super::tape::{Tape, to_value};

/// What the reference selects.
fn reference(path: &str, value: &Value) -> Vec<Value> {
    JsonPath::parse(path).expect("valid").query(value).all().into_iter().cloned().collect()
}

/// What the bounded lane selects, with no budget in the way.
fn bounded(path: &FilterPath, tape: &Tape<'_>) -> Vec<Value> {
    let eval = Eval::new(tape, crate::limits::WorkBudget { nodes: u64::MAX, scan: u64::MAX });
    let mut out = Vec::new();
    let _ = eval.select(&path.query, Tape::ROOT, &mut |id| {
        out.push(to_value(tape, id));
        Ok(Flow::Continue(()))
    });
    out
}

fn sorted(mut values: Vec<Value>) -> Vec<String> {
    let mut texts: Vec<String> = values.drain(..).map(|v| v.to_string()).collect();
    texts.sort();
    texts
}

/// The bounded lane against the reference, for `paths` over `text`; whether the body was accepted.
fn agree_bounded(text: &str, paths: &[FilterPath]) -> Result<bool, String> {
    match (Tape::parse(text, 128), json::walk(text, ValueSeed { level: 0, max_depth: 128 }, 128)) {
        (Err(_), Err(_)) => Ok(false),
        (Ok(tape), Ok(value)) => {
            for p in paths {
                let (ours, theirs) = (sorted(bounded(p, &tape)), sorted(reference(&p.text, &value)));
                if ours != theirs {
                    return Err(format!("{}: bounded lane {ours:?}, reference {theirs:?} in {text}", p.text));
                }
            }
            Ok(true)
        }
        (ours, theirs) => {
            Err(format!("tape {:?} but reference {:?} for {text:?}", ours.map(|_| ()), theirs.map(|_| ())))
        }
    }
}

fn capture_of(value: &Value) -> Capture<'static> {
    match value {
        Value::String(s) => Capture::Str(s.clone().into()),
        Value::Number(n) => Capture::Number(n.clone()),
        Value::Bool(b) => Capture::Bool(*b),
        Value::Null => Capture::Null,
        Value::Array(_) => Capture::Array,
        Value::Object(_) => Capture::Object,
    }
}

/// Runs both lanes over `text` for `paths`; returns whether the body was accepted.
fn agree(text: &str, paths: &[FilterPath]) -> Result<bool, String> {
    let mut trie = Trie::new();
    for (slot, p) in paths.iter().enumerate() {
        trie.insert(p.singular.as_ref().expect("singular"), slot);
    }
    let mut captures = vec![Capture::Missing; paths.len()];
    let fast = trie.extract(text, &mut captures, 128);
    let parsed = json::walk(text, ValueSeed { level: 0, max_depth: 128 }, 128);
    match (fast, parsed) {
        (Err(_), Err(_)) => Ok(false),
        (Ok(()), Ok(value)) => {
            for (p, capture) in paths.iter().zip(&captures) {
                let nodes = reference(&p.text, &value);
                let expected = match nodes.len() {
                    0 => Capture::Missing,
                    1 => capture_of(&nodes[0]),
                    n => return Err(format!("{} selected {n} nodes", p.text)),
                };
                if *capture != expected {
                    return Err(format!("{}: fast lane {capture:?}, reference {expected:?} in {text}", p.text));
                }
            }
            Ok(true)
        }
        (fast, reference) => Err(format!("fast lane {fast:?} but reference {:?} for {text:?}", reference.map(|_| ()))),
    }
}

/// Every node's singular path in `value`, in both notations, plus a missing sibling of each.
fn paths_into(value: &Value, prefix: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let quoted = k.replace('\\', "\\\\").replace('\'', "\\'");
                let bracket = format!("{prefix}['{quoted}']");
                if super::path::FilterPath::parse(&format!("$.{k}")).is_ok_and(|p| p.singular.is_some())
                    && !k.contains(['.', '['])
                {
                    out.push(format!("{prefix}.{k}"));
                }
                paths_into(v, &bracket, out);
                out.push(bracket);
            }
            out.push(format!("{prefix}['no such key']"));
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{prefix}[{i}]");
                paths_into(v, &p, out);
                out.push(p);
            }
            out.push(format!("{prefix}[{}]", items.len()));
        }
        _ => out.push(format!("{prefix}.below_a_scalar")),
    }
}

fn singular_paths(value: &Value) -> Vec<FilterPath> {
    let mut texts = vec!["$".to_owned()];
    paths_into(value, "$", &mut texts);
    texts.iter().filter_map(|t| FilterPath::parse(t).ok()).filter(|p| p.singular.is_some()).collect()
}

#[test]
fn corpus_payloads_every_node() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github");
    let mut checked = 0;
    for event in std::fs::read_dir(dir).unwrap() {
        for file in std::fs::read_dir(event.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            if path.is_dir() {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let value: Value = serde_json::from_str(&text).unwrap();
            let paths = singular_paths(&value);
            // All of a payload's paths in one trie, and in chunks of five as a webhook holds them.
            assert_eq!(agree(&text, &paths), Ok(true), "{}", path.display());
            assert_eq!(agree_bounded(&text, &paths), Ok(true), "{}", path.display());
            for chunk in paths.chunks(5) {
                assert_eq!(agree(&text, chunk), Ok(true), "{}", path.display());
            }
            let indefinite: Vec<FilterPath> = INDEFINITE.iter().map(|p| FilterPath::parse(p).unwrap()).collect();
            assert_eq!(agree_bounded(&text, &indefinite), Ok(true), "{}", path.display());
            checked += paths.len();
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn compliance_suite_singular_selectors() {
    let suite: Value = serde_json::from_str(include_str!("../../tests/fixtures/cts.json")).unwrap();
    let mut checked = 0;
    for case in suite["tests"].as_array().unwrap() {
        let selector = case["selector"].as_str().unwrap();
        if case["invalid_selector"] == true {
            // The recogniser is never more lenient than the RFC parser.
            assert!(FilterPath::parse(selector).ok().and_then(|p| p.singular).is_none(), "{}", case["name"]);
            continue;
        }
        let Ok(path) = FilterPath::parse(selector) else { continue };
        if path.singular.is_none() {
            continue;
        }
        let text = serde_json::to_string(&case["document"]).unwrap();
        assert_eq!(agree(&text, std::slice::from_ref(&path)), Ok(true), "{}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
}

/// Paths of every form, as real definitions and attackers write them.
const INDEFINITE: &[&str] = &[
    "$.commits[*].modified[*]",
    "$..modified[*]",
    "$..*",
    "$.*",
    "$..[0]",
    "$..id",
    "$.commits[-1].id",
    "$.commits[::-1].id",
    "$.commits[1:]",
    "$[*][?@.login]",
    "$..[?@.id > 100]",
    "$..[?@.name == 'main' || @.type == 'User']",
    "$.commits[?search(@.message, 'Update')].id",
    "$..[?match(@, '[a-f0-9]{40}')]",
    "$..[?length(@) > 3 && count(@.*) >= 1]",
    "$..[?value(@..id) == 1]",
    "$..[?!@.url]",
    "$['repository','sender'].login",
    "$..*[?@ == null]",
    "$..[?@ == $.ref]",
];

#[test]
fn compliance_suite_every_valid_selector_in_the_bounded_lane() {
    let suite: Value = serde_json::from_str(include_str!("../../tests/fixtures/cts.json")).unwrap();
    let mut checked = 0;
    for case in suite["tests"].as_array().unwrap() {
        let selector = case["selector"].as_str().unwrap();
        if case["invalid_selector"] == true {
            continue;
        }
        let Ok(path) = FilterPath::parse(selector) else {
            // Refused by this crate's limits or its literal-pattern rule (tests/cts.rs counts them).
            continue;
        };
        let text = serde_json::to_string(&case["document"]).unwrap();
        let tape = Tape::parse(&text, 128).unwrap();
        // The suite is the specification: where serde_json_path 0.7.2 departs from it, the suite
        // decides.
        let ours = sorted(bounded(&path, &tape));
        let expected = case.get("result").or_else(|| case["results"].get(0)).and_then(Value::as_array).unwrap();
        assert_eq!(ours, sorted(expected.clone()), "{}: {selector}", case["name"]);
        checked += 1;
    }
    assert!(checked >= 50, "{checked}");
}

#[test]
fn invalid_and_duplicate_bodies() {
    let base = r#"{"a":{"b":[1,{"c":"x\u00e9"}],"d":true},"a":{"b":[2]},"e":"\"q\"","n":-0.0,"big":1e300}"#;
    let value: Value = serde_json::from_str(base).unwrap();
    let paths = singular_paths(&value);
    assert_eq!(agree(base, &paths), Ok(true));
    // Every prefix and every one-byte corruption: both lanes refuse, or both agree on the values.
    for cut in 0..base.len() {
        if base.is_char_boundary(cut) {
            agree(&base[..cut], &paths).unwrap();
        }
    }
    for at in 0..base.len() {
        for replacement in [b'"', b'\\', b'}', b']', b',', b'0', b'x', b' '] {
            let mut bytes = base.as_bytes().to_vec();
            bytes[at] = replacement;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                agree(text, &paths).unwrap();
            }
        }
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        "[a-c\"\\\\\u{e9}\u{1F600} ]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-c_\"\u{e9}]{0,3}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn generated_documents_and_paths(value in arb_json(), pick in prop::collection::vec(any::<prop::sample::Index>(), 1..6)) {
        let text = serde_json::to_string(&value).unwrap();
        let all = singular_paths(&value);
        let chosen: Vec<FilterPath> = pick.iter().map(|i| all[i.index(all.len())].clone()).collect();
        prop_assert_eq!(agree(&text, &chosen), Ok(true));
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(agree(&pretty, &chosen), Ok(true));
    }

    #[test]
    fn generated_bytes(text in "[\\[\\]{}\":,0-9a-e\\\\ .\\-+]{0,40}") {
        let paths: Vec<FilterPath> = ["$", "$.a", "$[0]", "$['a'][0]", "$[1].b"].iter().map(|p| FilterPath::parse(p).unwrap()).collect();
        prop_assert!(agree(&text, &paths).is_ok(), "{:?}", agree(&text, &paths));
    }
}
