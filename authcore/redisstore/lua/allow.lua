-- allow.lua: one event in a fixed-window rate limit (Store.Allow).
-- KEYS[1] the window's counter
-- ARGV[1] the window length, milliseconds
-- Replies {count in this window, milliseconds until the window resets}.
local n = redis.call('INCR', KEYS[1])
local ttl = -1
if n > 1 then
  ttl = redis.call('PTTL', KEYS[1])
end
if ttl < 0 then
  -- first event of the window (or a counter that lost its TTL)
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
