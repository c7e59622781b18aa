package oauth1_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauth1"
)

// platform is an OAuth 1.0a server for one consumer, checking every
// signature with the package's Verify: temporary credentials, a consent
// that issues a verifier, token credentials, and an identity endpoint.
type platform struct {
	srv       *httptest.Server
	mu        sync.Mutex
	temps     map[string]string // temporary token → secret
	verifiers map[string]string // temporary token → verifier
	callbacks map[string]string // temporary token → oauth_callback
	tokens    map[string]string // token → secret
	noConfirm bool
}

const platformKey, platformSecret = "ck", "cs-secret"

func newPlatform(t *testing.T) *platform {
	p := &platform{temps: map[string]string{}, verifiers: map[string]string{}, callbacks: map[string]string{}, tokens: map[string]string{}}
	mux := http.NewServeMux()
	verify := func(w http.ResponseWriter, r *http.Request, secrets map[string]string) (url.Values, bool) {
		_, oauth, err := oauth1.ParseAuthorizationHeader(r.Header.Get("Authorization"))
		if err != nil || oauth.Get("oauth_consumer_key") != platformKey {
			http.Error(w, "bad request", http.StatusBadRequest)
			return nil, false
		}
		secret := ""
		if tok := oauth.Get("oauth_token"); tok != "" {
			p.mu.Lock()
			s, ok := secrets[tok]
			p.mu.Unlock()
			if !ok {
				http.Error(w, "unknown token", http.StatusUnauthorized)
				return nil, false
			}
			secret = s
		}
		r.URL.Scheme, r.URL.Host = "http", r.Host
		if err := oauth1.Verify(r, platformSecret, secret); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return nil, false
		}
		return oauth, true
	}
	mux.HandleFunc("POST /request_token", func(w http.ResponseWriter, r *http.Request) {
		oauth, ok := verify(w, r, nil)
		if !ok {
			return
		}
		p.mu.Lock()
		tok := "temp" + string(rune('A'+len(p.temps)))
		p.temps[tok] = "temp-secret-" + tok
		p.callbacks[tok] = oauth.Get("oauth_callback")
		p.mu.Unlock()
		answer := url.Values{"oauth_token": {tok}, "oauth_token_secret": {"temp-secret-" + tok}}
		if !p.noConfirm {
			answer.Set("oauth_callback_confirmed", "true")
		}
		w.Write([]byte(answer.Encode()))
	})
	mux.HandleFunc("POST /access_token", func(w http.ResponseWriter, r *http.Request) {
		oauth, ok := verify(w, r, p.temps)
		if !ok {
			return
		}
		tok := oauth.Get("oauth_token")
		p.mu.Lock()
		want, issued := p.verifiers[tok]
		delete(p.verifiers, tok)
		delete(p.temps, tok)
		p.tokens["tok-"+tok] = "tok-secret"
		p.mu.Unlock()
		if !issued || oauth.Get("oauth_verifier") != want {
			http.Error(w, "bad verifier", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(url.Values{"oauth_token": {"tok-" + tok}, "oauth_token_secret": {"tok-secret"}, "user_id": {"42"}}.Encode()))
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := verify(w, r, p.tokens); !ok {
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": 4242, "name": "Ada", "avatar": "https://img.example/a.png"})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// consent plays the user allowing on the platform: the verifier for the
// temporary token in authorizeURL, and the callback the platform sends the
// browser to.
func (p *platform) consent(t *testing.T, authorizeURL string) (token, verifier, callback string) {
	t.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	token = u.Query().Get("oauth_token")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.verifiers[token] = "verifier-" + token
	return token, "verifier-" + token, p.callbacks[token]
}

func newProvider(t *testing.T, p *platform, identityURL string) *oauth1.Provider {
	t.Helper()
	prov, err := oauth1.NewProvider(oauth1.ProviderConfig{
		TemporaryCredentialsURL: p.srv.URL + "/request_token", AuthorizeURL: p.srv.URL + "/authorize?lang=en", TokenURL: p.srv.URL + "/access_token",
		IdentityURL: identityURL, SubjectField: map[bool]string{true: "id", false: "user_id"}[identityURL != ""], NameField: "name", AvatarField: "avatar",
		ConsumerKey: platformKey, ConsumerSecret: platformSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	return prov
}

// TestProviderThreeLegs: temporary credentials with the state in the
// callback, the consent page with the token, token credentials for the
// verifier, and who logged in from the identity endpoint or the token
// answer; every request signed as the platform verifies.
func TestProviderThreeLegs(t *testing.T) {
	p := newPlatform(t)
	for _, identityURL := range []string{p.srv.URL + "/me", ""} {
		prov := newProvider(t, p, identityURL)
		start, err := prov.AuthorizeURL(t.Context(), authcore.OAuthAuthorize{RedirectURI: "https://hub.example/v1/oauth/legacy/callback", State: "st-1"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(start.URL, p.srv.URL+"/authorize?") || !strings.Contains(start.URL, "lang=en") || start.Carry == "" {
			t.Fatalf("start %+v", start)
		}
		token, verifier, cb := p.consent(t, start.URL)
		if cb != "https://hub.example/v1/oauth/legacy/callback?state=st-1" {
			t.Errorf("oauth_callback %q, want the redirect URI with the state", cb)
		}
		ext, err := prov.Identity(t.Context(), authcore.OAuthExchange{Token: token, Code: verifier, Carry: start.Carry})
		want := authcore.ExternalIdentity{Subject: "4242", Nickname: "Ada", AvatarURL: "https://img.example/a.png"}
		if identityURL == "" {
			want = authcore.ExternalIdentity{Subject: "42"}
		}
		if err != nil || ext != want {
			t.Fatalf("Identity (identity URL %q) = %+v, %v; want %+v", identityURL, ext, err, want)
		}
	}
}

// TestProviderRefusals: another login's token, a refused verifier and a
// platform that does not confirm the callback (OAuth 1.0 without "a").
func TestProviderRefusals(t *testing.T) {
	p := newPlatform(t)
	prov := newProvider(t, p, p.srv.URL+"/me")
	a := authcore.OAuthAuthorize{RedirectURI: "https://hub.example/cb", State: "s"}
	first, _ := prov.AuthorizeURL(t.Context(), a)
	second, _ := prov.AuthorizeURL(t.Context(), a)
	token1, verifier1, _ := p.consent(t, first.URL)
	if _, err := prov.Identity(t.Context(), authcore.OAuthExchange{Token: token1, Code: verifier1, Carry: second.Carry}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("another login's token: %v, want unauthorized", err)
	}
	if _, err := prov.Identity(t.Context(), authcore.OAuthExchange{Token: token1, Code: "wrong", Carry: first.Carry}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("a refused verifier: %v, want unauthorized", err)
	}
	p.noConfirm = true
	if _, err := prov.AuthorizeURL(t.Context(), a); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Errorf("no oauth_callback_confirmed: %v, want upstream_unavailable", err)
	}
	if _, err := oauth1.NewProvider(oauth1.ProviderConfig{TemporaryCredentialsURL: "ftp://x"}); err == nil {
		t.Error("NewProvider took an ftp URL and no consumer")
	}
}
