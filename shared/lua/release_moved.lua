-- Step 3 of a hand-off (handoff.lua): on the shard the data left, deletes outboxes their
-- destination has absorbed (absorb_moved.lua), with their owners' index entries.
-- ARGV: outbox ids. Reply: outboxes deleted (an id already gone is skipped).
local deleted = 0
for i = 1, #ARGV do
  local box = 'tally:out:' .. ARGV[i]
  local head = redis.call('LRANGE', box, 0, 1)
  if #head == 2 then
    local owners = redis.call('LRANGE', box, 2, 1 + tonumber(head[2]))
    for _, owner in ipairs(owners) do
      redis.call('SREM', 'tally:outs:' .. owner, ARGV[i])
    end
    redis.call('DEL', box)
    deleted = deleted + 1
  end
end
return deleted
