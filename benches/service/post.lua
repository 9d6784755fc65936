-- wrk script: POST one signed GitHub delivery, with a fresh X-GitHub-Delivery per request (so the
-- service's duplicate check never short-cuts a trigger, and each trigger records its id), or with
-- none (DELIVERY_ID=none: no duplicate check, the condition issue 17's figures were taken in).
-- A fresh id is a random GUID, as GitHub's are (DELIVERY_ID=counter: "<time>-<thread>-<n>", ids
-- that sort nearly in arrival order, which a database indexes more cheaply than real ones).
-- Environment: BODY_FILE (the exact bytes signed), SIGNATURE ("sha256=<hex>"), EVENT (default push),
-- DELIVERY_ID (fresh, the default; counter; or none).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local signature = os.getenv("SIGNATURE")
local event = os.getenv("EVENT") or "push"
local mode = os.getenv("DELIVERY_ID") or "fresh"
local fresh_ids = mode ~= "none"
local counter_ids = mode == "counter"
local counter = 0
-- Set per thread by setup(): a global, so that each thread's Lua state sees its own.
prefix = ""
seed = 0

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("prefix", string.format("%d-%d", os.time(), threads))
  thread:set("seed", os.time() * 100 + threads)
end

function init(args)
  math.randomseed(seed)
end

-- A version 4 GUID, from 16-bit pieces (math.random's range is safe there).
local function guid()
  local r = math.random
  return string.format("%04x%04x-%04x-4%03x-%04x-%04x%04x%04x",
    r(0, 0xffff), r(0, 0xffff), r(0, 0xffff), r(0, 0xfff), 0x8000 + r(0, 0x3fff),
    r(0, 0xffff), r(0, 0xffff), r(0, 0xffff))
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
    headers["X-GitHub-Delivery"] = counter_ids and (prefix .. "-" .. counter) or guid()
  end
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
