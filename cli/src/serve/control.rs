//! The control plane's decoder: AWS JSON 1.1 on `POST /` (`X-Amz-Target:
//! CodePipeline_20150709.<Op>`), decoded by [`decode`] into an [`Operation`], and the error form
//! (`{"__type": …, "message": …}` + `x-amzn-ErrorType`). Pure: no I/O, no service state (built
//! without the feature `serve` too), so that it can be fuzzed on its own.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use codepipeline_webhooks::registry::{
    DeleteWebhookInput, DeregisterWebhookWithThirdPartyInput, ListTagsForResourceInput, ListWebhooksInput,
    RegisterWebhookWithThirdPartyInput, TagResourceInput, UntagResourceInput,
};
use codepipeline_webhooks::{ErrorCode, PutWebhookInput, Tag};

/// The target prefix of CodePipeline's API version.
pub const TARGET_PREFIX: &str = "CodePipeline_20150709.";
/// The content type of AWS JSON 1.1.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The exception a failed call names: one of the registry's rules ([`ErrorCode`]: validation,
/// tags, quotas, tokens, webhooks and pipelines not found), or one the service answers itself
/// (the protocol's `SerializationException` and `UnknownOperationException`, SigV4's,
/// `InternalFailure`, and the pipeline and execution exceptions of calls the registry does not
/// serve).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiCode {
    /// The registry's.
    Registry(ErrorCode),
    /// The service's own, by its AWS name.
    Service(&'static str),
}

impl ApiCode {
    /// The AWS exception name (`__type` and `x-amzn-ErrorType`).
    pub fn as_str(&self) -> &'static str {
        match self {
            ApiCode::Registry(code) => code.as_str(),
            ApiCode::Service(name) => name,
        }
    }
}

impl std::fmt::Display for ApiCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for ApiCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A failed call: HTTP status, AWS exception and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// 400, 403, 404 or 500.
    pub status: u16,
    /// The exception (`__type` and `x-amzn-ErrorType`).
    pub code: ApiCode,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// A 400 error the service answers itself (`code` is its AWS name).
    pub fn client(code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status: 400, code: ApiCode::Service(code), message: message.into() }
    }

    /// A 400 error of one of the registry's exceptions.
    pub fn registry(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { status: 400, code: ApiCode::Registry(code), message: message.into() }
    }

    #[cfg(feature = "serve")]
    pub(crate) fn internal() -> Self {
        ApiError {
            status: 500,
            code: ApiCode::Service("InternalFailure"),
            message: "the service could not complete the request".into(),
        }
    }

    /// The error body.
    pub fn body(&self) -> String {
        json!({"__type": self.code.as_str(), "message": self.message}).to_string()
    }
}

impl From<codepipeline_webhooks::Error> for ApiError {
    fn from(e: codepipeline_webhooks::Error) -> Self {
        ApiError::registry(e.kind(), e.message())
    }
}

/// `CreatePipeline` / `UpdatePipeline` input.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct PipelineInput {
    /// The declaration, stored as given (its `version` is set by the service).
    pub pipeline: Map<String, Value>,
    /// Tags (CreatePipeline).
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
}

/// `GetPipeline` input.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GetPipelineInput {
    /// The pipeline.
    pub name: String,
    /// A version; the latest when absent.
    #[serde(default)]
    pub version: Option<i64>,
}

/// `DeletePipeline` input.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct DeletePipelineInput {
    /// The pipeline.
    pub name: String,
}

/// `ListPipelines` input.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPipelinesInput {
    /// Where the previous page ended.
    #[serde(default)]
    pub next_token: Option<String>,
    /// 1 to 1000 (default 100).
    #[serde(default)]
    pub max_results: Option<i64>,
}

/// `ListPipelineExecutions` input.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListPipelineExecutionsInput {
    /// The pipeline.
    pub pipeline_name: String,
    /// 1 to 100 (default 100).
    #[serde(default)]
    pub max_results: Option<i64>,
    /// Where the previous page ended.
    #[serde(default)]
    pub next_token: Option<String>,
    /// `{"succeededInStage": {"stageName": …}}`: only the executions that succeeded in that
    /// stage.
    #[serde(default)]
    pub filter: Option<PipelineExecutionFilter>,
}

/// `ListPipelineExecutions`' filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineExecutionFilter {
    /// Executions that succeeded in this stage.
    #[serde(default)]
    pub succeeded_in_stage: Option<SucceededInStageFilter>,
}

/// `succeededInStage`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SucceededInStageFilter {
    /// The stage.
    #[serde(default)]
    pub stage_name: Option<String>,
}

/// `StartPipelineExecution` input.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartPipelineExecutionInput {
    /// The pipeline.
    pub name: String,
    /// Pipeline variables (accepted; the on-trigger program does not see them).
    #[serde(default)]
    pub variables: Option<Value>,
    /// Idempotency: a token used before on the pipeline answers with the execution it started.
    #[serde(default)]
    pub client_request_token: Option<String>,
    /// Revisions to run instead of the latest delivery's (`COMMIT_ID` and the like).
    #[serde(default)]
    pub source_revisions: Option<Vec<SourceRevisionOverride>>,
}

/// One `sourceRevisions` override of `StartPipelineExecution`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceRevisionOverride {
    /// The source action.
    pub action_name: String,
    /// `COMMIT_ID`, `IMAGE_DIGEST`, `S3_OBJECT_VERSION_ID` or `S3_OBJECT_KEY`.
    pub revision_type: String,
    /// The revision.
    pub revision_value: String,
}

/// `StopPipelineExecution` input.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopPipelineExecutionInput {
    /// The pipeline.
    pub pipeline_name: String,
    /// The execution.
    pub pipeline_execution_id: String,
    /// End the running program now instead of letting it finish.
    #[serde(default)]
    pub abandon: Option<bool>,
    /// Why (shown as `stopTrigger.reason` and the status summary).
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GetPipelineState` input.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct GetPipelineStateInput {
    /// The pipeline.
    pub name: String,
}

/// `ListActionExecutions` input.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListActionExecutionsInput {
    /// The pipeline.
    pub pipeline_name: String,
    /// `{"pipelineExecutionId": …}`: only that execution's actions.
    #[serde(default)]
    pub filter: Option<ActionExecutionFilter>,
    /// 1 to 100 (default 100).
    #[serde(default)]
    pub max_results: Option<i64>,
    /// Where the previous page ended.
    #[serde(default)]
    pub next_token: Option<String>,
}

/// `ListActionExecutions`' filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionExecutionFilter {
    /// One execution.
    #[serde(default)]
    pub pipeline_execution_id: Option<String>,
}

/// `GetPipelineExecution` input.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetPipelineExecutionInput {
    /// The pipeline.
    pub pipeline_name: String,
    /// The execution.
    pub pipeline_execution_id: String,
}

/// A decoded control-plane call.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// `PutWebhook`.
    PutWebhook(PutWebhookInput),
    /// `ListWebhooks`.
    ListWebhooks(ListWebhooksInput),
    /// `DeleteWebhook`.
    DeleteWebhook(DeleteWebhookInput),
    /// `RegisterWebhookWithThirdParty`.
    RegisterWebhookWithThirdParty(RegisterWebhookWithThirdPartyInput),
    /// `DeregisterWebhookWithThirdParty`.
    DeregisterWebhookWithThirdParty(DeregisterWebhookWithThirdPartyInput),
    /// `CreatePipeline`.
    CreatePipeline(PipelineInput),
    /// `UpdatePipeline`.
    UpdatePipeline(PipelineInput),
    /// `GetPipeline`.
    GetPipeline(GetPipelineInput),
    /// `DeletePipeline`.
    DeletePipeline(DeletePipelineInput),
    /// `ListPipelines`.
    ListPipelines(ListPipelinesInput),
    /// `ListPipelineExecutions`.
    ListPipelineExecutions(ListPipelineExecutionsInput),
    /// `GetPipelineExecution`.
    GetPipelineExecution(GetPipelineExecutionInput),
    /// `TagResource`.
    TagResource(TagResourceInput),
    /// `UntagResource`.
    UntagResource(UntagResourceInput),
    /// `ListTagsForResource`.
    ListTagsForResource(ListTagsForResourceInput),
    /// `StartPipelineExecution`.
    StartPipelineExecution(StartPipelineExecutionInput),
    /// `StopPipelineExecution`.
    StopPipelineExecution(StopPipelineExecutionInput),
    /// `GetPipelineState`.
    GetPipelineState(GetPipelineStateInput),
    /// `ListActionExecutions`.
    ListActionExecutions(ListActionExecutionsInput),
}

/// The operations served, by name.
pub const OPERATIONS: [&str; 19] = [
    "PutWebhook",
    "ListWebhooks",
    "DeleteWebhook",
    "RegisterWebhookWithThirdParty",
    "DeregisterWebhookWithThirdParty",
    "CreatePipeline",
    "UpdatePipeline",
    "GetPipeline",
    "DeletePipeline",
    "ListPipelines",
    "ListPipelineExecutions",
    "GetPipelineExecution",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "StartPipelineExecution",
    "StopPipelineExecution",
    "GetPipelineState",
    "ListActionExecutions",
];

/// The operation an `X-Amz-Target` names, if it is one served (its `'static` name).
pub fn operation_name(target: Option<&str>) -> Option<&'static str> {
    let op = target?.strip_prefix(TARGET_PREFIX)?;
    OPERATIONS.iter().copied().find(|o| *o == op)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Value) -> Result<T, ApiError> {
    T::deserialize(body).map_err(|e| ApiError::client("ValidationException", e.to_string()))
}

/// Decodes a call from its `X-Amz-Target` header and body. No side effects; never panics.
///
/// The body must be a JSON object (an empty body is `{}`): anything else is a
/// `SerializationException`, as AWS answers. Then, before anything reads it as typed data, the
/// body is checked against the AWS service model as the registry does
/// ([`validate_input`](codepipeline_webhooks::registry::validate_input): wrong JSON types are
/// `SerializationException`, constraint violations `ValidationException` in AWS's words), and
/// `CreatePipeline` / `UpdatePipeline` declarations against the structure rules
/// ([`validate_pipeline_input`](codepipeline_webhooks::registry::validate_pipeline_input)).
pub fn decode(target: Option<&str>, body: &[u8]) -> Result<Operation, ApiError> {
    let Some(name) = operation_name(target) else {
        return Err(ApiError::client(
            "UnknownOperationException",
            "the X-Amz-Target header names no operation of this service",
        ));
    };
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) { b"{}" } else { body };
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        // The position only: serde's text of a syntax error quotes nothing of the body.
        ApiError::client("SerializationException", format!("the body is not JSON: {e}"))
    })?;
    match name {
        "CreatePipeline" | "UpdatePipeline" => codepipeline_webhooks::registry::validate_pipeline_input(name, &value)?,
        _ => codepipeline_webhooks::registry::validate_input(name, &value)?,
    }
    Ok(match name {
        "PutWebhook" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::client("SerializationException", "the body is not UTF-8"))?;
            Operation::PutWebhook(PutWebhookInput::from_json(text)?)
        }
        "ListWebhooks" => Operation::ListWebhooks(parse(&value)?),
        "DeleteWebhook" => Operation::DeleteWebhook(parse(&value)?),
        "RegisterWebhookWithThirdParty" => Operation::RegisterWebhookWithThirdParty(parse(&value)?),
        "DeregisterWebhookWithThirdParty" => Operation::DeregisterWebhookWithThirdParty(parse(&value)?),
        "CreatePipeline" => Operation::CreatePipeline(parse(&value)?),
        "UpdatePipeline" => Operation::UpdatePipeline(parse(&value)?),
        "GetPipeline" => Operation::GetPipeline(parse(&value)?),
        "DeletePipeline" => Operation::DeletePipeline(parse(&value)?),
        "ListPipelines" => Operation::ListPipelines(parse(&value)?),
        "ListPipelineExecutions" => Operation::ListPipelineExecutions(parse(&value)?),
        "GetPipelineExecution" => Operation::GetPipelineExecution(parse(&value)?),
        "TagResource" => Operation::TagResource(parse(&value)?),
        "UntagResource" => Operation::UntagResource(parse(&value)?),
        "ListTagsForResource" => Operation::ListTagsForResource(parse(&value)?),
        "StartPipelineExecution" => Operation::StartPipelineExecution(parse(&value)?),
        "StopPipelineExecution" => Operation::StopPipelineExecution(parse(&value)?),
        "GetPipelineState" => Operation::GetPipelineState(parse(&value)?),
        "ListActionExecutions" => Operation::ListActionExecutions(parse(&value)?),
        _ => unreachable_operation(name)?,
    })
}

fn unreachable_operation(name: &str) -> Result<Operation, ApiError> {
    Err(ApiError::client("UnknownOperationException", format!("{name} is not served")))
}
