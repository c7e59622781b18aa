-- delete_session.lua: authcore.SessionStore.DeleteSession.
-- KEYS[1] the family's session
-- ARGV[1] the access token's hash (hex)
-- Replies 1, or an error LH_NOT_FOUND when the session is not this token's.
if redis.call('HGET', KEYS[1], 'ah') ~= ARGV[1] then
  return redis.error_reply('LH_NOT_FOUND session')
end
redis.call('DEL', KEYS[1])
return 1
