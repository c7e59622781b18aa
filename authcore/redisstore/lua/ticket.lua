-- ticket.lua: the library every ticket script starts with. A ticket is one
-- string of fields in a fixed order, each "<byte length>:<bytes>" (codec.go,
-- EncodeTicket). Its head, the fields a move reads or writes, comes first:
--   1 format ('1', or '2' with field 9), 2 version, 3 state code, 4 the
--   trail's state codes, 5 expiry (unix ms), 6 scanner id, 7 scanner
--   nickname, 8 scanner avatar, 9 (format '2' only) via
-- The rest is kept as it is.
--
-- Every ticket script takes the same first arguments (and a script that
-- moves one ticket the move's next, see move_argv):
--   ARGV[1] the terminal states' codes
--   ARGV[2] PUBLISH, or SPUBLISH on Redis Cluster
--   ARGV[3] the caller's now, unix ms (never Redis TIME: expiry is the
--           caller's decision)
local TERMINAL, PUBLISH, NOW = ARGV[1], ARGV[2], tonumber(ARGV[3])

-- read_ticket reads the ticket at key and parses its head. It returns the
-- head's fields, the position of the rest and the whole value, or nil and
-- an error reply (LH_NOT_FOUND, LH_CORRUPT).
local function read_ticket(key)
  local raw = redis.call('GET', key)
  if not raw then
    return nil, redis.error_reply('LH_NOT_FOUND ticket')
  end
  local f, pos = {}, 1
  local head = 8
  local i = 1
  while i <= head do
    local colon = string.find(raw, ':', pos, true)
    local n = colon and tonumber(string.sub(raw, pos, colon - 1))
    if not n or colon + n > #raw then
      return nil, redis.error_reply('LH_CORRUPT ticket')
    end
    f[i] = string.sub(raw, colon + 1, colon + n)
    pos = colon + n + 1
    if i == 1 then
      if f[1] == '2' then
        head = 9
      elseif f[1] ~= '1' then
        return nil, redis.error_reply('LH_CORRUPT ticket format')
      end
    end
    i = i + 1
  end
  return f, pos, raw
end

-- move moves the ticket at key, and publishes the new ticket on channel,
-- if it is as m requires:
--   m.version  the version it must have (a string); or nil, and then
--   m.from     the state code it must have, and
--   m.owner    the scanner id it must have ('' for none)
--   m.to       the new state's code
--   m.scanner  {id, nickname, avatar} to write as its scanner, or nil
--   m.via      with m.scanner, the via to write ('' for a phone: none)
-- A ticket in a terminal state never moves, nor one whose expiry is at or
-- before NOW. It returns {'ok', new ticket}, or {'conflict', ticket} or
-- {'expired', ticket} with the ticket unchanged, or an error reply.
local function move(key, channel, m)
  local f, pos, raw = read_ticket(key)
  if not f then
    return pos
  end
  local terminal = f[3] ~= '' and string.find(TERMINAL, f[3], 1, true)
  if terminal or (m.version and f[2] ~= m.version) or (not m.version and (f[3] ~= m.from or f[6] ~= m.owner)) then
    return {'conflict', raw}
  end
  local exp = tonumber(f[5])
  if not exp or NOW >= exp then
    return {'expired', raw}
  end
  f[2] = tostring(tonumber(f[2]) + 1)
  f[3] = m.to
  f[4] = f[4] .. m.to
  if m.scanner then
    f[6], f[7], f[8] = m.scanner[1], m.scanner[2], m.scanner[3]
    if m.via ~= '' then
      f[1], f[9] = '2', m.via
    end
  end
  local out = {}
  for i = 1, #f do
    out[i] = #f[i] .. ':' .. f[i]
  end
  raw = table.concat(out) .. string.sub(raw, pos)
  redis.call('SET', key, raw, 'KEEPTTL')
  redis.call(PUBLISH, channel, raw)
  return {'ok', raw}
end

-- move_argv is the move that ARGV[4..11] describe (tickets.go, move.args):
--   ARGV[4]     the version the ticket must have, or '' to require ARGV[5..6]
--   ARGV[5]     with ARGV[4] '': the state code it must have
--   ARGV[6]     with ARGV[4] '': the scanner id it must have ('' for none)
--   ARGV[7]     the new state's code
--   ARGV[8..10] the scanner to write (id, nickname, avatar); ARGV[8] '' for none
--   ARGV[11]    with a scanner, the via to write ('' for none)
local function move_argv()
  local m = {to = ARGV[7]}
  if ARGV[4] ~= '' then
    m.version = ARGV[4]
  else
    m.from, m.owner = ARGV[5], ARGV[6]
  end
  if ARGV[8] ~= '' then
    m.scanner = {ARGV[8], ARGV[9], ARGV[10]}
    m.via = ARGV[11]
  end
  return m
end
