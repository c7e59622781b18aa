-- principal_by_access.lua (after session_by_access.lua):
-- authcore.PrincipalStore.PrincipalByAccess, on one Redis server only (the
-- store never runs it on a Cluster, where the session and the user live in
-- different slots). It defines the function principal_by_access(key, now,
-- slide_to, user_prefix): session_by_access followed by a read of the
-- session's user, so that an authenticated call costs one round trip
-- instead of two. The principal-by-access script calls it as
-- principal_by_access(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) and replies
-- {session, user} or an error LH_NOT_FOUND (redisstore.go); phone_move.lua
-- calls it too.
-- user_prefix  the user key's prefix: the key is user_prefix .. <user id> ..
--              '}' (it is not declared in KEYS: it is known only once the
--              session is read, which is why this needs a single server)
-- Returns the session's and the user's field/value pairs (the user's empty
-- if the user was erased), or nil when the session is not live, or an
-- error reply LH_CORRUPT.
local function principal_by_access(key, now, slide_to, user_prefix)
  local rec = session_by_access(key, now, slide_to)
  if not rec then
    return nil
  end
  local uid
  for i = 1, #rec, 2 do
    if rec[i] == 'u' then
      uid = rec[i + 1]
    end
  end
  if not uid or uid == '' then
    return redis.error_reply('LH_CORRUPT session without user')
  end
  return rec, redis.call('HGETALL', user_prefix .. uid .. '}'), uid
end
