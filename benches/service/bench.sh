#!/usr/bin/env bash
# The data-plane benchmark of BENCHMARKS.md: `codepipeline-webhooks serve` (release build) against
# adnanh/webhook (Debian package `webhook`), same signed GitHub push, loopback only, wrk.
#
#   cargo build --release --bin codepipeline-webhooks
#   cargo build --release -p codepipeline-webhooks-floor   # the floor (optional; a small crate of its own)
#   apt-get install webhook wrk
#   benches/service/bench.sh      # DURATION=8s CONNECTIONS="16 32" THREADS=2 BACKENDS="sqlite postgres" SERVE_ARGS=
#                                 # DELIVERY_ID=fresh (a new X-GitHub-Delivery per request) or none
#
# Cases: (a) a signed delivery whose filters do not match (a tag push), (b) one that starts the
# pipeline (a push to master): serve records an execution in its database (no --on-trigger);
# webhook runs its execute-command (/bin/true). (b+) serve with --on-trigger /bin/true (PLUS=1),
# for the like-for-like comparison with webhook, which always runs a command. The floor: a bare
# hyper server that reads the same body and answers 200 (benches/service/floor).
#
# Backends: sqlite (a fresh --data-dir) and postgres (a fresh database in the cluster of
# BENCH_DATABASE_URL or TEST_DATABASE_URL, postgres://USER@HOST:PORT/DB, made with psql; skipped
# when neither is set).
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-8s}
CONNECTIONS=${CONNECTIONS:-16 32}
THREADS=${THREADS:-2}
BACKENDS=${BACKENDS:-sqlite postgres}
PLUS=${PLUS:-0}
SERVE_ARGS=${SERVE_ARGS:-}   # extra serve options, e.g. "--deliveries-keep 0" (no delivery log)
SERVE_PORT=${SERVE_PORT:-18080}
FLOOR_PORT=${FLOOR_PORT:-18081}
WEBHOOK_PORT=${WEBHOOK_PORT:-19000}
PG_URL=${BENCH_DATABASE_URL:-${TEST_DATABASE_URL:-}}
FLOOR=target/release/codepipeline-webhooks-floor
SECRET=bench-secret-not-for-production
BIN=target/release/codepipeline-webhooks
MATCH=tests/fixtures/github/push/with-new-branch.payload.json   # refs/heads/master, Hello-World
MISMATCH=tests/fixtures/github/push/payload.json                # refs/tags/simple-tag, Hello-World

[ -x "$BIN" ] || { echo "build first: cargo build --release --bin codepipeline-webhooks" >&2; exit 1; }
[ -x "$FLOOR" ] || echo "no floor: cargo build --release -p codepipeline-webhooks-floor (skipped)"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v webhook >/dev/null || { echo "webhook is not installed (apt-get install webhook)" >&2; exit 1; }

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

sig() { echo "sha256=$(openssl dgst -sha256 -hmac "$SECRET" -r "$1" | cut -d' ' -f1)"; }
SIG_MATCH=$(sig "$MATCH")
SIG_MISMATCH=$(sig "$MISMATCH")

api() { # operation, JSON body (serve runs with --no-auth: the data plane is what is measured)
  curl -sSf "http://127.0.0.1:$SERVE_PORT/" -H "X-Amz-Target: CodePipeline_20150709.$1" \
    -H 'Content-Type: application/x-amz-json-1.1' --data-binary "$2"
}

db_seq=0
start_serve() { # backend, extra args...
  local backend=$1
  shift
  rm -rf "$work/data" "$work/serve.out"
  local db=(--data-dir "$work/data")
  if [ "$backend" = postgres ]; then
    db_seq=$((db_seq + 1))
    local name="cpw_bench_$$_$db_seq"
    psql -q "$PG_URL" -c "CREATE DATABASE $name" >/dev/null
    db=(--database-url "${PG_URL%/*}/$name")
  fi
  # shellcheck disable=SC2086 # SERVE_ARGS: extra serve options, split on spaces.
  "$BIN" serve --no-auth --listen "127.0.0.1:$SERVE_PORT" "${db[@]}" $SERVE_ARGS "$@" \
    >"$work/serve.out" 2>"$work/serve.log" &
  pids+=($!)
  for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.05; done
  api CreatePipeline "{\"pipeline\": $(cat examples/pipeline.json)}" >/dev/null
  webhook_json=$(sed "s/example-secret-do-not-use/$SECRET/" examples/webhook.json)
  url=$(api PutWebhook "$webhook_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["webhook"]["url"])')
  SERVE_URL=$url
}

stop_last() { kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'; }

cat >"$work/hooks.json" <<JSON
[{
  "id": "hello-world-master",
  "execute-command": "/bin/true",
  "response-message": "started",
  "trigger-rule": {"and": [
    {"match": {"type": "payload-hmac-sha256", "secret": "$SECRET", "parameter": {"source": "header", "name": "X-Hub-Signature-256"}}},
    {"match": {"type": "value", "value": "refs/heads/master", "parameter": {"source": "payload", "name": "ref"}}},
    {"match": {"type": "value", "value": "Hello-World", "parameter": {"source": "payload", "name": "repository.name"}}}
  ]}
}]
JSON

# Waits until the previous case's leftovers are gone: webhook's (b) run goes on starting
# /bin/true for a while after wrk stops. Until the machine is idle (90 % of a second, from
# /proc/stat), 30 s at most.
settle() {
  local a b
  for _ in $(seq 30); do
    a=($(head -1 /proc/stat))
    sleep 1
    b=($(head -1 /proc/stat))
    local idle=$(( b[4] - a[4] )) total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
    [ "$total" -gt 0 ] && [ $(( idle * 100 / total )) -ge 90 ] && return
  done
}

declare -A RPS P99 CPU
TICK=$(getconf CLK_TCK)
# A process's CPU time so far in clock ticks: user + system, its reaped children's included
# (webhook's /bin/true), from /proc/PID/stat (fields after the command name's ')').
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13 + $14 + $15}'; }

run() { # key label url body signature pid (the server measured)
  local key=$1 out t0 t1 requests
  shift
  echo "== $1"
  # One request first: the answer each server gives this case.
  curl -sS -o "$work/answer" -w "HTTP %{http_code}: " "$2" -H 'Content-Type: application/json' \
    -H 'X-GitHub-Event: push' -H "X-GitHub-Delivery: probe-$RANDOM" -H "X-Hub-Signature-256: $4" \
    --data-binary @"$3"; head -c 200 "$work/answer"; echo
  t0=$(cpu_ticks "$5")
  out=$(BODY_FILE="$3" SIGNATURE="$4" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/service/post.lua "$2")
  t1=$(cpu_ticks "$5")
  echo "$out" | grep -E "Requests/sec|Non-2xx|Socket errors|p50_us|99%|requests in"
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  CPU[$key]=$(awk -v d="$((t1 - t0))" -v r="${requests:-0}" -v hz="$TICK" 'BEGIN { if (r > 0) printf "%.0f", d / hz * 1e6 / r; else print "-" }')
  echo "server CPU per request: ${CPU[$key]} us"
  RPS[$key]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P99[$key]=$(echo "$out" | awk '/ 99%/ {print $2}')
}

ratio() { # a b: a / b to two places, or "-" when either is missing
  if [ -n "${RPS[$1]:-}" ] && [ -n "${RPS[$2]:-}" ]; then
    awk -v a="${RPS[$1]}" -v b="${RPS[$2]}" 'BEGIN { printf "%.2f", a / b }'
  else
    echo "-"
  fi
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "X-GitHub-Delivery: ${DELIVERY_ID:-fresh}"
echo "serve: $("$BIN" --version); webhook: $(webhook -version); wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"

if [ -x "$FLOOR" ]; then
  "$FLOOR" "127.0.0.1:$FLOOR_PORT" >"$work/floor.out" 2>&1 &
  FLOOR_PID=$!
  pids+=("$FLOOR_PID")
fi
webhook -hooks "$work/hooks.json" -ip 127.0.0.1 -port "$WEBHOOK_PORT" >"$work/webhook.log" 2>&1 &
WEBHOOK_PID=$!
pids+=("$WEBHOOK_PID")
sleep 1
HOOK_URL="http://127.0.0.1:$WEBHOOK_PORT/hooks/hello-world-master"
FLOOR_URL="http://127.0.0.1:$FLOOR_PORT/trigger"

ALL_CONNECTIONS=$CONNECTIONS
for CONNECTIONS in $ALL_CONNECTIONS; do
  echo "##### -t$THREADS -c$CONNECTIONS -d$DURATION"
  if [ -x "$FLOOR" ]; then
    run "floor-a-$CONNECTIONS" "floor (a) hyper, reads the body, 200" "$FLOOR_URL" "$MISMATCH" "$SIG_MISMATCH" "$FLOOR_PID"
    run "floor-b-$CONNECTIONS" "floor (b) hyper, reads the body, 200" "$FLOOR_URL" "$MATCH" "$SIG_MATCH" "$FLOOR_PID"
  fi
  for backend in $BACKENDS; do
    if [ "$backend" = postgres ] && [ -z "$PG_URL" ]; then
      echo "== serve on postgres: skipped (set BENCH_DATABASE_URL or TEST_DATABASE_URL)"
      continue
    fi
    start_serve "$backend"
    run "$backend-a-$CONNECTIONS" "serve/$backend (a) signed, filters do not match" "$SERVE_URL" "$MISMATCH" "$SIG_MISMATCH" "${pids[-1]}"
    run "$backend-b-$CONNECTIONS" "serve/$backend (b) signed, starts the pipeline (execution recorded)" "$SERVE_URL" "$MATCH" "$SIG_MATCH" "${pids[-1]}"
    echo "executions listed: $(api ListPipelineExecutions '{"pipelineName": "hello-world-pipeline", "maxResults": 1}' | head -c 80)"
    stop_last
    if [ "$PLUS" = 1 ]; then
      start_serve "$backend" --on-trigger /bin/true
      run "$backend-bplus-$CONNECTIONS" "serve/$backend (b+) signed, starts the pipeline, --on-trigger /bin/true" "$SERVE_URL" "$MATCH" "$SIG_MATCH" "${pids[-1]}"
      stop_last
    fi
  done
  # webhook last: its (b) run leaves /bin/true processes starting for a while after wrk stops,
  # which took CPU from whatever ran next (seen: serve/sqlite (a) at half its rate).
  run "webhook-a-$CONNECTIONS" "webhook (a) signed, rule not satisfied" "$HOOK_URL" "$MISMATCH" "$SIG_MISMATCH" "$WEBHOOK_PID"
  run "webhook-b-$CONNECTIONS" "webhook (b) signed, rule satisfied (runs /bin/true)" "$HOOK_URL" "$MATCH" "$SIG_MATCH" "$WEBHOOK_PID"
  settle
done

echo
echo "##### summary: requests/s (p99), and serve's ratios to webhook and to the floor, same run"
printf "%-6s %-14s %-22s %-22s %-22s %-10s %-10s %s\n" conns "case" "serve req/s (p99)" "webhook" "floor" "×webhook" "÷floor" "CPU us/req serve/webhook/floor"
for c in $ALL_CONNECTIONS; do
  for backend in $BACKENDS; do
    for case in a b; do
      [ -n "${RPS[$backend-$case-$c]:-}" ] || continue
      printf "%-6s %-14s %-22s %-22s %-22s %-10s %-10s %s\n" "$c" "$backend ($case)" \
        "${RPS[$backend-$case-$c]} (${P99[$backend-$case-$c]})" \
        "${RPS[webhook-$case-$c]:-} (${P99[webhook-$case-$c]:-})" \
        "${RPS[floor-$case-$c]:-} (${P99[floor-$case-$c]:-})" \
        "$(ratio "$backend-$case-$c" "webhook-$case-$c")" "$(ratio "$backend-$case-$c" "floor-$case-$c")" \
        "${CPU[$backend-$case-$c]:-}/${CPU[webhook-$case-$c]:-}/${CPU[floor-$case-$c]:-}"
    done
  done
done
