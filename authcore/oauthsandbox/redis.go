package oauthsandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisState is a State in Redis (or a Redis Cluster: every command touches
// one key), so that the nodes of a sandbox cluster answer as one provider.
// Every code and token key expires Retention after the grant does; app
// secrets are kept without expiry (one short string per app). Safe for
// concurrent use.
type RedisState struct {
	c      redis.UniversalClient
	prefix string
}

var _ State = (*RedisState)(nil)

// NewRedisState returns a State kept in c under keys that start with
// prefix and a colon. Fakes that share one Redis need a prefix each
// ("loginhub:sbx:qq", "loginhub:sbx:weibo", ...).
func NewRedisState(c redis.UniversalClient, prefix string) *RedisState {
	return &RedisState{c: c, prefix: prefix + ":"}
}

// AppSecret implements State with SET NX, then GET.
func (s *RedisState) AppSecret(ctx context.Context, app, candidate string) (string, error) {
	key := s.prefix + "app:" + app
	if err := s.c.SetNX(ctx, key, candidate, 0).Err(); err != nil {
		return "", fmt.Errorf("oauthsandbox: app secret: %w", err)
	}
	secret, err := s.c.Get(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("oauthsandbox: app secret: %w", err)
	}
	return secret, nil
}

// IssueCode implements State: a hash {g: grant, e: expiry in ms} that a
// script marks used (u).
func (s *RedisState) IssueCode(ctx context.Context, code string, g Grant) error {
	raw, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("oauthsandbox: issue code: %w", err)
	}
	key := s.prefix + "code:" + code
	_, err = s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, "g", raw, "e", g.Expires.UnixMilli())
		p.PExpireAt(ctx, key, g.Expires.Add(Retention))
		return nil
	})
	if err != nil {
		return fmt.Errorf("oauthsandbox: issue code: %w", err)
	}
	return nil
}

// useCodeScript returns false for an unknown code, else {status, grant},
// and marks an unused, unexpired code used: one script, so that two nodes
// cannot both redeem a code.
var useCodeScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'g', 'e', 'u')
if not v[1] then return false end
if v[3] then return {'used', v[1]} end
if tonumber(v[2]) <= tonumber(ARGV[1]) then return {'expired', v[1]} end
redis.call('HSET', KEYS[1], 'u', '1')
return {'ok', v[1]}
`)

// UseCode implements State.
func (s *RedisState) UseCode(ctx context.Context, code string, now time.Time) (Grant, CodeStatus, error) {
	reply, err := useCodeScript.Run(ctx, s.c, []string{s.prefix + "code:" + code}, now.UnixMilli()).StringSlice()
	switch {
	case errors.Is(err, redis.Nil):
		return Grant{}, CodeUnknown, nil
	case err != nil:
		return Grant{}, CodeUnknown, fmt.Errorf("oauthsandbox: use code: %w", err)
	case len(reply) != 2:
		return Grant{}, CodeUnknown, fmt.Errorf("oauthsandbox: use code: reply %q", reply)
	}
	var g Grant
	if err := json.Unmarshal([]byte(reply[1]), &g); err != nil {
		return Grant{}, CodeUnknown, fmt.Errorf("oauthsandbox: use code: corrupt grant: %w", err)
	}
	status := map[string]CodeStatus{"ok": CodeOK, "used": CodeUsed, "expired": CodeExpired}[reply[0]]
	return g, status, nil
}

// IssueToken implements State: one SET PXAT.
func (s *RedisState) IssueToken(ctx context.Context, token string, g Grant) error {
	raw, err := json.Marshal(g)
	if err == nil {
		err = s.c.Do(ctx, "SET", s.prefix+"token:"+token, raw, "PXAT", g.Expires.Add(Retention).UnixMilli()).Err()
	}
	if err != nil {
		return fmt.Errorf("oauthsandbox: issue token: %w", err)
	}
	return nil
}

// Token implements State.
func (s *RedisState) Token(ctx context.Context, token string) (Grant, bool, error) {
	raw, err := s.c.Get(ctx, s.prefix+"token:"+token).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return Grant{}, false, nil
	case err != nil:
		return Grant{}, false, fmt.Errorf("oauthsandbox: token: %w", err)
	}
	var g Grant
	if err := json.Unmarshal(raw, &g); err != nil {
		return Grant{}, false, fmt.Errorf("oauthsandbox: token: corrupt grant: %w", err)
	}
	return g, true, nil
}
