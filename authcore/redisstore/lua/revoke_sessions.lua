-- revoke_sessions.lua: authcore.SessionStore.DeleteUserSessions and
-- DeleteUserSession: delete the keys the session index named that start
-- with a prefix (every session of the user, or one family's session and
-- its consumed marks), as set_password.lua does without the password. The
-- caller declares the keys its read of the session index named; while the
-- index names a key it did not declare (a login made one meanwhile),
-- nothing changes and the script says so, for the caller to read it again.
-- KEYS[1] the session index, KEYS[2..] the keys the session index named
-- ARGV[1] the keys to delete: this key and those that start with it and
-- ':' (a family's session key: it and its consumed marks; the user's key
-- and ':s': all of its sessions)
-- Replies {'done', 1 if key ARGV[1] itself existed, else 0} or {'keys'}.
local declared = {}
for i = 2, #KEYS do
  declared[KEYS[i]] = true
end
for _, key in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if not declared[key] then
    return {'keys'}
  end
end
local base, n = ARGV[1], 0
local prefix = base .. ':'
for i = 2, #KEYS do
  local k = KEYS[i]
  if k == base or string.sub(k, 1, #prefix) == prefix then
    if redis.call('DEL', k) == 1 and k == base then
      n = 1
    end
    redis.call('ZREM', KEYS[1], k)
  end
end
return {'done', n}
