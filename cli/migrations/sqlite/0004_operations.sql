-- Issue 19 (operations): what an execution ran and how it started, and a pipeline's tags.

-- sourceRevisions as JSON (an array of {actionName, revisionId, revisionSummary, revisionUrl}).
ALTER TABLE executions ADD COLUMN source_revisions TEXT NOT NULL DEFAULT '[]';
-- 'Webhook' or 'StartPipelineExecution'.
ALTER TABLE executions ADD COLUMN trigger_type TEXT NOT NULL DEFAULT 'Webhook';
-- StartPipelineExecution's clientRequestToken: one execution per token and pipeline.
ALTER TABLE executions ADD COLUMN client_request_token TEXT;
CREATE UNIQUE INDEX executions_request_token ON executions (pipeline, client_request_token);

-- The pipeline's tags as JSON (an array of {key, value}), the same on every version row.
ALTER TABLE pipelines ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

-- StopPipelineExecution's reason (stopTrigger), when a call stopped it.
ALTER TABLE executions ADD COLUMN stop_reason TEXT;
