-- mark_step_up.lua: authcore.FaceStore.MarkSessionStepUp. Adds a step-up
-- method to a live session's AMR (once) and sets its time.
-- KEYS[1] the family's session
-- ARGV[1] the access token's hash (hex)
-- ARGV[2] the time of the check (unix ms); the session must be live then
--         (its access expiry after it)
-- ARGV[3] the method, an amr of a-z 0-9 (written into the JSON AMR as is)
-- ARGV[4] the field of its time (codec.go, stepUpField)
-- Replies 1, or an error LH_NOT_FOUND.
local rec = redis.call('HMGET', KEYS[1], 'ah', 'ae', 'amr')
local ae = rec[2] and tonumber(rec[2])
if rec[1] ~= ARGV[1] or not ae or tonumber(ARGV[2]) >= ae then
  return redis.error_reply('LH_NOT_FOUND session')
end
local method = ARGV[3]
local amr = rec[3] or ''
local methods = {}
if amr ~= '' then
  methods = cjson.decode(amr)
end
local has = false
for _, m in ipairs(methods) do
  if m == method then
    has = true
  end
end
if not has then
  if #methods == 0 then
    amr = '["' .. method .. '"]'
  else
    amr = string.sub(amr, 1, -2) .. ',"' .. method .. '"]' -- amr is a JSON array of strings
  end
end
redis.call('HSET', KEYS[1], 'amr', amr, ARGV[4], ARGV[2])
return 1
