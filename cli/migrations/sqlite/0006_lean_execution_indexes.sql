-- Issue 17 (speed): two of the executions' indexes hold only the rows their queries look for.
-- Every trigger inserted an entry into both, though the status index serves only the sweeps
-- for running executions (status IN ('InProgress', 'Stopping')) and the request-token index
-- only StartPipelineExecution's calls that carry a clientRequestToken: a webhook's execution
-- (status 'Succeeded' without --on-trigger, and never a token) is now in neither.
DROP INDEX executions_status;
CREATE INDEX executions_running ON executions (status) WHERE status IN ('InProgress', 'Stopping');
DROP INDEX executions_request_token;
CREATE UNIQUE INDEX executions_request_token ON executions (pipeline, client_request_token)
    WHERE client_request_token IS NOT NULL;
