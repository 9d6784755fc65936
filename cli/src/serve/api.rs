//! The control plane's operations: a decoded [`Operation`] run against the service's state and
//! answered with AWS's shapes.

use serde_json::{Map, Value, json};

use super::App;
use super::control::{ApiError, Operation};
use super::store::{ChangeKind, PipelineRow, StoreError, WriteTx};
use codepipeline_webhooks::ErrorCode;
use codepipeline_webhooks::registry::{self, ListTagsForResourceInput, PipelineDeclaration, Registry};

impl From<super::store::StoreError> for ApiError {
    fn from(e: super::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::internal()
    }
}

/// Runs a decoded call: reads catch this instance's cache up with the database first (a write
/// acknowledged by any instance is seen at once), writes are one transaction each on the one
/// webhook or pipeline they change. The registry's rules decide; the database decides what is.
pub(crate) async fn execute(app: &std::sync::Arc<App>, op: Operation) -> Result<Value, ApiError> {
    // What any instance committed is in this instance's cache before it answers.
    app.sync().await?;
    match op {
        Operation::PutWebhook(input) => {
            let name = input.webhook.name.clone();
            let target = input.webhook.target_pipeline.clone();
            let definition = input.webhook.clone();
            // The model's rules first, before anything is locked.
            input.validate()?;
            let mut tx = app.store.write(&format!("webhook:{name}")).await?;
            // The cache as the database has it now, for this webhook and its pipeline.
            let row = tx.webhook(&name).await?;
            let pipeline = tx.pipeline(&target, None).await?;
            app.load_pipeline(&target, pipeline.as_ref())?;
            app.load_webhook(&name, row.as_ref())?;
            let mut out = app.registry.put_webhook(input)?;
            // lastTriggered as ListWebhooks answers it: the database's (kept by an upsert; the
            // cache keeps what it had when the webhook was loaded).
            out.webhook.last_triggered = row.as_ref().and_then(|r| r.last_triggered);
            let written = async {
                if row.is_none() && !tx.take_webhook_slot(app.registry.webhook_quota()).await? {
                    return Ok(Err(app.registry.quota_exceeded()));
                }
                let state =
                    app.registry.export_webhook(&name).ok_or_else(|| StoreError::new("the webhook vanished"))?;
                let json = serde_json::to_string(&state).map_err(|e| StoreError::new(e.to_string()))?;
                tx.put_webhook(&name, &state.token, &json).await?;
                tx.commit(super::now()).await?;
                Ok::<_, StoreError>(Ok(()))
            }
            .await;
            match written {
                Ok(Ok(())) => {
                    log_warnings(app, &definition);
                    Ok(serde_json::to_value(out).map_err(|_| ApiError::internal())?)
                }
                Ok(Err(e)) => {
                    app.reload(ChangeKind::Webhook, &name).await;
                    Err(e.into())
                }
                Err(e) => {
                    app.reload(ChangeKind::Webhook, &name).await;
                    Err(e.into())
                }
            }
        }
        Operation::ListWebhooks(input) => {
            let mut out = app.registry.list_webhooks(input)?;
            // lastTriggered: the database's, the latest start over every instance, written with
            // the execution (the cache holds what it was when the webhook was loaded).
            let stamps = app.last_triggered().await?;
            for item in &mut out.webhooks {
                item.last_triggered = stamps.get(&item.definition.name).copied();
            }
            Ok(serde_json::to_value(out).map_err(|_| ApiError::internal())?)
        }
        Operation::DeleteWebhook(input) => {
            let name = input.name.clone();
            // The log's waiting entries are written first (under a flood they wait up to a
            // second), so that the delete below takes them too; not within the transaction,
            // which would hold SQLite's write lock that the log's writer needs.
            app.deliveries.flush().await;
            let mut tx = app.store.write(&format!("webhook:{name}")).await?;
            // Checks the name and drops it from the cache: its URL stops answering here at once.
            app.registry.delete_webhook(input)?;
            let written = async {
                tx.delete_webhook(&name).await?;
                tx.commit(super::now()).await
            }
            .await;
            if let Err(e) = written {
                app.reload(ChangeKind::Webhook, &name).await;
                return Err(e.into());
            }
            Ok(json!({}))
        }
        Operation::RegisterWebhookWithThirdParty(input) => {
            let name = input.webhook_name.clone();
            write_webhook(app, &name, |r| r.register_webhook_with_third_party(input)).await?;
            Ok(json!({}))
        }
        Operation::DeregisterWebhookWithThirdParty(input) => {
            let name = input.webhook_name.clone();
            write_webhook(app, &name, |r| r.deregister_webhook_with_third_party(input)).await?;
            Ok(json!({}))
        }
        Operation::CreatePipeline(input) => {
            let name = pipeline_name(&input.pipeline)?;
            if let Some(tags) = &input.tags {
                registry::check_tags("tags", tags)?;
            }
            let mut tx = app.store.write(&format!("pipeline:{name}")).await?;
            if tx.pipeline(&name, None).await?.is_some() {
                return Err(ApiError::client(
                    "PipelineNameInUseException",
                    format!("A pipeline with the name '{name}' already exists"),
                ));
            }
            let now = super::now();
            let version = Registry::next_pipeline_version(None);
            let tags = input.tags.unwrap_or_default();
            let tags_json = serde_json::to_string(&tags).map_err(|_| ApiError::internal())?;
            let row = put_pipeline(app, tx, input.pipeline, version, (now, now), tags_json).await?;
            let mut pipeline = serde_json::from_str::<Value>(&row.declaration).map_err(|_| ApiError::internal())?;
            app.registry.mask_secrets(&mut pipeline);
            let mut out = json!({ "pipeline": pipeline });
            if !tags.is_empty() {
                out["tags"] = serde_json::to_value(tags).map_err(|_| ApiError::internal())?;
            }
            Ok(out)
        }
        Operation::UpdatePipeline(input) => {
            let name = pipeline_name(&input.pipeline)?;
            let mut tx = app.store.write(&format!("pipeline:{name}")).await?;
            let Some(current) = tx.pipeline(&name, None).await? else {
                return Err(registry::no_such_pipeline(&name).into());
            };
            let version = Registry::next_pipeline_version(Some(current.version));
            let row =
                put_pipeline(app, tx, input.pipeline, version, (current.created, super::now()), current.tags).await?;
            let mut pipeline = serde_json::from_str::<Value>(&row.declaration).map_err(|_| ApiError::internal())?;
            app.registry.mask_secrets(&mut pipeline);
            Ok(json!({ "pipeline": pipeline }))
        }
        Operation::GetPipeline(input) => {
            let row = match app.store.pipeline(&input.name, input.version).await? {
                Some(row) => row,
                None if input.version.is_some() && app.store.pipeline(&input.name, None).await?.is_some() => {
                    return Err(ApiError::client(
                        "PipelineVersionNotFoundException",
                        format!("Pipeline '{}' has no version {}", input.name, input.version.unwrap_or_default()),
                    ));
                }
                None => return Err(registry::no_such_pipeline(&input.name).into()),
            };
            let mut pipeline = serde_json::from_str::<Value>(&row.declaration).map_err(|_| ApiError::internal())?;
            app.registry.mask_secrets(&mut pipeline);
            Ok(json!({
                "pipeline": pipeline,
                "metadata": {"pipelineArn": app.registry.pipeline_arn(&row.name), "created": row.created, "updated": row.updated},
            }))
        }
        Operation::DeletePipeline(input) => {
            let mut tx = app.store.write(&format!("pipeline:{}", input.name)).await?;
            if tx.delete_pipeline(&input.name).await? {
                tx.commit(super::now()).await?;
                // Its webhooks stay, in error.
                app.registry.delete_pipeline(&input.name)?;
            }
            Ok(json!({}))
        }
        Operation::ListPipelines(input) => {
            const OP: &str = "ListPipelines";
            let max = input.max_results.unwrap_or(100);
            registry::check_max_results("maxResults", max, 1000)?;
            let after = match input.next_token.as_deref() {
                None => None,
                Some(t) => Some(app.registry.verify_next_token(OP, t)?),
            };
            let max = usize::try_from(max).unwrap_or(1);
            let mut rows = app.store.pipelines_page(after.as_deref(), max + 1).await?;
            let more = rows.len() > max;
            rows.truncate(max);
            let mut pipelines = Vec::with_capacity(rows.len());
            for row in &rows {
                let declaration: Value = serde_json::from_str(&row.declaration).map_err(|_| ApiError::internal())?;
                // The type and mode always, with AWS's defaults for a declaration that names none.
                pipelines.push(json!({
                    "name": row.name,
                    "version": row.version,
                    "pipelineType": super::modes::ExecutionMode::pipeline_type_of(&declaration),
                    "executionMode": super::modes::ExecutionMode::of_declaration(&declaration).as_str(),
                    "created": row.created,
                    "updated": row.updated,
                }));
            }
            let mut out = json!({"pipelines": pipelines});
            if let (true, Some(last)) = (more, rows.last()) {
                out["nextToken"] = Value::String(app.registry.issue_next_token(OP, &last.name));
            }
            Ok(out)
        }
        Operation::ListPipelineExecutions(input) => {
            const OP: &str = "ListPipelineExecutions";
            let max = input.max_results.unwrap_or(100);
            registry::check_max_results("maxResults", max, 100)?;
            if app.store.pipeline(&input.pipeline_name, None).await?.is_none() {
                return Err(registry::no_such_pipeline(&input.pipeline_name).into());
            }
            // A token names the pipeline it pages and the last execution's place.
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
            // succeededInStage: a stage the pipeline does not have lists nothing.
            let Ok(status) = super::runs::stage_filter(app, &input).await? else {
                return Ok(json!({"pipelineExecutionSummaries": []}));
            };
            let max = usize::try_from(max).unwrap_or(1);
            let mut rows = app.store.executions_with(&input.pipeline_name, before, max + 1, status).await?;
            let more = rows.len() > max;
            rows.truncate(max);
            let summaries = super::runs::summaries(app, &rows).await?;
            let mut out = json!({"pipelineExecutionSummaries": summaries});
            if let (true, Some(last)) = (more, rows.last()) {
                out["nextToken"] =
                    Value::String(app.registry.issue_next_token(OP, &format!("{}:{}", last.seq, input.pipeline_name)));
            }
            Ok(out)
        }
        Operation::GetPipelineExecution(input) => {
            if app.store.pipeline(&input.pipeline_name, None).await?.is_none() {
                return Err(registry::no_such_pipeline(&input.pipeline_name).into());
            }
            let Some(row) = app.store.execution(&input.pipeline_name, &input.pipeline_execution_id).await? else {
                return Err(ApiError::client(
                    "PipelineExecutionNotFoundException",
                    format!(
                        "Pipeline execution with id '{}' does not exist in pipeline '{}'",
                        input.pipeline_execution_id, input.pipeline_name
                    ),
                ));
            };
            Ok(json!({"pipelineExecution": super::runs::pipeline_execution(app, &row).await?}))
        }
        // A webhook's tags are stored with the webhook, a pipeline's with the pipeline, each in
        // the transaction of the one resource.
        Operation::TagResource(input) => {
            let arn = input.resource_arn.clone();
            match webhook_of(app, &arn) {
                Some(name) => write_webhook(app, &name, |r| r.tag_resource(input)).await.map(|()| json!({})),
                None => write_pipeline_tags(app, &arn, |r| r.tag_resource(input)).await.map(|()| json!({})),
            }
        }
        Operation::UntagResource(input) => {
            let arn = input.resource_arn.clone();
            match webhook_of(app, &arn) {
                Some(name) => write_webhook(app, &name, |r| r.untag_resource(input)).await.map(|()| json!({})),
                None => write_pipeline_tags(app, &arn, |r| r.untag_resource(input)).await.map(|()| json!({})),
            }
        }
        Operation::StartPipelineExecution(input) => super::runs::start(app, input).await,
        Operation::StopPipelineExecution(input) => super::runs::stop(app, input).await,
        Operation::GetPipelineState(input) => super::runs::state(app, input).await,
        Operation::ListActionExecutions(input) => super::runs::list_actions(app, input).await,
        Operation::ListTagsForResource(input) => {
            Ok(serde_json::to_value(app.registry.list_tags_for_resource(input)?).map_err(|_| ApiError::internal())?)
        }
    }
}

/// A registry operation on a pipeline's tags (by its ARN), written with the pipeline in one
/// transaction. An ARN that names no pipeline of this service goes to the registry alone, which
/// answers with its error.
async fn write_pipeline_tags(
    app: &App,
    arn: &str,
    operation: impl FnOnce(&Registry) -> Result<(), codepipeline_webhooks::Error>,
) -> Result<(), ApiError> {
    let Some(name) = arn.strip_prefix(&app.registry.pipeline_arn("")).filter(|n| !n.is_empty()) else {
        return Ok(operation(&app.registry)?);
    };
    let mut tx = app.store.write(&format!("pipeline:{name}")).await?;
    let row = tx.pipeline(name, None).await?;
    app.load_pipeline(name, row.as_ref())?;
    operation(&app.registry)?;
    let written = async {
        let list = ListTagsForResourceInput { resource_arn: arn.to_owned(), next_token: None, max_results: None };
        let tags = app.registry.list_tags_for_resource(list).map_err(|e| StoreError::new(e.message()))?.tags;
        let json = serde_json::to_string(&tags).map_err(|e| StoreError::new(e.to_string()))?;
        if !tx.set_pipeline_tags(name, &json).await? {
            return Err(StoreError::new("the pipeline vanished"));
        }
        tx.commit(super::now()).await
    }
    .await;
    if let Err(e) = written {
        app.reload(ChangeKind::Pipeline, name).await;
        return Err(e.into());
    }
    Ok(())
}

/// Logs the compile warnings of a webhook just put (such as an indefinite JsonPath compared with
/// a string, which never passes on AWS), compiled as the registry compiles it.
fn log_warnings(app: &App, definition: &codepipeline_webhooks::WebhookDefinition) {
    let Some(pipeline) = app.registry.pipeline(&definition.target_pipeline) else { return };
    let Ok(config) = pipeline.first_stage_configuration(&definition.target_action) else { return };
    let options = codepipeline_webhooks::Webhook::options().aws_exact(app.config.aws_exact);
    if let Ok(webhook) = options.build(definition, config) {
        for warning in webhook.warnings() {
            tracing::warn!(webhook = %definition.name, warning = %warning, "PutWebhook: compile warning");
        }
    }
}

/// A write to one existing webhook by a registry operation, in one transaction.
async fn write_webhook(
    app: &App,
    name: &str,
    operation: impl FnOnce(&Registry) -> Result<(), codepipeline_webhooks::Error>,
) -> Result<(), ApiError> {
    let mut tx = app.store.write(&format!("webhook:{name}")).await?;
    let row = tx.webhook(name).await?;
    app.load_webhook(name, row.as_ref())?;
    operation(&app.registry)?;
    let written = async {
        let state = app.registry.export_webhook(name).ok_or_else(|| StoreError::new("the webhook vanished"))?;
        let json = serde_json::to_string(&state).map_err(|e| StoreError::new(e.to_string()))?;
        tx.put_webhook(name, &state.token, &json).await?;
        tx.commit(super::now()).await
    }
    .await;
    if let Err(e) = written {
        app.reload(ChangeKind::Webhook, name).await;
        return Err(e.into());
    }
    Ok(())
}

/// The webhook a resource ARN of this service names, if it names one (its tags are persisted
/// with it).
fn webhook_of(app: &App, arn: &str) -> Option<String> {
    arn.strip_prefix(&app.registry.webhook_arn("")).map(str::to_owned)
}

fn pipeline_name(pipeline: &Map<String, Value>) -> Result<String, ApiError> {
    match pipeline.get("name") {
        Some(Value::String(name)) => Ok(name.clone()),
        _ => Err(ApiError::registry(ErrorCode::ValidationException, "pipeline.name is required")),
    }
}

/// Checks the declaration as the registry needs it, puts it in the cache (recompiling the
/// webhooks that target it), then writes it and commits; on a failed write the cache reloads.
async fn put_pipeline(
    app: &App,
    mut tx: WriteTx,
    mut declaration: Map<String, Value>,
    version: i64,
    (created, updated): (f64, f64),
    tags: String,
) -> Result<PipelineRow, ApiError> {
    declaration.insert("version".into(), Value::from(version));
    let typed: PipelineDeclaration = serde_json::from_value(Value::Object(declaration.clone())).map_err(|e| {
        ApiError::client("InvalidStructureException", format!("the pipeline declaration does not parse: {e}"))
    })?;
    let name = typed.name.clone();
    app.registry.put_pipeline(typed)?;
    let row =
        PipelineRow { name, version, declaration: Value::Object(declaration).to_string(), created, updated, tags };
    let written = async {
        tx.insert_pipeline(&row).await?;
        tx.commit(updated).await
    }
    .await;
    if let Err(e) = written {
        app.reload(ChangeKind::Pipeline, &row.name).await;
        return Err(e.into());
    }
    app.load_pipeline_tags(&row.name, &row.tags)?;
    Ok(row)
}
