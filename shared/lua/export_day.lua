-- One chunk of a day's pages on this shard, for an export: ZSCAN over the day's sorted set,
-- with each page's unique visitors that day.
-- ARGV[1] day number, ARGV[2] ZSCAN cursor ('0' to start), ARGV[3] COUNT hint.
-- Reply, flat: next cursor ('0' when done), then page, visits, uniques, ... (as text).
local day = ARGV[1]
local scan = redis.call('ZSCAN', 'tally:pd:' .. day, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local out = {scan[1]}
local members = scan[2]
for i = 1, #members, 2 do
  local page = members[i]
  out[#out + 1] = page
  out[#out + 1] = members[i + 1]
  out[#out + 1] = tostring(redis.call('PFCOUNT', 'tally:u:' .. day .. ':' .. page))
end
return out
