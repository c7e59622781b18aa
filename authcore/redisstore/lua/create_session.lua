-- create_session.lua (after session.lua): authcore.SessionStore.CreateSession,
-- and the session's half of a redeem on a Redis Cluster: a new family's
-- session, stored (and tracked in the user's session index, for erasure)
-- only while its user exists.
-- KEYS[1] the session, KEYS[2] its user, KEYS[3] the user's session index
-- ARGV[1] the refresh expiry (unix ms), ARGV[2] now (unix ms),
-- ARGV[3..] the field/value pairs
-- Replies the user's field/value pairs, or an error LH_NOT_FOUND (nothing
-- stored) when the user is gone.
local user = redis.call('HGETALL', KEYS[2])
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
store_session(KEYS[1], KEYS[3], ARGV[1], ARGV[2], argv_from(3))
return user
