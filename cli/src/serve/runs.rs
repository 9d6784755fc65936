//! The execution operations: ListPipelineExecutions' and GetPipelineExecution's shapes (with
//! what each execution ran), StartPipelineExecution, StopPipelineExecution, GetPipelineState and
//! ListActionExecutions, answered with AWS's shapes from the executions the store holds.
//!
//! What the service knows of an execution: the source action ran when it was recorded (its
//! revision is the delivery's head commit, or the latest delivery's for StartPipelineExecution),
//! and every later stage is the `--on-trigger` program: InProgress while it runs, then Succeeded,
//! Failed or Stopped.

use serde_json::{Map, Value, json};

use super::App;
use super::control::{
    ApiError, GetPipelineStateInput, ListActionExecutionsInput, ListPipelineExecutionsInput,
    StartPipelineExecutionInput, StopPipelineExecutionInput,
};
use super::executions::StopMode;
use super::revisions::SourceRevision;
use super::store::{ExecutionRow, PipelineRow};
use codepipeline_webhooks::registry;

/// The trigger type of an execution started by a call.
pub const START_TRIGGER: &str = "StartPipelineExecution";

fn not_found_execution(pipeline: &str, id: &str) -> ApiError {
    ApiError::client(
        "PipelineExecutionNotFoundException",
        format!("Pipeline execution with id '{id}' does not exist in pipeline '{pipeline}'"),
    )
}

async fn pipeline_row(app: &App, name: &str, version: Option<i64>) -> Result<PipelineRow, ApiError> {
    app.store.pipeline(name, version).await?.ok_or_else(|| registry::no_such_pipeline(name).into())
}

fn declaration(row: &PipelineRow) -> Result<Value, ApiError> {
    serde_json::from_str(&row.declaration).map_err(|_| ApiError::internal())
}

fn stages(declaration: &Value) -> &[Value] {
    declaration.get("stages").and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

fn name_of(v: &Value) -> &str {
    v.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// An execution's `sourceRevisions` as stored.
fn revisions(row: &ExecutionRow) -> Vec<SourceRevision> {
    serde_json::from_str(&row.source_revisions).unwrap_or_default()
}

fn trigger(row: &ExecutionRow) -> Value {
    let mut t = json!({"triggerType": row.trigger_type});
    if !row.webhook_arn.is_empty() {
        t["triggerDetail"] = Value::String(row.webhook_arn.clone());
    }
    t
}

/// One `PipelineExecutionSummary`, without the pipeline's `executionMode` (`summaries`).
fn summary(row: &ExecutionRow) -> Value {
    let mut v = json!({
        "pipelineExecutionId": row.id,
        "status": row.status,
        "startTime": row.start_time,
        "lastUpdateTime": row.last_update_time,
        "sourceRevisions": revisions(row),
        "trigger": trigger(row),
    });
    if let Some(s) = &row.status_summary {
        v["statusSummary"] = Value::String(s.clone());
    }
    if let Some(reason) = &row.stop_reason {
        v["stopTrigger"] = json!({"reason": reason});
    }
    v
}

/// The declaration of the pipeline version an execution ran; `Null` when that version is gone.
async fn declaration_ran(app: &App, row: &ExecutionRow) -> Result<Value, ApiError> {
    match app.store.pipeline(&row.pipeline, Some(row.pipeline_version)).await? {
        Some(p) => declaration(&p),
        None => Ok(Value::Null),
    }
}

/// ListPipelineExecutions' summaries, each with the `executionMode` of the pipeline version it
/// ran (read once per version: a page holds at most 100 executions, usually of one version).
pub(crate) async fn summaries(app: &App, rows: &[ExecutionRow]) -> Result<Vec<Value>, ApiError> {
    let mut modes: Vec<(i64, &'static str)> = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mode = match modes.iter().find(|(version, _)| *version == row.pipeline_version) {
            Some(&(_, mode)) => mode,
            None => {
                let declaration = declaration_ran(app, row).await?;
                let mode = super::modes::ExecutionMode::of_declaration(&declaration).as_str();
                modes.push((row.pipeline_version, mode));
                mode
            }
        };
        let mut v = summary(row);
        v["executionMode"] = json!(mode);
        out.push(v);
    }
    Ok(out)
}

/// ListPipelineExecutions' `succeededInStage` filter as a status: `Ok(None)` lists every
/// execution (no filter, or the source stage, which every execution passed), `Ok(Some)` only
/// those that succeeded (every later stage is the program), `Err(())` none (no such stage).
pub(crate) async fn stage_filter(
    app: &App,
    input: &ListPipelineExecutionsInput,
) -> Result<Result<Option<&'static str>, ()>, ApiError> {
    let Some(stage) =
        input.filter.as_ref().and_then(|f| f.succeeded_in_stage.as_ref()).and_then(|s| s.stage_name.as_deref())
    else {
        return Ok(Ok(None));
    };
    let row = pipeline_row(app, &input.pipeline_name, None).await?;
    let declaration = declaration(&row)?;
    let stages = stages(&declaration);
    Ok(match stages.iter().position(|s| name_of(s) == stage) {
        Some(0) => Ok(None),
        Some(_) => Ok(Some("Succeeded")),
        None => Err(()),
    })
}

/// The output artifact of the source action `action` in a declaration, if it names one.
fn output_artifact(declaration: &Value, action: &str) -> Option<String> {
    let first = stages(declaration).first()?;
    let a = first.get("actions")?.as_array()?.iter().find(|a| name_of(a) == action)?;
    Some(name_of(a.get("outputArtifacts")?.as_array()?.first()?).to_owned()).filter(|n| !n.is_empty())
}

/// GetPipelineExecution's `pipelineExecution`.
pub(crate) async fn pipeline_execution(app: &App, row: &ExecutionRow) -> Result<Value, ApiError> {
    let declaration = declaration_ran(app, row).await?;
    let artifact_revisions: Vec<Value> = revisions(row)
        .into_iter()
        .map(|r| {
            let mut v = json!({});
            if let Some(name) = output_artifact(&declaration, &r.action_name) {
                v["name"] = Value::String(name);
            }
            for (key, value) in [
                ("revisionId", r.revision_id),
                ("revisionSummary", r.revision_summary),
                ("revisionUrl", r.revision_url),
            ] {
                if let Some(value) = value {
                    v[key] = Value::String(value);
                }
            }
            v["created"] = json!(row.start_time);
            v
        })
        .collect();
    let mut execution = json!({
        "pipelineName": row.pipeline,
        "pipelineVersion": row.pipeline_version,
        "pipelineExecutionId": row.id,
        "status": row.status,
        "artifactRevisions": artifact_revisions,
        "trigger": trigger(row),
    });
    if let Some(s) = &row.status_summary {
        execution["statusSummary"] = Value::String(s.clone());
    }
    // Always, with AWS's default for a declaration that names none.
    execution["executionMode"] = json!(super::modes::ExecutionMode::of_declaration(&declaration).as_str());
    Ok(execution)
}

/// StartPipelineExecution: a new execution of the pipeline's latest version, with the revisions
/// given (`sourceRevisions`), else the latest delivery's, else none; the `--on-trigger` program
/// runs it. A `clientRequestToken` used before on the pipeline answers with that execution.
pub(crate) async fn start(app: &std::sync::Arc<App>, input: StartPipelineExecutionInput) -> Result<Value, ApiError> {
    let row = pipeline_row(app, &input.name, None).await?;
    let declaration = declaration(&row)?;
    let revisions: Vec<SourceRevision> = match &input.source_revisions {
        Some(overrides) if !overrides.is_empty() => {
            let first = stages(&declaration).first().cloned().unwrap_or(Value::Null);
            let sources = first.get("actions").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut out = Vec::with_capacity(overrides.len());
            for o in overrides {
                if !sources.iter().any(|a| name_of(a) == o.action_name) {
                    // ValidationException: the operation's modelled error for a bad parameter
                    // (InvalidParameterException is not a CodePipeline error).
                    return Err(ApiError::client(
                        "ValidationException",
                        format!("The action '{}' is not a source action of pipeline '{}'", o.action_name, input.name),
                    ));
                }
                out.push(SourceRevision {
                    action_name: o.action_name.clone(),
                    revision_id: Some(o.revision_value.clone()),
                    revision_summary: None,
                    revision_url: None,
                });
            }
            out
        }
        _ => match app.store.latest_source_revisions(&input.name).await? {
            Some(json) => serde_json::from_str(&json).unwrap_or_default(),
            None => Vec::new(),
        },
    };
    let now = super::now();
    let running = app.runner.is_some();
    let execution = ExecutionRow {
        seq: 0,
        id: super::execution_id(),
        pipeline: input.name.clone(),
        pipeline_version: row.version,
        status: if running { "InProgress" } else { "Succeeded" }.to_owned(),
        status_summary: None,
        webhook_arn: String::new(),
        start_time: now,
        last_update_time: now,
        trigger_type: START_TRIGGER.to_owned(),
        source_revisions: serde_json::to_string(&revisions).map_err(|_| ApiError::internal())?,
        stop_reason: None,
    };
    let instance = running.then_some(app.instance.as_str());
    let queue_max = running.then_some(app.config.queue_max);
    let Some((id, started)) =
        app.store.start_execution(&execution, instance, input.client_request_token.as_deref(), queue_max).await?
    else {
        return Err(ApiError::client(
            "ConcurrentPipelineExecutionsLimitExceededException",
            format!(
                "The queue of executions waiting for the on-trigger program is full ({} waiting)",
                app.config.queue_max
            ),
        ));
    };
    if started && let Some(runner) = &app.runner {
        runner.wake();
    }
    if started {
        tracing::info!(pipeline = %input.name, execution = %id, "pipeline started by StartPipelineExecution");
    }
    Ok(json!({"pipelineExecutionId": id}))
}

/// StopPipelineExecution: an execution in progress becomes Stopping; its program is ended at
/// once with `abandon`, else it finishes; then the execution is Stopped.
pub(crate) async fn stop(app: &App, input: StopPipelineExecutionInput) -> Result<Value, ApiError> {
    let (pipeline, id) = (&input.pipeline_name, &input.pipeline_execution_id);
    pipeline_row(app, pipeline, None).await?;
    let Some(row) = app.store.execution(pipeline, id).await? else {
        return Err(not_found_execution(pipeline, id));
    };
    let now = super::now();
    if !app.store.stop_execution(pipeline, id, input.reason.as_deref(), false, now).await? {
        // Not in progress (any more): as AWS answers.
        let status = app.store.execution(pipeline, id).await?.map_or(row.status, |r| r.status);
        return Err(if status == "Stopping" {
            ApiError::client(
                "DuplicatedStopRequestException",
                format!("Pipeline execution '{id}' is already being stopped"),
            )
        } else {
            ApiError::client(
                "PipelineExecutionNotStoppableException",
                format!("Unable to stop pipeline execution '{id}' since it is in {status} state"),
            )
        });
    }
    let mode = if input.abandon.unwrap_or(false) { StopMode::Abandon } else { StopMode::Wait };
    // Still waiting in the queue: it never runs. Running here: the worker is told. Otherwise
    // (finished meanwhile, or run by another instance, whose program is not signalled) it ends
    // Stopped now.
    let signalled = !app.store.unqueue(id).await? && app.runner.as_ref().is_some_and(|r| r.stop(id, mode));
    if !signalled {
        // No program of this instance runs it: it ends Stopped now.
        app.store.finish_execution(id, "Stopped", None, now).await?;
    }
    tracing::info!(pipeline = %pipeline, execution = %id, abandon = mode == StopMode::Abandon, "execution stopping");
    Ok(json!({"pipelineExecutionId": id}))
}

/// The status of a stage other than the source one: the program's.
fn later_stage_status(status: &str) -> &str {
    match status {
        "InProgress" | "Succeeded" | "Failed" | "Stopped" | "Stopping" => status,
        _ => "Failed",
    }
}

/// The action state of the source action `action` in `execution`, with its revision.
fn source_action_state(action: &str, execution: &ExecutionRow) -> Value {
    let mut state = json!({"actionName": action});
    let Some(r) = revisions(execution).into_iter().find(|r| r.action_name == action) else {
        return state;
    };
    let mut latest = json!({
        "actionExecutionId": execution.id,
        "status": "Succeeded",
        "lastStatusChange": execution.start_time,
    });
    if let Some(id) = &r.revision_id {
        state["currentRevision"] = json!({"revisionId": id, "revisionChangeId": id, "created": execution.start_time});
        latest["externalExecutionId"] = Value::String(id.clone());
    }
    if let Some(summary) = &r.revision_summary {
        latest["summary"] = Value::String(summary.clone());
    }
    if let Some(url) = &r.revision_url {
        latest["externalExecutionUrl"] = Value::String(url.clone());
        state["revisionUrl"] = Value::String(url.clone());
    }
    state["latestExecution"] = latest;
    state
}

/// GetPipelineState: the stages of the latest declaration, each with the latest execution as
/// far as the service knows it (the source stage Succeeded with its revision; every later stage
/// the program's status).
pub(crate) async fn state(app: &App, input: GetPipelineStateInput) -> Result<Value, ApiError> {
    let row = pipeline_row(app, &input.name, None).await?;
    let declaration = declaration(&row)?;
    let latest = app.store.executions(&input.name, None, 1).await?.into_iter().next();
    let mut stage_states = Vec::new();
    for (i, stage) in stages(&declaration).iter().enumerate() {
        let actions = stage.get("actions").and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
        let mut action_states = Vec::with_capacity(actions.len());
        for action in actions {
            action_states.push(match (&latest, i) {
                (Some(e), 0) => source_action_state(name_of(action), e),
                _ => json!({"actionName": name_of(action)}),
            });
        }
        let mut s = json!({
            "stageName": name_of(stage),
            "inboundTransitionState": {"enabled": true},
            "actionStates": action_states,
        });
        if let Some(e) = &latest {
            let status = if i == 0 { "Succeeded" } else { later_stage_status(&e.status) };
            s["latestExecution"] = json!({"pipelineExecutionId": e.id, "status": status});
        }
        stage_states.push(s);
    }
    Ok(json!({
        "pipelineName": input.name,
        "pipelineVersion": row.version,
        "stageStates": stage_states,
        "created": row.created,
        "updated": row.updated,
    }))
}

/// The source action an execution ran: the one its revision names, else the first of the first
/// stage.
fn source_action<'d>(declaration: &'d Value, execution: &ExecutionRow) -> Option<&'d Value> {
    let first = stages(declaration).first()?;
    let actions = first.get("actions")?.as_array()?;
    let named = revisions(execution).into_iter().next().map(|r| r.action_name);
    match named {
        Some(name) => actions.iter().find(|a| name_of(a) == name),
        None => actions.first(),
    }
}

/// One `ActionExecutionDetail`: the source action of `execution`, with its output revision.
fn action_detail(app: &App, declaration: &Value, execution: &ExecutionRow) -> Option<Value> {
    let stage = stages(declaration).first()?;
    let action = source_action(declaration, execution)?;
    let name = name_of(action);
    let mut input = Map::new();
    for key in ["actionTypeId", "configuration", "roleArn", "region", "namespace"] {
        if let Some(v) = action.get(key) {
            input.insert(key.to_owned(), v.clone());
        }
    }
    input.insert("inputArtifacts".into(), json!([]));
    let revision = revisions(execution).into_iter().find(|r| r.action_name == name);
    let mut variables = Map::new();
    let mut result = Map::new();
    if let Some(r) = &revision {
        for (var, key, value) in [
            ("CommitId", "externalExecutionId", &r.revision_id),
            ("CommitMessage", "externalExecutionSummary", &r.revision_summary),
            ("CommitUrl", "externalExecutionUrl", &r.revision_url),
        ] {
            if let Some(v) = value {
                variables.insert(var.into(), Value::String(v.clone()));
                result.insert(key.into(), Value::String(v.clone()));
            }
        }
        if let Some(Value::String(branch)) = action.pointer("/configuration/Branch") {
            variables.insert("BranchName".into(), Value::String(branch.clone()));
        }
    }
    let artifacts: Vec<Value> = action
        .get("outputArtifacts")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|o| json!({"name": name_of(o)})).collect())
        .unwrap_or_default();
    let mut detail = json!({
        "pipelineExecutionId": execution.id,
        "actionExecutionId": execution.id,
        "pipelineVersion": execution.pipeline_version,
        "stageName": name_of(stage),
        "actionName": name,
        "startTime": execution.start_time,
        "lastUpdateTime": execution.start_time,
        "status": "Succeeded",
        "input": Value::Object(input),
        "output": {"outputArtifacts": artifacts, "executionResult": Value::Object(result), "outputVariables": Value::Object(variables)},
    });
    // The declaration as stored: its secrets are shown as GetPipeline shows them.
    let mut wrapped = json!({"stages": [{"actions": [detail["input"].take()]}]});
    app.registry.mask_secrets(&mut wrapped);
    detail["input"] = wrapped["stages"][0]["actions"][0].take();
    if let Some(config) = detail["input"].get("configuration").cloned() {
        detail["input"]["resolvedConfiguration"] = config;
    }
    Some(detail)
}

/// ListActionExecutions: the source action's execution of each pipeline execution (newest
/// first), or of the one `filter.pipelineExecutionId` names.
pub(crate) async fn list_actions(app: &App, input: ListActionExecutionsInput) -> Result<Value, ApiError> {
    const OP: &str = "ListActionExecutions";
    let max = input.max_results.unwrap_or(100);
    registry::check_max_results("maxResults", max, 100)?;
    pipeline_row(app, &input.pipeline_name, None).await?;
    let wanted = input.filter.as_ref().and_then(|f| f.pipeline_execution_id.clone());
    let (rows, more) = match &wanted {
        Some(id) => match app.store.execution(&input.pipeline_name, id).await? {
            Some(row) => (vec![row], false),
            None => return Err(not_found_execution(&input.pipeline_name, id)),
        },
        None => {
            let before = match input.next_token.as_deref() {
                None => None,
                Some(t) => {
                    let position = app.registry.verify_next_token(OP, t)?;
                    let (seq, pipeline) = position.split_once(':').ok_or_else(|| registry::invalid_next_token(OP))?;
                    if pipeline != input.pipeline_name {
                        return Err(registry::invalid_next_token(OP).into());
                    }
                    Some(seq.parse::<i64>().map_err(|_| registry::invalid_next_token(OP))?)
                }
            };
            let max = usize::try_from(max).unwrap_or(1);
            let mut rows = app.store.executions(&input.pipeline_name, before, max + 1).await?;
            let more = rows.len() > max;
            rows.truncate(max);
            (rows, more)
        }
    };
    let mut details = Vec::with_capacity(rows.len());
    let mut declarations: Vec<(i64, Value)> = Vec::new();
    for row in &rows {
        if !declarations.iter().any(|(v, _)| *v == row.pipeline_version) {
            let d = declaration_ran(app, row).await?;
            declarations.push((row.pipeline_version, d));
        }
        let Some((_, d)) = declarations.iter().find(|(v, _)| *v == row.pipeline_version) else { continue };
        if let Some(detail) = action_detail(app, d, row) {
            details.push(detail);
        }
    }
    let mut out = json!({"actionExecutionDetails": details});
    if let (true, Some(last)) = (more, rows.last()) {
        out["nextToken"] =
            Value::String(app.registry.issue_next_token(OP, &format!("{}:{}", last.seq, input.pipeline_name)));
    }
    Ok(out)
}
