-- sandbox_use_code.lua: Sandbox.UseCode. Consumes a single-use code: of
-- concurrent calls, on any nodes, at most one gets its user. A used code
-- stays, as "-", until it would have expired, so that a second use is told
-- apart from an unknown code (WeChat answers 40163 rather than 40029).
-- KEYS[1] the code ("<expiry unix ms> <name>", or "-" once used)
-- ARGV[1] now (unix ms)
-- Replies the name, "-" if the code was used before, or nil when it is
-- unknown or expired at ARGV[1].
local v = redis.call('GET', KEYS[1])
if not v then
  return false
end
if v == '-' then
  return '-'
end
local sp = string.find(v, ' ', 1, true)
if not sp or tonumber(string.sub(v, 1, sp - 1)) <= tonumber(ARGV[1]) then
  return false
end
redis.call('SET', KEYS[1], '-', 'KEEPTTL')
return string.sub(v, sp + 1)
