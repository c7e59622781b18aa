package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore"
)

// TicketChannel is the channel on which ticket id's moves are published:
// the ticket's key followed by ":v". On a Cluster it is a sharded channel
// (SSUBSCRIBE) in the slot of the ticket's key. Each message is the new
// ticket (DecodeTicket).
func (s *Store) TicketChannel(id string) string { return s.ticketKey(id) + ":v" }

// TicketID returns the ticket id of a channel named by TicketChannel.
func (s *Store) TicketID(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, s.prefix+":{t:")
	if !ok {
		return "", false
	}
	id, ok := strings.CutSuffix(rest, "}:v")
	if !ok || id == "" {
		return "", false
	}
	return id, true
}

// DecodeTicket decodes a message published on ticket id's channel: the
// ticket as the move that published it wrote it.
func (s *Store) DecodeTicket(id, payload string) (authcore.TicketRecord, error) {
	rec, err := decodeTicket(id, payload)
	if err != nil {
		return authcore.TicketRecord{}, fmt.Errorf("redisstore: ticket %s message: %w", id, err)
	}
	return rec, nil
}

// CreateTicket implements authcore.TicketStore: one SET NX PXAT, so the
// ticket key expires at rec.ExpiresAt + retention.
func (s *Store) CreateTicket(ctx context.Context, rec authcore.TicketRecord, retention time.Duration) error {
	val, err := EncodeTicket(rec)
	if err != nil {
		return fmt.Errorf("redisstore: create ticket %s: %w", rec.ID, err)
	}
	deleteAt := rec.ExpiresAt.Add(retention).UnixMilli()
	if deleteAt <= 0 {
		return fmt.Errorf("redisstore: create ticket %s: no expiry", rec.ID)
	}
	err = s.c.Do(ctx, "SET", s.ticketKey(rec.ID), val, "NX", "PXAT", deleteAt).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.ErrConflict
	case err != nil:
		return fmt.Errorf("redisstore: create ticket %s: %w", rec.ID, err)
	}
	return nil
}

// Ticket implements authcore.TicketStore.
func (s *Store) Ticket(ctx context.Context, id string) (authcore.TicketRecord, error) {
	raw, err := s.c.Get(ctx, s.ticketKey(id)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.TicketRecord{}, authcore.ErrNotFound
	case err != nil:
		return authcore.TicketRecord{}, fmt.Errorf("redisstore: ticket %s: %w", id, err)
	}
	rec, err := decodeTicket(id, raw)
	if err != nil {
		return authcore.TicketRecord{}, fmt.Errorf("redisstore: ticket %s: %w", id, err)
	}
	return rec, nil
}

// TransitionAs implements authcore.TicketStore. On one server
// phone_move.lua authenticates the token and moves the ticket as its user
// in one round trip. On a Cluster, where the session and the ticket live
// in different slots, principal.lua authenticates and then move.lua moves:
// every check of the ticket (state, scanner, expiry) is in the second
// script, so the outcome is the same.
func (s *Store) TransitionAs(ctx context.Context, ref authcore.TokenRef, slide time.Duration, m authcore.PhoneMove) (authcore.PhoneMoveResult, error) {
	what := string(m.To) + " " + m.ID
	mv := move{from: m.From, owner: ref.UserID, to: m.To}
	if m.To == authcore.StateScanned {
		mv.owner, mv.scannerID, mv.via = "", ref.UserID, m.Via
	}
	var p authcore.Principal
	var reply any
	if s.cluster {
		var err error
		if p, err = s.PrincipalByAccess(ctx, ref, m.Now, slide); err == authcore.ErrNotFound {
			return authcore.PhoneMoveResult{}, authcore.ErrNoSession
		} else if err != nil {
			return authcore.PhoneMoveResult{}, err
		}
		mv.scanner = authcore.Profile{Nickname: p.User.Nickname, AvatarURL: p.User.AvatarURL}
		if reply, err = moveScript.Run(ctx, s.c, s.ticketKeys(m.ID), mv.args(s, m.Now)...).Result(); err != nil {
			return authcore.PhoneMoveResult{}, outcome(err, what)
		}
		if m.To == authcore.StateScanned {
			if err := s.recordScan(ctx, ref.UserID, m, reply); err != nil {
				return authcore.PhoneMoveResult{}, err
			}
		}
	} else {
		keys := append(s.ticketKeys(m.ID), s.sessionKey(ref), s.userKey(ref.UserID), s.refsKey(ref.UserID))
		args := append(mv.args(s, m.Now), m.Now.Add(slide).UnixMilli(), hex.EncodeToString(ref.Hash[:]),
			scanRef(m.ID), scanKept.Milliseconds())
		parts, err := phoneMoveScript.Run(ctx, s.c, keys, args...).Slice()
		if err != nil {
			return authcore.PhoneMoveResult{}, outcome(err, what)
		}
		if len(parts) != 3 {
			return authcore.PhoneMoveResult{}, fmt.Errorf("redisstore: %s: unexpected reply of %d values", what, len(parts))
		}
		if p, err = decodePrincipal(ref, parts[0], parts[1]); err != nil {
			return authcore.PhoneMoveResult{}, fmt.Errorf("redisstore: %s: %w", what, err)
		}
		reply = parts[2]
	}
	status, tk, err := decodeMove(m.ID, reply)
	if err != nil {
		return authcore.PhoneMoveResult{}, fmt.Errorf("redisstore: %s: %w", what, err)
	}
	return authcore.PhoneMoveResult{Principal: p, Ticket: tk, Moved: status == "ok"}, nil
}

// scanKept is how long past a ticket's expiry the user's refs index keeps
// a ticket it scanned: longer than the retention the core asks for (a few
// minutes); an entry kept too long costs erasure a no-op.
const scanKept = time.Hour

// scanRef is the refs index entry of a scanned ticket.
func scanRef(id string) string { return "t:" + id }

// recordScan is, on a Cluster, the user-slot half of a scan that moved:
// the ticket goes into the scanner's refs index, for erasure. If the user
// was erased between the authentication and now, that erasure missed the
// ticket, so it is deleted here, and the scan reads as ErrNoSession.
func (s *Store) recordScan(ctx context.Context, userID string, m authcore.PhoneMove, reply any) error {
	what := "scan " + m.ID
	status, tk, err := decodeMove(m.ID, reply)
	if err != nil || status != "ok" {
		return nil // not moved: nothing names the user; decoded again below
	}
	n, err := recordRefScript.Run(ctx, s.c, []string{s.userKey(userID), s.refsKey(userID)},
		scanRef(m.ID), tk.ExpiresAt.Add(scanKept).UnixMilli(), m.Now.UnixMilli(), "1").Int()
	if err != nil {
		return fmt.Errorf("redisstore: %s: record: %w", what, err)
	}
	if n == 1 {
		return nil
	}
	if err := s.forgetTicket(ctx, m.ID, userID); err != nil {
		return fmt.Errorf("redisstore: %s: %w", what, err)
	}
	return authcore.ErrNoSession
}

// forgetTicket deletes ticket id if it names userID as its scanner.
func (s *Store) forgetTicket(ctx context.Context, id, userID string) error {
	args := []any{terminalCodes, s.publish, 0, userID}
	if err := forgetTicketScript.Run(ctx, s.c, []string{s.ticketKey(id)}, args...).Err(); err != nil {
		if err = scriptOutcome(err); err == authcore.ErrNotFound {
			return nil
		}
		return fmt.Errorf("forget ticket: %w", err)
	}
	return nil
}

// RedeemTicket implements authcore.TicketStore. On one server redeem.lua
// moves the ticket and stores the session in one round trip. On a Cluster
// create_session.lua stores the session (if its user exists) and then
// move.lua moves the ticket; if the ticket does not move, the session is
// deleted again. Until then its tokens exist only in this call, so nobody
// can use it.
func (s *Store) RedeemTicket(ctx context.Context, r authcore.Redemption) (authcore.User, error) {
	what := "redeem " + r.TicketID
	mv := move{version: strconv.FormatUint(r.FromVersion, 10), to: authcore.StateRedeemed}
	session, err := sessionArgs(r.Session, r.Now)
	if err != nil {
		return authcore.User{}, fmt.Errorf("redisstore: %s: session: %w", what, err)
	}
	ref := r.Session.AccessRef()
	sessionKeys := s.newSessionKeys(ref)
	if s.cluster {
		return s.redeemInTwo(ctx, r, mv, sessionKeys, session)
	}
	reply, err := redeemScript.Run(ctx, s.c, append(s.ticketKeys(r.TicketID), sessionKeys...), append(mv.args(s, r.Now), session...)...).Slice()
	if err != nil {
		return authcore.User{}, outcome(err, what)
	}
	if len(reply) == 2 && reply[0] == "ok" {
		u, err := decodeUserReply(ref.UserID, reply[1])
		if err != nil {
			return authcore.User{}, fmt.Errorf("redisstore: %s: %w", what, err)
		}
		return u, nil
	}
	status, _, err := decodeMove(r.TicketID, reply)
	if err != nil {
		return authcore.User{}, fmt.Errorf("redisstore: %s: %w", what, err)
	}
	return authcore.User{}, refusal(status)
}

// redeemInTwo is RedeemTicket on a Cluster: the session first, then the
// ticket's move, and the session deleted again if the ticket did not move.
func (s *Store) redeemInTwo(ctx context.Context, r authcore.Redemption, mv move, sessionKeys []string, session []any) (authcore.User, error) {
	what := "redeem " + r.TicketID
	user, err := createSessionScript.Run(ctx, s.c, sessionKeys, session...).Result()
	if err != nil {
		return authcore.User{}, outcome(err, what)
	}
	u, err := decodeUserReply(r.Session.UserID, user)
	if err != nil {
		err = fmt.Errorf("decode user: %w", err)
	} else if reply, runErr := moveScript.Run(ctx, s.c, s.ticketKeys(r.TicketID), mv.args(s, r.Now)...).Result(); runErr != nil {
		err = runErr
	} else if status, _, decodeErr := decodeMove(r.TicketID, reply); decodeErr != nil {
		err = decodeErr
	} else if status == "ok" {
		return u, nil
	} else {
		err = refusal(status)
	}
	// Best effort: a session left behind is one nobody holds a token of,
	// and it expires at its refresh expiry.
	s.c.Del(context.WithoutCancel(ctx), sessionKeys[0])
	return authcore.User{}, outcome(err, what)
}

// ticketKeys are the keys of every ticket script: the ticket and its
// channel, in one slot.
func (s *Store) ticketKeys(id string) []string {
	return []string{s.ticketKey(id), s.TicketChannel(id)}
}

// move is the Go side of ticket.lua's move (see move_argv): what a ticket
// must be and what it becomes. Either version is set, or from and owner.
type move struct {
	version   string         // the version the ticket must have (decimal)
	from      authcore.State // else: the state it must be in,
	owner     string         // and the scanner id it must have ("" for none)
	to        authcore.State
	scannerID string           // for a scan, the new scanner; "" otherwise
	scanner   authcore.Profile // their profile (phone_move.lua reads it from the user)
	via       string           // for a scan, TicketRecord.Via
}

// args returns ARGV[1..11] of a script that moves one ticket at now.
// States come from the core, which only names known ones; an unknown one
// is sent as "" and the script refuses it as a conflict.
func (m move) args(s *Store, now time.Time) []any {
	from := ""
	if m.version == "" {
		from = stateCodes[m.from]
	}
	return []any{terminalCodes, s.publish, now.UnixMilli(),
		m.version, from, m.owner, stateCodes[m.to], m.scannerID, m.scanner.Nickname, m.scanner.AvatarURL, m.via}
}

// decodeMove decodes what ticket.lua's move replies: its status ("ok",
// "conflict" or "expired") and the ticket, new or as stored.
func decodeMove(id string, reply any) (string, authcore.TicketRecord, error) {
	parts, _ := reply.([]any)
	if len(parts) != 2 {
		return "", authcore.TicketRecord{}, fmt.Errorf("unexpected move reply %v", reply)
	}
	status, _ := parts[0].(string)
	raw, _ := parts[1].(string)
	tk, err := decodeTicket(id, raw)
	if err != nil {
		return "", authcore.TicketRecord{}, err
	}
	return status, tk, nil
}

// refusal is the error of a move that did not happen.
func refusal(status string) error {
	if status == "expired" {
		return authcore.ErrExpired
	}
	return authcore.ErrConflict
}
