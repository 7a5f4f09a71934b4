-- Records visits to pages that live on this shard, atomically, in one round trip.
--
-- Keys are built here from fixed prefixes (Tally runs standalone shards, not Redis Cluster):
--   tally:pages          sorted set, member = page id, score = visit count (also gives top pages)
--   tally:u:<day>:<page> HyperLogLog of today's visitor ids (day = Redis server's UTC day number)
--   tally:salt:<day>     today's secret salt for visitor ids (set once per day, kept 2 days)
--   tally:idem:<key>     an idempotent request's fingerprint and results (kept 24 hours)
--
-- ARGV[1] idempotency key, '' for none
-- ARGV[2] request fingerprint (same key + different fingerprint = conflict)
-- ARGV[3] visitor fingerprint, '' to count no unique visitor (batches)
-- ARGV[4] salt candidate: random, used only if today's salt does not exist yet
-- ARGV[5], ARGV[6], ...: page, visits pairs (distinct pages)
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

local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
local visitor = ARGV[3]
local salt = nil
if visitor ~= '' then
  -- The script is atomic, so reading first and setting only when absent cannot race; the day's
  -- first visit pays the SET, every later one a single GET.
  local salt_key = 'tally:salt:' .. day
  salt = redis.call('GET', salt_key)
  if not salt then
    salt = ARGV[4]
    redis.call('SET', salt_key, salt, 'EX', 172800)
  end
end

local out = {0}
local kept = {}
for i = 5, #ARGV, 2 do
  local page = ARGV[i]
  local count = tonumber(redis.call('ZINCRBY', 'tally:pages', ARGV[i + 1], page))
  local uniques_key = 'tally:u:' .. day .. ':' .. page
  -- PFADD answers 1 whenever it creates the key, so a new HyperLogLog always gets its expiry,
  -- and a visitor already counted today costs no EXPIRE.
  if salt
    and redis.call('PFADD', uniques_key, redis.sha1hex(salt .. '|' .. visitor .. '|' .. page)) == 1
  then
    redis.call('EXPIRE', uniques_key, 172800)
  end
  local uniques = redis.call('PFCOUNT', uniques_key)
  out[#out + 1] = count
  out[#out + 1] = uniques
  kept[#kept + 1] = string.format('%d,%d', count, uniques)
end

if idem_key ~= '' then
  local key = 'tally:idem:' .. idem_key
  redis.call('HSET', key, 'f', ARGV[2], 'r', table.concat(kept, ','))
  redis.call('EXPIRE', key, 86400)
end
return out
