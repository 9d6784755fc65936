-- wrk script: POST one signed GitHub delivery, with a fresh X-GitHub-Delivery per request (so the
-- service's duplicate check never short-cuts a trigger, and each trigger records its id), or with
-- none (DELIVERY_ID=none: no duplicate check, the condition issue 17's figures were taken in).
-- Environment: BODY_FILE (the exact bytes signed), SIGNATURE ("sha256=<hex>"), EVENT (default push),
-- DELIVERY_ID (fresh, the default, or none).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local signature = os.getenv("SIGNATURE")
local event = os.getenv("EVENT") or "push"
local fresh_ids = os.getenv("DELIVERY_ID") ~= "none"
local counter = 0
-- Set per thread by setup(): a global, so that each thread's Lua state sees its own.
prefix = ""

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("%d-%d", os.time(), threads))
end

function request()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = event,
    ["X-Hub-Signature-256"] = signature,
    ["User-Agent"] = "GitHub-Hookshot/bench",
  }
  if fresh_ids then
    headers["X-GitHub-Delivery"] = prefix .. "-" .. counter
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
