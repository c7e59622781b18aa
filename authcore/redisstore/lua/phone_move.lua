-- phone_move.lua (after ticket.lua and session.lua):
-- authcore.TicketStore.TransitionAs on one Redis server: a phone's
-- authentication and its move of a ticket as the session's user, in one
-- round trip, for every scan and every confirmation.
-- KEYS[1] the ticket, KEYS[2] its channel, KEYS[3] the session, KEYS[4] its user,
-- KEYS[5] the user's index of records in other slots that name it
-- ARGV[1..3]  as every ticket script, ARGV[4..11] the move (ticket.lua);
--             a scan's scanner gets the nickname and avatar of the user
--             read here, whatever ARGV[9..10] say
-- ARGV[12]    now + slide, unix ms: the session's new access expiry
-- ARGV[13]    the access token's hash (hex)
-- ARGV[14]    a scan's entry in KEYS[5] ('t:' .. ticket id), ARGV[15] how
--             long past the ticket's expiry to keep it (ms): a scanned
--             ticket names the user, so erasure must find it
-- Replies {session field/value pairs, user field/value pairs, what move
-- replies}; or an error LH_NO_SESSION, with the ticket unchanged, when the
-- token is not live or its user is gone; or move's error reply.
local rec, user = principal(KEYS[3], KEYS[4], ARGV[13], NOW, ARGV[12])
if not rec then
  return redis.error_reply('LH_NO_SESSION token not live')
end
local m = move_argv()
if m.scanner then
  m.scanner[2], m.scanner[3] = field(user, 'n'), field(user, 'a')
end
local reply = move(KEYS[1], KEYS[2], m)
if reply.err then
  return reply
end
if m.scanner and reply[1] == 'ok' then
  local f = read_ticket(KEYS[1])
  track(KEYS[5], ARGV[14], tonumber(f[5]) + tonumber(ARGV[15]), NOW)
end
return {rec, user, reply}
