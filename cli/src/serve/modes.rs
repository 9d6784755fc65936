//! The pipeline execution modes, as the AWS user guide ("Set or change the pipeline execution
//! mode") describes them. The store enforces them, so that they hold over every instance: each
//! queued execution carries its pipeline's mode, queuing a SUPERSEDED one supersedes the one still
//! waiting, and a claim starts an execution of a pipeline that runs none unless it is PARALLEL
//! (`store::enqueue`, `Store::claim`).
//!
//! - `SUPERSEDED` (the default): one execution runs. A newer one waits for it; a still newer one
//!   replaces the waiting one, which becomes Superseded without running. (AWS supersedes at stage
//!   boundaries; the service runs one program per execution, so the whole program is the stage.)
//! - `QUEUED`: one execution runs; the others wait and run first in, first out.
//! - `PARALLEL`: executions run side by side, up to the program concurrency; past it they wait,
//!   first in, first out.

/// A pipeline's execution mode (`executionMode` of its declaration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExecutionMode {
    /// One runs; a newer one waits and replaces an older waiting one.
    #[default]
    Superseded,
    /// One runs; the others wait, first in, first out.
    Queued,
    /// Up to the concurrency run at once.
    Parallel,
}

impl ExecutionMode {
    /// The mode a declaration names (`executionMode`); absent or unknown: `SUPERSEDED`, AWS's
    /// default (the model check refuses unknown values before a declaration is stored).
    pub fn of_declaration(pipeline: &serde_json::Value) -> Self {
        match pipeline.get("executionMode").and_then(serde_json::Value::as_str) {
            Some("QUEUED") => Self::Queued,
            Some("PARALLEL") => Self::Parallel,
            _ => Self::Superseded,
        }
    }

    /// The `pipelineType` a declaration names; absent: `V1`, what CreatePipeline makes without one.
    pub fn pipeline_type_of(pipeline: &serde_json::Value) -> &str {
        pipeline.get("pipelineType").and_then(serde_json::Value::as_str).unwrap_or("V1")
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Superseded => "SUPERSEDED",
            Self::Queued => "QUEUED",
            Self::Parallel => "PARALLEL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_mode_comes_from_the_declaration_with_aws_s_default() {
        assert_eq!(ExecutionMode::of_declaration(&json!({})), ExecutionMode::Superseded);
        assert_eq!(ExecutionMode::of_declaration(&json!({"executionMode": "QUEUED"})), ExecutionMode::Queued);
        assert_eq!(ExecutionMode::of_declaration(&json!({"executionMode": "PARALLEL"})), ExecutionMode::Parallel);
        assert_eq!(ExecutionMode::of_declaration(&json!({"executionMode": "SUPERSEDED"})).as_str(), "SUPERSEDED");
        assert_eq!(ExecutionMode::pipeline_type_of(&json!({})), "V1");
        assert_eq!(ExecutionMode::pipeline_type_of(&json!({"pipelineType": "V2"})), "V2");
    }
}
