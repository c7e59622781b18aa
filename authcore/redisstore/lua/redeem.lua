-- redeem.lua (after ticket.lua and session.lua):
-- authcore.TicketStore.RedeemTicket on one Redis server: the ticket's move
-- to redeemed and the new session, both or neither, in one round trip.
-- KEYS[1] the ticket, KEYS[2] its channel, KEYS[3] the new session, KEYS[4] its user,
-- KEYS[5] the user's session index
-- ARGV[1..3]  as every ticket script, ARGV[4..11] the move (ticket.lua)
-- ARGV[12]    the session's refresh expiry, ARGV[13] now (unix ms)
-- ARGV[14..]  the session's field/value pairs
-- Replies {'ok', user field/value pairs}; or what move replies when it
-- refuses (nothing stored); or an error LH_NOT_FOUND when the user or the
-- ticket is gone (nothing changed).
local user = redis.call('HGETALL', KEYS[4])
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
local reply = move(KEYS[1], KEYS[2], move_argv())
if reply.err or reply[1] ~= 'ok' then
  return reply
end
store_session(KEYS[3], KEYS[5], ARGV[12], ARGV[13], argv_from(14))
return {'ok', user}
