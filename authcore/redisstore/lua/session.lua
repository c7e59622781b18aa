-- session.lua: the library every session script starts with. A login
-- family's live session is one hash (codec.go, sessionFields) under the
-- user's hash tag, so that a session and its user are read together, on a
-- Redis Cluster too. Every key the library touches is one its caller was
-- given in KEYS.

-- live_session returns the field/value pairs of the session at key if it
-- is access token ah's (hex) and live at now (unix ms), after sliding its
-- access expiry to slide_to, never past its refresh expiry (the key's
-- TTL), and its last use ('lu') to now when it slides; nil otherwise.
local function live_session(key, ah, now, slide_to)
  local rec = redis.call('HGETALL', key)
  local got, ai, re
  for i = 1, #rec, 2 do
    local name = rec[i]
    if name == 'ah' then
      got = rec[i + 1]
    elseif name == 'ae' then
      ai = i + 1
    elseif name == 're' then
      re = rec[i + 1]
    end
  end
  local ae = ai and tonumber(rec[ai])
  if got ~= ah or not ae or tonumber(now) >= ae then
    return nil
  end
  local exp, s = tonumber(slide_to), slide_to
  if re and tonumber(re) and tonumber(re) < exp then
    exp, s = tonumber(re), re
  end
  if exp > ae then
    local used = tostring(now)
    redis.call('HSET', key, 'ae', s, 'lu', used)
    rec[ai] = s
    local seen = false
    for i = 1, #rec, 2 do
      if rec[i] == 'lu' then
        rec[i + 1], seen = used, true
      end
    end
    if not seen then
      rec[#rec + 1], rec[#rec + 2] = 'lu', used
    end
  end
  return rec
end

-- principal is live_session and the field/value pairs of the user at
-- user_key; nil if either is missing.
local function principal(key, user_key, ah, now, slide_to)
  local rec = live_session(key, ah, now, slide_to)
  if not rec then
    return nil
  end
  local user = redis.call('HGETALL', user_key)
  if #user == 0 then
    return nil
  end
  return rec, user
end

-- put_session writes a session's field/value pairs at key, which expires
-- at the refresh expiry rexp (unix ms).
local function put_session(key, rexp, fields)
  redis.call('HSET', key, unpack(fields))
  redis.call('PEXPIREAT', key, rexp)
end

-- track adds member, a key name, to the sorted set at set_key with score
-- until_ms (the member's expiry, unix ms; a member already there keeps the
-- later score), drops the members whose expiry is at or before now, and
-- keeps the set until its latest expiry: the user's index of keys that
-- erasure must find, bounded by what is live.
local function track(set_key, member, until_ms, now)
  redis.call('ZADD', set_key, 'GT', until_ms, member)
  redis.call('ZREMRANGEBYSCORE', set_key, '-inf', now)
  local last = redis.call('ZRANGE', set_key, -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', set_key, last[2])
  end
end

-- store_session is put_session of a new family's session, which it also
-- tracks in the user's session index set_key.
local function store_session(key, set_key, rexp, now, fields)
  put_session(key, rexp, fields)
  track(set_key, key, rexp, now)
end

-- argv_from returns ARGV[first..], the field/value pairs that the scripts
-- storing a session take last.
local function argv_from(first)
  local out = {}
  for i = first, #ARGV do
    out[#out + 1] = ARGV[i]
  end
  return out
end

-- field returns the value of name in kv, a list of field/value pairs, or
-- ''.
local function field(kv, name)
  for i = 1, #kv, 2 do
    if kv[i] == name then
      return kv[i + 1]
    end
  end
  return ''
end

