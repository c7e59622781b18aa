-- erase_user.lua: the user-slot part of authcore.PersonalDataStore.EraseUser.
-- The links (identity and unionid keys) live in other Cluster slots, so the
-- store unlinks them first, one by one (unlink.lua), and then calls this
-- script with the links it has unlinked and the keys its session index
-- named when it read it. While the link set holds a link the caller has not
-- unlinked (a login linked one meanwhile), or the session index a key the
-- caller did not declare (a login made one meanwhile), nothing is deleted
-- and the script says which, for the caller to deal with and call again.
-- Otherwise the user, its link set, its personal data, its password hash, its login history,
-- its sessions and consumed-refresh marks and both indexes go, together, and the script
-- replies the index of records in other slots that name the user (tickets
-- it scanned, face verifications), for the caller to delete; its audit
-- trail stays.
--
-- KEYS[1] the user hash, KEYS[2] its link set, KEYS[3] its personal data,
-- KEYS[4] its session index, KEYS[5] its index of records in other slots,
-- KEYS[6] its password hash, KEYS[7] its login history,
-- KEYS[8..] the keys the session index named (sessions, consumed marks)
-- ARGV[1..] the links already unlinked
-- Replies {'links', links still to unlink...}, {'keys'} (the session
-- index names keys not in KEYS), or {'done', entries of KEYS[5]...}; or an
-- error LH_NOT_FOUND.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
local done = {}
for i = 1, #ARGV do
  done[ARGV[i]] = true
end
local pending = {'links'}
for _, link in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if not done[link] then
    pending[#pending + 1] = link
  end
end
if #pending > 1 then
  return pending
end
local declared = {}
for i = 8, #KEYS do
  declared[KEYS[i]] = true
end
for _, key in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
  if not declared[key] then
    return {'keys'}
  end
end
local refs = redis.call('ZRANGE', KEYS[5], 0, -1)
-- In batches: unpack of a busy user's thousands of consumed marks at once
-- would overflow Lua's stack.
for first = 1, #KEYS, 1000 do
  redis.call('DEL', unpack(KEYS, first, math.min(first + 999, #KEYS)))
end
local reply = {'done'}
for _, r in ipairs(refs) do
  reply[#reply + 1] = r
end
return reply
