
-- principal_by_access.lua: authcore.PrincipalStore.PrincipalByAccess, on one
-- Redis server only (the store never runs it on a Cluster, where the
-- session and the user live in different slots). It is session_by_access.lua
-- followed by a read of the session's user, so that an authenticated call
-- costs one round trip instead of two.
-- ARGV[3] the user key's prefix: the key is ARGV[3] .. <user id> .. '}'
-- (the user key is not declared in KEYS: it is known only once the session
-- is read, which is why this needs a single server).
-- Replies {session field/value pairs, user field/value pairs (empty if the
-- user was erased)}, or an error LH_NOT_FOUND when the session is not live.
local uid
for i = 1, #rec, 2 do
  if rec[i] == 'u' then
    uid = rec[i + 1]
  end
end
if not uid or uid == '' then
  return redis.error_reply('LH_CORRUPT session without user')
end
return {rec, redis.call('HGETALL', ARGV[3] .. uid .. '}')}
