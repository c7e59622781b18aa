package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// CreateSession implements authcore.SessionStore with create_session.lua:
// the session key expires at rec.RefreshExpiresAt. It returns ErrNotFound,
// storing nothing, if the session's user does not exist.
func (s *Store) CreateSession(ctx context.Context, rec authcore.SessionRecord) error {
	args, err := sessionArgs(rec, rec.CreatedAt)
	if err != nil {
		return fmt.Errorf("redisstore: create session %s: %w", rec.ID, err)
	}
	err = createSessionScript.Run(ctx, s.c, s.newSessionKeys(rec.AccessRef()), args...).Err()
	return outcome(err, "create session "+rec.ID)
}

// newSessionKeys are the keys of a script that stores a new session of
// ref's family: the session, its user and the user's session index.
func (s *Store) newSessionKeys(ref authcore.TokenRef) []string {
	return []string{s.sessionKey(ref), s.userKey(ref.UserID), s.sessionIndexKey(ref.UserID)}
}

// sessionArgs returns the arguments that the scripts storing a new
// session take last: the refresh expiry, now (which prunes the session
// index), then the record's fields.
func sessionArgs(rec authcore.SessionRecord, now time.Time) ([]any, error) {
	rexp := rec.RefreshExpiresAt.UnixMilli()
	if rec.RefreshExpiresAt.IsZero() || rexp <= 0 {
		return nil, errors.New("no refresh expiry")
	}
	fields, err := sessionFields(rec, true)
	if err != nil {
		return nil, err
	}
	return append([]any{rexp, now.UnixMilli()}, fields...), nil
}

// PrincipalByAccess implements authcore.SessionStore with principal.lua:
// the session and its user share a slot, so this is one round trip on a
// Cluster too.
func (s *Store) PrincipalByAccess(ctx context.Context, ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.Principal, error) {
	keys := []string{s.sessionKey(ref), s.userKey(ref.UserID)}
	reply, err := principalScript.Run(ctx, s.c, keys, now.UnixMilli(), now.Add(slide).UnixMilli(), hex.EncodeToString(ref.Hash[:])).Slice()
	return principalReply(ref, reply, err, "principal")
}

// principalReply decodes the reply of a script that replies {session
// field/value pairs, user field/value pairs}, or its error.
func principalReply(ref authcore.TokenRef, reply []any, err error, what string) (authcore.Principal, error) {
	if err != nil {
		return authcore.Principal{}, outcome(err, what)
	}
	if len(reply) != 2 {
		return authcore.Principal{}, fmt.Errorf("redisstore: %s: unexpected reply of %d values", what, len(reply))
	}
	p, err := decodePrincipal(ref, reply[0], reply[1])
	if err != nil {
		return authcore.Principal{}, fmt.Errorf("redisstore: %s: %w", what, err)
	}
	return p, nil
}

// RotateRefresh implements authcore.SessionStore with rotate_refresh.lua.
// The consumed refresh token is remembered until its own expiry.
func (s *Store) RotateRefresh(ctx context.Context, ref authcore.TokenRef, next authcore.SessionRecord, now time.Time) (authcore.Principal, error) {
	rexp := next.RefreshExpiresAt.UnixMilli()
	if next.RefreshExpiresAt.IsZero() || rexp <= 0 {
		return authcore.Principal{}, errors.New("redisstore: rotate refresh: no refresh expiry")
	}
	fields, err := sessionFields(next, false)
	if err != nil {
		return authcore.Principal{}, fmt.Errorf("redisstore: rotate refresh: %w", err)
	}
	keys := []string{s.sessionKey(ref), s.usedKey(ref), s.userKey(ref.UserID), s.sessionIndexKey(ref.UserID)}
	args := append([]any{hex.EncodeToString(ref.Hash[:]), now.UnixMilli(), rexp}, fields...)
	reply, err := rotateRefreshScript.Run(ctx, s.c, keys, args...).Slice()
	return principalReply(ref, reply, err, "rotate refresh")
}

// DeleteSession implements authcore.SessionStore with delete_session.lua.
func (s *Store) DeleteSession(ctx context.Context, ref authcore.TokenRef) error {
	err := deleteSessionScript.Run(ctx, s.c, []string{s.sessionKey(ref)}, hex.EncodeToString(ref.Hash[:])).Err()
	return outcome(err, "delete session")
}
