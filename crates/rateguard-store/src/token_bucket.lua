-- GCRA token buckets, all or nothing over N limits: the Lua mirror of
-- rateguard_core::multi::acquire_all (and, per key, of
-- rateguard_core::bucket::acquire_batch). Keep them in step: same integer
-- microseconds, same order of operations.
--
-- KEYS[i]       bucket i (rl:{policy:hash} or rl:{policy/limit:hash}); holds
--               its theoretical arrival time (tat) in microseconds; absent
--               means 0 (full). Callers pass distinct keys.
-- ARGV[4i-3..4i] for bucket i: interval_us (microseconds to refill one
--               token), capacity, cost of each request, enforced (1, or 0
--               for a shadow limit that never denies)
-- ARGV[4N+1]    count: identical requests arriving together (the first
--               ones are allowed)
-- ARGV[4N+2]    optional "now" in microseconds: tests only; otherwise Redis
--               TIME, one clock for every gateway replica.
-- Returns       {allowed, backlog_1, ..., backlog_N}: how many of the
--               `count` were allowed, and per bucket max(tat - now, 0) capped
--               at its fill time, before the batch. The caller rebuilds every
--               Decision from these with the Rust core.
--
-- First every bucket is read and checked, then the allowed requests are
-- written to every bucket they fit, or nothing at all: a request denied by
-- one enforced limit spends nothing on any bucket, and a denial writes
-- nothing, so denials can never speed up refill.
--
-- Numbers are doubles; Quota keeps every value below 2^53, so the integer
-- arithmetic here is exact, and math.floor makes the one division integral.

local n = #KEYS
local count = tonumber(ARGV[4 * n + 1])

local now
if ARGV[4 * n + 2] then
  now = tonumber(ARGV[4 * n + 2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

-- Check: each bucket's backlog and how many requests fit in it.
local interval, cost, backlog, fit = {}, {}, {}, {}
local allowed = count
for i = 1, n do
  interval[i] = tonumber(ARGV[4 * i - 3])
  local capacity = tonumber(ARGV[4 * i - 2])
  cost[i] = tonumber(ARGV[4 * i - 1])
  local fill = capacity * interval[i]
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  backlog[i] = math.min(math.max(tat - now, 0), fill)
  if cost[i] == 0 then
    fit[i] = count
  else
    local free = fill - backlog[i]
    local per_request = cost[i] * interval[i]
    fit[i] = math.min(math.floor(free / per_request), count)
  end
  if ARGV[4 * i] == '1' then
    allowed = math.min(allowed, fit[i])
  end
end

-- Write: the allowed requests spend on every bucket they fit (a shadow
-- bucket that is full spends on fewer); nothing is written on a denial.
local reply = {allowed}
for i = 1, n do
  local spend = math.min(fit[i], allowed)
  if spend > 0 then
    local spent = spend * cost[i] * interval[i]
    local new_tat = now + backlog[i] + spent
    -- Keep the key until it is full again (then it equals an absent key),
    -- plus a second of slack; idle keys disappear by themselves.
    local ttl_ms = math.floor((backlog[i] + spent) / 1000) + 1000
    redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', ttl_ms)
  end
  reply[i + 1] = backlog[i]
end

return reply
