-- This shard's share of the site over a range of days, in one round trip whatever the range:
-- its visits, and the union of its days' unique-visitor HyperLogLogs (merged here, so one
-- HyperLogLog of at most 12 KB crosses the network, not one per day).
-- ARGV[1] first day, ARGV[2] last day.
-- Reply: {visits, HyperLogLog or nil}.
local first, last = tonumber(ARGV[1]), tonumber(ARGV[2])
local visits = 0
local keys = {}
for day = first, last do
  visits = visits + tonumber(redis.call('HGET', 'tally:sd:' .. day, 'v') or 0)
  keys[#keys + 1] = 'tally:su:' .. day
end
local existing = {}
for _, key in ipairs(keys) do
  if redis.call('EXISTS', key) == 1 then existing[#existing + 1] = key end
end
if #existing == 0 then return {visits, false} end
if #existing == 1 then return {visits, redis.call('GET', existing[1])} end
-- A scratch key, created and deleted inside this script (nothing else can see it).
local scratch = 'tally:scratch:union'
redis.call('PFMERGE', scratch, unpack(existing))
local union = redis.call('GET', scratch)
redis.call('DEL', scratch)
return {visits, union}
