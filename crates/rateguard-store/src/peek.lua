-- A bucket read without spending: the Lua mirror of rateguard_core::peek::peek.
-- Keep them in step: same integer microseconds, same order of operations.
--
-- KEYS[1]   the bucket (as in token_bucket.lua); absent means tat 0 (full)
-- ARGV[1]   interval_us (microseconds to refill one token)
-- ARGV[2]   capacity
-- ARGV[3]   optional "now" in microseconds: tests only; otherwise Redis TIME
-- Returns   {capacity, remaining, reset_after_us, retry_after_us}; writes
--           nothing (a read-only script: safe on replicas, never spends).

local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])

local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local fill = capacity * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local backlog = math.min(math.max(tat - now, 0), fill)
local remaining = math.floor((fill - backlog) / interval)
-- Capacity is at least 1, so cost 1 always fits eventually.
local retry_after = math.max(backlog + interval - fill, 0)

return {capacity, remaining, backlog, retry_after}
