-- Step 2 of a hand-off (handoff.lua): on the destination, atomically applies one outbox's
-- units, once: the outbox's id is journaled here (`tally:mv:<id>`, kept 7 days), and an outbox
-- already journaled is skipped. So an outbox absorbed by two requests at once, or again by a
-- migrator restarted after being killed, counts once.
--
-- ARGV[1] the outbox's id; then per unit five values: kind, key, member, value, expire-at in
-- Unix ms ('' for none). kinds:
--   zincr    ZINCRBY key value member      (a count: a page's, a day's, a source's)
--   hincr    HINCRBY key member value      (an hour's visits, a day's bot views, site totals)
--   zadd     ZADD key value member         (a metric sample: the same either way)
--   pfmerge  merges HyperLogLog bytes into key (visitors)
--   setnx    SET key value NX              (a finished day's unique visitors)
--   buckets  merges packed metric buckets slot by slot into key (the layout is
--            ingest_metrics.lua's: the same slot holding the same bucket adds up; a newer bucket
--            replaces an older one)
-- An expiry is set on the keys a unit creates. Reply: 1 applied, 0 already journaled.
local journal = 'tally:mv:' .. ARGV[1]
if redis.call('EXISTS', journal) == 1 then
  return 0
end

local SLOT = 56
local FORMAT = '<i8i8dddi8d'
local function merge_buckets(key, incoming)
  local current = redis.call('GET', key)
  for at = 1, #incoming, SLOT do
    local i, c, s, mn, mx, lt, lv = struct.unpack(FORMAT, incoming, at)
    if c > 0 then
      local ci, cc, cs, cmn, cmx, clt, clv = struct.unpack(FORMAT, current, at)
      local out
      if cc == 0 or ci < i then
        out = string.sub(incoming, at, at + SLOT - 1)
      elseif ci == i then
        if mn > cmn then mn = cmn end
        if mx < cmx then mx = cmx end
        if clt > lt then
          lt, lv = clt, clv
        end
        out = struct.pack(FORMAT, i, c + cc, s + cs, mn, mx, lt, lv)
      end
      if out then
        redis.call('SETRANGE', key, at - 1, out)
      end
    end
  end
end

-- Refused whole before anything is written: a ring of another size here.
for i = 2, #ARGV, 5 do
  if ARGV[i] == 'buckets' then
    local here = redis.call('STRLEN', ARGV[i + 1])
    if here > 0 and here ~= #ARGV[i + 3] then
      return redis.error_reply('ERR absorb_moved: ' .. ARGV[i + 1] .. ' has another layout here')
    end
  end
end

for i = 2, #ARGV, 5 do
  local kind, key, member, value, expire_at =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local created = redis.call('EXISTS', key) == 0
  if kind == 'zincr' then
    redis.call('ZINCRBY', key, value, member)
  elseif kind == 'hincr' then
    redis.call('HINCRBY', key, member, value)
  elseif kind == 'zadd' then
    redis.call('ZADD', key, value, member)
  elseif kind == 'pfmerge' then
    if created then
      redis.call('SET', key, value)
    else
      local scratch = 'tally:scratch:absorb'
      redis.call('SET', scratch, value)
      redis.call('PFMERGE', key, scratch)
      redis.call('DEL', scratch)
    end
  elseif kind == 'setnx' then
    redis.call('SET', key, value, 'NX')
  elseif kind == 'buckets' then
    if created then
      redis.call('SET', key, value)
    else
      merge_buckets(key, value)
    end
  else
    return redis.error_reply('ERR absorb_moved: unknown kind ' .. kind)
  end
  if created and expire_at ~= '' then
    redis.call('PEXPIREAT', key, expire_at)
  end
end
redis.call('SET', journal, '1', 'EX', 604800)
return 1
