-- Keeps the site's unique visitors of days that are over, counted across every shard, so that
-- later reads of those days need no HyperLogLog (a day's HyperLogLogs never change once it is
-- over: unique visitors are only ever added for the current day).
-- ARGV[1] days of history kept; ARGV[2], ARGV[3], ...: day, count.
-- Reply: how many were stored.
local keep_s = (tonumber(ARGV[1]) + 1) * 86400
local stored = 0
for i = 2, #ARGV, 2 do
  local day = tonumber(ARGV[i])
  redis.call('SET', 'tally:suc:' .. day, ARGV[i + 1], 'EXAT', day * 86400 + keep_s)
  stored = stored + 1
end
return stored
