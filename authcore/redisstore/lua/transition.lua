-- transition.lua: one transition of a QR ticket, announced in the same
-- script: a compare-and-set on the version the caller read
-- (authcore.TicketStore.Transition), or a move that requires a state and a
-- scanner instead (TransitionFrom). It defines the function transition;
-- the transition script calls it as transition(KEYS, ARGV) and returns
-- what it returns (redisstore.go), and redeem.lua and phone_move.lua call
-- it too; redeem_if_allowed.lua calls transition_of on the ticket it has
-- read. It also defines the helpers those scripts share (ticket_fields,
-- read_ticket, transition_args).
--
-- KEYS[1]  the ticket: a string in the format of EncodeTicket (redisstore.go)
-- KEYS[2]  its channel (same hash slot; declared so that Cluster routes
--          SPUBLISH with the key)
-- ARGV[1]  the version the caller read, or '' to require ARGV[10] and ARGV[11]
-- ARGV[2]  the caller's now, unix milliseconds (never Redis TIME)
-- ARGV[3]  the new state's one-letter code
-- ARGV[4]  the codes of the terminal states
-- ARGV[5]  PUBLISH, or SPUBLISH on Redis Cluster
-- ARGV[6]  "1" to write the scanner (ARGV[7..9]: id, nickname, avatar)
-- ARGV[10] with ARGV[1] '': the state code the ticket must have
-- ARGV[11] with ARGV[1] '': the scanner id the ticket must have ('' for none)
-- ARGV[12] what to publish: 't' the new ticket, 'v' only its new version
--
-- Returns {'ok', new ticket}, or {'conflict', ticket} (version, state or
-- scanner not as required, or a terminal state) or {'expired', ticket}
-- with the ticket unchanged; or an error reply LH_NOT_FOUND, LH_CORRUPT. Only the
-- head of the value is parsed: the fields a transition reads or writes
-- come first, the rest is kept as is.

-- ticket_fields parses the first count fields of an encoded ticket. It
-- returns them and the position of the rest, or nil and an error reply.
local function ticket_fields(raw, count)
  local f, pos = {}, 1
  for i = 1, count do
    local colon = string.find(raw, ':', pos, true)
    local n = colon and tonumber(string.sub(raw, pos, colon - 1))
    if not n or colon + n > #raw then
      return nil, redis.error_reply('LH_CORRUPT ticket')
    end
    f[i] = string.sub(raw, colon + 1, colon + n)
    pos = colon + n + 1
  end
  if f[1] ~= '1' then
    return nil, redis.error_reply('LH_CORRUPT ticket format')
  end
  return f, pos
end

-- read_ticket reads the ticket at key and parses its first count fields.
-- It returns them, the position of the rest and the whole value, or nil
-- and an error reply (LH_NOT_FOUND, LH_CORRUPT).
local function read_ticket(key, count)
  local raw = redis.call('GET', key)
  if not raw then
    return nil, redis.error_reply('LH_NOT_FOUND ticket')
  end
  local f, pos = ticket_fields(raw, count)
  if not f then
    return nil, pos
  end
  return f, pos, raw
end

-- transition_args returns a copy of the script's ARGV[1..12], the
-- arguments of transition, for a script that sets some of them.
local function transition_args()
  local args = {}
  for i = 1, 12 do
    args[i] = ARGV[i]
  end
  return args
end

-- transition_of is transition on a ticket already read: raw, and its
-- first fields f (at least the head's 8) up to position pos. A script that
-- has read the ticket for checks of its own moves it without reading it
-- again.
local function transition_of(KEYS, ARGV, f, pos, raw)
  local terminal = f[3] ~= '' and string.find(ARGV[4], f[3], 1, true)
  if ARGV[1] ~= '' then
    if f[2] ~= ARGV[1] or terminal then
      return {'conflict', raw}
    end
  elseif f[3] ~= ARGV[10] or f[6] ~= ARGV[11] or terminal then
    return {'conflict', raw}
  end
  local exp = tonumber(f[5])
  if not exp or tonumber(ARGV[2]) >= exp then
    return {'expired', raw}
  end

  f[2] = tostring(tonumber(f[2]) + 1)
  f[3] = ARGV[3]
  f[4] = f[4] .. ARGV[3]
  if ARGV[6] == '1' then
    f[6], f[7], f[8] = ARGV[7], ARGV[8], ARGV[9]
  end
  local out = {}
  for i = 1, #f do
    out[i] = #f[i] .. ':' .. f[i]
  end
  raw = table.concat(out) .. string.sub(raw, pos)
  redis.call('SET', KEYS[1], raw, 'KEEPTTL')
  if ARGV[12] == 'v' then
    redis.call(ARGV[5], KEYS[2], f[2])
  else
    redis.call(ARGV[5], KEYS[2], raw)
  end
  return {'ok', raw}
end

local function transition(KEYS, ARGV)
  -- head: format, version, state, trail, expiry, scanner id, nickname, avatar
  local f, pos, raw = read_ticket(KEYS[1], 8)
  if not f then
    return pos -- the error reply
  end
  return transition_of(KEYS, ARGV, f, pos, raw)
end
