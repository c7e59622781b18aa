package wechat

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/loginhub/loginhub/authcore"
)

// TokenCache shares one access token per app among all hub nodes.
// authcore/memstore (one process) and authcore/redisstore (many nodes)
// implement it; both pass authcore/storetest.RunTokenCache.
type TokenCache interface {
	// AccessToken returns the token stored for appID and when it expires,
	// or authcore.ErrNotFound if there is none. A cache may forget a token
	// once it has expired, and may return it until then.
	AccessToken(ctx context.Context, appID string) (token string, expiresAt time.Time, err error)
	// PutAccessToken stores appID's token until expiresAt, replacing the
	// previous one.
	PutAccessToken(ctx context.Context, appID, token string, expiresAt time.Time) error
	// TryLock takes a short lease named name for ttl; ok=false if someone
	// else holds it. release is safe to call once (and more: the extra
	// calls do nothing); it never ends a lease someone else took after
	// this one expired.
	TryLock(ctx context.Context, name string, ttl time.Duration) (release func(), ok bool, err error)
}

const (
	// DefaultTokenRefreshBefore is Config.TokenRefreshBefore's default,
	// and its maximum: WeChat's own renewal window. A non-forced
	// stable_token call returns the current token until it has 5 minutes
	// left and a new one after that, so refreshing earlier would only
	// fetch the same token again.
	DefaultTokenRefreshBefore = 5 * time.Minute
	// ForceRefreshInterval is how far apart WeChat allows force_refresh
	// calls for one app.
	ForceRefreshInterval = 30 * time.Second

	// tokenPoll is how often a node that lost the refresh lock looks for
	// the token the lock holder fetches. It polls because the event it
	// waits for happens on another node; 50 ms is negligible next to a
	// WeChat round trip and costs one GET per waiting node, not per caller.
	tokenPoll = 50 * time.Millisecond
	// renewBackoff is how long a node serves a still-valid token in the
	// refresh window after a refresh did not renew it (WeChat answered the
	// same token, its clock being a little behind ours, or failed), so
	// that it does not ask again on every call.
	renewBackoff = 10 * time.Second
	// lockMargin is added to the Client's timeout to make the refresh
	// lease: the holder fetches (bounded by the timeout) and stores.
	lockMargin = 5 * time.Second
)

// TokenManager hands out the app's access_token (POST /cgi-bin/stable_token)
// so that every hub node uses the same one: the token lives in a
// TokenCache, and one node at a time refreshes it under a lease in that
// cache. A Client owns one (Client.Tokens); API calls that need a token use
// it, and so can code outside this package.
//
// Token protocol, per app:
//   - A token with more than refreshBefore left is used as is: first the
//     copy this node remembers, then the shared cache.
//   - Otherwise the node's callers share one refresh (singleflight), which
//     takes the lease "at-refresh:<appid>", re-reads the cache (another node
//     may just have refreshed), fetches with force_refresh=false and stores
//     the answer before releasing the lease.
//   - A node that finds the lease taken serves the old token while it is
//     still valid; without one it polls the cache every 50 ms for the
//     holder's token, trying the lease again each time (so a holder that
//     died only delays it until its lease expires), as long as the
//     caller's context allows (and at most the lease plus the Client's
//     timeout). Polling is how it learns of an event on another node.
//   - If the refresh fails, or WeChat has not renewed the token yet, a
//     still-valid old token is served, and the node does not ask again for
//     10 seconds.
//
// Invalidate handles a token an API call rejected (40001, 42001, 40014):
// under the same lease, force_refresh=true, at most once per
// ForceRefreshInterval per app across all nodes (a lease "at-force:<appid>"
// that is never released: it expires after 30 s, and so doubles as the
// timestamp of the last forced refresh).
//
// If the cache fails (Redis down), the node degrades to fetching for
// itself: stable_token returns every caller the same token, so this costs
// WeChat calls but never invalidates another node's token. Tokens are
// secrets and are never logged.
type TokenManager struct {
	c             *Client
	cache         TokenCache
	refreshBefore time.Duration
	lockTTL       time.Duration
	refreshLock   string
	forceLock     string

	flight singleflight.Group

	mu         sync.Mutex
	local      cachedToken // the last token this node saw
	renewAfter time.Time   // until then, serve local while valid instead of refreshing
	lastForce  time.Time   // this node's last force_refresh, for when the cache is down

	// Test hooks.
	afterJoin func() // a caller has joined the node's flight
	onWait    func() // the flight waits for another node's refresh
}

type cachedToken struct {
	token     string
	expiresAt time.Time
}

func newTokenManager(c *Client, cache TokenCache, refreshBefore time.Duration) *TokenManager {
	if cache == nil {
		cache = newMemoryTokenCache(func() time.Time { return c.clock() })
	}
	return &TokenManager{
		c: c, cache: cache, refreshBefore: refreshBefore,
		lockTTL:     c.timeout + lockMargin,
		refreshLock: "at-refresh:" + c.appID,
		forceLock:   "at-force:" + c.appID,
	}
}

// Tokens returns the Client's TokenManager.
func (c *Client) Tokens() *TokenManager { return c.tokenMgr }

// Token returns a valid access token for the app, refreshing it as the
// TokenManager's protocol says. Errors are *authcore.Error:
// KindUpstreamUnavailable (or KindRateLimited) when no valid token can be
// had, also when ctx ends first.
func (m *TokenManager) Token(ctx context.Context) (string, error) {
	now := m.c.clock()
	m.mu.Lock()
	local, renewAfter := m.local, m.renewAfter
	m.mu.Unlock()
	if local.token != "" && (local.expiresAt.Sub(now) > m.refreshBefore ||
		now.Before(renewAfter) && local.expiresAt.After(now)) {
		return local.token, nil
	}
	return m.shared(ctx, "token", "")
}

// Invalidate tells the manager that an API call rejected token bad
// (errcode 40001, 42001 or 40014). If the shared token is still bad, it is
// replaced by a force-refreshed one, unless a forced refresh happened less
// than ForceRefreshInterval ago; then a non-forced fetch may still find a
// newer token, and if it does not, Invalidate fails with
// KindUpstreamUnavailable. If the shared token is already another one,
// Invalidate just adopts it. Concurrent calls for one bad token share the
// work. Callers retry their API call once with Token afterwards.
func (m *TokenManager) Invalidate(ctx context.Context, bad string) error {
	if bad == "" {
		return nil
	}
	m.mu.Lock()
	if m.local.token == bad {
		m.local = cachedToken{}
	}
	m.mu.Unlock()
	_, err := m.shared(ctx, "invalidate:"+bad, bad)
	return err
}

// shared runs refresh once per key for the node's concurrent callers. The
// refresh is detached from the first caller's cancellation and bounded by
// the lease plus the Client's timeout; each caller waits as long as its own
// ctx allows.
func (m *TokenManager) shared(ctx context.Context, key, bad string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", authcore.Wrap(authcore.KindUpstreamUnavailable, err, msgUnavailable)
	}
	ch := m.flight.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.lockTTL+m.c.timeout)
		defer cancel()
		return m.refresh(ctx, bad)
	})
	if m.afterJoin != nil {
		m.afterJoin()
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			if e, ok := r.Err.(*authcore.Error); ok {
				cp := *e
				return "", &cp
			}
			return "", r.Err
		}
		return r.Val.(string), nil
	case <-ctx.Done():
		return "", authcore.Wrap(authcore.KindUpstreamUnavailable, ctx.Err(), msgUnavailable)
	}
}

// refresh is the cross-node part of the protocol. bad is "" for a normal
// refresh, or the rejected token for Invalidate.
func (m *TokenManager) refresh(ctx context.Context, bad string) (string, error) {
	force := bad != ""
	// good: the token can be returned without fetching.
	good := func(t cachedToken, now time.Time) bool {
		if t.token == "" {
			return false
		}
		if force {
			return t.token != bad && t.expiresAt.After(now)
		}
		return t.expiresAt.Sub(now) > m.refreshBefore
	}
	// usable: the token may be served while another node refreshes, or
	// when a refresh fails.
	usable := func(t cachedToken, now time.Time) bool {
		return t.token != "" && t.token != bad && t.expiresAt.After(now)
	}
	waiting := false
	for {
		cur, err := m.load(ctx)
		if err != nil {
			return m.fetchDegraded(ctx, bad, err)
		}
		if good(cur, m.c.clock()) {
			m.remember(cur)
			return cur.token, nil
		}
		release, ok, err := m.cache.TryLock(ctx, m.refreshLock, m.lockTTL)
		if err != nil {
			return m.fetchDegraded(ctx, bad, err)
		}
		if ok {
			return m.refreshLocked(ctx, bad, cur, good, usable, release)
		}
		// Another node is refreshing.
		if usable(cur, m.c.clock()) && !force {
			m.remember(cur)
			return cur.token, nil
		}
		if !waiting {
			waiting = true
			if m.onWait != nil {
				m.onWait()
			}
		}
		t := time.NewTimer(tokenPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return "", authcore.Wrap(authcore.KindUpstreamUnavailable, ctx.Err(), msgUnavailable)
		}
	}
}

// refreshLocked runs with the refresh lease held: re-read, fetch, store,
// release.
func (m *TokenManager) refreshLocked(ctx context.Context, bad string, cur cachedToken,
	good, usable func(cachedToken, time.Time) bool, release func()) (string, error) {
	defer release()
	if again, err := m.load(ctx); err == nil {
		if good(again, m.c.clock()) {
			m.remember(again)
			return again.token, nil
		}
		cur = again
	}
	fresh, err := m.fetch(ctx, bad, true)
	if err != nil {
		if usable(cur, m.c.clock()) && bad == "" {
			m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: access_token refresh failed; serving the old token while it lasts",
				slog.Time("old_expires_at", cur.expiresAt), slog.String("error", err.Error()))
			m.rememberBackoff(cur)
			return cur.token, nil
		}
		return "", err
	}
	if fresh.token == cur.token && bad == "" {
		// Not renewed yet: keep the later expiry WeChat reported, and do
		// not ask again at once.
		m.rememberBackoff(fresh)
	} else {
		m.remember(fresh)
	}
	if err := m.cache.PutAccessToken(ctx, m.c.appID, fresh.token, fresh.expiresAt); err != nil {
		m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: cannot store the access_token in the shared cache",
			slog.String("error", err.Error()))
	}
	return fresh.token, nil
}

// fetchDegraded fetches without the shared cache, which failed with
// cacheErr.
func (m *TokenManager) fetchDegraded(ctx context.Context, bad string, cacheErr error) (string, error) {
	m.c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: access_token cache failed; fetching for this node alone",
		slog.String("error", cacheErr.Error()))
	if bad == "" {
		m.mu.Lock()
		local := m.local
		m.mu.Unlock()
		if local.token != "" && local.expiresAt.Sub(m.c.clock()) > m.refreshBefore {
			return local.token, nil // another caller fetched meanwhile
		}
	}
	fresh, err := m.fetch(ctx, bad, false)
	if err != nil {
		return "", err
	}
	m.remember(fresh)
	return fresh.token, nil
}

// fetch asks WeChat for the token: force-refreshed if bad is set and the
// once-per-30-s guard allows it (checked in the shared cache when
// useCache, and always on this node), else not.
func (m *TokenManager) fetch(ctx context.Context, bad string, useCache bool) (cachedToken, error) {
	force := bad != "" && m.mayForce(ctx, useCache)
	token, expiresIn, err := m.c.StableToken(ctx, force)
	if err != nil {
		return cachedToken{}, err
	}
	if token == bad {
		m.c.log.LogAttrs(ctx, slog.LevelError, "wechat: WeChat rejects the access_token it hands out, and a forced refresh is not allowed yet",
			slog.Bool("force_refresh", force), slog.Duration("force_interval", ForceRefreshInterval))
		e := authcore.Wrap(authcore.KindUpstreamUnavailable,
			errors.New("wechat: access_token rejected and force_refresh is rate limited"), msgUnavailable)
		e.RetryAfter = ForceRefreshInterval
		return cachedToken{}, e
	}
	return cachedToken{token: token, expiresAt: m.c.clock().Add(expiresIn)}, nil
}

// mayForce takes the force_refresh guard: this node's last forced refresh
// and, when useCache, the shared lease "at-force:<appid>" (never released;
// it expires after ForceRefreshInterval). A cache error leaves the
// decision to the node's own guard.
func (m *TokenManager) mayForce(ctx context.Context, useCache bool) bool {
	now := m.c.clock()
	m.mu.Lock()
	recent := !m.lastForce.IsZero() && now.Sub(m.lastForce) < ForceRefreshInterval
	m.mu.Unlock()
	if recent {
		return false
	}
	if useCache {
		if _, ok, err := m.cache.TryLock(ctx, m.forceLock, ForceRefreshInterval); err == nil && !ok {
			return false
		}
	}
	m.mu.Lock()
	m.lastForce = now
	m.mu.Unlock()
	return true
}

func (m *TokenManager) load(ctx context.Context) (cachedToken, error) {
	token, exp, err := m.cache.AccessToken(ctx, m.c.appID)
	switch {
	case errors.Is(err, authcore.ErrNotFound):
		return cachedToken{}, nil
	case err != nil:
		return cachedToken{}, err
	}
	return cachedToken{token, exp}, nil
}

func (m *TokenManager) remember(t cachedToken) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.local = t
}

// rememberBackoff remembers t and serves it without refreshing for
// renewBackoff while it is valid.
func (m *TokenManager) rememberBackoff(t cachedToken) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.local = t
	m.renewAfter = m.c.clock().Add(renewBackoff)
}

// memoryTokenCache is the TokenCache of a Client configured without one:
// this process only.
type memoryTokenCache struct {
	now    func() time.Time
	mu     sync.Mutex
	tokens map[string]cachedToken
	leases map[string]memoryLease
	seq    uint64
}

type memoryLease struct {
	id    uint64
	until time.Time
}

func newMemoryTokenCache(now func() time.Time) *memoryTokenCache {
	return &memoryTokenCache{now: now, tokens: map[string]cachedToken{}, leases: map[string]memoryLease{}}
}

func (c *memoryTokenCache) AccessToken(_ context.Context, appID string) (string, time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.tokens[appID]
	if !ok {
		return "", time.Time{}, authcore.ErrNotFound
	}
	return t.token, t.expiresAt, nil
}

func (c *memoryTokenCache) PutAccessToken(_ context.Context, appID, token string, expiresAt time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens[appID] = cachedToken{token, expiresAt}
	return nil
}

func (c *memoryTokenCache) TryLock(_ context.Context, name string, ttl time.Duration) (func(), bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if l, ok := c.leases[name]; ok && now.Before(l.until) {
		return func() {}, false, nil
	}
	c.seq++
	id := c.seq
	c.leases[name] = memoryLease{id, now.Add(ttl)}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.leases[name].id == id {
			delete(c.leases, name)
		}
	}, true, nil
}
