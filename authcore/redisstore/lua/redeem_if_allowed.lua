-- redeem_if_allowed.lua (after session_put.lua and transition.lua):
-- authcore.CheckedRedeemStore.RedeemIfAllowed, on one Redis server only
-- (the store never runs it on a Cluster, where the ticket, the session and
-- the user live in different slots): a desktop's redeem that reads the
-- ticket, checks it as the core does, moves it and stores the new session
-- in one round trip instead of two. It may refuse where the core would
-- accept (the core then redeems with the version it read), never the
-- reverse.
-- KEYS[1], KEYS[2] the ticket and its channel, as transition.lua
-- KEYS[3..5]       the session's keys, as create_session.lua
-- ARGV[1..12]      as transition.lua; ARGV[1], the version, is the one
--                  read here
-- ARGV[13]         the user key's prefix: the key is ARGV[13] .. <user id>
--                  .. '}' (not declared in KEYS: the user is the ticket's
--                  scanner, known only once the ticket is read)
-- ARGV[14]         the SHA-256 of the watch secret presented (32 bytes)
-- ARGV[15]         the client's address (netip.Addr.MarshalBinary of it,
--                  unmapped)
-- ARGV[16]         the IP binding: 'strict', 'subnet' or 'off'
-- ARGV[17]         the confirmed state's code
-- ARGV[18], ARGV[19] the access hash (hex) and the refresh expiry (unix ms)
-- ARGV[20..]       the session record's field/value pairs; 'u', the user,
--                  is set here to the ticket's scanner
-- Replies {'ok', new ticket, user field/value pairs}; or {'refused',
-- ticket} with nothing changed when a check fails; or an error
-- LH_NOT_FOUND (the ticket or its scanner's user is gone, nothing changed)
-- or LH_CORRUPT.

-- The netip.Addr.MarshalBinary prefix of an IPv4-mapped IPv6 address.
local mapped = string.rep('\0', 10) .. '\255\255'

-- allows is authcore.IPBinding.Allows on netip.Addr.MarshalBinary forms:
-- 4 bytes for IPv4, 16 plus the zone for IPv6, none for no address.
local function allows(binding, bound, client)
  if binding == 'off' then
    return true
  end
  if #bound >= 16 and string.sub(bound, 1, 12) == mapped then
    bound = string.sub(bound, 13, 16)
  end
  if binding == 'strict' then
    return bound == client
  elseif binding ~= 'subnet' then
    return false
  elseif #bound == 4 then
    return #client == 4 and string.sub(bound, 1, 3) == string.sub(client, 1, 3)
  elseif #bound >= 16 then
    return #client >= 16 and string.sub(bound, 1, 8) == string.sub(client, 1, 8)
  end
  return false
end

-- up to the client address: ..., scanner id (6), created (9), watch secret
-- hash (10), DPoP key thumbprint (11), client address (12)
local f, pos, raw = read_ticket(KEYS[1], 12)
if not f then
  return pos -- the error reply
end
-- The watch secret's hashes are compared, not the secret: timing can tell
-- at most how much of a SHA-256 a guess shares, which does not help find
-- the secret. The core compares in constant time when it decides.
local exp = tonumber(f[5])
if f[3] ~= ARGV[17] or not exp or tonumber(ARGV[2]) >= exp or f[10] ~= ARGV[14] or f[11] ~= ''
    or not allows(ARGV[16], f[12], ARGV[15]) or f[6] == '' then
  return {'refused', raw}
end
local user = redis.call('HGETALL', ARGV[13] .. f[6] .. '}')
if #user == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end

local args = transition_args()
args[1] = f[2]
local reply = transition_of({KEYS[1], KEYS[2]}, args, f, pos, raw)
if reply.err then
  return reply
elseif reply[1] ~= 'ok' then
  return {'refused', reply[2]}
end
local fields = argv_from(20)
for i = 1, #fields, 2 do
  if fields[i] == 'u' then
    fields[i + 1] = f[6]
  end
end
put_session(KEYS[3], KEYS[4], KEYS[5], ARGV[18], ARGV[19], fields)
reply[3] = user
return reply
