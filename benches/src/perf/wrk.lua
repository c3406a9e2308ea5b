-- rateguard-perf's wrk script. Arguments (after --): "hot" sends one API key
-- on every connection (the deny-heavy case), anything else one key per wrk
-- thread. done() prints the run's figures as one JSON line after a marker,
-- so nothing reads wrk's text table. wrk counts every response with a
-- status above 399 in summary.errors.status (no response() hook: a Lua
-- call per response would cost the load generator its share of the cores).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  if args[1] == "hot" then
    wrk.headers["x-api-key"] = "perf-hot"
  else
    wrk.headers["x-api-key"] = "perf-client-" .. id
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RATEGUARD_PERF_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"status_over_399":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
