-- session_put.lua: the part of create_session.lua and rotate_refresh.lua
-- that stores one session of a family. All keys share the family's hash
-- tag, so they live in one Cluster slot; every key expires at the refresh
-- expiry, and the member set lives as long as its longest-lived member.
--
-- akey   <base>a:<access hash>  hash: the session record (every field written)
-- rkey   <base>r:<refresh hash> string: the access hash
-- mkey   <base>m                set: access hashes of the family's sessions
-- ah     the access hash (hex)
-- rexp   the refresh expiry, unix milliseconds
-- fields the record's field/value pairs
local function put_session(akey, rkey, mkey, ah, rexp, fields)
  redis.call('HSET', akey, unpack(fields))
  redis.call('PEXPIREAT', akey, rexp)
  redis.call('SET', rkey, ah, 'PXAT', rexp)
  redis.call('SADD', mkey, ah)
  if redis.call('PEXPIRETIME', mkey) < tonumber(rexp) then
    redis.call('PEXPIREAT', mkey, rexp)
  end
end

-- argv_from returns ARGV[first..], the record's field/value pairs as the
-- scripts that store a session take them.
local function argv_from(first)
  local out = {}
  for i = first, #ARGV do
    out[#out + 1] = ARGV[i]
  end
  return out
end

