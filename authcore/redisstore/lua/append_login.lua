-- append_login.lua: authcore.LoginStore.AppendLogin: one attempt at the
-- head of the user's login history, which keeps the last ARGV[2], only
-- while the user exists (an erased user's history stays gone).
-- KEYS[1] the user hash, KEYS[2] its login history (list, newest first)
-- ARGV[1] the attempt (JSON), ARGV[2] how many to keep
-- Replies 1, or an error LH_NOT_FOUND (nothing stored) when the user is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
return 1
