-- Removes from this shard the units another shard has absorbed (absorb_moved.lua), atomically.
-- ARGV: per unit, kind and key and member: 'zrem' key member | 'hdel' key field | 'del' key ''.
-- Reply: units removed.
local removed = 0
for i = 1, #ARGV, 3 do
  local kind, key, member = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 'zrem' then
    removed = removed + redis.call('ZREM', key, member)
  elseif kind == 'hdel' then
    removed = removed + redis.call('HDEL', key, member)
  elseif kind == 'del' then
    removed = removed + redis.call('DEL', key)
  else
    return redis.error_reply('release_moved: unknown kind ' .. kind)
  end
end
return removed
