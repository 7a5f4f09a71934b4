-- Adds data moved from another shard to this one, each unit at most once, atomically: a unit
-- already journaled here (tally:mv:<source>:<unit>) is skipped, any other is applied and
-- journaled. The migrator then removes the units from the source and deletes the journal
-- entries, so a migrator killed at any point and run again applies every unit exactly once.
--
-- ARGV[1] the source shard's name; then per unit, five values:
--   kind, key, member ('' for whole keys), value, expire-at in Unix ms ('' for none)
-- kinds:
--   zincr    ZINCRBY key value member      (a page's count or day entry, a source's views)
--   hincr    HINCRBY key member value      (an hour's visits, a day's bot views, site totals)
--   zadd     ZADD key value member         (a recent metric sample: the same either way)
--   pfmerge  merge HyperLogLog bytes `value` into key (a page's or the site's visitors)
--   setnx    SET key value NX              (a finished day's unique visitors)
--   restore  RESTORE key from DUMP `value`  (a metric type's buckets or samples); refused
--            when the key exists here (the type got new data on this shard)
-- The expiry is set when the unit creates the key. Reply: {units applied, units skipped,
-- then the keys refused}.
local source = ARGV[1]
local applied, skipped, refused = 0, 0, {}
for i = 2, #ARGV, 5 do
  local kind, key, member, value, expire_at =
    ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local journal = 'tally:mv:' .. source .. ':' .. key
  if member ~= '' then journal = journal .. '\0' .. member end
  if redis.call('EXISTS', journal) == 1 then
    skipped = skipped + 1
  else
    local created = redis.call('EXISTS', key) == 0
    local ok = true
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
    elseif kind == 'restore' then
      if created then
        redis.call('RESTORE', key, 0, value)
      else
        ok = false
        refused[#refused + 1] = key
      end
    else
      return redis.error_reply('absorb_moved: unknown kind ' .. kind)
    end
    if ok then
      if created and expire_at ~= '' then
        redis.call('PEXPIREAT', key, expire_at)
      end
      redis.call('SET', journal, '1', 'EX', 604800)
      applied = applied + 1
    end
  end
end
local reply = {applied, skipped}
for _, key in ipairs(refused) do reply[#reply + 1] = key end
return reply
