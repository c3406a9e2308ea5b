-- A holder renews (or asks for) its rate share of one bucket: the Lua
-- mirror of rateguard_core::share::Stored::grant and Ledger::grant
-- (ledger.lua is prepended). A plain bucket becomes a ledger.
--
-- KEYS[1]  the bucket's key (plain tat, or the seal while it has shares)
-- KEYS[2]  its share ledger ("<key>:shares")
-- ARGV     interval_us, capacity, holder id, demand (parts of 1000),
--          ttl_us, margin_us, full (1: the holder restarts its bucket
--          full on a change, 0: it carries it over), optional "now" in µs
--          (tests only; otherwise Redis TIME)
-- Returns  {parts, burst, added, fresh (0|1)}: see ShareGrant.

local interval = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local holder = ARGV[3]
local demand = math.min(tonumber(ARGV[4]), PARTS)
local ttl = tonumber(ARGV[5])
local full = ARGV[7] == '1'
local now = now_from(ARGV[8])
local fill = capacity * interval

local l = load_ledger(KEYS[2])
if not l then
  local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
  l = {debt = math.min(math.max(tat - now, 0), fill), at = now, margin = 0, holders = {}, count = 0}
end
l.margin = tonumber(ARGV[6])
advance(l, now, interval, fill)

local rec = l.holders[holder]
if rec then
  l.holders[holder] = nil
  l.count = l.count - 1
elseif l.count >= MAX_HOLDERS then
  write_ledger(l, KEYS[1], KEYS[2], now, fill)
  return {0, 0, 0, 0}
else
  rec = {demand = 0, full = false, pending = 0, steps = {}}
end

-- One step reserving at least what a and b did.
local function merge_max(a, b)
  return {math.max(a[1], b[1]), math.max(a[2], b[2]), math.max(a[3], b[3])}
end

if full and not rec.full then
  -- Its grants so far were one bucket carried over: one step.
  local merged = rec.steps[1]
  for i = 2, #rec.steps do
    merged = merge_max(merged, rec.steps[i])
  end
  rec.steps = {merged}
  rec.full = true
end

-- water_level: the max-min fair level of the demands.
local demands = {}
for _, h in pairs(l.holders) do
  demands[#demands + 1] = h.demand
end
demands[#demands + 1] = demand
table.sort(demands)
-- Full holders share all but FULL_SLACK parts (see FULL_SLACK_PARTS).
local pool = PARTS
if full then
  pool = PARTS - FULL_SLACK
end
local level = math.huge
local remaining = pool
for i = 1, #demands do
  local share = idiv(remaining, #demands - i + 1)
  if demands[i] > share then
    level = share
    break
  end
  remaining = remaining - demands[i]
end

local parts = math.max(math.min(demand, level, pool - math.min(reserved_parts(l), PARTS)), 0)
local target = 0
if parts > 0 then
  local divisor = PARTS
  if full then
    divisor = PARTS * FULL_BURST_DIVISOR
  end
  target = math.max(idiv(capacity * parts, divisor), 1)
end
local room = math.max(idiv(fill - math.min(l.debt, fill), interval) - pending(l), 0)
local cap = math.max(capacity - reserved_burst(l), 0)
local held = holder_burst(rec)
local expires = now + ttl
local last = rec.steps[#rec.steps]
-- What a new bucket of a full holder could hold now.
local new_bucket = math.min(target, math.max(cap - held, 0), room)
local burst, added, fresh
-- keeps(): see rateguard_core::share::ledger::keeps.
local keep = false
if rec.full and last and last[2] > 0 then
  local same = last[1] == parts and last[2] == target
  local short = new_bucket < target and last[1] <= parts
    and (last[1] == parts or new_bucket < last[2])
  keep = same or short
end
if keep then
  -- The holder keeps its bucket (extended).
  last[3] = math.max(last[3], expires)
  parts = last[1]
  burst, added, fresh = last[2], 0, false
elseif rec.full then
  -- A new bucket, reserved beside the old ones.
  burst = new_bucket
  added, fresh = burst, burst > 0
else
  burst = math.min(target, cap, held + room)
  added, fresh = math.max(burst - held, 0), false
end
if burst == 0 then
  parts = 0
end
local unchanged = rec.full and not fresh and added == 0 and parts > 0
if not unchanged then
  if not rec.full then
    local kept = {}
    for _, s in ipairs(rec.steps) do
      if s[1] > parts or s[2] > burst then
        kept[#kept + 1] = s
      end
    end
    rec.steps = kept
  end
  rec.steps[#rec.steps + 1] = {parts, burst, expires}
end
while #rec.steps > MAX_STEPS do
  local oldest = table.remove(rec.steps, 1)
  local merged = merge_max(oldest, rec.steps[1])
  if rec.full then
    merged[2] = oldest[2] + rec.steps[1][2]
  end
  rec.steps[1] = merged
end
rec.demand = demand
rec.pending = math.max(target - burst, 0)
l.debt = l.debt + added * interval
l.holders[holder] = rec
l.count = l.count + 1
write_ledger(l, KEYS[1], KEYS[2], now, fill)
return {parts, burst, added, fresh and 1 or 0}
