-- put_sandbox_sms.lua: sms.Mailbox.PutSandboxSMS. Appends a sandbox
-- message to its number's list and keeps the list short and temporary.
-- KEYS[1] the number's messages (list of JSON sandboxMessage, oldest first)
-- ARGV[1] the message (JSON), ARGV[2] how many to keep, ARGV[3] the TTL (ms)
-- Replies 1.
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
