-- sandbox_forget.lua: forgets a sandbox user that sandbox_user.lua took out
-- of the index, unless they were used again since (then they are back in
-- the index and stay).
-- KEYS[1] the user, KEYS[2] the openid's user, KEYS[3] the users' index
-- ARGV[1] the name
-- Replies 1 if the user was forgotten, else 0.
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then
  return 0
end
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
redis.call('DEL', KEYS[1])
return 1
