package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/redis/go-redis/v9"
)

var _ authcore.LoginStore = (*Store)(nil)

// UserSessions implements authcore.SessionStore: the session index names
// the user's session keys; their hashes are read in one pipeline (all in
// the user's slot). Keys that expired meanwhile are skipped.
func (s *Store) UserSessions(ctx context.Context, userID string, now time.Time) ([]authcore.SessionRecord, error) {
	keys, err := s.c.ZRangeByScore(ctx, s.sessionIndexKey(userID),
		&redis.ZRangeBy{Min: fmt.Sprint(now.UnixMilli() + 1), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: user sessions: read session index: %w", err)
	}
	prefix := s.userKey(userID) + ":s:"
	type read struct {
		family string
		cmd    *redis.MapStringStringCmd
	}
	var reads []read
	pipe := s.c.Pipeline()
	for _, k := range keys {
		family, ok := strings.CutPrefix(k, prefix)
		if !ok || strings.Contains(family, ":") { // a consumed mark
			continue
		}
		reads = append(reads, read{family, pipe.HGetAll(ctx, k)})
	}
	if len(reads) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: user sessions: %w", err)
	}
	var out []authcore.SessionRecord
	for _, r := range reads {
		m := r.cmd.Val()
		if len(m) == 0 {
			continue
		}
		kv := make([]any, 0, 2*len(m))
		for k, v := range m {
			kv = append(kv, k, v)
		}
		rec, err := decodeSession(authcore.TokenRef{UserID: userID, Family: r.family}, kv)
		if err != nil {
			return nil, fmt.Errorf("redisstore: user sessions: %w", err)
		}
		if now.Before(rec.RefreshExpiresAt) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// DeleteUserSession implements authcore.SessionStore with
// revoke_sessions.lua: the family's session and its consumed marks.
func (s *Store) DeleteUserSession(ctx context.Context, userID, family string) error {
	n, err := s.revokeSessions(ctx, userID, s.sessionKey(authcore.TokenRef{UserID: userID, Family: family}))
	if err != nil {
		return err
	}
	if n == 0 {
		return authcore.ErrNotFound
	}
	return nil
}

// DeleteUserSessions implements authcore.SessionStore with
// revoke_sessions.lua: every session key and consumed mark the session
// index names.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := s.revokeSessions(ctx, userID, s.userKey(userID)+":s")
	return err
}

// revokeSessions reads the session index and runs revoke_sessions.lua
// with the keys it named, starting over while logins add sessions
// meanwhile (as SetPassword does). It returns whether key base existed.
func (s *Store) revokeSessions(ctx context.Context, userID, base string) (int64, error) {
	index := s.sessionIndexKey(userID)
	for range eraseRounds {
		keys, err := s.c.ZRange(ctx, index, 0, -1).Result()
		if err != nil {
			return 0, fmt.Errorf("redisstore: revoke sessions: read session index: %w", err)
		}
		reply, err := revokeSessionsScript.Run(ctx, s.c, append([]string{index}, slices.Clip(keys)...), base).Slice()
		if err != nil {
			return 0, outcome(err, "revoke sessions")
		}
		if len(reply) == 2 && reply[0] == "done" {
			n, _ := reply[1].(int64)
			return n, nil
		}
	}
	return 0, errors.New("redisstore: revoke sessions: logins keep adding sessions; try again")
}

// AppendLogin implements authcore.LoginStore with append_login.lua.
func (s *Store) AppendLogin(ctx context.Context, a authcore.LoginAttempt) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("redisstore: append login: %w", err)
	}
	err = appendLoginScript.Run(ctx, s.c, []string{s.userKey(a.UserID), s.loginsKey(a.UserID)}, b, authcore.LoginsKept).Err()
	return outcome(err, "append login")
}

// Logins implements authcore.LoginStore.
func (s *Store) Logins(ctx context.Context, userID string, limit int) ([]authcore.LoginAttempt, error) {
	if limit <= 0 {
		return nil, nil
	}
	raw, err := s.c.LRange(ctx, s.loginsKey(userID), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisstore: logins: %w", err)
	}
	out := make([]authcore.LoginAttempt, 0, len(raw))
	for _, r := range raw {
		var a authcore.LoginAttempt
		if err := json.Unmarshal([]byte(r), &a); err != nil {
			return nil, fmt.Errorf("redisstore: logins: corrupt entry: %w", err)
		}
		a.UserID = userID
		out = append(out, a)
	}
	return out, nil
}
