-- unlink.lua: compare and delete a link (identity or unionid key → user id),
-- for EraseUser and for UpsertIdentity when a link points at an erased user.
-- KEYS[1] the link
-- ARGV[1] the user id it must point at
-- Replies 1 if it pointed at that user and is gone, 0 if there was no such
-- key, -1 if it points at another user (and is left alone).
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
if v ~= ARGV[1] then
  return -1
end
redis.call('DEL', KEYS[1])
return 1
