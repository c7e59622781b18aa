package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/redis/go-redis/v9"
)

// PutOAuthState implements authcore.OAuthStateStore: one key per state,
// SET NX with the state's expiry.
func (s *Store) PutOAuthState(ctx context.Context, st authcore.OAuthState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("redisstore: put oauth state: %w", err)
	}
	err = s.c.Do(ctx, "SET", s.oauthKey(st.State), raw, "NX", "PXAT", st.ExpiresAt.UnixMilli()).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.ErrConflict
	case err != nil:
		return fmt.Errorf("redisstore: put oauth state: %w", err)
	}
	return nil
}

// TakeOAuthState implements authcore.OAuthStateStore with GETDEL, one
// atomic step. Expiry is judged at now too, not only by the Redis clock.
func (s *Store) TakeOAuthState(ctx context.Context, state string, now time.Time) (authcore.OAuthState, error) {
	raw, err := s.c.GetDel(ctx, s.oauthKey(state)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.OAuthState{}, authcore.ErrNotFound
	case err != nil:
		return authcore.OAuthState{}, fmt.Errorf("redisstore: take oauth state: %w", err)
	}
	var st authcore.OAuthState
	if err := json.Unmarshal(raw, &st); err != nil {
		return authcore.OAuthState{}, fmt.Errorf("redisstore: take oauth state: %w", err)
	}
	if !now.Before(st.ExpiresAt) {
		return authcore.OAuthState{}, authcore.ErrNotFound
	}
	st.State = state
	return st, nil
}
