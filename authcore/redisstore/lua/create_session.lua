-- create_session.lua (after session.lua): authcore.SessionStore.CreateSession,
-- and the session's half of a redeem on a Redis Cluster: a new family's
-- session, stored only while its user exists.
-- KEYS[1] the session, KEYS[2] its user
-- ARGV[1] the refresh expiry (unix ms), ARGV[2..] the field/value pairs
-- Replies the user's field/value pairs, or an error LH_NOT_FOUND (nothing
-- stored) when the user is gone.
local user = redis.call('HGETALL', KEYS[2])
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
put_session(KEYS[1], ARGV[1], argv_from(2))
return user
