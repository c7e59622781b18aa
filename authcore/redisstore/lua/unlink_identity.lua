-- unlink_identity.lua: the first step of authcore.UserStore.UnlinkIdentity:
-- forgets an identity's note in the user hash unless it is the user's last.
-- KEYS[1] the user hash
-- ARGV[1] the identity's field ("i:<provider>:<subject>")
-- Replies {unionid, shared}: the identity's unionid ('' if none) and 1 if
-- another identity of the user still has it, else 0. Errors LH_NOT_FOUND
-- (no such user, or not its identity), LH_CONFLICT (its last identity).
local note = redis.call('HGET', KEYS[1], ARGV[1])
if not note then
  return redis.error_reply('LH_NOT_FOUND identity is not the user\'s')
end
local function unionOf(v)
  local bar = string.find(v, '|', 1, true)
  if not bar then
    return ''
  end
  return string.sub(v, bar + 1)
end
local union = unionOf(note)
local others, shared = 0, 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local f = all[i]
  if f ~= ARGV[1] and string.sub(f, 1, 2) == 'i:' then
    others = others + 1
    if union ~= '' and unionOf(all[i + 1]) == union then
      shared = 1
    end
  end
end
if others == 0 then
  return redis.error_reply('LH_CONFLICT the user\'s last identity')
end
redis.call('HDEL', KEYS[1], ARGV[1])
return {union, tostring(shared)}
