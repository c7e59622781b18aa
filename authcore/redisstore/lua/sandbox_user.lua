-- sandbox_user.lua: Sandbox.SessionKey and Sandbox.SetSessionKey. Finds or
-- creates a sandbox user, optionally replaces their session_key, marks them
-- as just used, and bounds the users: the least recently used beyond the
-- maximum are taken out of the index and named in the reply, for the
-- caller to forget (sandbox_forget.lua), so that this script touches only
-- the keys it declares.
-- KEYS[1] the user (hash k: session_key, o: openid)
-- KEYS[2] the openid's user (string: the name)
-- KEYS[3] the users' index (sorted set: name, scored by last use in unix ms)
-- ARGV[1] the name, ARGV[2] the session_key for a new user (or for any
-- user when ARGV[3] is "1"), ARGV[3] "1" to replace the session_key,
-- ARGV[4] the openid, ARGV[5] now (unix ms), ARGV[6] the TTL (ms),
-- ARGV[7] the most users kept
-- Replies {session_key, forgotten name, ...}.
local key = redis.call('HGET', KEYS[1], 'k')
if not key or ARGV[3] == '1' then
  key = ARGV[2]
  redis.call('HSET', KEYS[1], 'k', key, 'o', ARGV[4])
end
local now, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl)
redis.call('ZADD', KEYS[3], now, ARGV[1])
-- Users unused for a TTL are gone already; drop their names.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
local reply = {key}
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
if extra > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[3], extra)
  for i = 1, #popped, 2 do
    reply[#reply + 1] = popped[i]
  end
end
return reply
