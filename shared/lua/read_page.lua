-- Reads one page's count and today's unique visitors in one round trip.
-- ARGV[1] page id. Reply: {count, uniques today} (0 for an unknown page).
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
local page = ARGV[1]
local count = redis.call('ZSCORE', 'tally:pages', page)
local uniques = redis.call('PFCOUNT', 'tally:u:' .. day .. ':' .. page)
return {tonumber(count or 0), uniques}
