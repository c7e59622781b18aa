package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/providertest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// fixture is a Client talking to a wechattest.Server over real HTTP.
type fixture struct {
	t   *testing.T
	srv *wechattest.Server
	url string
	c   *Client
	log *providertest.LogBuffer
}

// checkOneCall checks, after one call in an errcode table, that the
// fake got requests requests on path and that one failure left the
// breaker closed.
func (f *fixture) checkOneCall(t *testing.T, path string, requests int) {
	t.Helper()
	if got := f.srv.Requests(path); got != requests {
		t.Errorf("upstream requests = %d, want %d", got, requests)
	}
	if f.c.BreakerState() != BreakerClosed {
		t.Errorf("breaker %s after one call, want closed", f.c.BreakerState())
	}
}

// newFixture starts srv and a Client for it; edit may change the Config.
func newFixture(t *testing.T, srv *wechattest.Server, edit func(*Config)) *fixture {
	t.Helper()
	url := wechattest.Start(t, srv)
	appid, secret := srv.App()
	logger, logs := providertest.NewLogger()
	cfg := Config{
		BaseURL: url,
		AppID:   appid,
		Secret:  secret,
		Logger:  logger,
	}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = []time.Duration{time.Millisecond, 2 * time.Millisecond} // keep tests quick
	return &fixture{t: t, srv: srv, url: url, c: c, log: logs}
}

// wxLogin gets a wx.login code for user from the fake, as a phone would.
func (f *fixture) wxLogin(user string) string {
	f.t.Helper()
	resp, err := http.Post(f.url+"/wx.login", "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q}`, user)))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Code string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Code == "" {
		f.t.Fatalf("wx.login: %v, code %q", err, out.Code)
	}
	return out.Code
}

// wantKind checks that err is an *authcore.Error of kind want whose
// client-visible message carries nothing of WeChat's text.
func wantKind(t *testing.T, what string, err error, want authcore.Kind) *authcore.Error {
	t.Helper()
	var e *authcore.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error = %v (%T), want an *authcore.Error of kind %s", what, err, err, want.Code())
	}
	if e.Kind != want {
		t.Errorf("%s: kind = %s (%v), want %s", what, e.Kind.Code(), err, want.Code())
	}
	if strings.Contains(e.Message, "rid:") || strings.Contains(e.Message, "errcode") {
		t.Errorf("%s: client message %q carries upstream text", what, e.Message)
	}
	return e
}

func TestNewValidates(t *testing.T) {
	good := Config{BaseURL: "https://api.weixin.qq.com", AppID: "wx1", Secret: "s"}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no base URL", func(c *Config) { c.BaseURL = "" }},
		{"relative base URL", func(c *Config) { c.BaseURL = "/sandbox/wechat" }},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://x/?a=b" }},
		{"no appid", func(c *Config) { c.AppID = "" }},
		{"no secret", func(c *Config) { c.Secret = "" }},
		{"negative timeout", func(c *Config) { c.Timeout = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			c, err := New(cfg)
			if c != nil || authcore.KindOf(err) != authcore.KindInvalid {
				t.Errorf("New = %v, %v; want nil and an invalid_request error", c, err)
			}
		})
	}
	c, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if c.timeout != DefaultTimeout || c.http.Timeout != DefaultTimeout || c.log == nil {
		t.Errorf("zero values: timeout %v, http timeout %v, log %v; want %v, %v and a discarding logger",
			c.timeout, c.http.Timeout, c.log, DefaultTimeout, DefaultTimeout)
	}
}

func TestCode2SessionRoundTrip(t *testing.T) {
	for _, unionIDs := range []bool{false, true} {
		t.Run(fmt.Sprintf("unionids=%v", unionIDs), func(t *testing.T) {
			srv := &wechattest.Server{UnionIDs: unionIDs}
			f := newFixture(t, srv, func(c *Config) { c.BaseURL += "/" }) // trailing slash tolerated
			code := f.wxLogin("alice")
			got, err := f.c.Code2Session(context.Background(), code)
			if err != nil {
				t.Fatal(err)
			}
			u := srv.User("alice")
			want := Session{OpenID: u.OpenID, SessionKey: u.SessionKey}
			if unionIDs {
				want.UnionID = u.UnionID
			}
			if got != want {
				t.Errorf("Code2Session = %+v, want %+v", got, want)
			}
			_, err = f.c.Code2Session(context.Background(), code)
			wantKind(t, "reused code", err, authcore.KindUnauthorized)
		})
	}
}

func TestCode2SessionErrcodes(t *testing.T) {
	tests := []struct {
		errcode    int
		n          int // injected failures
		want       authcore.Kind
		retryAfter time.Duration
		requests   int
	}{
		{40029, 1, authcore.KindUnauthorized, 0, 1},
		{40163, 1, authcore.KindUnauthorized, 0, 1},
		{41008, 1, authcore.KindInvalid, 0, 1},
		{45011, 1, authcore.KindRateLimited, time.Minute, 1},
		{40226, 1, authcore.KindForbidden, 0, 1},
		{40013, 1, authcore.KindUpstreamUnavailable, 0, 1},
		{40125, 1, authcore.KindUpstreamUnavailable, 0, 1},
		{40164, 1, authcore.KindUpstreamUnavailable, 0, 1},
		{99999, 1, authcore.KindUpstreamUnavailable, 0, 1},
		{-1, 3, authcore.KindUpstreamUnavailable, 0, 3}, // retried twice, then given up
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.errcode), func(t *testing.T) {
			srv := &wechattest.Server{}
			f := newFixture(t, srv, nil)
			code := f.wxLogin("bob")
			srv.FailNext(wechattest.PathCode2Session, tt.errcode, tt.n)
			_, err := f.c.Code2Session(context.Background(), code)
			e := wantKind(t, "Code2Session", err, tt.want)
			if e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
			if !strings.Contains(e.Err.Error(), fmt.Sprint(tt.errcode)) {
				t.Errorf("cause %q does not name errcode %d", e.Err, tt.errcode)
			}
			if got := srv.Requests(wechattest.PathCode2Session); got != tt.requests {
				t.Errorf("upstream requests = %d, want %d", got, tt.requests)
			}
		})
	}
}

func TestRiskControlMessageIsForPeople(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	srv.FailNext(wechattest.PathCode2Session, 40226, 1)
	_, err := f.c.Code2Session(context.Background(), f.wxLogin("carl"))
	e := wantKind(t, "40226", err, authcore.KindForbidden)
	if !strings.Contains(e.Message, "risk control") || strings.Contains(e.Message, "high risk") {
		t.Errorf("message = %q, want a sentence about WeChat's risk control, not WeChat's errmsg", e.Message)
	}
}

func TestMisconfigurationIsLoggedLoudly(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, func(c *Config) { c.Secret = "not-the-secret" })
	_, err := f.c.Code2Session(context.Background(), f.wxLogin("dan"))
	wantKind(t, "wrong secret", err, authcore.KindUpstreamUnavailable)
	logs := f.log.String()
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, "misconfiguration") || !strings.Contains(logs, "40125") {
		t.Errorf("log = %s, want an ERROR line naming the misconfiguration and errcode 40125", logs)
	}
}

func TestCode2SessionRetries(t *testing.T) {
	tests := []struct {
		name     string
		inject   func(srv *wechattest.Server)
		requests int
	}{
		{"system busy once", func(s *wechattest.Server) { s.FailNext(wechattest.PathCode2Session, -1, 1) }, 2},
		{"system busy twice", func(s *wechattest.Server) { s.FailNext(wechattest.PathCode2Session, -1, 2) }, 3},
		{"HTTP 502", func(s *wechattest.Server) { s.FailNextHTTP(wechattest.PathCode2Session, 502, 1) }, 2},
		{"not JSON", func(s *wechattest.Server) { s.FailNextHTTP(wechattest.PathCode2Session, 200, 1) }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &wechattest.Server{}
			f := newFixture(t, srv, nil)
			code := f.wxLogin("eve")
			tt.inject(srv)
			got, err := f.c.Code2Session(context.Background(), code)
			if err != nil || got.OpenID != srv.User("eve").OpenID {
				t.Errorf("Code2Session = %+v, %v; want eve's session", got, err)
			}
			if n := srv.Requests(wechattest.PathCode2Session); n != tt.requests {
				t.Errorf("upstream requests = %d, want %d", n, tt.requests)
			}
		})
	}
}

func TestCode2SessionTimeout(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	code := f.wxLogin("finn")
	release := srv.Hold(wechattest.PathCode2Session)
	defer release()
	start := time.Now()
	_, err := f.c.Code2Session(context.Background(), code)
	wantKind(t, "held upstream", err, authcore.KindUpstreamUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want a deadline in its chain", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %v with a 200ms timeout", took)
	}
	// The held attempts timed out separately: one hung connection does not
	// use up the whole budget.
	if n := srv.Requests(wechattest.PathCode2Session); n < 2 {
		t.Errorf("upstream requests = %d, want a retry after the first attempt timed out", n)
	}
}

func TestCode2SessionCallerGivesUp(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	code := f.wxLogin("gus")
	release := srv.Hold(wechattest.PathCode2Session)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.c.Code2Session(ctx, code)
		errc <- err
	}()
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if !srv.WaitRequests(wait.Done(), wechattest.PathCode2Session, 1) {
		t.Fatal("request never reached the fake")
	}
	cancel()
	select {
	case err := <-errc:
		wantKind(t, "cancelled caller", err, authcore.KindUpstreamUnavailable)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error = %v, want context.Canceled in its chain", err)
		}
	case <-wait.Done():
		t.Fatal("Code2Session did not return after its context was cancelled")
	}
}

func TestCode2SessionSingleFlight(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	code := f.wxLogin("hana")
	release := srv.Hold(wechattest.PathCode2Session)
	defer release()

	const n = 16
	var joined sync.WaitGroup
	joined.Add(n)
	f.c.afterJoin = joined.Done
	type result struct {
		s   Session
		err error
	}
	results := make(chan result, n)
	for range n {
		go func() {
			s, err := f.c.Code2Session(context.Background(), code)
			results <- result{s, err}
		}()
	}
	allJoined := make(chan struct{})
	go func() { joined.Wait(); close(allJoined) }()
	deadline := time.After(10 * time.Second)
	select {
	case <-allJoined:
	case <-deadline:
		t.Fatal("callers did not all join the flight")
	}
	release() // only now may the one upstream request answer

	want := Session{OpenID: srv.User("hana").OpenID, SessionKey: srv.User("hana").SessionKey}
	for range n {
		select {
		case r := <-results:
			if r.err != nil || r.s != want {
				t.Errorf("Code2Session = %+v, %v; want %+v", r.s, r.err, want)
			}
		case <-deadline:
			t.Fatal("Code2Session did not return")
		}
	}
	if got := srv.Requests(wechattest.PathCode2Session); got != 1 {
		t.Errorf("upstream requests = %d for %d concurrent calls, want 1", got, n)
	}
	// The flight is over: the next call asks again, and the code is used.
	f.c.afterJoin = nil
	_, err := f.c.Code2Session(context.Background(), code)
	wantKind(t, "code after the flight", err, authcore.KindUnauthorized)
}

func TestCode2SessionRejectsMalformedCodes(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	for _, code := range []string{"", strings.Repeat("a", MaxCodeLength+1), "a b", "abc+def", "a/b", "a%2F", "ü", "a\x00"} {
		_, err := f.c.Code2Session(context.Background(), code)
		wantKind(t, fmt.Sprintf("code %q", code), err, authcore.KindInvalid)
	}
	if got := srv.Requests(wechattest.PathCode2Session); got != 0 {
		t.Errorf("upstream requests = %d, want none for malformed codes", got)
	}
	// The longest allowed code goes upstream (and is unknown there).
	_, err := f.c.Code2Session(context.Background(), strings.Repeat("a", MaxCodeLength))
	wantKind(t, "128-character code", err, authcore.KindUnauthorized)
}

func TestWrongBaseURLIsNotRetried(t *testing.T) {
	srv := &wechattest.Server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	appid, secret := srv.App()
	c, err := New(Config{BaseURL: ts.URL + "/wrong", AppID: appid, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Code2Session(context.Background(), "abcd1234")
	wantKind(t, "wrong base URL", err, authcore.KindUpstreamUnavailable)
	if got := srv.UnknownRequests(); len(got) != 1 || got[0] != "GET /wrong/sns/jscode2session" {
		t.Errorf("UnknownRequests() = %q, want one GET /wrong/sns/jscode2session", got)
	}
}

func TestSecretsStayOutOfLogsAndErrors(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	_, secret := srv.App()
	var secrets []string // everything that must not appear
	var errs []error

	code := f.wxLogin("ivan")
	s, err := f.c.Code2Session(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	f.c.log.Info("session", "session", s) // Session is a LogValuer
	secrets = append(secrets, secret, s.SessionKey, code)

	for _, inject := range []func(){
		func() { srv.FailNext(wechattest.PathCode2Session, -1, 3) },
		func() { srv.FailNext(wechattest.PathCode2Session, 40013, 1) },
		func() { srv.FailNextHTTP(wechattest.PathCode2Session, 503, 3) },
		func() { srv.FailNext(wechattest.PathCode2Session, 40029, 1) },
	} {
		code := f.wxLogin("ivan")
		secrets = append(secrets, code, srv.User("ivan").SessionKey)
		inject()
		_, err := f.c.Code2Session(context.Background(), code)
		errs = append(errs, err)
	}
	tok, _, err := f.c.StableToken(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, tok)
	srv.FailNext(wechattest.PathStableToken, -1, 3)
	_, _, err = f.c.StableToken(context.Background(), false)
	errs = append(errs, err)

	// A transport error: net/http puts the whole URL, query and all, in it.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	appid, _ := srv.App()
	c, err := New(Config{BaseURL: dead.URL, AppID: appid, Secret: secret, Logger: f.c.log})
	if err != nil {
		t.Fatal(err)
	}
	c.backoff = f.c.backoff
	deadCode := "deadbeefcode0123"
	secrets = append(secrets, deadCode)
	_, err = c.Code2Session(context.Background(), deadCode)
	wantKind(t, "dead upstream", err, authcore.KindUpstreamUnavailable)
	errs = append(errs, err)

	logs := f.log.String()
	if !strings.Contains(logs, `"code":"`+deadCode[:4]+`…"`) || !strings.Contains(logs, `"openid":"`+s.OpenID) {
		t.Errorf("log lacks the redacted code %q… or the openid; is the test looking at the right log?\n%s", deadCode[:4], logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains secret %q:\n%s", s, logs)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains secret %q", err, s)
			}
		}
	}
}

func TestStableToken(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	tok, exp, err := f.c.StableToken(ctx, false)
	if err != nil || tok == "" || exp != 7200*time.Second {
		t.Fatalf("StableToken = %q, %v, %v; want a token for 2h", tok, exp, err)
	}
	again, _, err := f.c.StableToken(ctx, false)
	if err != nil || again != tok {
		t.Errorf("StableToken again = %q, %v; want the same %q", again, err, tok)
	}
	forced, _, err := f.c.StableToken(ctx, true)
	if err != nil || forced == tok {
		t.Errorf("StableToken(force) = %q, %v; want a new token", forced, err)
	}

	tests := []struct {
		errcode    int
		n          int
		want       authcore.Kind
		retryAfter time.Duration
	}{
		{45009, 1, authcore.KindRateLimited, time.Minute},
		{45011, 1, authcore.KindRateLimited, time.Minute},
		{40013, 1, authcore.KindUpstreamUnavailable, 0},
		{-1, 3, authcore.KindUpstreamUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.errcode), func(t *testing.T) {
			srv.FailNext(wechattest.PathStableToken, tt.errcode, tt.n)
			_, _, err := f.c.StableToken(ctx, false)
			if e := wantKind(t, "StableToken", err, tt.want); e.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.retryAfter)
			}
		})
	}

	srv.FailNext(wechattest.PathStableToken, -1, 1)
	if got, _, err := f.c.StableToken(ctx, false); err != nil || got != forced {
		t.Errorf("StableToken after one busy answer = %q, %v; want %q", got, err, forced)
	}

	bad := newFixture(t, &wechattest.Server{}, func(c *Config) { c.Secret = "wrong" })
	_, _, err = bad.c.StableToken(ctx, false)
	wantKind(t, "wrong secret", err, authcore.KindUpstreamUnavailable)
}
