-- Reads one page's count, today's unique visitors and today's bot page views in one round trip.
-- ARGV[1] page id. Reply: {count, uniques today, bots today} (0 for an unknown page).
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
local page = ARGV[1]
local count = redis.call('ZSCORE', 'tally:pages', page)
local uniques = redis.call('PFCOUNT', 'tally:u:' .. day .. ':' .. page)
local bots = redis.call('HGET', 'tally:bots:' .. day, page)
return {tonumber(count or 0), uniques, tonumber(bots or 0)}
