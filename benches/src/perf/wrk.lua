-- rateguard-perf's wrk script. Arguments (after --): MIX KEYS THREADS S
--   per-thread  one API key per wrk thread (perf-client-<thread>)
--   hot         one API key (perf-hot) on every connection
--   zipf        per request, perf-key-<k> for rank k of KEYS drawn with
--               weight k^-S (seeded per thread: every run sends the same)
--   uniform     per request, the next key of this thread's share of KEYS
--               (keys t, t + THREADS, t + 2 THREADS, ...) in a scrambled
--               cyclic order: each key equally often, the share walked once
--               before any key repeats
-- The single-key mixes leave request() undefined, so wrk builds the request
-- once; the mixes pick a key and send its request text, built on the key's
-- first use and kept in a table, so the per-request cost is a counter and
-- a table lookup (plus one random number and a binary search for zipf).
-- init() stays short (wrk starts each thread right after its init(), and
-- times the run from after the last one). done() prints the run's figures as one JSON
-- line after a marker, with how many requests each thread sent. wrk counts
-- every response above 399 in summary.errors.status (no response() hook: a
-- Lua call per response would cost the load generator its share of the
-- cores).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- Requests sent by this thread (read by done() through thread:get).
sent = 0
local pick, head, tail
local prepared = {}

local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end

-- The request text around the API key, from wrk's own formatting.
local function template()
  wrk.headers["x-api-key"] = "@KEY@"
  head, tail = wrk.format():match("^(.-)@KEY@(.*)$")
end

local function zipf(keys, s)
  template()
  local cdf, total = {}, 0
  for k = 1, keys do
    total = total + k ^ -s
    cdf[k] = total
  end
  for k = 1, keys do cdf[k] = cdf[k] / total end
  math.randomseed(id)
  return function()
    local u, lo, hi = math.random(), 1, keys
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < u then lo = mid + 1 else hi = mid end
    end
    return lo
  end
end

local function uniform(keys, nthreads)
  template()
  local share = math.floor((keys - id) / nthreads) + 1
  -- j -> j * step mod share visits each of the thread's keys once per cycle.
  local step = math.floor(share * 0.618) + 1
  while gcd(step, share) ~= 1 do step = step + 1 end
  local j = -1
  return function()
    j = j + 1
    return id + ((j * step) % share) * nthreads
  end
end

function init(args)
  local mix, keys, nthreads, s = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  if mix == "zipf" then
    pick = zipf(keys, s)
  elseif mix == "uniform" then
    pick = uniform(keys, nthreads)
  else
    if mix == "hot" then
      wrk.headers["x-api-key"] = "perf-hot"
    else
      wrk.headers["x-api-key"] = "perf-client-" .. id
    end
    request = nil
  end
end

function request()
  sent = sent + 1
  local k = pick()
  local text = prepared[k]
  if not text then
    text = head .. "perf-key-" .. k .. tail
    prepared[k] = text
  end
  return text
end

function done(summary, latency, requests)
  local e = summary.errors
  local per_thread = {}
  for i, thread in ipairs(threads) do
    per_thread[i] = string.format("%d", thread:get("sent") or 0)
  end
  io.write(string.format(
    'RATEGUARD_PERF_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"status_over_399":%d,' ..
    '"sent":[%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status, table.concat(per_thread, ",")))
end
