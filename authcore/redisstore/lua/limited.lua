-- limited.lua: Store.Limited: whether a fixed-window counter (allow.lua)
-- already holds a number of events, without counting one.
-- KEYS[1] the window's counter
-- ARGV[1] the number of events
-- Replies the milliseconds until the window resets when it holds ARGV[1]
-- events or more, else 0.
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n < tonumber(ARGV[1]) then
  return 0
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  return 0
end
return ttl
