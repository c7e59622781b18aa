-- delete_session.lua: authcore.SessionStore.DeleteSession.
-- KEYS[1] <base>a:<access hash>, KEYS[2] <base>m
-- ARGV[1] <base>, ARGV[2] the access hash (hex)
-- Replies 1, or an error LH_NOT_FOUND.
local rh = redis.call('HGET', KEYS[1], 'rh')
if not rh then
  return redis.error_reply('LH_NOT_FOUND session')
end
redis.call('DEL', KEYS[1], ARGV[1] .. 'r:' .. rh)
redis.call('SREM', KEYS[2], ARGV[2])
return 1
