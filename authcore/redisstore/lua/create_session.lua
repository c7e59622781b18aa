-- create_session.lua (after session_put.lua): authcore.SessionStore.CreateSession.
-- KEYS[1] <base>a:<access hash>, KEYS[2] <base>r:<refresh hash>, KEYS[3] <base>m
-- ARGV[1] access hash (hex), ARGV[2] refresh expiry (unix ms),
-- ARGV[3..] the record's field/value pairs
put_session(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], argv_from(3))
return 1
