-- rotate_refresh.lua (after session.lua): authcore.SessionStore.RotateRefresh.
-- Consumes a refresh token once; presenting a consumed one revokes its
-- family's session.
-- KEYS[1] the family's session
-- KEYS[2] the consumed mark of the presented token (string: its refresh
--         expiry, unix ms; it expires then)
-- KEYS[3] the user, KEYS[4] the user's session index (both keys written
--         here are tracked in it, for erasure)
-- ARGV[1] the presented refresh token's hash (hex), ARGV[2] now (unix ms)
-- ARGV[3] the new refresh expiry (unix ms)
-- ARGV[4..] the new session's own field/value pairs; the AMR, face time,
--           auth time and identity fields stay as they are
-- Replies {the new session's field/value pairs, the user's}; or an error
-- LH_CONFLICT (reuse: the family's session is deleted) or LH_NOT_FOUND
-- (unknown or expired token, or a user who is gone: nothing changed).
local now = tonumber(ARGV[2])
local used = redis.call('GET', KEYS[2])
if used and now < tonumber(used) then
  redis.call('DEL', KEYS[1])
  return redis.error_reply('LH_CONFLICT refresh token reused')
end
local old = redis.call('HMGET', KEYS[1], 'rh', 're')
local re = old[2] and tonumber(old[2])
if old[1] ~= ARGV[1] or not re or now >= re then
  return redis.error_reply('LH_NOT_FOUND refresh token')
end
local user = redis.call('HGETALL', KEYS[3])
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
redis.call('SET', KEYS[2], old[2], 'PXAT', old[2])
put_session(KEYS[1], ARGV[3], argv_from(4))
track(KEYS[4], KEYS[2], old[2], now)
track(KEYS[4], KEYS[1], ARGV[3], now)
return {redis.call('HGETALL', KEYS[1]), user}
