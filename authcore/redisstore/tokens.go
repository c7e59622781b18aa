package redisstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/redis/go-redis/v9"
)

// AccessToken returns the access token stored for appID and its expiry,
// or authcore.ErrNotFound when there is none or it has expired. It
// implements wechat.TokenCache.
func (s *Store) AccessToken(ctx context.Context, appID string) (string, time.Time, error) {
	raw, err := s.c.Get(ctx, s.accessTokenKey(appID)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", time.Time{}, authcore.ErrNotFound
	case err != nil:
		return "", time.Time{}, fmt.Errorf("redisstore: access token: %w", err)
	}
	ms, token, ok := strings.Cut(raw, " ")
	exp, err := decodeTime(ms)
	if !ok || err != nil || exp.IsZero() || token == "" {
		return "", time.Time{}, errors.New("redisstore: access token: corrupt value") // the value is a secret: not shown
	}
	return token, exp, nil
}

// PutAccessToken stores appID's access token until expiresAt (one SET
// PXAT), replacing the previous one; an expiresAt in the past deletes it.
// It implements wechat.TokenCache.
func (s *Store) PutAccessToken(ctx context.Context, appID, token string, expiresAt time.Time) error {
	key := s.accessTokenKey(appID)
	var err error
	if !expiresAt.After(time.Now()) {
		err = s.c.Del(ctx, key).Err()
	} else {
		err = s.c.Do(ctx, "SET", key, encodeTime(expiresAt)+" "+token, "PXAT", expiresAt.UnixMilli()).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: put access token: %w", err)
	}
	return nil
}

// unlockTimeout bounds a TryLock release, which has no context of its own.
const unlockTimeout = 2 * time.Second

// TryLock takes the lease name for ttl unless someone else holds it: SET
// NX PX with a random token. The returned release deletes the lock only if
// it still holds that token (a script compares and deletes), so a holder
// whose lease expired cannot free someone else's; calling it again does
// nothing. It implements wechat.TokenCache.
func (s *Store) TryLock(ctx context.Context, name string, ttl time.Duration) (release func(), ok bool, err error) {
	if ttl <= 0 {
		return nil, false, authcore.Errorf(authcore.KindInvalid, "redisstore: lock %q: ttl must be positive", name)
	}
	key, token := s.lockKey(name), rand.Text()
	err = s.c.Do(ctx, "SET", key, token, "NX", "PX", ceilMillis(ttl)).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return func() {}, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("redisstore: lock %s: %w", name, err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
			defer cancel()
			// A failed release leaves the lock to expire with its TTL.
			_ = unlockScript.Run(ctx, s.c, []string{key}, token).Err()
		})
	}, true, nil
}
