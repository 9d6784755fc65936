-- The pipeline's execution mode (its declaration's executionMode when the execution was queued):
-- the claim runs one execution at a time per pipeline unless the mode is PARALLEL, and a newer
-- SUPERSEDED execution replaces the one still waiting (issue 19).
ALTER TABLE queue ADD COLUMN mode TEXT NOT NULL DEFAULT 'SUPERSEDED';
CREATE INDEX queue_pipeline ON queue (pipeline, state);
