//! Pipeline declarations validated as `CreatePipeline` and `UpdatePipeline` validate them: the
//! model's constraints ([`validate_input`](super::validate_input)), then the structure rules of the
//! user guide's "pipeline structure reference", each the exception AWS names; and the masking of
//! secret configuration values in every declaration a response shows.
//!
//! Messages, in this order of checks (AWS reports the first that fails). Where AWS's own words
//! are known from its answers they are used as they are; the others follow the documented rule's
//! wording and say so here:
//! - `artifactStore` xor `artifactStores` (InvalidStructureException; the API reference's
//!   sentence "You must include either artifactStore or artifactStores in your pipeline, but you
//!   cannot use both").
//! - at least two stages (InvalidStructureException; the structure reference: "A pipeline must
//!   contain at least two stages"); at most 50 ("Pipeline has too many stages. There can only be
//!   up to 50 stages in a pipeline", as AWS answers).
//! - a stage holds at least one action (InvalidStageDeclarationException; wording of this crate).
//! - stage names unique (InvalidStageDeclarationException "Stage name 'X' is used more than
//!   once", as AWS answers); action names unique within a stage
//!   (InvalidActionDeclarationException, wording of this crate after the stage's).
//! - the first stage holds only source actions ("Pipeline should start with a stage that only
//!   contains source actions", as AWS answers) and source actions stand only there ("Source
//!   actions can only be included in the first stage of the pipeline"), InvalidStructureException.
//! - V2-only fields on a V1 pipeline (`pipelineType` absent is V1), InvalidStructureException:
//!   "Pipeline variable can only be used with V2 pipelines", "Triggers on tag can only be used
//!   with V2 pipelines", "QUEUED or PARALLEL mode can only be used with V2 pipelines", and for
//!   stage conditions InvalidStageDeclarationException "Stage level conditions can only be used
//!   with V2 pipelines.", as AWS answers them.
//! - variable names unique ("Variable names must be unique. The following variable name is
//!   already in use: X", as AWS answers).
//! - output artifact names unique in the pipeline, and every input artifact the output of a
//!   preceding action (an earlier stage, or a lower `runOrder` in the same stage): the API
//!   reference's rules, InvalidStructureException, wording of this crate.
//! - each trigger's `gitConfiguration.sourceActionName` names a `CodeStarSourceConnection` source
//!   action of the first stage (InvalidStructureException "Triggers for connections must reference
//!   a CodeStarSourceConnection action.", as AWS answers).

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{Error, ErrorCode, escape};

/// How many stages a pipeline may have (AWS quota "stages per pipeline", not adjustable).
pub const MAX_STAGES: usize = 50;

/// The action configuration keys always masked in responses (AWS masks `OAuthToken`).
pub const SECRET_CONFIGURATION_KEYS: &[&str] = &["OAuthToken"];

/// Checks a `CreatePipeline` or `UpdatePipeline` input (the whole request body as JSON): the
/// model's constraints (`SerializationException`, `ValidationException`), then the structure
/// rules on its `pipeline` (`InvalidStructureException`, `InvalidStageDeclarationException`,
/// `InvalidActionDeclarationException`). `operation` is `"CreatePipeline"` or `"UpdatePipeline"`.
///
/// ```
/// use codepipeline_webhooks::registry::validate_pipeline_input;
/// let err = validate_pipeline_input("CreatePipeline", &serde_json::json!({"pipeline": {
///     "name": "p", "roleArn": "arn:aws:iam::123456789012:role/cp",
///     "artifactStore": {"type": "S3", "location": "my-bucket"},
///     "stages": [{"actions": []}]}})).unwrap_err();
/// assert_eq!(err.message(), "1 validation error detected: Value null at 'pipeline.stages.1.member.name' failed to satisfy constraint: Member must not be null");
/// ```
pub fn validate_pipeline_input(operation: &str, input: &Value) -> Result<(), Error> {
    crate::model::validate_input(operation, input)?;
    validate_structure(&input["pipeline"])
}

fn structure(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidStructureException, Some("pipeline".to_owned()), message)
}

fn stage_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidStageDeclarationException, Some("pipeline.stages".to_owned()), message)
}

fn str_at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter().try_fold(value, |v, k| v.get(k)).and_then(Value::as_str)
}

fn array<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value.get(key).and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn is_source(action: &Value) -> bool {
    str_at(action, &["actionTypeId", "category"]) == Some("Source")
}

/// The structure rules on a declaration that meets the model's constraints (see the module
/// documentation for each rule and its message).
pub fn validate_structure(pipeline: &Value) -> Result<(), Error> {
    let present = |key: &str| pipeline.get(key).is_some_and(|v| !v.is_null());
    match (present("artifactStore"), present("artifactStores")) {
        (true, true) => {
            return Err(structure(
                "You must include either artifactStore or artifactStores in your pipeline, but you cannot use both",
            ));
        }
        (false, false) => {
            return Err(structure("You must include either artifactStore or artifactStores in your pipeline"));
        }
        _ => {}
    }
    let stages = array(pipeline, "stages");
    if stages.len() < 2 {
        return Err(structure(format!("A pipeline must contain at least two stages; this one has {}", stages.len())));
    }
    if stages.len() > MAX_STAGES {
        return Err(structure(format!(
            "Pipeline has too many stages. There can only be up to {MAX_STAGES} stages in a pipeline"
        )));
    }
    let mut stage_names = HashSet::new();
    for stage in stages {
        let name = str_at(stage, &["name"]).unwrap_or_default();
        if array(stage, "actions").is_empty() {
            return Err(stage_error(format!("Stage '{}' must contain at least one action", escape(name))));
        }
        if !stage_names.insert(name) {
            return Err(stage_error(format!("Stage name '{}' is used more than once", escape(name))));
        }
        let mut action_names = HashSet::new();
        for action in array(stage, "actions") {
            let action_name = str_at(action, &["name"]).unwrap_or_default();
            if !action_names.insert(action_name) {
                return Err(Error::new(
                    ErrorCode::InvalidActionDeclarationException,
                    Some("pipeline.stages".to_owned()),
                    format!("Action name '{}' is used more than once in stage '{}'", escape(action_name), escape(name)),
                ));
            }
        }
    }
    if !array(&stages[0], "actions").iter().all(is_source) {
        return Err(structure("Pipeline should start with a stage that only contains source actions"));
    }
    if stages[1..].iter().any(|s| array(s, "actions").iter().any(is_source)) {
        return Err(structure("Source actions can only be included in the first stage of the pipeline"));
    }
    let v2 = str_at(pipeline, &["pipelineType"]) == Some("V2");
    if !v2 {
        if !array(pipeline, "variables").is_empty() {
            return Err(structure("Pipeline variable can only be used with V2 pipelines"));
        }
        if !array(pipeline, "triggers").is_empty() {
            return Err(structure("Triggers on tag can only be used with V2 pipelines"));
        }
        if matches!(str_at(pipeline, &["executionMode"]), Some("QUEUED" | "PARALLEL")) {
            return Err(structure("QUEUED or PARALLEL mode can only be used with V2 pipelines"));
        }
        let conditions = |s: &Value| {
            ["beforeEntry", "onSuccess", "onFailure"].iter().any(|k| s.get(k).is_some_and(|c| !c.is_null()))
        };
        if stages.iter().any(conditions) {
            return Err(stage_error("Stage level conditions can only be used with V2 pipelines."));
        }
    }
    let mut variables = HashSet::new();
    for variable in array(pipeline, "variables") {
        let name = str_at(variable, &["name"]).unwrap_or_default();
        if !variables.insert(name) {
            return Err(structure(format!(
                "Variable names must be unique. The following variable name is already in use: {}",
                escape(name)
            )));
        }
    }
    check_artifacts(stages)?;
    for trigger in array(pipeline, "triggers") {
        let source = str_at(trigger, &["gitConfiguration", "sourceActionName"]).unwrap_or_default();
        let ok = array(&stages[0], "actions").iter().any(|a| {
            str_at(a, &["name"]) == Some(source)
                && is_source(a)
                && str_at(a, &["actionTypeId", "provider"]) == Some("CodeStarSourceConnection")
        });
        if !ok {
            return Err(structure("Triggers for connections must reference a CodeStarSourceConnection action."));
        }
    }
    Ok(())
}

/// Output artifact names unique in the pipeline; every input artifact the output of an action
/// that runs before: an earlier stage, or a lower `runOrder` (default 1) in the same stage.
fn check_artifacts(stages: &[Value]) -> Result<(), Error> {
    let mut outputs: HashSet<&str> = HashSet::new();
    let run_order = |a: &Value| a.get("runOrder").and_then(Value::as_i64).unwrap_or(1);
    for stage in stages {
        let actions = array(stage, "actions");
        for action in actions {
            for output in array(action, "outputArtifacts") {
                let name = str_at(output, &["name"]).unwrap_or_default();
                if !outputs.insert(name) {
                    return Err(structure(format!(
                        "Output artifact names must be unique within a pipeline. The following output artifact name is already in use: {}",
                        escape(name)
                    )));
                }
            }
        }
        for action in actions {
            let order = run_order(action);
            for input in array(action, "inputArtifacts") {
                let name = str_at(input, &["name"]).unwrap_or_default();
                let produced_here_after = actions.iter().any(|a| {
                    run_order(a) >= order
                        && array(a, "outputArtifacts").iter().any(|o| str_at(o, &["name"]) == Some(name))
                });
                if !outputs.contains(name) || produced_here_after {
                    return Err(structure(format!(
                        "Input artifact '{}' of action '{}' is not the output artifact of a preceding action: an input artifact must be declared as the output of an action in an earlier stage, or of an action with a lower runOrder in the same stage",
                        escape(name),
                        escape(str_at(action, &["name"]).unwrap_or_default())
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Shows the secret configuration values of a declaration as `****`, as AWS responses show them:
/// `OAuthToken` and every key `is_secret` names, in each action's and each condition rule's
/// `configuration`, whatever the value's JSON type.
pub fn mask_secrets(pipeline: &mut Value, is_secret: impl Fn(&str) -> bool) {
    let Some(stages) = pipeline.get_mut("stages").and_then(Value::as_array_mut) else { return };
    let mask = |config: Option<&mut Value>| {
        let Some(config) = config.and_then(Value::as_object_mut) else { return };
        for (key, value) in config.iter_mut() {
            if SECRET_CONFIGURATION_KEYS.contains(&key.as_str()) || is_secret(key) {
                *value = Value::String(crate::error::REDACTED.to_owned());
            }
        }
    };
    for stage in stages {
        if let Some(actions) = stage.get_mut("actions").and_then(Value::as_array_mut) {
            for action in actions {
                mask(action.get_mut("configuration"));
            }
        }
        for gate in ["beforeEntry", "onSuccess", "onFailure"] {
            let Some(conditions) =
                stage.get_mut(gate).and_then(|g| g.get_mut("conditions")).and_then(Value::as_array_mut)
            else {
                continue;
            };
            for condition in conditions {
                if let Some(rules) = condition.get_mut("rules").and_then(Value::as_array_mut) {
                    for rule in rules {
                        mask(rule.get_mut("configuration"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "name": "app", "roleArn": "arn:aws:iam::123456789012:role/cp",
            "artifactStore": {"type": "S3", "location": "bucket"},
            "stages": [
                {"name": "Source", "actions": [{"name": "Source",
                    "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                    "outputArtifacts": [{"name": "src"}],
                    "configuration": {"OAuthToken": "ghp_secret", "Branch": "main"}}]},
                {"name": "Build", "actions": [
                    {"name": "Build", "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                     "inputArtifacts": [{"name": "src"}], "outputArtifacts": [{"name": "out"}]},
                    {"name": "Test", "runOrder": 2, "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                     "inputArtifacts": [{"name": "out"}]}]}
            ]
        })
    }

    fn check(edit: impl FnOnce(&mut Value)) -> Result<(), Error> {
        let mut p = valid();
        edit(&mut p);
        validate_pipeline_input("CreatePipeline", &json!({ "pipeline": p }))
    }

    #[test]
    fn a_valid_declaration_passes() {
        check(|_| {}).unwrap();
    }

    #[test]
    fn the_same_run_order_does_not_see_its_neighbour_s_output() {
        let err = check(|p| p["stages"][1]["actions"][1]["runOrder"] = json!(1)).unwrap_err();
        assert_eq!(err.code(), "InvalidStructureException");
        assert!(err.message().starts_with("Input artifact 'out' of action 'Test'"), "{err}");
    }

    #[test]
    fn masks_every_secret_key_whatever_its_type() {
        let mut p = valid();
        p["stages"][0]["actions"][0]["configuration"]["Token"] = json!(12345);
        p["stages"][0]["actions"][0]["configuration"]["OAuthToken"] = json!(13579246);
        mask_secrets(&mut p, |k| k == "Token");
        assert_eq!(
            p["stages"][0]["actions"][0]["configuration"],
            json!({"OAuthToken": "****", "Token": "****", "Branch": "main"})
        );
    }
}
