-- put_code.lua: authcore.CodeStore.PutCode. Replaces a number's live code
-- of one purpose, so that the earlier code stops working at once.
-- KEYS[1] the code (hash: "h" hex SHA-256 of the code, "e" expiry in unix
--         ms, "t" wrong tries left)
-- ARGV[1] the hash, ARGV[2] the expiry (unix ms), ARGV[3] the tries
-- Replies 1.
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'e', ARGV[2], 't', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1
