-- Tally token bucket: the Redis twin of tally_core::token_bucket::decide.
--
-- It must compute exactly what the Rust function computes, in the same order, so a
-- differential test can compare them bit for bit. Every value is an integer below 2^53
-- (Rust validates the parameters), so double arithmetic here is exact; divisions are made
-- exact by floor_div / ceil_div below. See the Rust module's docs for the whole argument.
--
-- KEYS[1]  the bucket: a string "<level> <last>": the level in scaled units (one token =
--          refill_period_ms units) and the ms up to which refill was credited. One GET and
--          one SET with its expiry, so a decision costs three commands with TIME.
-- ARGV[1]  capacity (tokens)
-- ARGV[2]  refill_tokens (scaled units gained per ms)
-- ARGV[3]  refill_period_ms
-- ARGV[4]  cost (tokens)
-- ARGV[5]  optional "now" in ms, for tests; absent or empty means the server's TIME.
--
-- Returns a flat array of integers:
--   { status, remaining, retry_after_ms, reset_ms, level_units, last_ms }
-- status: 1 allowed, 0 denied, -1 cost exceeds capacity (nothing read or written, the
-- other fields are 0). The key expires KEY_GRACE_MS after the bucket would be full again:
-- a missing key means a full bucket, so expiry loses nothing.

local KEY_GRACE_MS = 1000

local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
if not capacity or not rate or not period or not cost
    or capacity < 1 or rate < 1 or period < 1 or cost < 0 then
  return redis.error_reply('ERR tally token bucket: invalid arguments')
end

-- floor(a / b) for integers a >= 0, b >= 1, a + b <= 2^53: the double quotient is at
-- most one away from the true one, so one correction step makes it exact. (Within the
-- 2^52 bound the quotient never rounds up to the next integer; the step keeps the
-- function exact by construction rather than by that argument.)
local function floor_div(a, b)
  local q = math.floor(a / b)
  if q * b > a then
    q = q - 1
  elseif (q + 1) * b <= a then
    q = q + 1
  end
  return q
end

local function ceil_div(a, b)
  local q = floor_div(a, b)
  if q * b < a then
    q = q + 1
  end
  return q
end

if cost > capacity then
  return { -1, 0, 0, 0, 0, 0 }
end

local now
if ARGV[5] and ARGV[5] ~= '' then
  now = tonumber(ARGV[5])
else
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

local capacity_units = capacity * period
local stored = redis.call('GET', KEYS[1])
local level, last = nil, nil
if stored then
  local l, t = string.match(stored, '^(%d+) (%d+)$')
  level, last = tonumber(l), tonumber(t)
end
if level == nil or last == nil then
  level = capacity_units
  last = now
end
if level > capacity_units then
  level = capacity_units
end
if level < 0 then
  level = 0
end

local elapsed = 0
if now > last then
  elapsed = now - last
end
local missing = capacity_units - level
if elapsed * rate >= missing then
  level = capacity_units
else
  level = level + elapsed * rate
end
last = now

local cost_units = cost * period
local allowed = 0
local retry_after_ms = 0
if level >= cost_units then
  level = level - cost_units
  allowed = 1
else
  retry_after_ms = ceil_div(cost_units - level, rate)
end
local remaining = floor_div(level, period)
local reset_ms = ceil_div(capacity_units - level, rate)

redis.call('SET', KEYS[1], string.format('%.0f %.0f', level, last),
  'PX', string.format('%.0f', reset_ms + KEY_GRACE_MS))
return { allowed, remaining, retry_after_ms, reset_ms, level, last }
