-- unlock.lua: the release of Store.TryLock: compare and delete.
-- KEYS[1] the lock
-- ARGV[1] the holder's random token
-- Replies 1 if the lock was this holder's and is gone, else 0 (it expired,
-- and maybe someone else holds it now: theirs is left alone).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
