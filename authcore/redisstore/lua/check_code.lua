-- check_code.lua: authcore.CodeStore.CheckCode. One try of a number's live
-- code: a match consumes it, a mismatch spends a try and voids the code
-- with its last one. Comparing hashes of six digits by value leaks nothing
-- worth timing.
-- KEYS[1] the code (hash, see put_code.lua)
-- ARGV[1] the presented hash (hex), ARGV[2] now (unix ms)
-- Replies 1 for a match (consumed), 0 otherwise (no live code, or wrong).
local c = redis.call('HMGET', KEYS[1], 'h', 'e', 't')
if not c[1] then
  return 0
end
if not tonumber(c[2]) or tonumber(c[2]) <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 0
end
if c[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
if redis.call('HINCRBY', KEYS[1], 't', -1) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
