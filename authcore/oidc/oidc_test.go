package oidc_test

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oidc"
)

// clock is a fixed clock that tests move.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

const redirectURI = "https://hub.example/v1/oauth/oidc:corp/callback"

type setup struct {
	idp    *idp
	clock  *clock
	p      *oidc.Provider
	logs   *bytes.Buffer
	secret string // the hub's client secret
}

// newSetup starts an idp and a Provider of it; edit may change both
// before New.
func newSetup(t *testing.T, edit func(d *idp, c *oidc.Config)) (setup, error) {
	t.Helper()
	s := setup{clock: newClock(), logs: &bytes.Buffer{}}
	s.idp = newIDP(t, s.clock.Now)
	s.secret = s.idp.secret
	c := oidc.Config{Name: "corp", Issuer: s.idp.URL(), ClientID: s.idp.client, ClientSecret: s.secret,
		Logger: slog.New(slog.NewTextHandler(s.logs, nil)), Now: s.clock.Now}
	if edit != nil {
		edit(s.idp, &c)
	}
	var err error
	s.p, err = oidc.New(t.Context(), c)
	return s, err
}

func mustSetup(t *testing.T, edit func(d *idp, c *oidc.Config)) setup {
	t.Helper()
	s, err := newSetup(t, edit)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// authorize returns the provider's authorize URL for a, failing t on an
// error.
func (s setup) authorize(t *testing.T, a authcore.OAuthAuthorize) string {
	t.Helper()
	start, err := s.p.AuthorizeURL(t.Context(), a)
	if err != nil {
		t.Fatalf("AuthorizeURL: %v", err)
	}
	if start.Carry != "" {
		t.Errorf("an OIDC login carries %q, want nothing", start.Carry)
	}
	return start.URL
}

// login runs a login to its code exchange: the authorize URL, the consent
// (edit changes what the provider grants) and Identity.
func (s setup) login(t *testing.T, sub string, edit func(g *grant)) (authcore.ExternalIdentity, error) {
	t.Helper()
	verifier, nonce, state := oauth2.GenerateVerifier(), rand.Text(), rand.Text()
	au := s.authorize(t, authcore.OAuthAuthorize{RedirectURI: redirectURI, State: state,
		CodeChallenge: oauth2.S256ChallengeFromVerifier(verifier), Nonce: nonce})
	q := mustQuery(t, au)
	if q.Get("state") != state || q.Get("nonce") != nonce || q.Get("redirect_uri") != redirectURI ||
		q.Get("code_challenge") != oauth2.S256ChallengeFromVerifier(verifier) {
		t.Fatalf("authorize URL %s: state, nonce, redirect_uri or code_challenge is not this login's", au)
	}
	code := s.idp.authorize(au, sub, edit)
	return s.p.Identity(t.Context(), authcore.OAuthExchange{Code: code, RedirectURI: redirectURI,
		CodeVerifier: verifier, Nonce: nonce})
}

func mustQuery(t *testing.T, s string) url.Values {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func wantKind(t *testing.T, s setup, err error, want authcore.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %s", want.Code())
	}
	if got := authcore.KindOf(err); got != want {
		t.Fatalf("got %s (%v), want %s", got.Code(), err, want.Code())
	}
	for _, text := range []string{err.Error(), s.logs.String()} {
		if strings.Contains(text, s.secret) {
			t.Fatalf("the client secret is in %q", text)
		}
	}
}

func TestLogin(t *testing.T) {
	s := mustSetup(t, nil)
	got, err := s.login(t, "u-123", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := authcore.ExternalIdentity{Subject: s.idp.URL() + "#u-123", Nickname: "Ada Lovelace",
		AvatarURL: "https://idp.example/ada.png"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestAuthorizeURL(t *testing.T) {
	s := mustSetup(t, func(_ *idp, c *oidc.Config) { c.Scopes = []string{"email", "profile"} })
	q := mustQuery(t, s.authorize(t, authcore.OAuthAuthorize{RedirectURI: redirectURI, State: "st", CodeChallenge: "ch", Nonce: "no"}))
	want := url.Values{"response_type": {"code"}, "client_id": {s.idp.client}, "redirect_uri": {redirectURI},
		"scope": {"openid email profile"}, "state": {"st"}, "nonce": {"no"}, "code_challenge": {"ch"},
		"code_challenge_method": {"S256"}}
	if got, want := q.Encode(), want.Encode(); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestProfileClaims(t *testing.T) {
	for _, tc := range []struct {
		name           string
		claims         map[string]any
		nick, avatarIs string
	}{
		{"preferred_username without name", map[string]any{"name": nil, "preferred_username": "ada"}, "ada", "https://idp.example/ada.png"},
		{"nickname last", map[string]any{"name": " ", "nickname": "countess"}, "countess", "https://idp.example/ada.png"},
		{"http picture dropped", map[string]any{"picture": "http://idp.example/ada.png"}, "Ada Lovelace", ""},
		{"javascript picture dropped", map[string]any{"picture": "javascript:alert(1)"}, "Ada Lovelace", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSetup(t, nil)
			got, err := s.login(t, "u-1", func(g *grant) {
				for k, v := range tc.claims {
					if v == nil {
						delete(g.claims, k)
					} else {
						g.claims[k] = v
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.Nickname != tc.nick || got.AvatarURL != tc.avatarIs {
				t.Fatalf("got nickname %q avatar %q, want %q %q", got.Nickname, got.AvatarURL, tc.nick, tc.avatarIs)
			}
		})
	}
}

func TestRefusedLogins(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(g *grant)
		idp  func(d *idp)
		want authcore.Kind
	}{
		{"wrong nonce", func(g *grant) { g.claims["nonce"] = "another login's" }, nil, authcore.KindUnauthorized},
		{"no nonce", func(g *grant) { delete(g.claims, "nonce") }, nil, authcore.KindUnauthorized},
		{"wrong audience", func(g *grant) { g.claims["aud"] = "another-client" }, nil, authcore.KindUnauthorized},
		{"another client's token for us too", func(g *grant) { g.claims["aud"] = []string{"other", testClientID}; g.claims["azp"] = "other" }, nil, authcore.KindUnauthorized},
		{"several audiences without azp", func(g *grant) { g.claims["aud"] = []string{"other", testClientID} }, nil, authcore.KindUnauthorized},
		{"wrong issuer", func(g *grant) { g.claims["iss"] = "https://evil.example" }, nil, authcore.KindUnauthorized},
		{"expired", func(g *grant) { g.claims["exp"] = g.claims["iat"].(int64) - 1 }, nil, authcore.KindUnauthorized},
		{"no sub", func(g *grant) { delete(g.claims, "sub") }, nil, authcore.KindUnauthorized},
		{"no id_token", func(g *grant) { g.claims = nil }, nil, authcore.KindUnauthorized},
		{"wrong PKCE verifier", func(g *grant) { g.challenge = oauth2.S256ChallengeFromVerifier("not the verifier") }, nil, authcore.KindUnauthorized},
		{"token endpoint invalid_grant", nil, func(d *idp) { d.tokenFail, d.tokenFailError = http.StatusBadRequest, "invalid_grant" }, authcore.KindUnauthorized},
		{"token endpoint 500", nil, func(d *idp) { d.tokenFail, d.tokenFailError = http.StatusInternalServerError, "server_error" }, authcore.KindUpstreamUnavailable},
		{"hub credentials refused", nil, func(d *idp) { d.secret = "rotated" }, authcore.KindUpstreamUnavailable},
		{"token endpoint down", nil, func(d *idp) { d.srv.Close() }, authcore.KindUpstreamUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustSetup(t, nil)
			if tc.idp != nil {
				s.idp.set(tc.idp)
			}
			_, err := s.login(t, "u-1", tc.edit)
			wantKind(t, s, err, tc.want)
		})
	}
}

func TestSignatures(t *testing.T) {
	t.Run("a key not in the JWKS", func(t *testing.T) {
		s := mustSetup(t, nil)
		forger := newKey(t, "k1", jose.ES256) // the published key's kid
		_, err := s.login(t, "u-1", func(g *grant) { g.key = forger })
		wantKind(t, s, err, authcore.KindUnauthorized)
	})
	t.Run("rotation", func(t *testing.T) {
		s := mustSetup(t, nil)
		if _, err := s.login(t, "u-1", nil); err != nil {
			t.Fatal(err)
		}
		old := s.idp.signer
		next := newKey(t, "k2", jose.RS256)
		s.idp.set(func(d *idp) { d.signer, d.published = next, []*signingKey{old, next} })
		if _, err := s.login(t, "u-1", nil); err != nil {
			t.Fatalf("a token signed with the new key: %v", err)
		}
		if _, fetches := s.idp.count(); fetches != 2 {
			t.Fatalf("%d JWKS fetches, want 2 (the first key, then the new one)", fetches)
		}
		if _, err := s.login(t, "u-1", nil); err != nil {
			t.Fatal(err)
		}
		if _, fetches := s.idp.count(); fetches != 2 {
			t.Fatalf("%d JWKS fetches, want 2: known keys are cached", fetches)
		}
		// The old key retires and leaves the JWKS: once the hub's cache of
		// it is KeysMaxAge old, what it signs is refused.
		s.idp.set(func(d *idp) { d.published = []*signingKey{next} })
		s.clock.Advance(oidc.KeysMaxAge)
		_, err := s.login(t, "u-1", func(g *grant) { g.key = old })
		wantKind(t, s, err, authcore.KindUnauthorized)
		if _, err := s.login(t, "u-1", nil); err != nil {
			t.Fatalf("the new key after the old one left: %v", err)
		}
	})
	t.Run("JWKS down when a new key appears", func(t *testing.T) {
		s := mustSetup(t, nil)
		next := newKey(t, "k2", jose.ES256)
		s.idp.set(func(d *idp) {
			d.signer, d.published, d.jwksFail = next, append(d.published, next), http.StatusServiceUnavailable
		})
		_, err := s.login(t, "u-1", nil)
		wantKind(t, s, err, authcore.KindUpstreamUnavailable)
	})
}

func TestNew(t *testing.T) {
	t.Run("discovery fails", func(t *testing.T) {
		d := newIDP(t, time.Now)
		d.set(func(d *idp) { d.discoveryFail = http.StatusInternalServerError })
		_, err := oidc.New(t.Context(), oidc.Config{Name: "corp", Issuer: d.URL(), ClientID: "c", ClientSecret: "s"})
		if err == nil || !strings.Contains(err.Error(), d.URL()) {
			t.Fatalf("got %v, want an error naming the issuer %s", err, d.URL())
		}
	})
	t.Run("issuer unreachable", func(t *testing.T) {
		d := newIDP(t, time.Now)
		d.srv.Close()
		_, err := oidc.New(t.Context(), oidc.Config{Name: "corp", Issuer: d.URL(), ClientID: "c", ClientSecret: "s"})
		if err == nil || !strings.Contains(err.Error(), d.URL()) {
			t.Fatalf("got %v, want an error naming the issuer %s", err, d.URL())
		}
	})
	for _, lazy := range []bool{false, true} {
		t.Run("issuer mismatch", func(t *testing.T) {
			d := newIDP(t, time.Now)
			d.set(func(d *idp) { d.issuer = "https://other.example" })
			_, err := oidc.New(t.Context(), oidc.Config{Name: "corp", Issuer: d.URL(), ClientID: "c", ClientSecret: "s", Lazy: lazy})
			if err == nil || !strings.Contains(err.Error(), d.URL()) || !strings.Contains(err.Error(), "https://other.example") {
				t.Fatalf("lazy %v: got %v, want an error naming both issuers", lazy, err)
			}
		})
	}
	for _, tc := range []struct {
		name string
		edit func(c *oidc.Config)
	}{
		{"no name", func(c *oidc.Config) { c.Name = "" }},
		{"bad name", func(c *oidc.Config) { c.Name = "Corp" }},
		{"no issuer", func(c *oidc.Config) { c.Issuer = "" }},
		{"http issuer", func(c *oidc.Config) { c.Issuer = "http://idp.example" }},
		{"no client ID", func(c *oidc.Config) { c.ClientID = "" }},
		{"no secret", func(c *oidc.Config) { c.ClientSecret = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := oidc.Config{Name: "corp", Issuer: "https://idp.example", ClientID: "c", ClientSecret: "s", Lazy: true}
			tc.edit(&c)
			if _, err := oidc.New(t.Context(), c); err == nil {
				t.Fatal("got a provider, want an error")
			}
		})
	}
}

func TestLazy(t *testing.T) {
	s, err := newSetup(t, func(d *idp, c *oidc.Config) {
		d.discoveryFail = http.StatusBadGateway
		c.Lazy = true
	})
	if err != nil {
		t.Fatalf("a lazy provider that is down: %v", err)
	}
	if !strings.Contains(s.logs.String(), "oidc provider unreachable") {
		t.Fatalf("the start without the provider is not logged: %s", s.logs)
	}
	a := authcore.OAuthAuthorize{RedirectURI: redirectURI, State: "st", CodeChallenge: "ch", Nonce: "no"}
	_, err = s.p.AuthorizeURL(t.Context(), a)
	wantKind(t, s, err, authcore.KindUpstreamUnavailable)
	_, err = s.p.Identity(t.Context(), authcore.OAuthExchange{Code: "c", RedirectURI: redirectURI, CodeVerifier: "v", Nonce: "n"})
	wantKind(t, s, err, authcore.KindUpstreamUnavailable)
	if n, _ := s.idp.count(); n != 1 {
		t.Fatalf("%d discoveries, want 1: no retry within RetryInterval", n)
	}
	s.idp.set(func(d *idp) { d.discoveryFail = 0 })
	s.clock.Advance(oidc.RetryInterval)
	if u := s.authorize(t, a); !strings.HasPrefix(u, s.idp.URL()+"/authorize?") {
		t.Fatalf("after the provider came back: got %s, want its authorize endpoint", u)
	}
	if _, err := s.login(t, "u-1", nil); err != nil {
		t.Fatalf("a login after the provider came back: %v", err)
	}
}

func TestSeveralAudiences(t *testing.T) {
	s := mustSetup(t, nil)
	if _, err := s.login(t, "u-1", func(g *grant) { g.claims["aud"] = []string{"api", s.idp.client}; g.claims["azp"] = s.idp.client }); err != nil {
		t.Fatalf("a token for this client and an API, issued to this client: %v", err)
	}
}

func TestDefaultScopes(t *testing.T) {
	s := mustSetup(t, nil)
	q := mustQuery(t, s.authorize(t, authcore.OAuthAuthorize{RedirectURI: redirectURI, State: "st", Nonce: "no"}))
	if got, want := q.Get("scope"), "openid profile"; got != want {
		t.Fatalf("scope %q, want %q", got, want)
	}
}
