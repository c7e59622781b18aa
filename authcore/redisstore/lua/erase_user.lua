-- erase_user.lua: the user-slot part of authcore.PersonalDataStore.EraseUser.
-- The links (identity and unionid keys) live in other Cluster slots, so the
-- store unlinks them first, one by one (unlink.lua), and then calls this
-- script with the links it has unlinked. While the link set holds a link
-- the caller has not unlinked (a login linked one meanwhile), nothing is
-- deleted and the script replies those links, for the caller to unlink and
-- call again. Otherwise the user, its link set and its personal data go,
-- together; its audit trail stays.
--
-- KEYS[1] the user hash, KEYS[2] its link set, KEYS[3] its personal data
-- ARGV[1..] the links already unlinked
-- Replies the links still to unlink (none: the user is erased), or an
-- error LH_NOT_FOUND.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
local done = {}
for i = 1, #ARGV do
  done[ARGV[i]] = true
end
local pending = {}
for _, link in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not done[link] then
    pending[#pending + 1] = link
  end
end
if #pending > 0 then
  return pending
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {}
