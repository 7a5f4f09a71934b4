-- Records visits to pages that live on this shard, atomically, in one round trip: the all-time
-- counts, the day's and hour's history, unique visitors and the referrer (see
-- tally_core::history for every key and how long it is kept).
--
-- ARGV[1] idempotency key, '' for none
-- ARGV[2] request fingerprint (same key + different fingerprint = conflict)
-- ARGV[3] visitor element for the HyperLogLogs, '' to count no unique visitor (batches)
-- ARGV[4] referrer host, '' for none
-- ARGV[5] days of history to keep
-- ARGV[6], ARGV[7], ARGV[8], ...: page, visits, when (Unix seconds; 0 = now, server's clock)
--
-- Reply, flat: status (0 applied, 1 replayed, 2 conflict), then per page: count, uniques today.
local idem_key = ARGV[1]
if idem_key ~= '' then
  local seen = redis.call('HMGET', 'tally:idem:' .. idem_key, 'f', 'r')
  if seen[1] then
    if seen[1] ~= ARGV[2] then
      return {2}
    end
    local out = {1}
    for value in string.gmatch(seen[2], '[^,]+') do
      out[#out + 1] = tonumber(value)
    end
    return out
  end
end

local now = tonumber(redis.call('TIME')[1])
local visitor = ARGV[3]
local referrer = ARGV[4]
local keep_s = (tonumber(ARGV[5]) + 1) * 86400

local out = {0}
local kept = {}
for i = 6, #ARGV, 3 do
  local page = ARGV[i]
  local visits = tonumber(ARGV[i + 1])
  local at = tonumber(ARGV[i + 2])
  if at == 0 then at = now end
  local day = math.floor(at / 86400)
  local hour = math.floor(at / 3600) % 24
  -- Every key expires at a fixed time after its day: set when the key (or the field) is new,
  -- which the increment's answer tells, so a repeat visit pays no EXPIREAT.
  local until_s = day * 86400 + keep_s
  local count = tonumber(redis.call('ZINCRBY', 'tally:pages', visits, page))
  local page_day = 'tally:pd:' .. day
  if tonumber(redis.call('ZINCRBY', page_day, visits, page)) == visits then
    redis.call('EXPIREAT', page_day, until_s)
  end
  local page_hours = 'tally:ph:' .. day .. ':' .. page
  if redis.call('HINCRBY', page_hours, hour, visits) == visits then
    redis.call('EXPIREAT', page_hours, day * 86400 + 3 * 86400)
  end
  local site_day = 'tally:sd:' .. day
  if redis.call('HINCRBY', site_day, 'v', visits) == visits then
    redis.call('EXPIREAT', site_day, until_s)
  end
  redis.call('HINCRBY', site_day, hour, visits)
  local uniques_key = 'tally:u:' .. day .. ':' .. page
  if visitor ~= '' then
    -- PFADD answers 1 when it creates the key or changes a register (a new visitor): a new
    -- HyperLogLog always gets its expiry; setting the same instant again is harmless.
    if redis.call('PFADD', uniques_key, visitor) == 1 then
      redis.call('EXPIREAT', uniques_key, until_s)
    end
    local site_uniques = 'tally:su:' .. day
    if redis.call('PFADD', site_uniques, visitor) == 1 then
      redis.call('EXPIREAT', site_uniques, until_s)
    end
  end
  local uniques = redis.call('PFCOUNT', uniques_key)
  out[#out + 1] = count
  out[#out + 1] = uniques
  kept[#kept + 1] = string.format('%d,%d', count, uniques)
end

if referrer ~= '' then
  -- Today's referrers, bounded: past 200 hosts the least counted half goes.
  local day = math.floor(now / 86400)
  local key = 'tally:ref:' .. day
  if tonumber(redis.call('ZINCRBY', key, 1, referrer)) == 1 then
    redis.call('EXPIREAT', key, day * 86400 + keep_s)
    if redis.call('ZCARD', key) > 200 then
      redis.call('ZREMRANGEBYRANK', key, 0, -101)
    end
  end
end

if idem_key ~= '' then
  local key = 'tally:idem:' .. idem_key
  redis.call('HSET', key, 'f', ARGV[2], 'r', table.concat(kept, ','))
  redis.call('EXPIRE', key, 86400)
end
return out
