-- move.lua (after ticket.lua): one move of a ticket, on its own. A Redis
-- Cluster keeps a ticket and a user's sessions in different slots, so
-- there a phone's move and a redeem are two scripts (tickets.go), and this
-- is the ticket's half.
-- KEYS[1] the ticket, KEYS[2] its channel (same slot)
-- ARGV[1..3] as every ticket script, ARGV[4..10] the move (ticket.lua)
-- Replies what move replies.
return move(KEYS[1], KEYS[2], move_argv())
