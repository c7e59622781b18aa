package oidcprovider_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
	"github.com/loginhub/loginhub/oidcprovider"
)

// clock is a settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// sessions is the narrow seam Provider uses to resolve a hub session: one
// live token, of a user who logged in at authTime.
type sessions struct {
	user     authcore.User
	authTime time.Time
}

func (s *sessions) Authenticate(_ context.Context, tok string) (authcore.Principal, error) {
	if tok != "live" {
		return authcore.Principal{}, authcore.ErrNoSession
	}
	return authcore.Principal{User: s.user, Session: authcore.SessionRecord{FamilyID: "fam", UserID: s.user.ID,
		AMR: []string{"wx", "qr"}, CreatedAt: s.authTime}}, nil
}

type fixture struct {
	srv      *httptest.Server
	p        *oidcprovider.Provider
	clk      *clock
	sess     *sessions
	verifier string
}

func newFixture(t *testing.T) *fixture {
	clk := &clock{t: time.Now()}
	store := memstore.New(nil, clk.now)
	u, _, err := store.UpsertIdentity(context.Background(), authcore.Identity{Provider: "wechat", Subject: "o-1"},
		authcore.Profile{}, authcore.User{ID: "u-1", Nickname: "Alice", CreatedAt: clk.now()})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clk: clk, sess: &sessions{user: u, authTime: clk.now()}, verifier: strings.Repeat("v", 50)}
	var h http.Handler
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(f.srv.Close)
	f.p, err = oidcprovider.New(oidcprovider.Config{Issuer: f.srv.URL, Store: store, Sessions: f.sess,
		Clients: []oidcprovider.Client{{ID: "rp", SecretHash: oidcprovider.HashSecret("s"), RedirectURIs: []string{"http://127.0.0.1/cb"}}},
		Keys:    []oidcprovider.SigningKey{oidcprovider.RandomSigningKey("k")}, DPoP: authcore.DPoPVerifier{Replay: store}, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	h = f.p
	return f
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize starts a request and returns its id.
func (f *fixture) authorize(t *testing.T, extra url.Values) string {
	t.Helper()
	sum := sha256.Sum256([]byte(f.verifier))
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {"http://127.0.0.1/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"state": {"st"}, "code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	resp, err := noRedirects.Get(f.srv.URL + oidcprovider.AuthorizePath + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("id") == "" {
		t.Fatalf("authorize: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("id")
}

// code follows a completed request's callback to the app's code.
func (f *fixture) code(t *testing.T, callback string) string {
	t.Helper()
	resp, err := noRedirects.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("callback: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func (f *fixture) token(t *testing.T, code string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"http://127.0.0.1/cb"}, "code_verifier": {f.verifier}}
	req, _ := http.NewRequest("POST", f.srv.URL+oidcprovider.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", "s")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error
}

func TestCodeExpires(t *testing.T) {
	f := newFixture(t)
	id := f.authorize(t, nil)
	cb, err := f.p.Complete(context.Background(), id, "live")
	if err != nil {
		t.Fatal(err)
	}
	code := f.code(t, cb)
	f.clk.add(authcore.ProviderCodeTTL)
	if st, e := f.token(t, code); st != http.StatusBadRequest || e != "invalid_grant" {
		t.Errorf("a code at its expiry: %d %q, want 400 invalid_grant", st, e)
	}

	id = f.authorize(t, nil)
	cb, err = f.p.Complete(context.Background(), id, "live")
	if err != nil {
		t.Fatal(err)
	}
	code = f.code(t, cb)
	f.clk.add(authcore.ProviderCodeTTL - time.Second)
	if st, e := f.token(t, code); st != http.StatusOK {
		t.Errorf("a code just before its expiry: %d %q, want 200", st, e)
	}
}

func TestRequestExpires(t *testing.T) {
	f := newFixture(t)
	id := f.authorize(t, nil)
	f.clk.add(authcore.ProviderRequestTTL)
	f.sess.authTime = f.clk.now()
	if _, err := f.p.Complete(context.Background(), id, "live"); authcore.KindOf(err) != authcore.KindNotFound {
		t.Errorf("completing an expired request: %v, want not found", err)
	}
}

func TestFreshness(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		params   url.Values
		loggedIn time.Duration // before the request
		want     bool          // the session completes it
		page     bool          // yet the login page shows (prompt=login asks for a new login)
	}{
		{"no constraint", nil, time.Hour, true, false},
		{"max_age satisfied", url.Values{"max_age": {"600"}}, 5 * time.Minute, true, false},
		{"max_age exceeded", url.Values{"max_age": {"60"}}, 5 * time.Minute, false, false},
		{"prompt=login, old session", url.Values{"prompt": {"login"}}, time.Second, false, false},
		{"prompt=login, login after the request", url.Values{"prompt": {"login"}}, -time.Second, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.sess.authTime = f.clk.now().Add(-tc.loggedIn)
			id := f.authorize(t, tc.params)
			// The browser's session (the cookie) completes it at once, or
			// the login page shows.
			step, err := f.p.Login(ctx, id, "live")
			if err != nil || (step.Redirect != "") != (tc.want && !tc.page) {
				t.Errorf("Login with a session: %+v, %v; want completed %v", step, err, tc.want && !tc.page)
			}
			if tc.want {
				if tc.page {
					if _, err := f.p.Complete(ctx, id, "live"); err != nil {
						t.Errorf("Complete with a login made for the request: %v", err)
					}
				}
				return
			}
			if _, err := f.p.Complete(ctx, id, "live"); authcore.KindOf(err) != authcore.KindForbidden {
				t.Errorf("Complete with a stale session: %v, want forbidden", err)
			}
			if _, err := f.p.Complete(ctx, id, "dead"); !errors.Is(err, authcore.ErrNoSession) {
				t.Errorf("Complete with a dead session: %v, want ErrNoSession", err)
			}
		})
	}
}

func TestPromptNone(t *testing.T) {
	f := newFixture(t)
	id := f.authorize(t, url.Values{"prompt": {"none"}})
	step, err := f.p.Login(context.Background(), id, "")
	if err != nil || !strings.HasPrefix(step.Redirect, "http://127.0.0.1/cb?") || !strings.Contains(step.Redirect, "error=login_required") ||
		!strings.Contains(step.Redirect, "state=st") {
		t.Errorf("prompt=none without a session: %+v, %v; want a redirect with error=login_required", step, err)
	}
}
