-- redeem.lua (after session_put.lua and transition.lua):
-- authcore.RedeemStore.RedeemTicket, on one Redis server only (the store
-- never runs it on a Cluster, where the ticket, the session and the user
-- live in different slots): the redeem's transition and its new session,
-- both or neither, and the session's user.
-- KEYS[1], KEYS[2] the ticket and its channel, as transition.lua
-- KEYS[3..5]       the session's keys, as create_session.lua
-- ARGV[1..12]      as transition.lua
-- ARGV[13]         the user key (not declared in KEYS, which is why this
--                  needs a single server)
-- ARGV[14], ARGV[15] the access hash (hex) and the refresh expiry (unix ms)
-- ARGV[16..]       the session record's field/value pairs
-- Replies {'ok', new ticket, user field/value pairs}, or what transition.lua
-- replies when it refuses (nothing stored), or an error LH_NOT_FOUND when
-- the user is gone (nothing changed).
local user = redis.call('HGETALL', ARGV[13])
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
local reply = transition({KEYS[1], KEYS[2]}, ARGV)
if reply.err or reply[1] ~= 'ok' then
  return reply
end
put_session(KEYS[3], KEYS[4], KEYS[5], ARGV[14], ARGV[15], argv_from(16))
reply[3] = user
return reply
