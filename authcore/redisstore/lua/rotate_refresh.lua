-- rotate_refresh.lua (after session_put.lua): authcore.SessionStore.RotateRefresh.
-- Consumes a refresh token once; presenting a consumed one revokes every
-- session of its family.
--
-- KEYS[1] <base>used:<old refresh hash>  string: the old refresh expiry (unix ms)
-- KEYS[2] <base>r:<old refresh hash>
-- KEYS[3] <base>m
-- KEYS[4] <base>a:<new access hash>
-- KEYS[5] <base>r:<new refresh hash>
-- ARGV[1] <base>, the family's key prefix "<prefix>:{f:<family>}:"
-- ARGV[2] now (unix ms)
-- ARGV[3] new access hash (hex), ARGV[4] new refresh expiry (unix ms)
-- ARGV[5..] the new record's own field/value pairs; the user, AMR, face
--           time and identity fields are copied from the old record here
-- Replies the new record's field/value pairs, or an error LH_CONFLICT
-- (reuse: the family is revoked) or LH_NOT_FOUND.
local now = tonumber(ARGV[2])
local used = redis.call('GET', KEYS[1])
if used and now < tonumber(used) then
  for _, ah in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    local akey = ARGV[1] .. 'a:' .. ah
    local rh = redis.call('HGET', akey, 'rh')
    if rh then
      redis.call('DEL', akey, ARGV[1] .. 'r:' .. rh)
    else
      redis.call('DEL', akey)
    end
  end
  redis.call('DEL', KEYS[3])
  return redis.error_reply('LH_CONFLICT refresh token reused')
end

local ah = redis.call('GET', KEYS[2])
if not ah then
  return redis.error_reply('LH_NOT_FOUND refresh token')
end
local akey = ARGV[1] .. 'a:' .. ah
local old = redis.call('HMGET', akey, 're', 'u', 'amr', 'fa', 'p', 's', 'un')
local re = old[1] and tonumber(old[1])
if not re or now >= re then
  return redis.error_reply('LH_NOT_FOUND refresh token')
end
redis.call('DEL', akey, KEYS[2])
redis.call('SREM', KEYS[3], ah)
redis.call('SET', KEYS[1], old[1], 'PXAT', old[1])

local fields = argv_from(5)
local copied = {'u', 'amr', 'fa', 'p', 's', 'un'}
for i, name in ipairs(copied) do
  fields[#fields + 1] = name
  fields[#fields + 1] = old[i + 1] or ''
end
put_session(KEYS[4], KEYS[5], KEYS[3], ARGV[3], ARGV[4], fields)
return fields
