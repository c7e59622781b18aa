-- transition.lua: one compare-and-set on a QR ticket, announced in the
-- same script (authcore.TicketStore.Transition).
--
-- KEYS[1]  the ticket: a string in the format of encodeTicket (redisstore.go)
-- KEYS[2]  its channel (same hash slot; declared so that Cluster routes
--          SPUBLISH with the key)
-- ARGV[1]  the version the caller read
-- ARGV[2]  the caller's now, unix milliseconds (never Redis TIME)
-- ARGV[3]  the new state's one-letter code
-- ARGV[4]  the codes of the terminal states
-- ARGV[5]  PUBLISH, or SPUBLISH on Redis Cluster
-- ARGV[6]  "1" to write the scanner (ARGV[7..9]: id, nickname, avatar)
--
-- Replies the new encoded ticket, or an error LH_NOT_FOUND, LH_CONFLICT,
-- LH_EXPIRED, LH_CORRUPT. Only the head of the value is parsed: the
-- fields a transition reads or writes come first, the rest is kept as is.
local raw = redis.call('GET', KEYS[1])
if not raw then
  return redis.error_reply('LH_NOT_FOUND ticket')
end

-- head: format, version, state, trail, expiry, scanner id, nickname, avatar
local f, pos = {}, 1
for i = 1, 8 do
  local colon = string.find(raw, ':', pos, true)
  local n = colon and tonumber(string.sub(raw, pos, colon - 1))
  if not n or colon + n > #raw then
    return redis.error_reply('LH_CORRUPT ticket')
  end
  f[i] = string.sub(raw, colon + 1, colon + n)
  pos = colon + n + 1
end
if f[1] ~= '1' then
  return redis.error_reply('LH_CORRUPT ticket format')
end

if f[2] ~= ARGV[1] or (f[3] ~= '' and string.find(ARGV[4], f[3], 1, true)) then
  return redis.error_reply('LH_CONFLICT ticket')
end
local exp = tonumber(f[5])
if not exp or tonumber(ARGV[2]) >= exp then
  return redis.error_reply('LH_EXPIRED ticket')
end

f[2] = tostring(tonumber(f[2]) + 1)
f[3] = ARGV[3]
f[4] = f[4] .. ARGV[3]
if ARGV[6] == '1' then
  f[6], f[7], f[8] = ARGV[7], ARGV[8], ARGV[9]
end
local out = {}
for i = 1, 8 do
  out[i] = #f[i] .. ':' .. f[i]
end
raw = table.concat(out) .. string.sub(raw, pos)
redis.call('SET', KEYS[1], raw, 'KEEPTTL')
redis.call(ARGV[5], KEYS[2], f[2])
return raw
