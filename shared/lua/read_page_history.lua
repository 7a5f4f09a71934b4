-- One page's history over a range, in one round trip (the page lives on this shard).
-- ARGV[1] page id, ARGV[2] 'day' or 'hour', ARGV[3] first, ARGV[4] last (day or hour numbers).
-- Reply: for days, visits and unique visitors per day; for hours, visits per hour.
local page, interval = ARGV[1], ARGV[2]
local first, last = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for step = first, last do
  if interval == 'day' then
    out[#out + 1] = tonumber(redis.call('ZSCORE', 'tally:pd:' .. step, page) or 0)
    out[#out + 1] = redis.call('PFCOUNT', 'tally:u:' .. step .. ':' .. page)
  else
    local day = math.floor(step / 24)
    out[#out + 1] = tonumber(redis.call('HGET', 'tally:ph:' .. day .. ':' .. page, step % 24) or 0)
  end
end
return out
