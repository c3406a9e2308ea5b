-- The rate-share ledger: the Lua mirror of rateguard_core::share::Ledger
-- and ::Stored, prepended to lease.lua and share.lua (one script each,
-- loaded once and called by SHA). Keep it in step with the Rust: same
-- integer microseconds, same order of operations.
--
-- A bucket is either plain (KEYS: its key holds the GCRA tat, exactly as
-- token_bucket.lua keeps it) or, while it has rate shares, a ledger: the
-- hash at "<key>:shares" (same hash tag, same Cluster slot) with fields
--   debt    the ordinary part's debt (µs) at `at`
--   at      store time of the last write
--   margin  clock margin: a step is reserved until expires + margin
--   h:<id>  "<demand> <full 0|1> <pending> (<parts> <burst> <expires>)*"
-- and the plain key then holds a seal (a tat a full bucket beyond the
-- ledger's life) so that token_bucket.lua, which does not know shares,
-- sees an empty bucket and denies.
--
-- Numbers are doubles; Quota and MAX_DRAIN_STEP keep every value below
-- 2^53, and idiv corrects the one rounding a double division can make.

local PARTS = 1000
local FULL_SLACK = 50 -- rateguard_core::share::FULL_SLACK_PARTS
local FULL_BURST_DIVISOR = 2 -- rateguard_core::share::FULL_BURST_DIVISOR
local MAX_DRAIN_STEP = 9007199254740 -- floor(2^53 / PARTS)
local MAX_STEPS = 8
local MAX_HOLDERS = 128

-- floor(a / b) for non-negative integers below 2^53, exactly.
local function idiv(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function num(x)
  return string.format('%.0f', x)
end

-- "now": the test-only argument if given, else Redis TIME.
local function now_from(arg)
  if arg then
    return tonumber(arg)
  end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function parse_holder(value)
  local n = {}
  for x in string.gmatch(value, '%d+') do
    n[#n + 1] = tonumber(x)
  end
  local h = {demand = n[1], full = n[2] == 1, pending = n[3], steps = {}}
  for i = 4, #n, 3 do
    h.steps[#h.steps + 1] = {n[i], n[i + 1], n[i + 2]}
  end
  return h
end

local function format_holder(h)
  local parts = {num(h.demand), h.full and '1' or '0', num(h.pending)}
  for _, s in ipairs(h.steps) do
    parts[#parts + 1] = num(s[1]) .. ' ' .. num(s[2]) .. ' ' .. num(s[3])
  end
  return table.concat(parts, ' ')
end

-- The ledger in the hash `key`, or nil if there is none.
local function load_ledger(key)
  local f = redis.call('HGETALL', key)
  if #f == 0 then
    return nil
  end
  local l = {debt = 0, at = 0, margin = 0, holders = {}, count = 0}
  for i = 1, #f, 2 do
    local name, value = f[i], f[i + 1]
    if name == 'debt' then
      l.debt = tonumber(value)
    elseif name == 'at' then
      l.at = tonumber(value)
    elseif name == 'margin' then
      l.margin = tonumber(value)
    elseif string.sub(name, 1, 2) == 'h:' then
      l.holders[string.sub(name, 3)] = parse_holder(value)
      l.count = l.count + 1
    end
  end
  return l
end

-- Holder::rate: the largest of its steps' parts.
local function holder_rate(h)
  local r = 0
  for _, s in ipairs(h.steps) do
    r = math.max(r, s[1])
  end
  return r
end

-- Holder::burst: the largest of its steps' bursts, their sum if full.
local function holder_burst(h)
  local b = 0
  for _, s in ipairs(h.steps) do
    if h.full then
      b = b + s[2]
    else
      b = math.max(b, s[2])
    end
  end
  return b
end

local function reserved_parts(l)
  local r = 0
  for _, h in pairs(l.holders) do
    r = r + holder_rate(h)
  end
  return r
end

local function reserved_burst(l)
  local b = 0
  for _, h in pairs(l.holders) do
    b = b + holder_burst(h)
  end
  return b
end

local function pending(l)
  local p = 0
  for _, h in pairs(l.holders) do
    p = p + h.pending
  end
  return p
end

local function floor_us(l, interval, fill)
  return math.min(reserved_burst(l) * interval, fill)
end

-- Ledger::backlog_us: the ordinary part's debt at `now`.
local function ledger_backlog(l, now, interval, fill)
  local elapsed = math.min(math.max(now - l.at, 0), MAX_DRAIN_STEP)
  local free = PARTS - math.min(reserved_parts(l), PARTS)
  local drain = idiv(elapsed * free, PARTS)
  return math.min(math.max(l.debt - drain, floor_us(l, interval, fill)), fill)
end

-- Ledger::debt: what an ordinary decision sees (backlog, queued).
local function ledger_debt(l, now, interval, fill)
  local b = ledger_backlog(l, now, interval, fill)
  local eff = math.min(b + pending(l) * interval, fill)
  return eff, b - math.min(floor_us(l, interval, fill), b)
end

-- Ledger::advance: drain, then drop expired steps and empty holders.
local function advance(l, now, interval, fill)
  l.debt = ledger_backlog(l, now, interval, fill)
  l.at = math.max(l.at, now)
  for id, h in pairs(l.holders) do
    local kept = {}
    for _, s in ipairs(h.steps) do
      if s[3] + l.margin >= now then
        kept[#kept + 1] = s
      end
    end
    h.steps = kept
    if #kept == 0 then
      l.holders[id] = nil
      l.count = l.count - 1
    end
  end
end

-- Writes the ledger (written at `now`), its TTL (Ledger::ttl_ms) and the
-- seal on the plain key (Ledger::seal_us), a millisecond longer.
local function write_ledger(l, plain_key, ledger_key, now, fill)
  redis.call('DEL', ledger_key)
  local args = {'debt', num(l.debt), 'at', num(l.at), 'margin', num(l.margin)}
  local last = 0
  for id, h in pairs(l.holders) do
    args[#args + 1] = 'h:' .. id
    args[#args + 1] = format_holder(h)
    for _, s in ipairs(h.steps) do
      last = math.max(last, s[3] + l.margin)
    end
  end
  redis.call('HSET', ledger_key, unpack(args))
  local ttl_ms = idiv(math.max(last + fill - now, 0), 1000) + 1000
  redis.call('PEXPIRE', ledger_key, ttl_ms)
  redis.call('SET', plain_key, num(now + ttl_ms * 1000 + fill), 'PX', ttl_ms + 1)
end

-- A plain bucket's tat, as token_bucket.lua writes it.
local function write_plain(plain_key, tat, now)
  redis.call('SET', plain_key, num(tat), 'PX', idiv(tat - now, 1000) + 1000)
end
