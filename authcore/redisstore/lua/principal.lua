-- principal.lua (after session.lua): authcore.SessionStore.PrincipalByAccess,
-- and the session's half of a phone's move on a Redis Cluster.
-- KEYS[1] the session, KEYS[2] its user
-- ARGV[1] now, ARGV[2] now + slide (unix ms), ARGV[3] the access token's hash (hex)
-- Replies {session field/value pairs, user field/value pairs}, or an error
-- LH_NOT_FOUND when the token is not live or its user is gone.
local rec, user = principal(KEYS[1], KEYS[2], ARGV[3], ARGV[1], ARGV[2])
if not rec then
  return redis.error_reply('LH_NOT_FOUND session')
end
return {rec, user}
