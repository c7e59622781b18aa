-- take_face.lua: authcore.FaceStore.TakeFaceVerification. Consumes a face
-- verification only for its owner: another user's attempt leaves it in
-- place, so that whoever learns a verify_id cannot void its owner's check.
-- KEYS[1] the verification (JSON, see faceRecord: "u" its user, "e" its
--         expiry in unix ms)
-- ARGV[1] the user taking it, ARGV[2] now (unix ms)
-- Replies the record (deleted), or an error LH_NOT_FOUND (unknown or
-- expired at ARGV[2]) or LH_FORBIDDEN (another user's; left alone).
local raw = redis.call('GET', KEYS[1])
if not raw then
  return redis.error_reply('LH_NOT_FOUND face verification')
end
local ok, rec = pcall(cjson.decode, raw)
if not ok or type(rec) ~= 'table' then
  return redis.error_reply('LH_CORRUPT face verification')
end
if not tonumber(rec.e) or tonumber(rec.e) <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return redis.error_reply('LH_NOT_FOUND face verification expired')
end
if rec.u ~= ARGV[1] then
  return redis.error_reply('LH_FORBIDDEN face verification of another user')
end
redis.call('DEL', KEYS[1])
return raw
