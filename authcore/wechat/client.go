// Package wechat is a client for WeChat's mini-program server API
// (code2Session, the stable access_token shared by all hub nodes, the phone
// number, checkSessionKey and resetusersessionkey) against a configurable
// base URL: https://api.weixin.qq.com in production, the hub's
// /sandbox/wechat or a wechattest.Server in the sandbox and in tests.
//
// A circuit breaker guards every call: after repeated upstream failures
// (timeouts, network errors, 5xx, "system busy" after retries) calls fail
// at once with KindUpstreamUnavailable for a cool-down instead of piling
// up behind a WeChat outage.
//
// Every error it returns is an *authcore.Error whose Message is safe to show
// to a phone; WeChat's errmsg text only goes into the wrapped cause and the
// log. Secrets, session_keys, access tokens and wx.login codes are never
// logged in full.
package wechat

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/breaker"
)

const (
	// DefaultTimeout bounds one call, retries included, when
	// Config.Timeout is zero.
	DefaultTimeout = 5 * time.Second
	// MaxCodeLength is the longest wx.login code Code2Session sends upstream.
	// Real codes are 32 characters; the margin allows for a format change.
	MaxCodeLength = 128

	maxAttempts      = 3 // the first try and at most 2 retries
	maxResponseBytes = 1 << 20
	rateLimitPause   = time.Minute // WeChat's quota is per minute
)

// Config configures a Client.
type Config struct {
	// BaseURL is the API base: "https://api.weixin.qq.com", or the
	// sandbox's "http://host/sandbox/wechat". Required; a trailing slash is
	// ignored.
	BaseURL string
	// AppID and Secret are the mini-program's credentials. Required.
	AppID  string
	Secret string
	// HTTPClient sends the requests. Nil means a client of its own whose
	// Timeout is Timeout.
	HTTPClient *http.Client
	// Logger receives upstream failures (with WeChat's errmsg) and
	// misconfiguration errors. Nil discards them.
	Logger *slog.Logger
	// Timeout bounds each call, retries included. Zero means
	// DefaultTimeout.
	Timeout time.Duration

	// TokenCache shares the app's access_token among hub nodes: the
	// store (authcore/redisstore for many nodes, authcore/memstore for
	// one). Nil means a cache in this Client only.
	TokenCache TokenCache
	// TokenRefreshBefore is how long before its expiry the access_token
	// is refreshed. Zero means DefaultTokenRefreshBefore, which is also
	// the maximum.
	TokenRefreshBefore time.Duration

	// BreakerFailures is how many calls in a row must fail upstream to
	// open the circuit breaker. Zero means DefaultBreakerFailures.
	BreakerFailures int
	// BreakerCoolDown is how long the open breaker fails calls at once
	// before letting one probe through. Zero means
	// DefaultBreakerCoolDown.
	BreakerCoolDown time.Duration
}

// Validate reports a KindInvalid error if c cannot make a working Client.
func (c Config) Validate() error {
	switch {
	case c.BaseURL == "":
		return authcore.Errorf(authcore.KindInvalid, "wechat: BaseURL is required")
	case !authcore.ValidBaseURL(c.BaseURL):
		return authcore.Errorf(authcore.KindInvalid, "wechat: BaseURL %q is not an http(s) URL without query", c.BaseURL)
	case c.AppID == "" || c.Secret == "":
		return authcore.Errorf(authcore.KindInvalid, "wechat: AppID and Secret are required")
	case c.Timeout < 0:
		return authcore.Errorf(authcore.KindInvalid, "wechat: Timeout must not be negative")
	case c.TokenRefreshBefore < 0 || c.TokenRefreshBefore > DefaultTokenRefreshBefore:
		return authcore.Errorf(authcore.KindInvalid, "wechat: TokenRefreshBefore must be between 0 and %v", DefaultTokenRefreshBefore)
	case c.BreakerFailures < 0 || c.BreakerCoolDown < 0:
		return authcore.Errorf(authcore.KindInvalid, "wechat: BreakerFailures and BreakerCoolDown must not be negative")
	}
	return nil
}

// Client calls WeChat's server API for one mini-program. It is safe for
// concurrent use; share one per app.
type Client struct {
	base    string
	appID   string
	secret  string
	http    *http.Client
	log     *slog.Logger
	timeout time.Duration

	// sessions shares one code2Session call among concurrent callers with
	// the same code, and phones one getuserphonenumber call per phone
	// code. A Client serves one app, so keying on the code alone cannot
	// mix up apps.
	sessions singleflight.Group
	phones   singleflight.Group
	// resets shares resetusersessionkey calls per openid and key.
	resets singleflight.Group
	// stable shares stable_token calls, keyed on force_refresh.
	stable singleflight.Group

	tokenMgr *TokenManager
	breaker  *breaker.Breaker

	clock     func() time.Time // time.Now; tests move it
	backoff   []time.Duration  // pause before retry i+1
	afterJoin func()           // test hook: a caller has joined a flight
}

// New returns a Client for cfg, or cfg.Validate's error.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		base:    strings.TrimRight(cfg.BaseURL, "/"),
		appID:   cfg.AppID,
		secret:  cfg.Secret,
		http:    cfg.HTTPClient,
		log:     cfg.Logger,
		timeout: cfg.Timeout,
		// Short: a busy WeChat usually answers the next try, and the
		// person holding the phone is waiting.
		backoff: []time.Duration{100 * time.Millisecond, 300 * time.Millisecond},
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: c.timeout}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.clock = time.Now
	refreshBefore := cfg.TokenRefreshBefore
	if refreshBefore == 0 {
		refreshBefore = DefaultTokenRefreshBefore
	}
	c.tokenMgr = newTokenManager(c, cfg.TokenCache, refreshBefore)
	c.breaker = breaker.New(cmp.Or(cfg.BreakerFailures, DefaultBreakerFailures), cmp.Or(cfg.BreakerCoolDown, DefaultBreakerCoolDown),
		func() time.Time { return c.clock() },
		func(from, to string, failures int) {
			level := slog.LevelInfo
			if to == BreakerOpen {
				level = slog.LevelError
			}
			c.log.LogAttrs(context.Background(), level, "wechat: circuit breaker "+to,
				slog.String("from", from), slog.String("to", to), slog.Int("consecutive_failures", failures))
		})
	return c, nil
}

// Session is what code2Session returns for a wx.login code.
type Session struct {
	OpenID     string
	UnionID    string // empty unless the app is bound to an Open Platform account
	SessionKey string // base64 of 16 bytes; secret, never log it
}

// LogValue keeps the session_key out of logs.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("openid", s.OpenID),
		slog.String("unionid", s.UnionID),
		slog.String("session_key", "[redacted]"),
	)
}

// Code2Session exchanges a wx.login code for the user's openid, unionid and
// session_key (GET /sns/jscode2session). Concurrent calls with the same
// code share one upstream request and its result, because WeChat accepts a
// code once: a duplicate submission would otherwise fail with "code been
// used" while the first succeeds.
//
// Errors, all *authcore.Error:
//   - KindInvalid: the code is empty, too long or not URL-safe (checked
//     before calling WeChat), or WeChat says it is missing (41008).
//   - KindUnauthorized: the code is unknown, expired, for another app or
//     already used (40029, 40163). The phone should call wx.login again.
//   - KindRateLimited, RetryAfter 1 minute: the user's quota (45011).
//   - KindForbidden: WeChat's risk control blocks this account (40226).
//   - KindUpstreamUnavailable: WeChat is busy (-1), unreachable, slow,
//     answered garbage or an unexpected errcode, or rejected loginhub's own
//     credentials (40013, 40125, ...; logged at error level). Transient
//     failures are retried twice first, within the timeout. Also when ctx
//     ends first, and at once, with RetryAfter, while the circuit breaker
//     is open.
//
// Code2Session is safe for concurrent use.
func (c *Client) Code2Session(ctx context.Context, code string) (Session, error) {
	if err := checkCode(code); err != nil {
		return Session{}, err
	}
	v, err := c.share(ctx, &c.sessions, code, func(ctx context.Context) (any, error) {
		return c.code2Session(ctx, code)
	})
	if err != nil {
		return Session{}, err
	}
	return v.(Session), nil
}

func (c *Client) code2Session(ctx context.Context, code string) (Session, error) {
	const op = "jscode2session"
	q := url.Values{
		"appid":      {c.appID},
		"secret":     {c.secret},
		"js_code":    {code},
		"grant_type": {"authorization_code"},
	}
	endpoint := c.base + "/sns/jscode2session?" + q.Encode()
	var resp struct {
		apiStatus
		OpenID     string `json:"openid"`
		UnionID    string `json:"unionid"`
		SessionKey string `json:"session_key"`
	}
	logAttrs := []slog.Attr{slog.Any("code", redacted(code))}
	attempts, err := c.call(ctx, op, logAttrs, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
	}, &resp)
	if err != nil {
		return Session{}, err
	}
	switch resp.ErrCode {
	case 0:
		if resp.OpenID == "" || resp.SessionKey == "" {
			c.log.LogAttrs(ctx, slog.LevelError, "wechat: success without openid or session_key",
				append(logAttrs, slog.String("op", op), slog.Bool("has_openid", resp.OpenID != ""))...)
			return Session{}, authcore.Wrap(authcore.KindUpstreamUnavailable,
				errors.New("wechat jscode2session: answer without openid or session_key"), msgUnavailable)
		}
		s := Session{OpenID: resp.OpenID, UnionID: resp.UnionID, SessionKey: resp.SessionKey}
		c.log.LogAttrs(ctx, slog.LevelDebug, "wechat: code2Session", append(logAttrs, slog.Any("session", s))...)
		return s, nil
	case 40029, 40163:
		if attempts > 1 {
			// An earlier attempt whose answer we lost may have used the
			// code; the phone's remedy (a new wx.login) is the same.
			logAttrs = append(logAttrs, slog.Bool("maybe_used_by_lost_attempt", true))
		}
		c.logAPIError(ctx, slog.LevelInfo, op, resp.apiStatus, logAttrs)
		return Session{}, authcore.Wrap(authcore.KindUnauthorized, resp.cause(op), "invalid or already used wx.login code")
	case 41008:
		c.logAPIError(ctx, slog.LevelInfo, op, resp.apiStatus, logAttrs)
		return Session{}, authcore.Wrap(authcore.KindInvalid, resp.cause(op), "missing wx.login code")
	}
	return Session{}, c.commonError(ctx, op, resp.apiStatus, logAttrs)
}

// StableToken returns the app's access_token and its remaining lifetime
// (POST /cgi-bin/stable_token). Unlike /cgi-bin/token, asking again returns
// the same token, so several hub nodes can each ask without invalidating
// each other's. forceRefresh asks for a new one (WeChat allows 20 a day, 30
// seconds apart); use it only after an API call rejected the token.
// Concurrent calls with the same forceRefresh share one upstream request.
//
// Errors, all *authcore.Error: KindRateLimited (45009, 45011) with
// RetryAfter; KindUpstreamUnavailable for everything else, after retrying
// transient failures as Code2Session does. Safe for concurrent use.
func (c *Client) StableToken(ctx context.Context, forceRefresh bool) (token string, expiresIn time.Duration, err error) {
	key := "cached"
	if forceRefresh {
		key = "force"
	}
	v, err := c.share(ctx, &c.stable, key, func(ctx context.Context) (any, error) {
		return c.stableToken(ctx, forceRefresh)
	})
	if err != nil {
		return "", 0, err
	}
	t := v.(accessToken)
	return t.token, t.expiresIn, nil
}

type accessToken struct {
	token     string
	expiresIn time.Duration
}

func (c *Client) stableToken(ctx context.Context, forceRefresh bool) (accessToken, error) {
	const op = "stable_token"
	body, err := json.Marshal(struct {
		GrantType    string `json:"grant_type"`
		AppID        string `json:"appid"`
		Secret       string `json:"secret"`
		ForceRefresh bool   `json:"force_refresh"`
	}{"client_credential", c.appID, c.secret, forceRefresh})
	if err != nil {
		return accessToken{}, authcore.Wrap(authcore.KindInternal, err, "internal error")
	}
	var resp struct {
		apiStatus
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	logAttrs := []slog.Attr{slog.Bool("force_refresh", forceRefresh)}
	if _, err := c.call(ctx, op, logAttrs, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/cgi-bin/stable_token", bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}, &resp); err != nil {
		return accessToken{}, err
	}
	if resp.ErrCode != 0 {
		return accessToken{}, c.commonError(ctx, op, resp.apiStatus, logAttrs)
	}
	if resp.AccessToken == "" || resp.ExpiresIn <= 0 {
		c.log.LogAttrs(ctx, slog.LevelError, "wechat: success without access_token or expires_in",
			append(logAttrs, slog.String("op", op), slog.Int64("expires_in", resp.ExpiresIn))...)
		return accessToken{}, authcore.Wrap(authcore.KindUpstreamUnavailable,
			errors.New("wechat stable_token: answer without access_token or expires_in"), msgUnavailable)
	}
	return accessToken{resp.AccessToken, time.Duration(resp.ExpiresIn) * time.Second}, nil
}

// Client-visible messages.
const (
	msgUnavailable = "WeChat login is unavailable right now, please try again later"
	msgRateLimited = "too many login attempts, please try again in a minute"
	msgRiskControl = "WeChat's risk control has restricted this WeChat account, so it cannot log in right now"
)

// configErrcodes mean loginhub's own configuration is wrong (credentials,
// IP allow-list, API permissions): no user can log in until an operator
// fixes it, so they are logged at error level.
var configErrcodes = map[int]string{
	40001: "invalid credential (secret)",
	40002: "invalid grant_type",
	40013: "invalid appid",
	40125: "invalid appsecret",
	40164: "server IP not in the mini-program's allow-list",
	41001: "access_token missing (a loginhub bug)",
	41002: "appid missing",
	41004: "appsecret missing",
	43001: "wrong HTTP method",
	43002: "wrong HTTP method",
	47001: "malformed request",
	48001: "API not authorized for this app",
}

// commonError maps the errcodes shared by the APIs: user-level blocks and
// quotas, and everything else as an upstream failure.
func (c *Client) commonError(ctx context.Context, op string, st apiStatus, attrs []slog.Attr) error {
	switch st.ErrCode {
	case 45009, 45011:
		c.logAPIError(ctx, slog.LevelWarn, op, st, attrs)
		e := authcore.Wrap(authcore.KindRateLimited, st.cause(op), msgRateLimited)
		e.RetryAfter = rateLimitPause
		return e
	case 40226:
		c.logAPIError(ctx, slog.LevelInfo, op, st, attrs)
		return authcore.Wrap(authcore.KindForbidden, st.cause(op), msgRiskControl)
	}
	if what, ok := configErrcodes[st.ErrCode]; ok {
		c.logAPIError(ctx, slog.LevelError, op, st,
			append(attrs, slog.String("misconfiguration", what+": check the WeChat appid, secret and allow-list")))
	} else {
		c.logAPIError(ctx, slog.LevelWarn, op, st, append(attrs, slog.Bool("unexpected_errcode", true)))
	}
	return authcore.Wrap(authcore.KindUpstreamUnavailable, st.cause(op), msgUnavailable)
}

func (c *Client) logAPIError(ctx context.Context, level slog.Level, op string, st apiStatus, attrs []slog.Attr) {
	c.log.LogAttrs(ctx, level, "wechat: API error", append(attrs,
		slog.String("op", op), slog.Int("errcode", st.ErrCode), slog.String("errmsg", st.ErrMsg))...)
}

// apiStatus is the errcode/errmsg pair of every WeChat answer. Success
// often has neither.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// cause is the logged-only error carrying WeChat's text.
func (s apiStatus) cause(op string) error {
	return fmt.Errorf("wechat %s: errcode %d: %s", op, s.ErrCode, s.ErrMsg)
}

// share runs fn once for all concurrent callers with the same key. The
// shared call is detached from the first caller's cancellation (the others
// still want the answer) but keeps its values and is bounded by the
// Client's timeout, which is how its goroutine ends. Each caller waits only
// as long as its own ctx allows. Every caller gets its own copy of an
// error, so none can alter another's.
func (c *Client) share(ctx context.Context, g *singleflight.Group, key string, fn func(context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, authcore.Wrap(authcore.KindUpstreamUnavailable, err, msgUnavailable)
	}
	ch := g.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), c.timeout, errTimeout)
		defer cancel()
		return fn(ctx)
	})
	if c.afterJoin != nil {
		c.afterJoin()
	}
	select {
	case r := <-ch:
		if e, ok := r.Err.(*authcore.Error); ok {
			cp := *e
			return nil, &cp
		}
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, authcore.Wrap(authcore.KindUpstreamUnavailable, ctx.Err(), msgUnavailable)
	}
}

// errTimeout is the cause of a context that the Client's own timeout ended,
// as opposed to its caller. It wraps context.DeadlineExceeded, which
// net/http reports as the cause.
var errTimeout = fmt.Errorf("wechat: call timed out: %w", context.DeadlineExceeded)

// call sends the request that build makes and decodes the first answer
// that is JSON and not "system busy" (-1) into out, which must embed
// apiStatus. Transient failures (network errors, timeouts, HTTP 5xx,
// non-JSON, -1) are retried with a short backoff, at most twice and within
// ctx and the Client's timeout. It returns how many attempts were made; an
// error is a KindUpstreamUnavailable *authcore.Error.
//
// The circuit breaker sees each call's outcome: an answer (whatever its
// errcode) is a success; a failure after the retries is a failure, unless
// the caller's ctx ended first. While it is open, call fails at once.
func (c *Client) call(ctx context.Context, op string, attrs []slog.Attr, build func(context.Context) (*http.Request, error), out any) (attempts int, err error) {
	done, err := c.allowCall()
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "wechat: call refused by the circuit breaker", append(attrs, slog.String("op", op))...)
		return 0, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, errTimeout)
	defer cancel()
	attempts, err = c.callAttempts(ctx, op, attrs, build, out)
	switch {
	case err == nil:
		done(breaker.Success)
	case ctx.Err() != nil && !errors.Is(context.Cause(ctx), errTimeout):
		done(breaker.Ignored) // the caller gave up: no verdict on WeChat
	default:
		done(breaker.Failure)
	}
	return attempts, err
}

func (c *Client) callAttempts(ctx context.Context, op string, attrs []slog.Attr, build func(context.Context) (*http.Request, error), out any) (attempts int, err error) {
	var last error
	for attempts = 1; ; attempts++ {
		body, transient, err := c.attempt(ctx, build)
		if err == nil {
			var st apiStatus
			switch err = json.Unmarshal(body, &st); {
			case err != nil:
				err, transient = fmt.Errorf("answer is not JSON: %w", err), true
			case st.ErrCode == -1: // system busy
				err, transient = st.cause(op), true
			default:
				if err = json.Unmarshal(body, out); err == nil {
					return attempts, nil
				}
			}
		}
		last = err
		retry := transient && attempts < maxAttempts
		c.log.LogAttrs(ctx, slog.LevelWarn, "wechat: call failed", append(attrs,
			slog.String("op", op), slog.Int("attempt", attempts), slog.Bool("will_retry", retry),
			slog.String("error", err.Error()))...)
		if !retry || !c.pause(ctx, attempts-1) {
			break
		}
	}
	return attempts, authcore.Wrap(authcore.KindUpstreamUnavailable, fmt.Errorf("wechat %s: %w", op, last), msgUnavailable)
}

// attempt makes one HTTP exchange and returns the body of a 200 answer.
// Each attempt gets half the Client's timeout so that one hung connection
// leaves time to retry.
func (c *Client) attempt(ctx context.Context, build func(context.Context) (*http.Request, error)) (body []byte, transient bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout/2)
	defer cancel()
	req, err := build(ctx)
	if err != nil {
		return nil, false, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, true, authcore.ScrubURLError(err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	switch {
	case err != nil:
		return nil, true, fmt.Errorf("reading answer: %w", authcore.ScrubURLError(err))
	case resp.StatusCode >= 500:
		return nil, true, fmt.Errorf("HTTP %d", resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		// WeChat answers its errors with 200; anything else (404 above
		// all) means BaseURL points at something that is not WeChat.
		return nil, false, fmt.Errorf("HTTP %d from %s: is the WeChat base URL right?", resp.StatusCode, authcore.URLWithoutQuery(req.URL))
	}
	return body, false, nil
}

// pause waits before retry i, or reports false if ctx ends first.
func (c *Client) pause(ctx context.Context, i int) bool {
	d := c.backoff[min(i, len(c.backoff)-1)]
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// checkCode rejects what cannot be a wx.login code before spending an
// upstream call (and a quota unit) on it.
func checkCode(code string) error { return checkCodeOf("wx.login code", code) }

// checkCodeOf rejects what cannot be a WeChat code (what names it in the
// messages): empty, over MaxCodeLength, or outside WeChat's alphabet.
func checkCodeOf(what, code string) error {
	if code == "" {
		return authcore.Errorf(authcore.KindInvalid, "missing %s", what)
	}
	if len(code) > MaxCodeLength {
		return authcore.Errorf(authcore.KindInvalid, "%s too long", what)
	}
	if !authcore.URLSafe(code) {
		return authcore.Errorf(authcore.KindInvalid, "malformed %s", what)
	}
	return nil
}

// redacted is a secret that logs as its first 4 characters and an ellipsis,
// enough to correlate log lines without being usable.
type redacted string

// LogValue implements slog.LogValuer.
func (r redacted) LogValue() slog.Value {
	if len(r) <= 4 {
		return slog.StringValue("…")
	}
	return slog.StringValue(string(r[:4]) + "…")
}
