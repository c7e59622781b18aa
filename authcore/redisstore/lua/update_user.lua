-- update_user.lua: the profile update of authcore.UserStore.UpsertIdentity.
-- KEYS[1] the user hash
-- ARGV[1] nickname, ARGV[2] avatar URL; an empty one keeps the stored value
-- Replies the user's field/value pairs, none if there is no such user.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
local set = {}
if ARGV[1] ~= '' then
  set[#set + 1] = 'n'
  set[#set + 1] = ARGV[1]
end
if ARGV[2] ~= '' then
  set[#set + 1] = 'a'
  set[#set + 1] = ARGV[2]
end
if #set > 0 then
  redis.call('HSET', KEYS[1], unpack(set))
end
return redis.call('HGETALL', KEYS[1])
