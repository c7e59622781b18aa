-- session_by_access.lua: authcore.SessionStore.SessionByAccess. Finds a
-- live session and slides its access expiry; the keys keep their TTL, the
-- refresh expiry, which sliding never passes.
-- KEYS[1] <base>a:<access hash>
-- ARGV[1] now (unix ms), ARGV[2] now + slide (unix ms)
-- Replies the record's field/value pairs, or an error LH_NOT_FOUND.
local rec = redis.call('HGETALL', KEYS[1])
local ai, re
for i = 1, #rec, 2 do
  if rec[i] == 'ae' then
    ai = i + 1
  elseif rec[i] == 're' then
    re = rec[i + 1]
  end
end
local ae = ai and tonumber(rec[ai])
if not ae or tonumber(ARGV[1]) >= ae then
  return redis.error_reply('LH_NOT_FOUND session')
end
local exp, s = tonumber(ARGV[2]), ARGV[2]
if re and tonumber(re) and tonumber(re) < exp then
  exp, s = tonumber(re), re
end
if exp > ae then
  redis.call('HSET', KEYS[1], 'ae', s)
  rec[ai] = s
end
return rec
