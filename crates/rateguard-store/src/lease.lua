-- One request over N buckets, all or nothing, that may also lease tokens
-- to the caller: the Lua mirror of rateguard_core::lease::acquire_all
-- (ledger.lua is prepended). With nothing wanted it decides exactly as
-- token_bucket.lua does; a bucket that has rate shares is decided on its
-- ordinary part.
--
-- KEYS[2i-1]     bucket i's key (plain tat, or a seal while it has shares)
-- KEYS[2i]       bucket i's share ledger ("<key>:shares")
-- ARGV[5i-4..5i] for bucket i: interval_us, capacity, cost, enforced (1,
--                or 0 for a shadow limit), want (tokens to lease on top)
-- ARGV[5N+1]     optional "now" in µs: tests only; otherwise Redis TIME
-- Returns        {allowed, (backlog_i, queued_i, granted_i) for each i}:
--                the debt each bucket showed, the part of it below any
--                grant (the caller's lease ends after that has drained),
--                and the tokens leased. The caller rebuilds every decision
--                with the Rust core and checks it agrees.
--
-- Every bucket is read and checked first, then written only if something
-- was taken from it: a denied request takes nothing and is granted nothing.

local n = #KEYS / 2
local now = now_from(ARGV[5 * n + 1])

local interval, cost, want, fill, ledger, backlog, queued = {}, {}, {}, {}, {}, {}, {}
local allowed = true
for i = 1, n do
  interval[i] = tonumber(ARGV[5 * i - 4])
  cost[i] = tonumber(ARGV[5 * i - 2])
  want[i] = tonumber(ARGV[5 * i])
  fill[i] = tonumber(ARGV[5 * i - 3]) * interval[i]
  ledger[i] = load_ledger(KEYS[2 * i])
  if ledger[i] then
    backlog[i], queued[i] = ledger_debt(ledger[i], now, interval[i], fill[i])
  else
    local tat = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0') or 0
    backlog[i] = math.min(math.max(tat - now, 0), fill[i])
    queued[i] = backlog[i]
  end
  if ARGV[5 * i - 1] == '1' and backlog[i] + cost[i] * interval[i] > fill[i] then
    allowed = false
  end
end

local reply = {allowed and 1 or 0}
for i = 1, n do
  local spent = allowed and backlog[i] + cost[i] * interval[i] <= fill[i]
  local after = backlog[i]
  local taken = 0
  if spent then
    after = after + cost[i] * interval[i]
    taken = cost[i]
  end
  local granted = 0
  if allowed then
    granted = math.min(idiv(fill[i] - after, interval[i]), want[i])
  end
  taken = taken + granted
  if taken > 0 then
    local l = ledger[i]
    if l then
      advance(l, now, interval[i], fill[i])
      l.debt = l.debt + taken * interval[i]
      if l.count == 0 then
        -- Every share has expired: plain again.
        redis.call('DEL', KEYS[2 * i])
        write_plain(KEYS[2 * i - 1], l.at + l.debt, now)
      else
        write_ledger(l, KEYS[2 * i - 1], KEYS[2 * i], now, fill[i])
      end
    else
      write_plain(KEYS[2 * i - 1], now + backlog[i] + taken * interval[i], now)
    end
  end
  reply[#reply + 1] = backlog[i]
  reply[#reply + 1] = queued[i]
  reply[#reply + 1] = granted
end
return reply
