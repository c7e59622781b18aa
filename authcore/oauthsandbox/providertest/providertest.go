// Package providertest holds what the tests of the OAuth provider clients
// (qq, weibo, wechatweb) share: a stub upstream that answers each route
// from a table, for the answers the faithful fakes (qqtest, weibotest,
// wechatwebtest) do not give (malformed, oddly encoded, another app's), a
// log sink, and the checks every client's tests make: no secret in an
// error or a log, the error kind of a failed login, a code refused without
// a request, a login that gives up on a silent provider. The wechat
// client's tests use its log sink too. It is a package of its own, imported
// only by tests, so that the hub's binary does not link the testing package.
package providertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// LogBuffer is a log sink safe for the goroutines of a client and of the
// servers it talks to.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NewLogger returns a JSON logger at debug level and the buffer it writes
// to.
func NewLogger() (*slog.Logger, *LogBuffer) {
	logs := &LogBuffer{}
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), logs
}

// Answer is a canned upstream answer.
type Answer struct {
	Status      int    // 0 means 200
	ContentType string // "" sends none
	Body        string
}

// Respond answers a request given its parameters (query and form).
type Respond func(url.Values) Answer

// Fixed is a Respond that always answers a.
func Fixed(a Answer) Respond { return func(url.Values) Answer { return a } }

// Routes are a stub's answers by route, "METHOD /path" ("GET /sns/userinfo").
type Routes map[string]Respond

// Upstream is a stub provider over real HTTP that answers each route from
// its Routes, fails the test on any other method or path, and records the
// parameters each route got.
type Upstream struct {
	URL string

	t      testing.TB
	routes Routes
	checks []func(testing.TB, *http.Request)

	mu     sync.Mutex
	params map[string][]url.Values
	holds  map[string]chan struct{}
}

// NewUpstream serves routes until t ends. Each check runs on every
// request.
func NewUpstream(t testing.TB, routes Routes, checks ...func(testing.TB, *http.Request)) *Upstream {
	u := &Upstream{t: t, routes: routes, checks: checks, params: map[string][]url.Values{}, holds: map[string]chan struct{}{}}
	srv := httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(srv.Close)
	u.URL = srv.URL
	return u
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	if err := r.ParseForm(); err != nil {
		u.t.Errorf("%s: %v", route, err)
	}
	for _, check := range u.checks {
		check(u.t, r)
	}
	u.mu.Lock()
	u.params[route] = append(u.params[route], r.Form)
	hold := u.holds[route]
	u.mu.Unlock()
	respond, ok := u.routes[route]
	if !ok {
		u.t.Errorf("unexpected request %s", route)
		http.NotFound(w, r)
		return
	}
	if hold != nil {
		<-hold
	}
	a := respond(r.Form)
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	if a.Status != 0 {
		w.WriteHeader(a.Status)
	}
	fmt.Fprint(w, a.Body)
}

// Requests returns the parameters of every request route got, oldest
// first.
func (u *Upstream) Requests(route string) []url.Values {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.params[route]
}

// CheckOneRequest fails t unless route got exactly one request, with
// exactly the parameters want.
func (u *Upstream) CheckOneRequest(t testing.TB, route string, want url.Values) {
	t.Helper()
	if got := u.Requests(route); len(got) != 1 || got[0].Encode() != want.Encode() {
		t.Errorf("%s requests = %v, want one with %v", route, got, want)
	}
}

// Hold makes requests to route wait, unanswered, until the test ends: a
// provider that never answers.
func (u *Upstream) Hold(route string) {
	ch := make(chan struct{})
	u.mu.Lock()
	u.holds[route] = ch
	u.mu.Unlock()
	u.t.Cleanup(func() { close(ch) }) // before the server's Close, which waits for handlers
}

// Secrets are strings that must never show in an error, a log or a URL
// the browser sees: app secrets, access tokens, codes.
type Secrets []string

// Check fails t if text (what: "log", "error") holds one of s.
func (s Secrets) Check(t testing.TB, what, text string) {
	t.Helper()
	for _, secret := range s {
		if strings.Contains(text, secret) {
			t.Errorf("%s holds a secret %q: %s", what, secret, text)
		}
	}
}

// CheckNewRejects runs, in a subtest named after each of configs' names, a
// provider's New on that config, which cannot work, and fails unless New
// answers a KindInvalid error without a secret.
func CheckNewRejects[C, P any](t *testing.T, newProvider func(C) (P, error), configs map[string]C, secrets Secrets) {
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		t.Run(name, func(t *testing.T) {
			_, err := newProvider(configs[name])
			if got := authcore.KindOf(err); err == nil || got != authcore.KindInvalid {
				t.Errorf("New = %v (kind %v), want a KindInvalid error", err, got)
			}
			if err != nil {
				secrets.Check(t, "error", err.Error())
			}
		})
	}
}

// CheckAuthorizeURL fails t unless an AuthorizeURL answer is a URL with
// no carry and no secret, starting with wantPrefix, whose query is exactly
// want. It returns the parsed URL.
func CheckAuthorizeURL(t testing.TB, start authcore.OAuthStart, err error, wantPrefix string, want url.Values, secrets Secrets) *url.URL {
	t.Helper()
	if err != nil || start.Carry != "" {
		t.Fatalf("AuthorizeURL: %+v, %v; want a URL and no carry", start, err)
	}
	if !strings.HasPrefix(start.URL, wantPrefix) {
		t.Fatalf("AuthorizeURL = %s, want prefix %s", start.URL, wantPrefix)
	}
	u, err := url.Parse(start.URL)
	if err != nil {
		t.Fatal(err)
	}
	if q := u.Query(); q.Encode() != want.Encode() {
		t.Errorf("query = %v, want %v (no PKCE, no nonce, no secret)", q, want)
	}
	secrets.Check(t, "authorize URL", start.URL)
	return u
}

// CheckFailed fails t unless err is of kind want, its client message
// shows none of providerWords (the provider's own text: "errcode",
// "100"), neither err nor logs holds a secret, and logs holds each of
// wantLogs.
func CheckFailed(t testing.TB, err error, want authcore.Kind, logs string, wantLogs []string, secrets Secrets, providerWords ...string) {
	t.Helper()
	if got := authcore.KindOf(err); err == nil || got != want {
		t.Fatalf("Identity error = %v (kind %v), want kind %v", err, got, want)
	}
	if e, ok := errors.AsType[*authcore.Error](err); ok {
		for _, w := range providerWords {
			if strings.Contains(e.Message, w) {
				t.Errorf("client message %q shows the provider's text %q", e.Message, w)
			}
		}
	}
	secrets.Check(t, "error", err.Error())
	secrets.Check(t, "log", logs)
	for _, w := range wantLogs {
		if !strings.Contains(logs, w) {
			t.Errorf("log lacks %q: %s", w, logs)
		}
	}
}

// CheckRejectsCodeLocally fails t unless p refuses an empty code and one
// of 513 bytes with KindUnauthorized, and up's tokenRoute got no request.
func CheckRejectsCodeLocally(t testing.TB, p authcore.OAuthProvider, e authcore.OAuthExchange, up *Upstream, tokenRoute string) {
	t.Helper()
	for _, c := range []string{"", strings.Repeat("a", 513)} {
		e.Code = c
		if _, err := p.Identity(t.Context(), e); authcore.KindOf(err) != authcore.KindUnauthorized {
			t.Errorf("Identity(code of %d bytes) = %v, want KindUnauthorized", len(c), err)
		}
	}
	if n := len(up.Requests(tokenRoute)); n != 0 {
		t.Errorf("%d token requests, want none", n)
	}
}

// Login is a provider under test with the logs it writes, made for a
// stub's base URL and an HTTP client (nil means the provider's default).
type Login func(t *testing.T, baseURL string, hc *http.Client) (authcore.OAuthProvider, *LogBuffer)

// CheckTimeouts runs, for each of held and each way of giving up (the
// HTTP client's timeout, the caller's deadline), a login e against a stub
// from newUpstream where that route never answers, and fails t unless the
// login fails KindUpstreamUnavailable with no secret in the error or the
// log.
func CheckTimeouts(t *testing.T, held []string, newUpstream func(*testing.T) *Upstream, login Login, e authcore.OAuthExchange, secrets Secrets) {
	for _, route := range held {
		for _, how := range []string{"client timeout", "context deadline"} {
			t.Run(route+" "+how, func(t *testing.T) {
				up := newUpstream(t)
				up.Hold(route)
				ctx := context.Background()
				hc := &http.Client{Timeout: 50 * time.Millisecond}
				if how == "context deadline" {
					hc = nil
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					defer cancel()
				}
				p, logs := login(t, up.URL, hc)
				_, err := p.Identity(ctx, e)
				if got := authcore.KindOf(err); err == nil || got != authcore.KindUpstreamUnavailable {
					t.Fatalf("Identity error = %v (kind %v), want KindUpstreamUnavailable", err, got)
				}
				secrets.Check(t, "error", err.Error())
				secrets.Check(t, "log", logs.String())
			})
		}
	}
}
