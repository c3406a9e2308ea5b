-- Gives tokens back: the undo of token_bucket.lua's spend, for fred-cluster
-- when a later slot of a multi-limit request denied it (keys in different
-- cluster slots cannot share one script call).
--
-- KEYS[i]    bucket i, holding its theoretical arrival time (tat) in µs
-- ARGV[i]    microseconds to give back to bucket i: spent tokens × interval
-- ARGV[N+1]  optional "now" in microseconds: tests only; otherwise Redis TIME
-- Returns    N
--
-- GCRA: a spend moved `tat` forward by cost·T, so the refund moves it back
-- by as much, but never below now (a tat at or below now is a full bucket:
-- the key is deleted, as an absent key means the same). Requests decided in
-- between saw fewer tokens than they would have, never more: a refund can
-- make the store under-admit for a moment, never over-admit.

local n = #KEYS
local now
if ARGV[n + 1] then
  now = tonumber(ARGV[n + 1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end

for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if tat > now then
    local new_tat = math.max(tat - tonumber(ARGV[i]), now)
    if new_tat > now then
      local ttl_ms = math.floor((new_tat - now) / 1000) + 1000
      redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', ttl_ms)
    else
      redis.call('DEL', KEYS[i])
    end
  end
end

return n
