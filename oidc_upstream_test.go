package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/websocket"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/loginhub/loginhub/authcore"
)

// corpOP is a company's OpenID Provider for the hub's OIDC upstream
// tests: zitadel/oidc's op package (discovery, authorize, PKCE and client
// checks at the token endpoint, ID token signing, JWKS) over the in-memory
// storage of its example server, with one confidential client (the hub)
// and the example's users. What the test adds is what every deployment of
// the library writes itself: the login page (username and password, or a
// refusal) and the signing keys, which the test rotates.
type corpOP struct {
	URL      string // the issuer
	store    *corpStorage
	provider *op.Provider
	// jwksFetches counts requests to the JWKS: the hub fetches it when it
	// meets a key it has not seen.
	jwksFetches atomic.Int64
}

const (
	corpClientID = "loginhub"
	corpSecret   = "corp-client-secret"
	corpPassword = "verysecure" // the example users' password
)

// corpStorage is the example server's storage with the hub as its client
// (whose redirect URI is set once the hub listens) and keys the test
// chooses.
type corpStorage struct {
	*storage.Storage

	mu          sync.Mutex
	redirectURI string
	signer      corpKey   // signs ID tokens
	published   []corpKey // the JWKS
	requests    []oidc.AuthRequest
}

// corpKey is an ES256 signing key: op.SigningKey.
type corpKey struct {
	id   string
	priv *ecdsa.PrivateKey
}

func (k corpKey) ID() string                                  { return k.id }
func (k corpKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k corpKey) Key() any                                    { return k.priv }

// corpPublicKey is a key's JWKS entry: op.Key.
type corpPublicKey struct{ corpKey }

func (k corpPublicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (k corpPublicKey) Use() string                        { return "sig" }
func (k corpPublicKey) Key() any                           { return &k.priv.PublicKey }

func newCorpKey(t *testing.T, id string) corpKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return corpKey{id: id, priv: priv}
}

// GetClientByClientID is the example's web client (Basic auth, code flow,
// http redirect URIs allowed as in development) with the hub's callback.
func (s *corpStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	if id != corpClientID {
		return s.Storage.GetClientByClientID(ctx, id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return storage.WebClient(corpClientID, corpSecret, s.redirectURI), nil
}

// CreateAuthRequest keeps what the hub's authorize request carried.
func (s *corpStorage) CreateAuthRequest(ctx context.Context, r *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	s.mu.Lock()
	s.requests = append(s.requests, *r)
	s.mu.Unlock()
	return s.Storage.CreateAuthRequest(ctx, r, userID)
}

func (s *corpStorage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.signer, nil
}

func (s *corpStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

func (s *corpStorage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]op.Key, 0, len(s.published))
	for _, k := range s.published {
		keys = append(keys, corpPublicKey{k})
	}
	return keys, nil
}

// setKeys makes the OP sign with signer and publish the keys published.
func (o *corpOP) setKeys(signer corpKey, published ...corpKey) {
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	o.store.signer, o.store.published = signer, published
}

func (o *corpOP) setRedirectURI(uri string) {
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	o.store.redirectURI = uri
}

func (o *corpOP) lastRequest(t *testing.T) oidc.AuthRequest {
	t.Helper()
	o.store.mu.Lock()
	defer o.store.mu.Unlock()
	if len(o.store.requests) == 0 {
		t.Fatal("the OP received no authorize request")
	}
	return o.store.requests[len(o.store.requests)-1]
}

// corpLoginPage is the OP's login form: what a person at the company sees.
var corpLoginPage = template.Must(template.New("login").Parse(`<!doctype html>
<form method="post"><input type="hidden" name="id" value="{{.}}">
<input name="username"><input name="password" type="password">
<button>Log in</button><button name="deny" value="1">Refuse</button></form>`))

// startCorpOP serves the OP on 127.0.0.1:0 (plain http, allowed by
// op.WithAllowInsecure) until the test ends, signing with signer.
func startCorpOP(t *testing.T, signer corpKey) *corpOP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &corpOP{URL: "http://" + ln.Addr().String()}
	o.store = &corpStorage{
		Storage: storage.NewStorageWithClients(storage.NewUserStore(o.URL),
			// The example checks the client's secret here at the token
			// endpoint; GetClientByClientID adds the hub's redirect URI.
			map[string]*storage.Client{corpClientID: storage.WebClient(corpClientID, corpSecret)}),
		signer: signer, published: []corpKey{signer},
	}
	cfg := &op.Config{
		CryptoKey:      [32]byte{1, 2, 3}, // encrypts the OP's opaque access tokens; nothing the hub reads
		CodeMethodS256: true,
	}
	provider, err := op.NewProvider(cfg, o.store, op.StaticIssuer(o.URL), op.WithAllowInsecure())
	if err != nil {
		t.Fatal(err)
	}
	o.provider = provider
	login := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			corpLoginPage.Execute(w, r.URL.Query().Get("authRequestID"))
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id := r.PostForm.Get("id")
		if r.PostForm.Get("deny") != "" {
			req, err := o.store.AuthRequestByID(r.Context(), id)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			op.AuthRequestError(w, r, req, oidc.ErrAccessDenied().WithDescription("the user refused"), provider)
			return
		}
		if err := o.store.CheckUsernamePassword(r.PostForm.Get("username"), r.PostForm.Get("password"), id); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		http.Redirect(w, r, op.AuthCallbackURL(provider)(r.Context(), id), http.StatusFound)
	}
	mux := http.NewServeMux()
	mux.Handle("/login/username", op.NewIssuerInterceptor(provider.IssuerFromRequest).HandlerFunc(login))
	mux.Handle("/", provider)
	keysPath := provider.KeysEndpoint().Relative()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == keysPath {
			o.jwksFetches.Add(1)
		}
		mux.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

// browse plays the browser from the hub's authorize URL through the OP's
// login, submitting form (with the login's id added), and returns the
// query the OP sends the browser back to the hub's callback with.
func (o *corpOP) browse(t *testing.T, authorize, callbackURL string, form url.Values) url.Values {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next := func(resp *http.Response) *url.URL {
		t.Helper()
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil {
			t.Fatalf("%s %s: %d without a redirect", resp.Request.Method, resp.Request.URL, resp.StatusCode)
		}
		return loc
	}
	resp, err := c.Get(authorize)
	if err != nil {
		t.Fatal(err)
	}
	page := next(resp)
	if resp, err = c.Get(page.String()); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || page.Query().Get("authRequestID") == "" {
		t.Fatalf("the OP's login page %s: %d", page, resp.StatusCode)
	}
	form.Set("id", page.Query().Get("authRequestID"))
	if resp, err = c.PostForm(page.String(), form); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		loc := next(resp)
		if before, _, _ := strings.Cut(loc.String(), "?"); before == callbackURL {
			return loc.Query()
		}
		if resp, err = c.Get(loc.String()); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("the OP did not send the browser back to %s", callbackURL)
	return nil
}

// corpLogin is a desktop's login with the upstream "corp" up to the OP's
// answer: the ticket, its socket (pending seen) and the callback's query.
func corpLogin(t *testing.T, h *testHub, corp *corpOP, form url.Values) (authcore.NewTicket, *websocket.Conn, url.Values) {
	t.Helper()
	nt, ws, authorize := startProviderLogin(t, h, "corp", nil)
	if !strings.HasPrefix(authorize, corp.URL+"/") {
		t.Fatalf("authorize URL %s, want one at the OP %s", authorize, corp.URL)
	}
	return nt, ws, corp.browse(t, authorize, h.URL+"/v1/oauth/corp/callback", form)
}

// corpUser is the example storage's first user, who logs in at the OP.
func corpUser(corp *corpOP) url.Values {
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(corp.URL, "http://"))
	return url.Values{"username": {"test-user@" + host}, "password": {corpPassword}}
}

// finishCorpLogin hands the OP's answer to the hub's callback: the socket
// sees scanned and confirmed, and the redeem gives a session.
func finishCorpLogin(t *testing.T, h *testHub, nt authcore.NewTicket, ws *websocket.Conn, back url.Values) authcore.Session {
	t.Helper()
	r := callback(t, h, "corp", back)
	mustStatus(t, "corp callback", r, 200)
	if !strings.Contains(string(r.Body), `data-ok="true"`) {
		t.Errorf("corp callback page: %s", r.Body)
	}
	if ev := wantState(t, ws, "scanned", 2); ev.Scanner == nil {
		t.Errorf("scanned without the OP's user: %+v", ev)
	}
	wantState(t, ws, "confirmed", 3)
	r = call(t, client(""), "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil)
	mustStatus(t, "corp redeem", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

// failCorpLogin hands the OP's answer to the hub's callback and wants a
// page that says why with status want, and the ticket still pending.
func failCorpLogin(t *testing.T, h *testHub, nt authcore.NewTicket, back url.Values, want int, reason string) {
	t.Helper()
	r := callback(t, h, "corp", back)
	if r.Status != want || !strings.Contains(string(r.Body), `data-ok="false"`) || !strings.Contains(string(r.Body), reason) {
		t.Errorf("corp callback: %d %s, want %d and a page that says %q", r.Status, r.Body, want, reason)
	}
	if v := status(t, client(""), h, nt); v != "pending" {
		t.Errorf("ticket after a failed corp login: %s, want pending", v)
	}
}

// TestOIDCUpstreamLogin: a desktop logs in through an OIDC upstream that is
// a real OpenID Provider (zitadel/oidc's op): the authorize request carries
// PKCE S256 and a nonce, and the OP checks the verifier; the identity is
// "oidc:corp" keyed by issuer and sub, and one person is one user. The OP
// rotates its key: a token signed by the new key is accepted after the hub
// fetches the JWKS again, and a token signed by a key the OP no longer
// publishes is refused. A refusal at the OP leaves the ticket pending.
func TestOIDCUpstreamLogin(t *testing.T) {
	first := newCorpKey(t, "first")
	corp := startCorpOP(t, first)
	h := startHub(t, map[string]string{
		"LOGINHUB_OIDC_UPSTREAMS": "corp", "LOGINHUB_OIDC_CORP_ISSUER": corp.URL,
		"LOGINHUB_OIDC_CORP_CLIENT_ID": corpClientID, "LOGINHUB_OIDC_CORP_CLIENT_SECRET": corpSecret,
	})
	corp.setRedirectURI(h.URL + "/v1/oauth/corp/callback")
	user := corpUser(corp)

	// The first login, signed by the first key.
	nt, ws, back := corpLogin(t, h, corp, user)
	req := corp.lastRequest(t)
	if req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 || req.CodeChallenge == "" || req.Nonce == "" {
		t.Errorf("the hub's authorize request: code_challenge %q (%s), nonce %q; want S256 and a nonce",
			req.CodeChallenge, req.CodeChallengeMethod, req.Nonce)
	}
	// The OP checks PKCE: the code with another verifier is refused, and
	// stays good for the hub's own exchange below.
	exchange := url.Values{"grant_type": {"authorization_code"}, "code": {back.Get("code")},
		"redirect_uri": {h.URL + "/v1/oauth/corp/callback"}, "code_verifier": {strings.Repeat("x", 43)}}
	tr, err := http.NewRequest("POST", corp.provider.TokenEndpoint().Absolute(corp.URL), strings.NewReader(exchange.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	tr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tr.SetBasicAuth(corpClientID, corpSecret)
	resp, err := http.DefaultClient.Do(tr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("the OP's token endpoint with a wrong PKCE verifier: %d, want 400", resp.StatusCode)
	}
	s1 := finishCorpLogin(t, h, nt, ws, back)
	wantID := "oidc:corp " + corp.URL + "#id1"
	if got := identities(t, h, s1.AccessToken); len(got) != 1 || got[0] != wantID {
		t.Errorf("identities after the corp login: %q, want [%q]", got, wantID)
	}
	mustStatus(t, "corp callback replayed", callback(t, h, "corp", back), 401)

	// The OP rotates: a new key signs, and the first leaves its JWKS. The
	// hub has not seen the new key: it fetches the JWKS again and accepts
	// the login, as the same user.
	second := newCorpKey(t, "second")
	corp.setKeys(second, second)
	fetches := corp.jwksFetches.Load()
	nt, ws, back = corpLogin(t, h, corp, user)
	s2 := finishCorpLogin(t, h, nt, ws, back)
	if corp.jwksFetches.Load() == fetches {
		t.Error("a login signed by a new key did not make the hub fetch the JWKS")
	}
	if s2.User.ID != s1.User.ID {
		t.Errorf("the second corp login of one person: user %s, the first %s; want one user", s2.User.ID, s1.User.ID)
	}

	// A token signed by the retired key (one that leaked, say) is refused:
	// the JWKS no longer has it.
	corp.setKeys(first, second)
	nt, _, back = corpLogin(t, h, corp, user)
	failCorpLogin(t, h, nt, back, 401, "not accepted")
	if !strings.Contains(h.logs.String(), "id_token: failed to verify signature") {
		t.Errorf("the login signed by the retired key was refused for another reason; logs:\n%s", h.logs)
	}

	// The person refuses at the OP: access_denied comes back, the ticket
	// stays pending, and the page says the login was declined.
	corp.setKeys(second, second)
	nt, _, back = corpLogin(t, h, corp, url.Values{"deny": {"1"}})
	if back.Get("error") != "access_denied" || back.Get("code") != "" {
		t.Fatalf("the OP's answer to a refusal: %v, want error=access_denied", back)
	}
	failCorpLogin(t, h, nt, back, 403, "declined")
}
