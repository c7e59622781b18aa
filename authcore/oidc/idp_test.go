package oidc_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// idp is an OpenID Connect provider for tests: discovery, a JWKS, and a
// token endpoint that checks the client's credentials, the code's
// redirect URI and its PKCE verifier, and answers with an ID token signed
// by the key the test chose. Codes come from authorize, which reads an
// authorize URL as the provider's consent page would.
type idp struct {
	t      *testing.T
	srv    *httptest.Server
	now    func() time.Time
	client string
	secret string

	mu             sync.Mutex
	issuer         string // what discovery and ID tokens say; "": the server's URL
	discoveryFail  int    // a status that discovery answers instead
	jwksFail       int    // a status that the JWKS answers instead
	tokenFail      int    // a status that the token endpoint answers instead
	tokenFailError string // its error code
	published      []*signingKey
	signer         *signingKey // signs new codes' ID tokens
	codes          map[string]grant
	jwksFetches    int
	discoveries    int
}

type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func newKey(t *testing.T, kid string, alg jose.SignatureAlgorithm) *signingKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("no key for %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, alg: alg, priv: priv}
}

// testClientID is the hub's client ID at every test idp.
const testClientID = "hub-client"

// grant is what a code stands for.
type grant struct {
	challenge, redirect string
	claims              map[string]any // the ID token's; nil: no id_token
	key                 *signingKey
}

func newIDP(t *testing.T, now func() time.Time) *idp {
	t.Helper()
	d := &idp{t: t, now: now, client: testClientID, secret: "hub-secret-do-not-log", codes: map[string]grant{}}
	d.signer = newKey(t, "k1", jose.ES256)
	d.published = []*signingKey{d.signer}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", d.discovery)
	mux.HandleFunc("GET /jwks", d.jwks)
	mux.HandleFunc("POST /token", d.token)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("idp: unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	})
	d.srv = httptest.NewServer(mux)
	t.Cleanup(d.srv.Close)
	return d
}

func (d *idp) URL() string { return d.srv.URL }

func (d *idp) set(f func(d *idp)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f(d)
}

func (d *idp) count() (discoveries, jwksFetches int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.discoveries, d.jwksFetches
}

func (d *idp) discovery(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if down(w, &d.discoveries, d.discoveryFail) {
		return
	}
	iss := d.issuer
	if iss == "" {
		iss = d.srv.URL
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                d.srv.URL + "/authorize",
		"token_endpoint":                        d.srv.URL + "/token",
		"jwks_uri":                              d.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
	})
}

func (d *idp) jwks(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if down(w, &d.jwksFetches, d.jwksFail) {
		return
	}
	var set jose.JSONWebKeySet
	for _, k := range d.published {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	writeJSON(w, http.StatusOK, set)
}

// authorize reads an authorize URL as the consent page would and returns
// a code for the login it asks for; edit may change the grant.
func (d *idp) authorize(authorizeURL, sub string, edit func(g *grant)) string {
	d.t.Helper()
	u, err := url.Parse(authorizeURL)
	if err != nil {
		d.t.Fatal(err)
	}
	q := u.Query()
	if got, want := u.Scheme+"://"+u.Host+u.Path, d.srv.URL+"/authorize"; got != want {
		d.t.Fatalf("authorize URL %s, want %s", got, want)
	}
	if q.Get("response_type") != "code" || q.Get("client_id") != d.client || q.Get("code_challenge_method") != "S256" {
		d.t.Fatalf("authorize URL %s: want response_type=code, client_id=%s, code_challenge_method=S256", authorizeURL, d.client)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	g := grant{challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri"), key: d.signer, claims: map[string]any{
		"iss": d.srv.URL, "sub": sub, "aud": d.client, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"nonce": q.Get("nonce"), "name": "Ada Lovelace", "picture": "https://idp.example/ada.png",
	}}
	if edit != nil {
		edit(&g)
	}
	code := rand.Text()
	d.codes[code] = g
	return code
}

func (d *idp) token(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.tokenFail != 0 {
		writeJSON(w, d.tokenFail, map[string]string{"error": d.tokenFailError, "error_description": "the idp says no"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok || id != d.client || subtle.ConstantTimeCompare([]byte(secret), []byte(d.secret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	code := r.PostFormValue("code")
	g, ok := d.codes[code]
	delete(d.codes, code)
	switch {
	case r.PostFormValue("grant_type") != "authorization_code", !ok, r.PostFormValue("redirect_uri") != g.redirect,
		oauth2.S256ChallengeFromVerifier(r.PostFormValue("code_verifier")) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "bad code " + code})
		return
	}
	resp := map[string]any{"access_token": "at-" + rand.Text(), "token_type": "Bearer", "expires_in": 3600}
	if g.claims != nil {
		resp["id_token"] = d.sign(g.key, g.claims)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (d *idp) sign(k *signingKey, claims map[string]any) string {
	d.t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		d.t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		d.t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		d.t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

// down counts a request in n and, when status is set, answers it.
func down(w http.ResponseWriter, n *int, status int) bool {
	*n++
	if status == 0 {
		return false
	}
	http.Error(w, "the idp is down", status)
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
