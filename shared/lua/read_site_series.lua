-- This shard's share of the site's series over a range, in one round trip whatever the range.
-- ARGV[1] 'day' or 'hour', ARGV[2] first, ARGV[3] last (day or hour numbers).
-- Reply, flat. Hours: visits per hour. Days: per day, visits, then the day's unique visitors
-- as a finished count (an integer, tally:suc:<day>, written once the day is over: see
-- store_site_uniques.lua), else this shard's HyperLogLog of the day (a string), else nil.
local interval = ARGV[1]
local first, last = tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
for step = first, last do
  if interval == 'day' then
    out[#out + 1] = tonumber(redis.call('HGET', 'tally:sd:' .. step, 'v') or 0)
    local final = redis.call('GET', 'tally:suc:' .. step)
    if final then
      out[#out + 1] = tonumber(final)
    else
      out[#out + 1] = redis.call('GET', 'tally:su:' .. step)
    end
  else
    out[#out + 1] = tonumber(redis.call('HGET', 'tally:sd:' .. math.floor(step / 24), step % 24) or 0)
  end
end
return out
