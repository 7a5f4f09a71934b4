-- Erases one page everywhere on its shard: its all-time count, its daily and hourly history,
-- its unique visitors and its bot counts; the site's daily and hourly totals on this shard
-- lose the page's visits. (The site's unique visitors and sources are not per page: they stay.)
-- ARGV[1] page id, ARGV[2] days of history kept.
-- Reply: {all-time visits removed, days of history removed, keys deleted}.
local page = ARGV[1]
local today = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
local removed = tonumber(redis.call('ZSCORE', 'tally:pages', page) or 0)
redis.call('ZREM', 'tally:pages', page)
local days, deleted = 0, 0
for day = today - tonumber(ARGV[2]), today do
  local site_day = 'tally:sd:' .. day
  local visits = redis.call('ZSCORE', 'tally:pd:' .. day, page)
  if visits then
    days = days + 1
    redis.call('ZREM', 'tally:pd:' .. day, page)
    redis.call('HINCRBY', site_day, 'v', -tonumber(visits))
  end
  local hours_key = 'tally:ph:' .. day .. ':' .. page
  local hours = redis.call('HGETALL', hours_key)
  for i = 1, #hours, 2 do
    redis.call('HINCRBY', site_day, hours[i], -tonumber(hours[i + 1]))
  end
  deleted = deleted + redis.call('DEL', hours_key, 'tally:u:' .. day .. ':' .. page)
  redis.call('HDEL', 'tally:bots:' .. day, page)
end
return {removed, days, deleted}
