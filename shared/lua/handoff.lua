-- Step 1 of handing data over to the shard that owns it after a change of the shard list
-- (tally_core::reshard describes the three steps). On the shard the data leaves, atomically:
-- takes the live values of the given units off their keys into a new outbox,
-- `tally:out:<id>`, indexed per owner in `tally:outs:<owner>`, then returns every outbox of
-- these owners: the new one and any an earlier hand-off (a migrator or a request) left
-- unfinished. The caller has the destination absorb each (absorb_moved.lua, once per id) and
-- then deletes them here (release_moved.lua). An outbox is never lost: a hand-off killed at any
-- point leaves it for the next hand-off of any of its owners, or for the migrator.
--
-- ARGV[1] this shard's name, ARGV[2] the destination's name, ARGV[3] n, then n owners
--   (`p:<page>`, `t:<metric type>`, `s:<day>`), then per unit three values: how, key, member
--   ('' for a whole key). hows, and the kind absorb_moved.lua applies:
--   zscore   a member of a sorted set, added up (a page's count, its visits that day)  zincr
--   zmember  a member of a sorted set, the same either way (a recent metric sample)    zadd
--   hfield   a field of a hash, added up (a page's bot views that day)                hincr
--   hash     a whole hash, each field added up (a page's hours, the site's day)       hincr
--   zset     a whole sorted set, each member added up (the site's sources that day)   zincr
--   zunion   a whole sorted set, the same either way (a metric type's samples)        zadd
--   hll      a HyperLogLog (visitors)                                                 pfmerge
--   setnx    a string written once (a finished day's unique visitors)                 setnx
--   buckets  a string of packed metric buckets                                        buckets
-- Reply, flat and all strings: per outbox its id, destination and number of units, then per
-- unit five values: kind, key, member, value, expire-at in Unix ms ('' for none).
local source, dest, n_owners = ARGV[1], ARGV[2], tonumber(ARGV[3])
local owners = {}
for i = 1, n_owners do
  owners[i] = ARGV[3 + i]
end
local time = redis.call('TIME')
local now_ms = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)

local units = {}
local function expire_at(key)
  local ttl = redis.call('PTTL', key)
  if ttl > 0 then
    return tostring(now_ms + ttl)
  end
  return ''
end
local function add(kind, key, member, value, at)
  units[#units + 1] = kind
  units[#units + 1] = key
  units[#units + 1] = member
  units[#units + 1] = value
  units[#units + 1] = at
end

for i = 4 + n_owners, #ARGV, 3 do
  local how, key, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if how == 'zscore' or how == 'zmember' then
    local score = redis.call('ZSCORE', key, member)
    if score then
      add(how == 'zscore' and 'zincr' or 'zadd', key, member, score, expire_at(key))
      redis.call('ZREM', key, member)
    end
  elseif how == 'hfield' then
    local value = redis.call('HGET', key, member)
    if value then
      add('hincr', key, member, value, expire_at(key))
      redis.call('HDEL', key, member)
    end
  elseif how == 'hash' or how == 'zset' or how == 'zunion' then
    local flat
    if how == 'hash' then
      flat = redis.call('HGETALL', key)
    else
      flat = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
    end
    if #flat > 0 then
      local at = expire_at(key)
      local kind = ({hash = 'hincr', zset = 'zincr', zunion = 'zadd'})[how]
      for j = 1, #flat, 2 do
        add(kind, key, flat[j], flat[j + 1], at)
      end
      redis.call('DEL', key)
    end
  elseif how == 'hll' or how == 'setnx' or how == 'buckets' then
    local value = redis.call('GET', key)
    if value then
      add(how == 'hll' and 'pfmerge' or how, key, '', value, expire_at(key))
      redis.call('DEL', key)
    end
  else
    return redis.error_reply('ERR handoff: unknown how ' .. how)
  end
end

if #units > 0 then
  local id = source .. ':' .. now_ms .. ':' .. redis.call('INCR', 'tally:outseq')
  local box = 'tally:out:' .. id
  redis.call('RPUSH', box, dest, n_owners, unpack(owners))
  for j = 1, #units, 4000 do
    redis.call('RPUSH', box, unpack(units, j, math.min(j + 3999, #units)))
  end
  for _, owner in ipairs(owners) do
    redis.call('SADD', 'tally:outs:' .. owner, id)
  end
end

local reply, seen = {}, {}
for _, owner in ipairs(owners) do
  local index = 'tally:outs:' .. owner
  for _, id in ipairs(redis.call('SMEMBERS', index)) do
    if not seen[id] then
      seen[id] = true
      local box = redis.call('LRANGE', 'tally:out:' .. id, 0, -1)
      if #box == 0 then
        redis.call('SREM', index, id)
      else
        local first = 3 + tonumber(box[2])
        reply[#reply + 1] = id
        reply[#reply + 1] = box[1]
        reply[#reply + 1] = tostring((#box - first + 1) / 5)
        for j = first, #box do
          reply[#reply + 1] = box[j]
        end
      end
    end
  end
end
return reply
