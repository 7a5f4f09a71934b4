-- Stores metric samples of one or more types on this shard, together with their pre-aggregated
-- buckets, in one atomic step. The layout is described in tally_core::metric_store.
--
-- KEYS[1]      the shard's set of recent samples of every type
-- KEYS[2k, 2k+1] per type, in ARGV order: its aggregates hash and its samples set
-- ARGV[1..5]   samples kept per type, recent samples kept, minute ring size, hour ring size,
--              how long (ms) a type's keys outlive its last ingest
-- then per type: type, n, n pairs (timestamp ms, value), the batch's all-time bucket,
--                m, m minute buckets, h, h hour buckets (each in ascending index order)
-- A bucket is "index count sum min max latest_ms latest". Reply: the number of samples stored.

local keep = tonumber(ARGV[1])
local recent_keep = tonumber(ARGV[2])
local minute_ring = tonumber(ARGV[3])
local hour_ring = tonumber(ARGV[4])
local retention_ms = ARGV[5]

-- A bucket may be written only while its ring slot cannot hold one a summary still reads:
-- at most (ring - window) buckets ahead of the server's clock.
local now = tonumber(redis.call('TIME')[1])
local rings = {
  {prefix = 'm', size = minute_ring, newest = math.floor(now / 60) + minute_ring - 60},
  {prefix = 'h', size = hour_ring, newest = math.floor(now / 3600) + hour_ring - 24},
}

local function parse(text)
  local i, c, s, mn, mx, lt, lv =
    string.match(text, '^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%S+)$')
  return {i = tonumber(i), c = tonumber(c), s = tonumber(s), mn = mn, mx = mx,
          lt = tonumber(lt), lv = lv}
end

local function encode(b)
  return string.format('%.0f %.0f %.17g %s %s %.0f %s', b.i, b.c, b.s, b.mn, b.mx, b.lt, b.lv)
end

-- Folds `new` (later samples) into `old`: a later sample wins a tie for latest.
local function merge(old, new)
  old.c = old.c + new.c
  old.s = old.s + new.s
  if tonumber(new.mn) < tonumber(old.mn) then old.mn = new.mn end
  if tonumber(new.mx) > tonumber(old.mx) then old.mx = new.mx end
  if new.lt >= old.lt then
    old.lt = new.lt
    old.lv = new.lv
  end
  return old
end

local at, key_at, stored = 6, 2, 0
local recent = {}
while at <= #ARGV do
  local metric_type = ARGV[at]
  local n = tonumber(ARGV[at + 1])
  local first = at + 2
  at = first + 2 * n
  local hash, set = KEYS[key_at], KEYS[key_at + 1]
  key_at = key_at + 2

  local fields, incoming = {'all'}, {parse(ARGV[at])}
  at = at + 1
  for _, ring in ipairs(rings) do
    local count = tonumber(ARGV[at])
    for j = at + 1, at + count do
      local bucket = parse(ARGV[j])
      if bucket.i <= ring.newest then
        fields[#fields + 1] = ring.prefix .. (bucket.i % ring.size)
        incoming[#incoming + 1] = bucket
      end
    end
    at = at + count + 1
  end

  local current = redis.call('HMGET', hash, unpack(fields))
  local base = 0
  local writes = {}
  for j, new in ipairs(incoming) do
    local old = current[j] and parse(current[j])
    if j == 1 and old then base = old.c end
    local out
    if not old or old.i < new.i then
      out = new
    elseif old.i == new.i then
      out = merge(old, new)
    end
    -- otherwise the slot already holds a newer bucket: this one has left the ring.
    if out then
      writes[#writes + 1] = fields[j]
      writes[#writes + 1] = encode(out)
    end
  end
  redis.call('HSET', hash, unpack(writes))

  -- Members are unique (the type's sequence number) and keep the value as it was sent.
  local members = {}
  for k = 0, n - 1 do
    local timestamp, value = ARGV[first + 2 * k], ARGV[first + 2 * k + 1]
    local member = string.format('%020.0f', base + k + 1) .. ':' .. value
    members[#members + 1] = timestamp
    members[#members + 1] = member
    recent[#recent + 1] = timestamp
    recent[#recent + 1] = metric_type .. ':' .. member
  end
  redis.call('ZADD', set, unpack(members))
  redis.call('ZREMRANGEBYRANK', set, 0, -(keep + 1))
  redis.call('PEXPIRE', hash, retention_ms)
  redis.call('PEXPIRE', set, retention_ms)
  stored = stored + n
end

if #recent > 0 then
  redis.call('ZADD', KEYS[1], unpack(recent))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(recent_keep + 1))
  redis.call('PEXPIRE', KEYS[1], retention_ms)
end
return stored
