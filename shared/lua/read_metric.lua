-- Reads a metric type's buckets for a summary, with the server's clock, in one round trip.
-- Always the same three commands (EVALSHA, TIME, HMGET), however many samples the type holds.
-- KEYS[1] the type's aggregates hash; ARGV the bucket fields to read.
-- Reply: {seconds, microseconds, the buckets that exist...}.
local time = redis.call('TIME')
local reply = {time[1], time[2]}
for _, bucket in ipairs(redis.call('HMGET', KEYS[1], unpack(ARGV))) do
  if bucket then reply[#reply + 1] = bucket end
end
return reply
