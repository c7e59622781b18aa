-- session_by_access.lua: authcore.SessionStore.SessionByAccess. It defines
-- the function session_by_access(key, now, slide_to), which finds a live
-- session and slides its access expiry; the keys keep their TTL, the
-- refresh expiry, which sliding never passes. The session-by-access script
-- calls it as session_by_access(KEYS[1], ARGV[1], ARGV[2]) and replies
-- the record or an error LH_NOT_FOUND (redisstore.go);
-- principal_by_access.lua calls it too.
-- key       <base>a:<access hash>
-- now       unix ms
-- slide_to  now + slide, unix ms
-- Returns the record's field/value pairs, or nil when the session is not
-- live.
local function session_by_access(key, now, slide_to)
  local rec = redis.call('HGETALL', key)
  local ai, re
  for i = 1, #rec, 2 do
    if rec[i] == 'ae' then
      ai = i + 1
    elseif rec[i] == 're' then
      re = rec[i + 1]
    end
  end
  local ae = ai and tonumber(rec[ai])
  if not ae or tonumber(now) >= ae then
    return nil
  end
  local exp, s = tonumber(slide_to), slide_to
  if re and tonumber(re) and tonumber(re) < exp then
    exp, s = tonumber(re), re
  end
  if exp > ae then
    redis.call('HSET', key, 'ae', s)
    rec[ai] = s
  end
  return rec
end
