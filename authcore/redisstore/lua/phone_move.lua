-- phone_move.lua (after session_by_access.lua, principal_by_access.lua and
-- transition.lua): authcore.PhoneTransitionStore.TransitionAs, on one Redis
-- server only (the store never runs it on a Cluster, where the session,
-- the user and the ticket live in different slots): a phone's
-- authentication and its move of a ticket as the session's user, in one
-- round trip instead of two, for every scan and every confirmation.
-- KEYS[1], KEYS[2] the ticket and its channel, as transition.lua
-- KEYS[3]          the session's access key, as session_by_access.lua
-- ARGV[1..12]      as transition.lua (ARGV[1] ''), except the scanner
--                  (ARGV[7..9]) and the owner (ARGV[11]): this script fills
--                  them in with the user's when ARGV[6] is '1' (a scan),
--                  and the owner with the user's id otherwise
-- ARGV[13..15]     now, now + slide, the user key's prefix, as
--                  principal_by_access's arguments
-- Replies {session field/value pairs, user field/value pairs, what
-- transition.lua replies}; or an error LH_NO_SESSION, with the ticket
-- unchanged, when the token is not live or its user is gone; or what
-- transition.lua replies when it fails (LH_NOT_FOUND, LH_CORRUPT).
local rec, user, uid = principal_by_access(KEYS[3], ARGV[13], ARGV[14], ARGV[15])
if not rec then
  return redis.error_reply('LH_NO_SESSION token not live')
elseif rec.err then
  return rec
elseif #user == 0 then
  return redis.error_reply('LH_NO_SESSION user gone')
end
local args = transition_args()
if args[6] == '1' then
  local nick, avatar = '', ''
  for i = 1, #user, 2 do
    if user[i] == 'n' then
      nick = user[i + 1]
    elseif user[i] == 'a' then
      avatar = user[i + 1]
    end
  end
  args[7], args[8], args[9], args[11] = uid, nick, avatar, ''
else
  args[11] = uid
end
local reply = transition({KEYS[1], KEYS[2]}, args)
if reply.err then
  return reply
end
return {rec, user, reply}
