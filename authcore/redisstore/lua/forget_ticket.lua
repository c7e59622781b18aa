-- forget_ticket.lua (after ticket.lua): deletes a ticket that names an
-- erased user as its scanner; a ticket scanned by someone else (or by no
-- one) is left alone.
-- KEYS[1] the ticket
-- ARGV[1..3] as every ticket script (unused), ARGV[4] the erased user's id
-- Replies 1 if it was deleted, else 0.
local f = read_ticket(KEYS[1])
if f and f[6] == ARGV[4] then
  return redis.call('DEL', KEYS[1])
end
return 0
