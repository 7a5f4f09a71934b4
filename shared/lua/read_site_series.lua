-- This shard's share of the site's visits over a range, in one round trip.
-- ARGV[1] 'day' or 'hour', ARGV[2] first, ARGV[3] last (day or hour numbers).
-- Reply: visits per step.
local interval = ARGV[1]
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for step = first, last do
  if interval == 'day' then
    out[#out + 1] = tonumber(redis.call('HGET', 'tally:sd:' .. step, 'v') or 0)
  else
    out[#out + 1] = tonumber(redis.call('HGET', 'tally:sd:' .. math.floor(step / 24), step % 24) or 0)
  end
end
return out
