package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SandboxUserTTL is how long the sandbox remembers a user it has not seen:
// as long as the hub keeps a session_key from a wx.login, so that the
// sandbox does not rotate a key the hub still holds merely by forgetting.
const SandboxUserTTL = 7 * 24 * time.Hour

// sandboxTokenRetention is how long a sandbox access_token is kept past its
// expiry, to answer "expired" rather than "unknown" meanwhile.
const sandboxTokenRetention = time.Hour

// Sandbox keeps the state of the hub's sandbox WeChat
// (authcore/wechat/wechattest.State) in Redis, so that every node of a
// sandbox cluster answers as one WeChat: a code issued by one node's
// sandbox is accepted by another's, a user has one session_key, and an
// access_token the hub caches for every node is known to every sandbox.
// Every key has a TTL and the users are at most maxUsers, so that
// inventing names cannot grow Redis without bound. Safe for concurrent use.
type Sandbox struct {
	c        redis.UniversalClient
	prefix   string
	maxUsers int
}

// Sandbox returns the sandbox state on the store's Redis, under its
// prefix, remembering at most maxUsers users (the least recently used
// forgotten first). It panics if maxUsers is not positive.
func (s *Store) Sandbox(maxUsers int) *Sandbox {
	if maxUsers <= 0 {
		panic(fmt.Sprintf("redisstore: sandbox maxUsers %d", maxUsers))
	}
	return &Sandbox{c: s.c, prefix: s.prefix, maxUsers: maxUsers}
}

// AppSecret returns the sandbox app's secret: candidate if no node stored
// one for appID before (SET NX), else the stored one, so that every node
// serves the same app. It is kept without expiry: one short string per
// appid.
func (b *Sandbox) AppSecret(ctx context.Context, appID, candidate string) (string, error) {
	key := b.secretKey(appID)
	if err := b.c.SetNX(ctx, key, candidate, 0).Err(); err != nil {
		return "", fmt.Errorf("redisstore: sandbox app secret: %w", err)
	}
	secret, err := b.c.Get(ctx, key).Result()
	if err != nil {
		return "", fmt.Errorf("redisstore: sandbox app secret: %w", err)
	}
	return secret, nil
}

// SessionKey implements wechattest.State.
func (b *Sandbox) SessionKey(ctx context.Context, name, openid, fresh string) (string, error) {
	return b.user(ctx, name, openid, fresh, false)
}

// SetSessionKey implements wechattest.State.
func (b *Sandbox) SetSessionKey(ctx context.Context, name, openid, key string) error {
	_, err := b.user(ctx, name, openid, key, true)
	return err
}

func (b *Sandbox) user(ctx context.Context, name, openid, key string, replace bool) (string, error) {
	flag := "0"
	if replace {
		flag = "1"
	}
	now := time.Now() // for the index's order and TTLs only
	reply, err := sandboxUserScript.Run(ctx, b.c,
		[]string{b.userKey(name), b.openIDKey(openid), b.usersKey()},
		name, key, flag, openid, now.UnixMilli(), SandboxUserTTL.Milliseconds(), b.maxUsers).StringSlice()
	if err != nil {
		return "", fmt.Errorf("redisstore: sandbox user: %w", err)
	}
	if len(reply) == 0 {
		return "", errors.New("redisstore: sandbox user: empty reply")
	}
	for _, old := range reply[1:] {
		if err := b.forget(ctx, old); err != nil {
			return "", err
		}
	}
	return reply[0], nil
}

// forget deletes a user the index dropped, and its openid's link.
func (b *Sandbox) forget(ctx context.Context, name string) error {
	openid, err := b.c.HGet(ctx, b.userKey(name), "o").Result()
	if errors.Is(err, redis.Nil) {
		return nil // expired meanwhile
	}
	if err == nil {
		err = sandboxForgetScript.Run(ctx, b.c,
			[]string{b.userKey(name), b.openIDKey(openid), b.usersKey()}, name).Err()
	}
	if err != nil {
		return fmt.Errorf("redisstore: sandbox forget user: %w", err)
	}
	return nil
}

// UserByOpenID implements wechattest.State.
func (b *Sandbox) UserByOpenID(ctx context.Context, openid string) (string, error) {
	name, err := b.c.Get(ctx, b.openIDKey(openid)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("redisstore: sandbox user by openid: %w", err)
	}
	return name, nil
}

// IssueCode implements wechattest.State: the code expires with its TTL.
func (b *Sandbox) IssueCode(ctx context.Context, kind, code, name string, expires time.Time) error {
	err := b.c.Do(ctx, "SET", b.codeKey(kind, code), encodeTime(expires)+" "+name, "PXAT", expires.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("redisstore: sandbox issue code: %w", err)
	}
	return nil
}

// UseCode implements wechattest.State with one script, so that two nodes
// cannot both consume one code.
func (b *Sandbox) UseCode(ctx context.Context, kind, code string, now time.Time) (string, bool, error) {
	name, err := sandboxUseCodeScript.Run(ctx, b.c, []string{b.codeKey(kind, code)}, encodeTime(now)).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("redisstore: sandbox use code: %w", err)
	case name == "-":
		return "", true, nil
	}
	return name, false, nil
}

// NewToken implements wechattest.State.
func (b *Sandbox) NewToken(ctx context.Context, kind, token string, expires, cut time.Time) error {
	old, err := b.c.Get(ctx, b.currentTokenKey(kind)).Result()
	if errors.Is(err, redis.Nil) {
		old, err = "", nil
	}
	if err != nil {
		return fmt.Errorf("redisstore: sandbox new token: %w", err)
	}
	oldKey := b.tokenKey(token)
	if old != "" {
		oldKey = b.tokenKey(old)
	}
	err = sandboxNewTokenScript.Run(ctx, b.c,
		[]string{b.currentTokenKey(kind), b.tokenKey(token), oldKey},
		token, expires.UnixMilli(), cut.UnixMilli(), sandboxTokenRetention.Milliseconds(), old).Err()
	if err != nil {
		return fmt.Errorf("redisstore: sandbox new token: %w", err)
	}
	return nil
}

// CurrentToken implements wechattest.State.
func (b *Sandbox) CurrentToken(ctx context.Context, kind string) (string, time.Time, error) {
	token, err := b.c.Get(ctx, b.currentTokenKey(kind)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", time.Time{}, nil
	case err != nil:
		return "", time.Time{}, fmt.Errorf("redisstore: sandbox current token: %w", err)
	}
	exp, err := b.TokenExpiry(ctx, token)
	if err != nil || exp.IsZero() {
		return "", time.Time{}, err
	}
	return token, exp, nil
}

// TokenExpiry implements wechattest.State.
func (b *Sandbox) TokenExpiry(ctx context.Context, token string) (time.Time, error) {
	raw, err := b.c.Get(ctx, b.tokenKey(token)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return time.Time{}, nil
	case err != nil:
		return time.Time{}, fmt.Errorf("redisstore: sandbox token: %w", err)
	}
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return time.Time{}, errors.New("redisstore: sandbox token: corrupt expiry")
	}
	return time.UnixMilli(ms), nil
}

// PutFace implements wechattest.State: one SET PXAT.
func (b *Sandbox) PutFace(ctx context.Context, key string, record []byte, until time.Time) error {
	if err := b.c.Do(ctx, "SET", b.faceKey(key), record, "PXAT", until.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redisstore: sandbox put face: %w", err)
	}
	return nil
}

// Face implements wechattest.State.
func (b *Sandbox) Face(ctx context.Context, key string) ([]byte, error) {
	rec, err := b.c.Get(ctx, b.faceKey(key)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("redisstore: sandbox face: %w", err)
	}
	return rec, nil
}

// ClaimFace implements wechattest.State: SET NX, so that one claim wins
// across every node.
func (b *Sandbox) ClaimFace(ctx context.Context, verifyID string, until time.Time) (bool, error) {
	err := b.c.Do(ctx, "SET", b.faceClaimKey(verifyID), "1", "NX", "PXAT", until.UnixMilli()).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("redisstore: sandbox claim face: %w", err)
	}
	return true, nil
}
