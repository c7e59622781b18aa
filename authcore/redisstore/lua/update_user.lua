-- update_user.lua: the last step of authcore.UserStore.UpsertIdentity (and
-- of LinkIdentity): records the links that point at the user, notes the
-- identity in the user hash and updates its profile.
-- KEYS[1] the user hash, KEYS[2] the user's link set (<user>:ids)
-- ARGV[1] nickname, ARGV[2] avatar URL; an empty one keeps the stored value
-- ARGV[3] the identity's field in the user hash ("i:<provider>:<subject>"),
-- or '' for none; ARGV[4] its value ("<linked at, unix ms>|<unionid>"),
-- set only if the field is not there yet
-- ARGV[5..] the names of the identity and unionid keys that point at the user
-- Replies the user's field/value pairs, none if there is no such user (an
-- erased one: the links are then not recorded).
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {}
end
if #ARGV > 4 then
  redis.call('SADD', KEYS[2], unpack(ARGV, 5))
end
if ARGV[3] ~= '' then
  redis.call('HSETNX', KEYS[1], ARGV[3], ARGV[4])
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
