#!/bin/sh
# An --on-trigger program: the delivery's body arrives on stdin, the rest in the environment.
# Its exit code decides the execution's status (0 Succeeded, anything else Failed).
set -eu
ref=$(grep -o '"ref": *"[^"]*"' | head -n 1)
echo "pipeline $CODEPIPELINE_PIPELINE execution $CODEPIPELINE_EXECUTION_ID:" \
  "webhook $CODEPIPELINE_WEBHOOK, $GITHUB_EVENT $GITHUB_DELIVERY, $ref" >&2
