-- GCRA token bucket: the Lua mirror of rateguard_core::bucket::acquire_batch.
-- Keep the two in step: same integer microseconds, same order of operations.
--
-- KEYS[1]  the bucket key (rl:{policy:client-hash}); holds the theoretical
--          arrival time (tat) in microseconds; absent means 0 (full).
-- ARGV[1]  interval_us: microseconds to refill one token
-- ARGV[2]  capacity
-- ARGV[3]  cost of each request
-- ARGV[4]  count: requests of `cost` arriving together (the first are allowed)
-- ARGV[5]  optional "now" in microseconds: tests only; otherwise Redis TIME,
--          one clock for every gateway replica.
-- Returns  {allowed, backlog_us}: how many of the `count` were allowed, and
--          max(tat - now, 0) capped at the fill time, before the batch. The
--          caller rebuilds every Decision from these with the Rust core.
--
-- Numbers are doubles; Quota keeps every value below 2^53, so the integer
-- arithmetic here is exact, and math.floor makes the one division integral.
-- A denial writes nothing, so denials can never speed up refill.

local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local count = tonumber(ARGV[4])

local now
if ARGV[5] then
  now = tonumber(ARGV[5])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local fill = capacity * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local backlog = math.min(math.max(tat - now, 0), fill)

local allowed
if cost == 0 then
  allowed = count
else
  local free = fill - backlog
  local per_request = cost * interval
  allowed = math.min(math.floor(free / per_request), count)
end

if allowed > 0 then
  local spent = allowed * cost * interval
  local new_tat = now + backlog + spent
  -- Keep the key until it is full again (then it equals an absent key),
  -- plus a second of slack; idle keys disappear by themselves.
  local ttl_ms = math.floor((backlog + spent) / 1000) + 1000
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
end

return {allowed, backlog}
