-- sandbox_new_token.lua: Sandbox.NewToken. Makes a token the current one of
-- its kind and cuts the life of the token it replaces. Every token is kept
-- a while past its expiry, so that it answers "expired", not "unknown".
-- KEYS[1] the kind's current token (string: the token)
-- KEYS[2] the new token (string: its expiry, unix ms)
-- KEYS[3] the token the caller read as current (string: its expiry); when
--         there was none, KEYS[2] (and ARGV[5] is "")
-- ARGV[1] the new token, ARGV[2] its expiry (unix ms), ARGV[3] the cut
-- (unix ms), ARGV[4] how long a token is kept past its expiry (ms),
-- ARGV[5] the token the caller read as current, or ""
-- Replies 1.
local keep = tonumber(ARGV[4])
if ARGV[5] ~= '' then
  local exp = tonumber(redis.call('GET', KEYS[3]))
  local cut = tonumber(ARGV[3])
  if exp and exp > cut then
    redis.call('SET', KEYS[3], cut, 'PXAT', cut + keep)
  end
end
local exp = tonumber(ARGV[2])
redis.call('SET', KEYS[2], exp, 'PXAT', exp + keep)
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', exp + keep)
return 1
