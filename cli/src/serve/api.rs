//! The control plane's operations: a decoded [`Operation`] run against the service's state and
//! answered with AWS's shapes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::App;
use super::control::{ApiError, Operation};
use super::store::{ExecutionRow, PipelineRow};
use codepipeline_webhooks::registry::{PipelineDeclaration, TagResourceInput};

impl From<super::store::StoreError> for ApiError {
    fn from(e: super::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::internal()
    }
}

/// Runs a decoded call against the service's state; the JSON answer or an error.
pub(crate) fn execute(app: &App, op: Operation) -> Result<Value, ApiError> {
    match op {
        Operation::PutWebhook(input) => {
            let _w = app.write_lock();
            let name = input.webhook.name.clone();
            let out = app.registry.put_webhook(input)?;
            app.persist_webhook(&name)?;
            Ok(serde_json::to_value(out).map_err(|_| ApiError::internal())?)
        }
        Operation::ListWebhooks(input) => {
            Ok(serde_json::to_value(app.registry.list_webhooks(input)?).map_err(|_| ApiError::internal())?)
        }
        Operation::DeleteWebhook(input) => {
            let _w = app.write_lock();
            let name = input.name.clone();
            app.registry.delete_webhook(input)?;
            app.store.delete_webhook(&name).map_err(|e| app.recover(e))?;
            app.refresh_tokens();
            Ok(json!({}))
        }
        Operation::RegisterWebhookWithThirdParty(input) => {
            let _w = app.write_lock();
            let name = input.webhook_name.clone();
            app.registry.register_webhook_with_third_party(input)?;
            app.persist_webhook(&name)?;
            Ok(json!({}))
        }
        Operation::DeregisterWebhookWithThirdParty(input) => {
            let _w = app.write_lock();
            let name = input.webhook_name.clone();
            app.registry.deregister_webhook_with_third_party(input)?;
            app.persist_webhook(&name)?;
            Ok(json!({}))
        }
        Operation::CreatePipeline(input) => {
            let _w = app.write_lock();
            let name = pipeline_name(&input.pipeline)?;
            if app.store.pipeline(&name, None)?.is_some() {
                return Err(ApiError::client(
                    "PipelineNameInUseException",
                    format!("A pipeline with the name '{name}' already exists"),
                ));
            }
            if let Some(tags) = &input.tags {
                codepipeline_webhooks::registry::check_tags("tags", tags)?;
            }
            let now = super::now();
            let row = put_pipeline(app, input.pipeline, 1, now, now)?;
            let mut pipeline = serde_json::from_str::<Value>(&row.declaration).map_err(|_| ApiError::internal())?;
            app.registry.mask_secrets(&mut pipeline);
            let mut out = json!({ "pipeline": pipeline });
            if let Some(tags) = input.tags.filter(|t| !t.is_empty()) {
                let resource_arn = app.registry.pipeline_arn(&name);
                app.registry.tag_resource(TagResourceInput { resource_arn, tags: tags.clone() })?;
                out["tags"] = serde_json::to_value(tags).map_err(|_| ApiError::internal())?;
            }
            Ok(out)
        }
        Operation::UpdatePipeline(input) => {
            let _w = app.write_lock();
            let name = pipeline_name(&input.pipeline)?;
            let Some(current) = app.store.pipeline(&name, None)? else {
                return Err(pipeline_not_found(&name));
            };
            let row = put_pipeline(app, input.pipeline, current.version + 1, current.created, super::now())?;
            let mut pipeline = serde_json::from_str::<Value>(&row.declaration).map_err(|_| ApiError::internal())?;
            app.registry.mask_secrets(&mut pipeline);
            Ok(json!({ "pipeline": pipeline }))
        }
        Operation::GetPipeline(input) => {
            let row = match app.store.pipeline(&input.name, input.version)? {
                Some(row) => row,
                None if input.version.is_some() && app.store.pipeline(&input.name, None)?.is_some() => {
                    return Err(ApiError::client(
                        "PipelineVersionNotFoundException",
                        format!("Pipeline '{}' has no version {}", input.name, input.version.unwrap_or_default()),
                    ));
                }
                None => return Err(pipeline_not_found(&input.name)),
            };
            let mut pipeline = serde_json::from_str::<Value>(&row.declaration).map_err(|_| ApiError::internal())?;
            app.registry.mask_secrets(&mut pipeline);
            Ok(json!({
                "pipeline": pipeline,
                "metadata": {"pipelineArn": app.pipeline_arn(&row.name), "created": row.created, "updated": row.updated},
            }))
        }
        Operation::DeletePipeline(input) => {
            let _w = app.write_lock();
            if app.store.delete_pipeline(&input.name)? {
                app.forget_pipeline(&input.name)?;
            }
            Ok(json!({}))
        }
        Operation::ListPipelines(input) => {
            let max = input.max_results.unwrap_or(100);
            if !(1..=1000).contains(&max) {
                return Err(max_results_error(max, 1000));
            }
            let after = input.next_token.as_deref().map(decode_token).transpose()?;
            let rows = app.store.latest_pipelines()?;
            let mut page =
                rows.into_iter().filter(|r| after.as_ref().is_none_or(|a| r.name.as_str() > a.as_str())).peekable();
            let mut pipelines = Vec::new();
            let mut last = None;
            while pipelines.len() < max as usize {
                let Some(row) = page.next() else { break };
                let declaration: Value = serde_json::from_str(&row.declaration).map_err(|_| ApiError::internal())?;
                let mut summary =
                    json!({"name": row.name, "version": row.version, "created": row.created, "updated": row.updated});
                for key in ["pipelineType", "executionMode"] {
                    if let Some(v) = declaration.get(key) {
                        summary[key] = v.clone();
                    }
                }
                last = Some(row.name);
                pipelines.push(summary);
            }
            let mut out = json!({"pipelines": pipelines});
            if let (Some(_), Some(last)) = (page.peek(), last) {
                out["nextToken"] = Value::String(URL_SAFE_NO_PAD.encode(last.as_bytes()));
            }
            Ok(out)
        }
        Operation::ListPipelineExecutions(input) => {
            let max = input.max_results.unwrap_or(100);
            if !(1..=100).contains(&max) {
                return Err(max_results_error(max, 100));
            }
            if app.store.pipeline(&input.pipeline_name, None)?.is_none() {
                return Err(pipeline_not_found(&input.pipeline_name));
            }
            let before = match input.next_token.as_deref() {
                None => None,
                Some(t) => Some(decode_token(t)?.parse::<i64>().map_err(|_| invalid_next_token())?),
            };
            let mut rows = app.store.executions(&input.pipeline_name, before, max as usize + 1)?;
            let more = rows.len() > max as usize;
            rows.truncate(max as usize);
            let mut out = json!({"pipelineExecutionSummaries": rows.iter().map(summary).collect::<Vec<_>>()});
            if let (true, Some(last)) = (more, rows.last()) {
                out["nextToken"] = Value::String(URL_SAFE_NO_PAD.encode(last.seq.to_string().as_bytes()));
            }
            Ok(out)
        }
        Operation::GetPipelineExecution(input) => {
            if app.store.pipeline(&input.pipeline_name, None)?.is_none() {
                return Err(pipeline_not_found(&input.pipeline_name));
            }
            let Some(row) = app.store.execution(&input.pipeline_name, &input.pipeline_execution_id)? else {
                return Err(ApiError::client(
                    "PipelineExecutionNotFoundException",
                    format!(
                        "Pipeline execution with id '{}' does not exist in pipeline '{}'",
                        input.pipeline_execution_id, input.pipeline_name
                    ),
                ));
            };
            let mut execution = json!({
                "pipelineName": row.pipeline,
                "pipelineVersion": row.pipeline_version,
                "pipelineExecutionId": row.id,
                "status": row.status,
                "artifactRevisions": [],
                "trigger": {"triggerType": "Webhook", "triggerDetail": row.webhook_arn},
            });
            if let Some(s) = &row.status_summary {
                execution["statusSummary"] = Value::String(s.clone());
            }
            Ok(json!({"pipelineExecution": execution}))
        }
        Operation::TagResource(input) => {
            let _w = app.write_lock();
            let webhook = webhook_of(app, &input.resource_arn);
            app.registry.tag_resource(input)?;
            if let Some(name) = webhook {
                app.persist_webhook(&name)?;
            }
            Ok(json!({}))
        }
        Operation::UntagResource(input) => {
            let _w = app.write_lock();
            let webhook = webhook_of(app, &input.resource_arn);
            app.registry.untag_resource(input)?;
            if let Some(name) = webhook {
                app.persist_webhook(&name)?;
            }
            Ok(json!({}))
        }
        Operation::ListTagsForResource(input) => {
            Ok(serde_json::to_value(app.registry.list_tags_for_resource(input)?).map_err(|_| ApiError::internal())?)
        }
    }
}

/// The webhook a resource ARN of this service names, if it names one (its tags are persisted
/// with it).
fn webhook_of(app: &App, arn: &str) -> Option<String> {
    arn.strip_prefix(&format!("{}:webhook:", app.arn_prefix())).map(str::to_owned)
}

fn summary(row: &ExecutionRow) -> Value {
    let mut v = json!({
        "pipelineExecutionId": row.id,
        "status": row.status,
        "startTime": row.start_time,
        "lastUpdateTime": row.last_update_time,
        "sourceRevisions": [],
        "trigger": {"triggerType": "Webhook", "triggerDetail": row.webhook_arn},
    });
    if let Some(s) = &row.status_summary {
        v["statusSummary"] = Value::String(s.clone());
    }
    v
}

fn pipeline_name(pipeline: &Map<String, Value>) -> Result<String, ApiError> {
    match pipeline.get("name") {
        Some(Value::String(name)) => Ok(name.clone()),
        _ => Err(ApiError::client("ValidationException", "pipeline.name is required")),
    }
}

fn pipeline_not_found(name: &str) -> ApiError {
    ApiError::client("PipelineNotFoundException", format!("Account does not have a pipeline with name '{name}'"))
}

fn invalid_next_token() -> ApiError {
    ApiError::client("InvalidNextTokenException", "The next token was not issued by this service")
}

fn decode_token(token: &str) -> Result<String, ApiError> {
    URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(invalid_next_token)
}

fn max_results_error(max: i64, limit: i64) -> ApiError {
    ApiError::client(
        "ValidationException",
        format!(
            "1 validation error detected: Value '{max}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {limit}"
        ),
    )
}

/// Checks the declaration as the registry needs it, puts it in the registry, then writes it.
fn put_pipeline(
    app: &App,
    mut declaration: Map<String, Value>,
    version: i64,
    created: f64,
    updated: f64,
) -> Result<PipelineRow, ApiError> {
    declaration.insert("version".into(), Value::from(version));
    let typed: PipelineDeclaration = serde_json::from_value(Value::Object(declaration.clone())).map_err(|e| {
        ApiError::client("InvalidStructureException", format!("the pipeline declaration does not parse: {e}"))
    })?;
    app.registry.put_pipeline(typed)?;
    let row = PipelineRow {
        name: pipeline_name(&declaration)?,
        version,
        declaration: Value::Object(declaration).to_string(),
        created,
        updated,
    };
    app.store.put_pipeline(&row).map_err(|e| app.recover(e))?;
    app.set_pipeline_version(&row.name, version);
    Ok(row)
}
