// Package loginhubclient is for app backends written in Go: it checks the
// hub's access tokens that browsers and mini-programs send, by asking the
// hub (GET /v1/me), and puts the token's user in the request's context.
//
//	hub, err := loginhubclient.New(loginhubclient.Config{BaseURL: "https://login.example.com"})
//	if err != nil { ... }
//	mux.Handle("/api/", hub.Middleware(api))
//	// in api's handlers:
//	me, _ := loginhubclient.FromContext(r.Context()) // me.User.ID, me.Session.AMR
//
// Answers are cached for a short time (30 s by default) under the token's
// SHA-256, never the token itself, in a cache of bounded size; refusals are
// not cached. The hub's access token slides (each use extends it to 30
// minutes from then), so a user active within the cache's lifetime keeps
// the token alive; the price of the cache is that a token revoked at the hub
// (logout) is still accepted here until its entry expires.
package loginhubclient

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Defaults of Config's zero values.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultCacheTTL  = 30 * time.Second
	DefaultCacheSize = 10000
)

// maxTokenLen bounds what is sent to the hub; its access tokens are far
// shorter.
const maxTokenLen = 4096

// Config configures a Client.
type Config struct {
	// BaseURL is the hub's public URL, e.g. "https://login.example.com"
	// (required).
	BaseURL string
	// HTTPClient makes the requests to the hub; nil means
	// http.DefaultClient. Timeout bounds each check regardless.
	HTTPClient *http.Client
	// Timeout bounds one check of a token at the hub; zero means
	// DefaultTimeout. A hub that does not answer in time is unavailable
	// (503).
	Timeout time.Duration
	// CacheTTL is how long an accepted token is believed without asking
	// the hub again; zero means DefaultCacheTTL, negative means no cache.
	// Keep it well under the access token's 30-minute sliding lifetime: it
	// is also how long a revoked token is still accepted.
	CacheTTL time.Duration
	// CacheSize bounds the number of cached tokens; zero means
	// DefaultCacheSize. When full, expired entries go first, then
	// arbitrary ones.
	CacheSize int
	// Logger receives the hub's failures (never a token); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports what is wrong with c, or nil.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("loginhubclient: BaseURL %q is not an http(s) URL of the hub", c.BaseURL)
	}
	if c.Timeout < 0 || c.CacheSize < 0 {
		return errors.New("loginhubclient: Timeout and CacheSize must not be negative")
	}
	return nil
}

// User is the user a token belongs to, as GET /v1/me describes it.
type User struct {
	ID        string `json:"id"`
	Nickname  string `json:"nickname"`
	AvatarURL string `json:"avatar_url"`
	OpenID    string `json:"openid,omitempty"`
	UnionID   string `json:"unionid,omitempty"`
	// PhoneMasked is set for a session of a phone login ("+86 138****5678").
	PhoneMasked string `json:"phone_masked,omitempty"`
	// Sandbox: the user came through the hub's sandbox (emulated WeChat or
	// SMS): never a real person's proof.
	Sandbox bool `json:"sandbox,omitempty"`
}

// Session is how the token's session was authenticated.
type Session struct {
	// AMR lists the methods: "wx", "sms", "pwd", "carrier", "qq", ...,
	// "qr" for a desktop's session from a scan, "face" after a face check.
	AMR []string `json:"amr"`
	// AuthTime is when the user last authenticated on that device; nil
	// for a desktop's session from a QR scan.
	AuthTime *time.Time `json:"auth_time,omitempty"`
	// FaceAt is when the session last passed a face check, or nil.
	FaceAt *time.Time `json:"face_at,omitempty"`
	// StepUps is when the session last passed a step-up check of each
	// method ("face", "vbm", ...); nil if never.
	StepUps map[string]time.Time `json:"step_ups,omitempty"`
}

// Me is what the hub says about a token: GET /v1/me's answer.
type Me struct {
	User    User    `json:"user"`
	Session Session `json:"session"`
}

// Errors of Check, tested with errors.Is.
var (
	// ErrUnauthorized: the hub refused the token (unknown, expired,
	// revoked), or there was none.
	ErrUnauthorized = errors.New("loginhubclient: token refused")
	// ErrUnavailable: the hub could not be asked (unreachable, timed out,
	// overloaded, or an answer this package does not understand).
	ErrUnavailable = errors.New("loginhubclient: hub unavailable")
)

// Client checks tokens at one hub. It is safe for concurrent use.
type Client struct {
	me      string // BaseURL + "/v1/me"
	http    *http.Client
	timeout time.Duration
	ttl     time.Duration
	size    int
	log     *slog.Logger
	now     func() time.Time // time.Now; tests replace it

	flight singleflight.Group // one question to the hub per token at a time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]entry
}

type entry struct {
	me      *Me
	expires time.Time
}

// New returns a Client for c, or c.Validate's error.
func New(c Config) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	cl := &Client{
		me:      strings.TrimRight(c.BaseURL, "/") + "/v1/me",
		http:    c.HTTPClient,
		timeout: c.Timeout,
		ttl:     c.CacheTTL,
		size:    c.CacheSize,
		log:     c.Logger,
		now:     time.Now,
		cache:   map[[sha256.Size]byte]entry{},
	}
	if cl.http == nil {
		cl.http = http.DefaultClient
	}
	if cl.timeout == 0 {
		cl.timeout = DefaultTimeout
	}
	if cl.ttl == 0 {
		cl.ttl = DefaultCacheTTL
	}
	if cl.size == 0 {
		cl.size = DefaultCacheSize
	}
	if cl.log == nil {
		cl.log = slog.Default()
	}
	return cl, nil
}

// Check returns what the hub says about token. Its errors wrap
// ErrUnauthorized (the token is no good) or ErrUnavailable (ask again
// later). The caller must not change the returned Me, which may be shared.
func (c *Client) Check(ctx context.Context, token string) (*Me, error) {
	if token == "" || len(token) > maxTokenLen || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return nil, ErrUnauthorized
	}
	key := sha256.Sum256([]byte(token))
	if me := c.cached(key); me != nil {
		return me, nil
	}
	// Concurrent checks of one token (a page's burst of requests) share
	// one question to the hub. The shared call has its own timeout and is
	// not ended by one caller's context ending.
	ch := c.flight.DoChan(string(key[:]), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		me, err := c.ask(ctx, token)
		if err == nil {
			c.store(key, me)
		}
		return me, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Me), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, ctx.Err())
	}
}

// ask asks the hub about token.
func (c *Client) ask(ctx context.Context, token string) (*Me, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.me, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		// The error names the URL, which carries no token.
		c.log.WarnContext(ctx, "loginhub: asking the hub failed", "url", c.me, "err", err)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		c.log.WarnContext(ctx, "loginhub: reading the hub's answer failed", "url", c.me, "err", err)
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	switch {
	case res.StatusCode == http.StatusOK:
		var me Me
		if err := json.Unmarshal(body, &me); err != nil || me.User.ID == "" {
			c.log.ErrorContext(ctx, "loginhub: the hub's /v1/me answer is not understood", "url", c.me, "err", err)
			return nil, fmt.Errorf("%w: unreadable answer", ErrUnavailable)
		}
		return &me, nil
	case res.StatusCode == http.StatusUnauthorized:
		return nil, ErrUnauthorized
	case res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		c.log.WarnContext(ctx, "loginhub: the hub is unavailable", "url", c.me, "status", res.StatusCode)
		return nil, &unavailable{retryAfter: res.Header.Get("Retry-After")}
	default:
		// 404 (a wrong BaseURL) and the like: a misconfiguration, not the
		// user's fault.
		c.log.ErrorContext(ctx, "loginhub: unexpected answer from the hub; is BaseURL right?", "url", c.me, "status", res.StatusCode)
		return nil, fmt.Errorf("%w: status %d", ErrUnavailable, res.StatusCode)
	}
}

// unavailable is ErrUnavailable with the hub's Retry-After.
type unavailable struct{ retryAfter string }

func (e *unavailable) Error() string        { return ErrUnavailable.Error() + " (busy)" }
func (e *unavailable) Is(target error) bool { return target == ErrUnavailable }

func (c *Client) cached(key [sha256.Size]byte) *Me {
	if c.ttl < 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cache[key]
	if !ok {
		return nil
	}
	if !c.now().Before(e.expires) {
		delete(c.cache, key)
		return nil
	}
	return e.me
}

func (c *Client) store(key [sha256.Size]byte, me *Me) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.cache) >= c.size {
		for k, e := range c.cache {
			if !now.Before(e.expires) {
				delete(c.cache, k)
			}
		}
		for k := range c.cache { // map order: an arbitrary victim
			if len(c.cache) < c.size {
				break
			}
			delete(c.cache, k)
		}
	}
	c.cache[key] = entry{me: me, expires: now.Add(c.ttl)}
}

type contextKey struct{}

// FromContext returns the user that Middleware put in ctx.
func FromContext(ctx context.Context) (*Me, bool) {
	me, ok := ctx.Value(contextKey{}).(*Me)
	return me, ok
}

// NewContext returns ctx carrying me, as Middleware does (for tests of
// handlers behind it).
func NewContext(ctx context.Context, me *Me) context.Context {
	return context.WithValue(ctx, contextKey{}, me)
}

// Middleware lets a request through to next only with a token the hub
// accepts, in "Authorization: Bearer <access token>"; next finds its user
// with FromContext. Otherwise it answers as the hub does:
// 401 {"error":"unauthorized",...} (with WWW-Authenticate: Bearer) for a
// missing or refused token, 503 {"error":"upstream_unavailable",...} when
// the hub cannot be asked.
func (c *Client) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearer(r.Header.Get("Authorization"))
		if !ok {
			refuse(w, "a Bearer access token is required")
			return
		}
		me, err := c.Check(r.Context(), token)
		var busy *unavailable
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), me)))
		case errors.Is(err, ErrUnauthorized):
			refuse(w, "the access token was refused")
		default:
			if errors.As(err, &busy) {
				if s, err := strconv.Atoi(busy.retryAfter); err == nil && s > 0 {
					w.Header().Set("Retry-After", strconv.Itoa(s))
				}
			}
			writeError(w, http.StatusServiceUnavailable, "upstream_unavailable", "the login service is unavailable; try again")
		}
	})
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(h string) (string, bool) {
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

func refuse(w http.ResponseWriter, message string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="loginhub"`)
	writeError(w, http.StatusUnauthorized, "unauthorized", message)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "message": message})
}
