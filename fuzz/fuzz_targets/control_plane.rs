//! The service's control-plane decoder: an arbitrary `X-Amz-Target` header and body.
//! `decode` never panics; a decoded call is the operation the target names; an error is a 400
//! with an exception name from a fixed list and a JSON body that round-trips.
//!
//! Input: the target header value up to the first newline (absent when the input has none), then
//! the body.
#![no_main]

use codepipeline_webhooks_cli::serve::control::{OPERATIONS, Operation, TARGET_PREFIX, decode, operation_name};
use libfuzzer_sys::fuzz_target;

const CODES: [&str; 13] = [
    "UnknownOperationException",
    "SerializationException",
    "ValidationException",
    "InvalidWebhookFilterPatternException",
    "InvalidWebhookAuthenticationParametersException",
    "TooManyTagsException",
    "InvalidTagsException",
    "PipelineNotFoundException",
    "LimitExceededException",
    "WebhookNotFoundException",
    "InvalidStructureException",
    "InvalidStageDeclarationException",
    "InvalidActionDeclarationException",
];

fn name(op: &Operation) -> &'static str {
    match op {
        Operation::PutWebhook(_) => "PutWebhook",
        Operation::ListWebhooks(_) => "ListWebhooks",
        Operation::DeleteWebhook(_) => "DeleteWebhook",
        Operation::RegisterWebhookWithThirdParty(_) => "RegisterWebhookWithThirdParty",
        Operation::DeregisterWebhookWithThirdParty(_) => "DeregisterWebhookWithThirdParty",
        Operation::CreatePipeline(_) => "CreatePipeline",
        Operation::UpdatePipeline(_) => "UpdatePipeline",
        Operation::GetPipeline(_) => "GetPipeline",
        Operation::DeletePipeline(_) => "DeletePipeline",
        Operation::ListPipelines(_) => "ListPipelines",
        Operation::ListPipelineExecutions(_) => "ListPipelineExecutions",
        Operation::GetPipelineExecution(_) => "GetPipelineExecution",
        Operation::TagResource(_) => "TagResource",
        Operation::UntagResource(_) => "UntagResource",
        Operation::ListTagsForResource(_) => "ListTagsForResource",
        Operation::StartPipelineExecution(_) => "StartPipelineExecution",
        Operation::StopPipelineExecution(_) => "StopPipelineExecution",
        Operation::GetPipelineState(_) => "GetPipelineState",
        Operation::ListActionExecutions(_) => "ListActionExecutions",
    }
}

fuzz_target!(|data: &[u8]| {
    let (target, body) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (std::str::from_utf8(&data[..at]).ok(), &data[at + 1..]),
        None => (None, data),
    };
    match decode(target, body) {
        Ok(op) => {
            let op_name = name(&op);
            assert!(OPERATIONS.contains(&op_name));
            assert_eq!(target, Some(format!("{TARGET_PREFIX}{op_name}").as_str()));
            assert_eq!(operation_name(target), Some(op_name));
        }
        Err(e) => {
            assert_eq!(e.status, 400, "{e:?}");
            assert!(CODES.contains(&e.code.as_str()), "unexpected exception {}", e.code);
            let body: serde_json::Value = serde_json::from_str(&e.body()).expect("the error body is JSON");
            assert_eq!(body["__type"], e.code.as_str());
            if operation_name(target).is_none() {
                assert_eq!(e.code, "UnknownOperationException");
            }
        }
    }
});
