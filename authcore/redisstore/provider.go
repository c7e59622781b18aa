package redisstore

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/redis/go-redis/v9"
)

// The OpenID Connect provider's records (authcore.ProviderStore). Key
// layout, beside the one in keys.go:
//
//	lh:{op:<request id>}               an authorization request (JSON authcore.ProviderRequest without its
//	                                   login); TTL: its expiry (10 minutes)
//	lh:{op:<request id>}:login         its login once the user logged in (JSON authcore.ProviderLogin; SET NX);
//	                                   TTL: as the request
//	lh:opc:<hex code hash>             an authorization code ("<n|u> <expiry unix ms> <request id> <user id>": n
//	                                   new, u used); TTL: its expiry (60 s); taken once (takeCodeScript), and
//	                                   kept as used until its expiry, so that a replay finds the grant to revoke
//	lh:{u:<user id>}:g:<grant id>      a grant (hash j: JSON authcore.Grant, rh: hex hash of its live refresh
//	                                   token or "", e: expiry unix ms, s: the hub session family it came from,
//	                                   k: the DPoP key thumbprint its refresh token is bound to, absent or "");
//	                                   TTL: its expiry; tracked in the user's session index, for erasure
//	lh:{u:<user id>}:g:<grant id>:used:<hex refresh>
//	                                   a rotated-away refresh token (→ the grant's expiry then, unix ms); TTL:
//	                                   that expiry; tracked in the session index too
//	lh:{u:<user id>}:g:<grant id>:revoked
//	                                   a revoked grant's id, barred from CreateGrant (RevokeGrant); TTL: 10
//	                                   minutes (authcore.ProviderRequestTTL); tracked in the session index too
//
// A grant lives in its user's slot, so that one script checks the user and
// writes the grant, and erasing the user erases its grants.

var (
	completeRequestScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return redis.error_reply('LH_NOT_FOUND request')
end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PXAT', ARGV[2]) then
  return redis.error_reply('LH_CONFLICT already logged in')
end
return 1`)

	// KEYS[1] the code; replies its value before the take (nil when
	// there is none), after marking it used ("u") if it was new ("n").
	takeCodeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, 2) == 'n ' then
  redis.call('SET', KEYS[1], 'u ' .. string.sub(v, 3), 'KEEPTTL')
end
return v`)

	// KEYS[1] the grant, KEYS[2] the user, KEYS[3] the session index,
	// KEYS[4] the grant's revoked mark; ARGV[1] JSON, ARGV[2] refresh hash
	// hex or "", ARGV[3] expiry ms, ARGV[4] sid, ARGV[5] now ms, ARGV[6]
	// the DPoP key thumbprint or "".
	createGrantScript = redis.NewScript(sessionLib + `
if redis.call('EXISTS', KEYS[2]) == 0 then
  return redis.error_reply('LH_NOT_FOUND user')
end
if redis.call('EXISTS', KEYS[1], KEYS[4]) > 0 then
  return redis.error_reply('LH_CONFLICT grant exists or was revoked')
end
redis.call('HSET', KEYS[1], 'j', ARGV[1], 'rh', ARGV[2], 'e', ARGV[3], 's', ARGV[4], 'k', ARGV[6])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
track(KEYS[3], KEYS[1], ARGV[3], tonumber(ARGV[5]))
return 1`)

	// KEYS[1] the grant, KEYS[2] the consumed mark of the presented
	// token, KEYS[3] the session index; ARGV[1] the presented hash hex,
	// ARGV[2] the new one, ARGV[3] the new expiry ms, ARGV[4] now ms,
	// ARGV[5] a DPoP key thumbprint that binds an unbound grant, or "".
	// Replies the grant's JSON and DPoP key thumbprint, or LH_CONFLICT
	// (reuse: the grant is deleted) or LH_NOT_FOUND (nothing changed).
	rotateGrantScript = redis.NewScript(sessionLib + `
local now = tonumber(ARGV[4])
local used = redis.call('GET', KEYS[2])
if used and now < tonumber(used) then
  redis.call('DEL', KEYS[1])
  return redis.error_reply('LH_CONFLICT refresh token reused')
end
local g = redis.call('HMGET', KEYS[1], 'rh', 'e', 'j', 'k')
local e = g[2] and tonumber(g[2])
if not e or now >= e or g[1] ~= ARGV[1] then
  return redis.error_reply('LH_NOT_FOUND refresh token')
end
redis.call('SET', KEYS[2], g[2], 'PXAT', g[2])
local k = g[4] or ''
if k == '' then
  k = ARGV[5]
end
redis.call('HSET', KEYS[1], 'rh', ARGV[2], 'e', ARGV[3], 'k', k)
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
track(KEYS[3], KEYS[2], g[2], now)
track(KEYS[3], KEYS[1], ARGV[3], now)
return {g[3], k}`)

	// KEYS[1] the grant, KEYS[2] its revoked mark, KEYS[3] the session
	// index; ARGV[1] the mark's expiry ms, ARGV[2] now ms. Replies how
	// many grants it deleted (0 or 1).
	revokeGrantScript = redis.NewScript(sessionLib + `
local n = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], '1', 'PXAT', ARGV[1])
track(KEYS[3], KEYS[2], ARGV[1], tonumber(ARGV[2]))
return n`)

	revokeIfSessionScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 's') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
)

func (s *Store) providerRequestKey(id string) string { return s.prefix + ":{op:" + id + "}" }

func (s *Store) providerCodeKey(hash [32]byte) string {
	return s.prefix + ":opc:" + hex.EncodeToString(hash[:])
}

func (s *Store) grantKey(userID, id string) string { return s.userKey(userID) + ":g:" + id }

func hexOrEmpty(h [32]byte) string {
	if h == ([32]byte{}) {
		return ""
	}
	return hex.EncodeToString(h[:])
}

// PutProviderRequest implements authcore.ProviderStore.
func (s *Store) PutProviderRequest(ctx context.Context, r authcore.ProviderRequest) error {
	r.Login = nil
	raw, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("redisstore: put provider request: %w", err)
	}
	err = s.c.Do(ctx, "SET", s.providerRequestKey(r.ID), raw, "NX", "PXAT", r.ExpiresAt.UnixMilli()).Err()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.ErrConflict
	case err != nil:
		return fmt.Errorf("redisstore: put provider request: %w", err)
	}
	return nil
}

// ProviderRequest implements authcore.ProviderStore: the request and its
// login, one MGET in one slot.
func (s *Store) ProviderRequest(ctx context.Context, id string, now time.Time) (authcore.ProviderRequest, error) {
	k := s.providerRequestKey(id)
	vals, err := s.c.MGet(ctx, k, k+":login").Result()
	if err != nil {
		return authcore.ProviderRequest{}, fmt.Errorf("redisstore: provider request: %w", err)
	}
	raw, ok := vals[0].(string)
	if !ok {
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	}
	var r authcore.ProviderRequest
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return authcore.ProviderRequest{}, fmt.Errorf("redisstore: provider request: %w", err)
	}
	if !now.Before(r.ExpiresAt) {
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	}
	if login, ok := vals[1].(string); ok {
		r.Login = new(authcore.ProviderLogin)
		if err := json.Unmarshal([]byte(login), r.Login); err != nil {
			return authcore.ProviderRequest{}, fmt.Errorf("redisstore: provider request login: %w", err)
		}
	}
	return r, nil
}

// CompleteProviderRequest implements authcore.ProviderStore: SET NX of
// the login key, if the request exists, in one script.
func (s *Store) CompleteProviderRequest(ctx context.Context, id string, l authcore.ProviderLogin, now time.Time) error {
	r, err := s.ProviderRequest(ctx, id, now)
	if err != nil {
		return err
	}
	if r.Login != nil {
		return authcore.ErrConflict
	}
	raw, err := json.Marshal(l)
	if err != nil {
		return fmt.Errorf("redisstore: complete provider request: %w", err)
	}
	k := s.providerRequestKey(id)
	err = completeRequestScript.Run(ctx, s.c, []string{k, k + ":login"}, raw, r.ExpiresAt.UnixMilli()).Err()
	return outcome(err, "complete provider request")
}

// PutProviderCode implements authcore.ProviderStore: the request's login
// (which never changes once set) is read, and the code stored with its
// user, so that a replay of the code finds the user's grant.
func (s *Store) PutProviderCode(ctx context.Context, hash [32]byte, requestID string, expiresAt time.Time) error {
	raw, err := s.c.Get(ctx, s.providerRequestKey(requestID)+":login").Result()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.ErrNotFound
	case err != nil:
		return fmt.Errorf("redisstore: put provider code: %w", err)
	}
	var l authcore.ProviderLogin
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		return fmt.Errorf("redisstore: put provider code: %w", err)
	}
	v := "n " + strconv.FormatInt(expiresAt.UnixMilli(), 10) + " " + requestID + " " + l.UserID
	if err := s.c.Do(ctx, "SET", s.providerCodeKey(hash), v, "PXAT", expiresAt.UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redisstore: put provider code: %w", err)
	}
	return nil
}

// TakeProviderCode implements authcore.ProviderStore: one script marks
// the code used (it stays until its expiry); the request is read after.
func (s *Store) TakeProviderCode(ctx context.Context, hash [32]byte, now time.Time) (authcore.ProviderRequest, error) {
	v, err := takeCodeScript.Run(ctx, s.c, []string{s.providerCodeKey(hash)}).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	case err != nil:
		return authcore.ProviderRequest{}, fmt.Errorf("redisstore: take provider code: %w", err)
	}
	f := strings.SplitN(v, " ", 4)
	if len(f) != 4 {
		return authcore.ProviderRequest{}, fmt.Errorf("redisstore: take provider code: malformed code record")
	}
	exp, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return authcore.ProviderRequest{}, fmt.Errorf("redisstore: take provider code: malformed expiry %q", f[1])
	}
	switch {
	case now.UnixMilli() >= exp:
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	case f[0] != "n":
		return authcore.ProviderRequest{ID: f[2], Login: &authcore.ProviderLogin{UserID: f[3]}}, authcore.ErrConflict
	}
	return s.ProviderRequest(ctx, f[2], now)
}

// DeleteProviderRequest implements authcore.ProviderStore.
func (s *Store) DeleteProviderRequest(ctx context.Context, id string) error {
	k := s.providerRequestKey(id)
	if err := s.c.Del(ctx, k, k+":login").Err(); err != nil {
		return fmt.Errorf("redisstore: delete provider request: %w", err)
	}
	return nil
}

// CreateGrant implements authcore.ProviderStore.
func (s *Store) CreateGrant(ctx context.Context, g authcore.Grant) error {
	raw, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("redisstore: create grant: %w", err)
	}
	gk := s.grantKey(g.UserID, g.ID)
	keys := []string{gk, s.userKey(g.UserID), s.sessionIndexKey(g.UserID), gk + ":revoked"}
	err = createGrantScript.Run(ctx, s.c, keys, raw, hexOrEmpty(g.RefreshHash), g.ExpiresAt.UnixMilli(), g.SID, g.CreatedAt.UnixMilli(), g.DPoPJKT).Err()
	return outcome(err, "create grant")
}

// decodeGrant reads a grant's JSON and its live fields.
func decodeGrant(raw, refreshHex, expMS, jkt string) (authcore.Grant, error) {
	var g authcore.Grant
	if err := json.Unmarshal([]byte(raw), &g); err != nil {
		return g, err
	}
	exp, err := strconv.ParseInt(expMS, 10, 64)
	if err != nil {
		return g, err
	}
	g.ExpiresAt, g.DPoPJKT = time.UnixMilli(exp), jkt
	g.RefreshHash = [32]byte{}
	if refreshHex != "" {
		b, err := hex.DecodeString(refreshHex)
		if err != nil || len(b) != 32 {
			return g, fmt.Errorf("malformed refresh hash")
		}
		copy(g.RefreshHash[:], b)
	}
	return g, nil
}

// Grant implements authcore.ProviderStore.
func (s *Store) Grant(ctx context.Context, userID, id string, now time.Time) (authcore.Grant, error) {
	vals, err := s.c.HMGet(ctx, s.grantKey(userID, id), "j", "rh", "e", "k").Result()
	if err != nil {
		return authcore.Grant{}, fmt.Errorf("redisstore: grant: %w", err)
	}
	raw, ok1 := vals[0].(string)
	rh, _ := vals[1].(string)
	e, ok2 := vals[2].(string)
	jkt, _ := vals[3].(string)
	if !ok1 || !ok2 {
		return authcore.Grant{}, authcore.ErrNotFound
	}
	g, err := decodeGrant(raw, rh, e, jkt)
	if err != nil {
		return authcore.Grant{}, fmt.Errorf("redisstore: grant: %w", err)
	}
	if !now.Before(g.ExpiresAt) {
		return authcore.Grant{}, authcore.ErrNotFound
	}
	return g, nil
}

// RotateGrant implements authcore.ProviderStore in one script.
func (s *Store) RotateGrant(ctx context.Context, r authcore.GrantRotation) (authcore.Grant, error) {
	if r.Old == ([32]byte{}) {
		return authcore.Grant{}, authcore.ErrNotFound
	}
	gk := s.grantKey(r.UserID, r.ID)
	oldHex := hex.EncodeToString(r.Old[:])
	keys := []string{gk, gk + ":used:" + oldHex, s.sessionIndexKey(r.UserID)}
	reply, err := rotateGrantScript.Run(ctx, s.c, keys, oldHex, hexOrEmpty(r.New), r.ExpiresAt.UnixMilli(), r.Now.UnixMilli(), r.DPoPJKT).StringSlice()
	if err != nil {
		return authcore.Grant{}, outcome(err, "rotate grant")
	}
	if len(reply) != 2 {
		return authcore.Grant{}, fmt.Errorf("redisstore: rotate grant: a reply of %d values", len(reply))
	}
	g, err := decodeGrant(reply[0], hexOrEmpty(r.New), strconv.FormatInt(r.ExpiresAt.UnixMilli(), 10), reply[1])
	if err != nil {
		return authcore.Grant{}, fmt.Errorf("redisstore: rotate grant: %w", err)
	}
	return g, nil
}

// RevokeGrant implements authcore.ProviderStore: one script deletes the
// grant and sets its revoked mark.
func (s *Store) RevokeGrant(ctx context.Context, userID, id string) error {
	gk := s.grantKey(userID, id)
	now := time.Now()
	n, err := revokeGrantScript.Run(ctx, s.c, []string{gk, gk + ":revoked", s.sessionIndexKey(userID)},
		now.Add(authcore.ProviderRequestTTL).UnixMilli(), now.UnixMilli()).Int()
	if err != nil {
		return fmt.Errorf("redisstore: revoke grant: %w", err)
	}
	if n == 0 {
		return authcore.ErrNotFound
	}
	return nil
}

// RevokeSessionGrants implements authcore.ProviderStore: the session index
// names the user's grants; each is deleted if it came from session sid
// (compare and delete, one script per grant, all in the user's slot).
func (s *Store) RevokeSessionGrants(ctx context.Context, userID, sid string) (int, error) {
	keys, err := s.c.ZRange(ctx, s.sessionIndexKey(userID), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstore: revoke session grants: %w", err)
	}
	prefix := s.userKey(userID) + ":g:"
	n := 0
	for _, k := range keys {
		id, ok := strings.CutPrefix(k, prefix)
		if !ok || strings.Contains(id, ":") { // a consumed mark
			continue
		}
		deleted, err := revokeIfSessionScript.Run(ctx, s.c, []string{k}, sid).Int()
		if err != nil {
			return n, fmt.Errorf("redisstore: revoke session grants: %w", err)
		}
		n += deleted
	}
	return n, nil
}
