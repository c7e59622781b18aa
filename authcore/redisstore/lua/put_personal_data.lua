-- put_personal_data.lua: authcore.PersonalDataStore.PutPersonalData, set
-- case (an empty value is a plain HDEL). Checking the user in the same
-- script as the write means personal data never outlives an erasure.
-- KEYS[1] the user hash, KEYS[2] its personal data hash
-- ARGV[1] the field, ARGV[2] its sealed value
-- Replies 1, or an error LH_NOT_FOUND.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
