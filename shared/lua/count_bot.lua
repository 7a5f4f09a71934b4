-- Counts a page view from a bot, which is not a visit: tally:bots:<day> is a hash of today's
-- bot page views per page (day = Redis server's UTC day number), kept 2 days.
-- ARGV[1] page id. Reply: the page's bot page views today.
local day = math.floor(tonumber(redis.call('TIME')[1]) / 86400)
local key = 'tally:bots:' .. day
local seen = redis.call('HINCRBY', key, ARGV[1], 1)
redis.call('EXPIRE', key, 172800, 'NX')
return seen
