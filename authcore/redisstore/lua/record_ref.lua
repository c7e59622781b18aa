-- record_ref.lua (after session.lua): tracks a record in another slot that
-- names the user (a ticket it scanned, on a Redis Cluster; a face
-- verification it started) in the user's index, for erasure.
-- KEYS[1] the user, KEYS[2] the user's index of such records
-- ARGV[1] the entry ('t:<ticket id>', 'fv:<verify id>'), ARGV[2] when the
--         record is gone for sure (unix ms), ARGV[3] now (unix ms)
-- ARGV[4] '1' if the user must exist (else the entry is recorded anyway)
-- Replies 1 when recorded, 0 when the user is gone (nothing recorded: the
-- caller deletes the record, which an erasure that ran meanwhile missed).
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
track(KEYS[2], ARGV[1], ARGV[2], ARGV[3])
return 1
