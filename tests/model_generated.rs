//! Generated from the AWS service model: for every operation of the model table, a valid input
//! passes, and one invalid input per model constraint is a `ValidationException` in AWS's words
//! (see `tests/support/model_cases.rs`).

#[path = "support/model_cases.rs"]
mod model_cases;

use codepipeline_webhooks::registry::{model_operations, validate_input};

#[test]
fn every_constraint_of_every_operation_is_answered_in_aws_words() {
    let model = model_cases::Model::load();
    let mut total = 0;
    for operation in model_operations() {
        let (base, cases) = model.cases(operation);
        validate_input(operation, &base).unwrap_or_else(|e| panic!("{operation}: the generated valid input: {e}"));
        assert!(!cases.is_empty(), "{operation}");
        for case in cases {
            let err = validate_input(operation, &case.input).expect_err(&case.expected);
            assert_eq!(err.code(), "ValidationException", "{operation}: {}", case.expected);
            assert!(
                err.message().contains(&case.expected),
                "{operation}: expected `{}` in `{}`",
                case.expected,
                err.message()
            );
            let n: usize = err.message().split(' ').next().unwrap().parse().unwrap();
            let word = if n == 1 { "error" } else { "errors" };
            assert!(err.message().starts_with(&format!("{n} validation {word} detected: Value")), "{err}");
            assert_eq!(err.message().matches("failed to satisfy constraint").count(), n, "{err}");
            total += 1;
        }
    }
    // Every constraint class of the model is generated: null, lengths, patterns, enums, ranges,
    // list and map sizes, map keys and values, list members.
    eprintln!("{total} generated cases");
    assert!(total > 300, "{total} cases");
}

#[test]
fn a_body_that_is_not_an_object_or_has_wrong_types_is_a_serialization_exception() {
    for operation in model_operations() {
        for body in [serde_json::json!(["x"]), serde_json::json!(7), serde_json::json!("x")] {
            let err = validate_input(operation, &body).unwrap_err();
            assert_eq!(err.code(), "SerializationException", "{operation} {body}");
        }
    }
}

mod arbitrary {
    use codepipeline_webhooks::registry::{
        model_operations, validate_input, validate_pipeline_input, validate_structure,
    };
    use proptest::prelude::*;
    use serde_json::Value;

    /// JSON values that mix the model's member names with junk, so that the checker goes deep.
    fn arb_json() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec![
            "pipeline",
            "name",
            "stages",
            "actions",
            "actionTypeId",
            "category",
            "configuration",
            "roleArn",
            "artifactStore",
            "artifactStores",
            "tags",
            "key",
            "value",
            "webhook",
            "filters",
            "jsonPath",
            "runOrder",
            "triggers",
            "gitConfiguration",
            "sourceActionName",
            "variables",
            "x",
        ])
        .prop_map(str::to_owned);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            Just(Value::String("Source".into())),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    const CODES: [&str; 5] = [
        "SerializationException",
        "ValidationException",
        "InvalidStructureException",
        "InvalidStageDeclarationException",
        "InvalidActionDeclarationException",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]
        /// Any JSON: no panic, and only the model's and the structure rules' exceptions.
        #[test]
        fn any_json_is_answered_without_panicking(input in arb_json()) {
            for operation in model_operations() {
                if let Err(e) = validate_input(operation, &input) {
                    prop_assert!(CODES.contains(&e.code()), "{}", e.code());
                }
            }
            // The structure rules read any JSON leniently, whether or not the model passed it.
            if let Err(e) = validate_structure(&input) {
                prop_assert!(CODES.contains(&e.code()), "{}", e.code());
            }
            for operation in ["CreatePipeline", "UpdatePipeline"] {
                let wrapped = serde_json::json!({"pipeline": input.clone()});
                if let Err(e) = validate_pipeline_input(operation, &wrapped) {
                    prop_assert!(CODES.contains(&e.code()), "{}", e.code());
                }
            }
        }
    }
}
