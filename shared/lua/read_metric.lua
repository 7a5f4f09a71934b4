-- Reads the packed buckets a summary needs, with the server's clock, in one round trip.
-- Always the same three commands (EVALSHA, TIME, GET) and, once a type exists, the same bytes,
-- however many samples the type holds: a ring is created at its full size.
-- KEYS[1] the type's all-time bucket, minute ring or hour ring.
-- Reply: {seconds, microseconds, the packed buckets (empty when the type is unknown)}.
local time = redis.call('TIME')
return {time[1], time[2], redis.call('GET', KEYS[1]) or ''}
