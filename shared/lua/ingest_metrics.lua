-- Stores metric samples of one or more types on this shard, together with their pre-aggregated
-- buckets, in one atomic step. The layout is described in tally_core::metric_store.
--
-- KEYS[1]      the shard's set of recent samples of every type
-- KEYS[4k-2 .. 4k+1] per type, in ARGV order: its all-time bucket, minute ring, hour ring
--              (strings of packed buckets) and its samples set
-- ARGV[1..5]   samples kept per type, recent samples kept, minute ring size, hour ring size,
--              how long (ms) a type's keys outlive its last ingest
-- then per type: type, n, n pairs (timestamp ms, value), and the batch's buckets packed and
--                concatenated: the all-time bucket, its minute buckets, its hour buckets
--                (each in ascending index order)
-- A packed bucket is 56 bytes, little-endian: index, count (64-bit integers), sum, min, max
-- (doubles), latest_ms (64-bit integer), latest (double). A slot whose count is 0 is empty.
-- Reply: the number of samples stored.

local SLOT = 56
local FORMAT = '<i8i8dddi8d'

local keep = tonumber(ARGV[1])
local recent_keep = tonumber(ARGV[2])
local minute_ring = tonumber(ARGV[3])
local hour_ring = tonumber(ARGV[4])
local retention_ms = ARGV[5]

-- A bucket may be written only while its ring slot cannot hold one a summary still reads:
-- at most (ring - window) buckets ahead of the server's clock.
local now = tonumber(redis.call('TIME')[1])
local minute_newest = math.floor(now / 60) + minute_ring - 60
local hour_newest = math.floor(now / 3600) + hour_ring - 24

local function unpack_bucket(bytes, at)
  local i, c, s, mn, mx, lt, lv = struct.unpack(FORMAT, bytes, at)
  return {i = i, c = c, s = s, mn = mn, mx = mx, lt = lt, lv = lv}
end

local function pack_bucket(b)
  return struct.pack(FORMAT, b.i, b.c, b.s, b.mn, b.mx, b.lt, b.lv)
end

-- Folds `new` (later samples) into `old`: a later sample wins a tie for latest.
local function merge(old, new)
  old.c = old.c + new.c
  old.s = old.s + new.s
  if new.mn < old.mn then old.mn = new.mn end
  if new.mx > old.mx then old.mx = new.mx end
  if new.lt >= old.lt then
    old.lt = new.lt
    old.lv = new.lv
  end
  return old
end

-- Folds the packed buckets of `incoming` (from byte `from` to byte `to`) into the ring of
-- `size` slots at `key`, creating it at its full size. Buckets newer than `newest` are left
-- out. Returns the ring as it was before.
local function fold(key, size, newest, incoming, from, to)
  local ring = redis.call('GET', key)
  if not ring then
    ring = string.rep('\0', size * SLOT)
    redis.call('SET', key, ring)
  end
  local written = {}
  for at = from, to, SLOT do
    local new = unpack_bucket(incoming, at)
    if new.i <= newest then
      local offset = (new.i % size) * SLOT
      local old = written[offset] or unpack_bucket(ring, offset + 1)
      local out
      if old.c == 0 or old.i < new.i then
        out = new
      elseif old.i == new.i then
        out = merge(old, new)
      end
      -- otherwise the slot already holds a newer bucket: this one has left the ring.
      if out then written[offset] = out end
    end
  end
  for offset, bucket in pairs(written) do
    redis.call('SETRANGE', key, offset, pack_bucket(bucket))
  end
  return ring
end

local at, key_at, stored = 6, 2, 0
local recent = {}
while at <= #ARGV do
  local metric_type = ARGV[at]
  local n = tonumber(ARGV[at + 1])
  local first = at + 2
  local all_key, minutes_key, hours_key, set =
    KEYS[key_at], KEYS[key_at + 1], KEYS[key_at + 2], KEYS[key_at + 3]
  key_at = key_at + 4
  local all, minutes, hours = ARGV[first + 2 * n], ARGV[first + 2 * n + 1], ARGV[first + 2 * n + 2]
  at = first + 2 * n + 3

  local before = fold(all_key, 1, 0, all, 1, SLOT)
  local base = unpack_bucket(before, 1).c
  fold(minutes_key, minute_ring, minute_newest, minutes, 1, #minutes)
  fold(hours_key, hour_ring, hour_newest, hours, 1, #hours)

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
  for _, key in ipairs({all_key, minutes_key, hours_key, set}) do
    redis.call('PEXPIRE', key, retention_ms)
  end
  stored = stored + n
end

if #recent > 0 then
  redis.call('ZADD', KEYS[1], unpack(recent))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(recent_keep + 1))
  redis.call('PEXPIRE', KEYS[1], retention_ms)
end
return stored
