-- create_user_session.lua (after session_put.lua):
-- authcore.UserSessionStore.CreateUserSession, on one Redis server only (the
-- store never runs it on a Cluster, where the session and the user live in
-- different slots): create_session.lua, run only if the session's user
-- exists, and that user's fields, so that Redeem reads the user and issues
-- the session in one round trip instead of two.
-- KEYS as create_session.lua
-- ARGV[1] access hash (hex), ARGV[2] refresh expiry (unix ms),
-- ARGV[3] the user key (not declared in KEYS, which is why this needs a
-- single server), ARGV[4..] the record's field/value pairs
-- Replies the user's field/value pairs, or an error LH_NOT_FOUND (nothing
-- stored) when the user is gone.
local user = redis.call('HGETALL', ARGV[3])
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
put_session(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], argv_from(4))
return user
