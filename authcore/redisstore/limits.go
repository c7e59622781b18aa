package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// FirstUse implements authcore.ReplayCache: SET key 1 NX PX ttl. A ttl
// under a millisecond counts as one; a ttl of zero or less records nothing
// and reports a first use, as memstore does.
func (s *Store) FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return true, nil
	}
	err := s.c.Do(ctx, "SET", s.onceKey(key), "1", "NX", "PX", ceilMillis(ttl)).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redisstore: first use: %w", err)
	}
	return true, nil
}

// Allow counts one event for key in a fixed window of length per and
// reports whether it is within limit; when it is not, retryAfter is the
// time left in the window. It implements handlers.Limiter.
func (s *Store) Allow(ctx context.Context, key string, limit int, per time.Duration) (ok bool, retryAfter time.Duration, err error) {
	if per <= 0 { // every event is a window of its own, as in memstore
		return limit > 0, 0, nil
	}
	res, err := allowScript.Run(ctx, s.c, []string{s.rateKey(key)}, ceilMillis(per)).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return false, 0, fmt.Errorf("redisstore: allow: %w", err)
	}
	if res[0] <= int64(limit) {
		return true, 0, nil
	}
	return false, time.Duration(res[1]) * time.Millisecond, nil
}

func ceilMillis(d time.Duration) int64 {
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Limited reports, without counting an event, whether key's window (as
// Allow counts it) already holds limit events or more: then the time left
// in the window, else 0.
func (s *Store) Limited(ctx context.Context, key string, limit int) (time.Duration, error) {
	ms, err := limitedScript.Run(ctx, s.c, []string{s.rateKey(key)}, limit).Int64()
	if err != nil {
		return 0, fmt.Errorf("redisstore: limited: %w", err)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Forget drops key's window, as if no event had been counted in it.
func (s *Store) Forget(ctx context.Context, key string) error {
	if err := s.c.Del(ctx, s.rateKey(key)).Err(); err != nil {
		return fmt.Errorf("redisstore: forget: %w", err)
	}
	return nil
}
