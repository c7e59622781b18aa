-- set_password.lua: authcore.PasswordStore.SetPassword: compare and set a
-- user's password hash, and revoke every session of the user except the
-- caller's login family, in one step. The caller declares the keys its
-- read of the session index named; while the index names a key it did not
-- declare (a login made one meanwhile), nothing changes and the script
-- says so, for the caller to read the index again.
-- KEYS[1] the user hash, KEYS[2] its password hash key, KEYS[3] its session
-- index, KEYS[4..] the keys the session index named (sessions, consumed marks)
-- ARGV[1] the expected hash ('' = none), ARGV[2] the new hash,
-- ARGV[3] the kept family's session key (its consumed marks start with it)
-- Replies 'done' or 'keys'; or an error LH_NOT_FOUND (no user) or
-- LH_CONFLICT (the stored hash is not ARGV[1]).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then
  return redis.error_reply('LH_CONFLICT password changed meanwhile')
end
local declared = {}
for i = 4, #KEYS do
  declared[KEYS[i]] = true
end
for _, key in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  if not declared[key] then
    return 'keys'
  end
end
redis.call('SET', KEYS[2], ARGV[2])
local keep = ARGV[3]
for i = 4, #KEYS do
  local k = KEYS[i]
  if k ~= keep and string.sub(k, 1, #keep + 1) ~= keep .. ':' then
    redis.call('DEL', k)
    redis.call('ZREM', KEYS[3], k)
  end
end
return 'done'
