-- This shard's most visited pages, or most frequent referrers, over a range of days, in one
-- round trip: the days' sorted sets added up here, the highest n returned.
-- ARGV[1] 'pd' (pages) or 'ref' (referrers), ARGV[2] first day, ARGV[3] last day, ARGV[4] n.
-- Reply, flat: name, count, name, count, ... (counts as text), highest first, ties by name.
local prefix = 'tally:' .. ARGV[1] .. ':'
local first, last, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local totals = {}
for day = first, last do
  local members = redis.call('ZRANGE', prefix .. day, 0, -1, 'WITHSCORES')
  for i = 1, #members, 2 do
    totals[members[i]] = (totals[members[i]] or 0) + tonumber(members[i + 1])
  end
end
local ranked = {}
for name, count in pairs(totals) do
  ranked[#ranked + 1] = {name, count}
end
table.sort(ranked, function(a, b)
  if a[2] ~= b[2] then return a[2] > b[2] end
  return a[1] < b[1]
end)
local out = {}
for i = 1, math.min(n, #ranked) do
  out[#out + 1] = ranked[i][1]
  out[#out + 1] = string.format('%d', ranked[i][2])
end
return out
