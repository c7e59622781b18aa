package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/oidcprovider"
)

// The apps of these tests: a confidential backend and a public SPA.
const (
	rpSecret   = "rp-secret-0123456789abcdef0123456789abcdef"
	rpRedirect = "http://127.0.0.1/rp/callback"
	rpLogout   = "http://127.0.0.1/rp/bye"
)

func writeClients(t testing.TB, redirect string) string {
	t.Helper()
	clients := []oidcprovider.Client{
		{ID: "rp", SecretHash: oidcprovider.HashSecret(rpSecret), RedirectURIs: []string{redirect},
			PostLogoutRedirectURIs: []string{rpLogout}},
		{ID: "spa", RedirectURIs: []string{"https://spa.example/cb"}, Public: true},
	}
	b, _ := json.Marshal(clients)
	path := filepath.Join(t.TempDir(), "clients.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// browser is a user's browser: a cookie jar, and redirects stopped so that
// the test sees each hop.
func browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t testing.TB, c *http.Client, u string) *http.Response {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// relyingParty is a standard OIDC client: go-oidc and x/oauth2.
type relyingParty struct {
	provider *gooidc.Provider
	cfg      oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

func newRelyingParty(t testing.TB, issuer string) *relyingParty {
	t.Helper()
	p, err := gooidc.NewProvider(context.Background(), issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &relyingParty{provider: p, verifier: p.Verifier(&gooidc.Config{ClientID: "rp"}),
		cfg: oauth2.Config{ClientID: "rp", ClientSecret: rpSecret, Endpoint: p.Endpoint(), RedirectURL: rpRedirect,
			Scopes: []string{gooidc.ScopeOpenID, "profile", gooidc.ScopeOfflineAccess}}}
}

// flow is one authorization as the RP starts it.
type flow struct {
	state, nonce, verifier string
	authURL, redirect      string
}

func (rp *relyingParty) start(extra ...oauth2.AuthCodeOption) flow {
	f := flow{state: authcore.NewTicketID(), nonce: authcore.NewTicketID(), verifier: oauth2.GenerateVerifier(),
		redirect: rp.cfg.RedirectURL}
	opts := append([]oauth2.AuthCodeOption{gooidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)}, extra...)
	f.authURL = rp.cfg.AuthCodeURL(f.state, opts...)
	return f
}

// scanLogin is what the hub's login page does with loginhub.js: a ticket
// bound to a DPoP key, which user's phone scans and confirms, redeemed
// into a hub session.
func scanLogin(t testing.TB, h *testHub, user string) authcore.Session {
	t.Helper()
	desktop := client("127.0.0.1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, _ := authcore.DPoPThumbprint(&key.PublicKey)
	nt := createTicket(t, desktop, h, jkt)
	phone := phoneLogin(t, h, user)
	mustStatus(t, "scan", call(t, client(""), "POST", h.URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}), 200)
	mustStatus(t, "confirm", call(t, client(""), "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", phone.AccessToken, nil), 200)
	redeemURL := h.URL + "/v1/qr/tickets/" + nt.ID + "/redeem"
	proof, err := authcore.NewDPoPProof(key, "POST", redeemURL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := call(t, desktop, "POST", redeemURL, nt.WatchSecret, nil, "DPoP", proof)
	mustStatus(t, "redeem", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

// loginPage follows the RP's authorization URL to the hub's login page and
// returns the request id, or the callback URL when the hub completed the
// request at once (the browser's hub session).
func loginPage(t testing.TB, b *http.Client, f flow) (id, callback string) {
	t.Helper()
	resp := get(t, b, f.authURL)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	login := resp.Header.Get("Location")
	u, err := url.Parse(login)
	if err != nil || u.Path != oidcprovider.LoginPath || u.Query().Get("id") == "" {
		t.Fatalf("authorize redirects to %q, want the hub's login page", login)
	}
	resp = get(t, b, login)
	switch resp.StatusCode {
	case http.StatusOK:
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
			t.Fatalf("login page: Content-Type %q, CSP %q", ct, resp.Header.Get("Content-Security-Policy"))
		}
		return u.Query().Get("id"), ""
	case http.StatusFound:
		return u.Query().Get("id"), resp.Header.Get("Location")
	}
	t.Fatalf("login page: status %d", resp.StatusCode)
	return "", ""
}

// complete hands the page's hub session to the provider, as the page
// does, and returns the status and the redirect it answers.
func complete(t testing.TB, h *testHub, b *http.Client, id, accessToken string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.URL+oidcprovider.CompletePath+"?id="+url.QueryEscape(id), nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Redirect string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Redirect
}

// codeFrom follows the provider's callback to the RP's redirect URI and
// returns the code, checking the state.
func codeFrom(t testing.TB, b *http.Client, callback string, f flow) string {
	t.Helper()
	resp := get(t, b, callback)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), f.redirect) {
		t.Fatalf("callback: %d to %q, want a redirect to the RP", resp.StatusCode, resp.Header.Get("Location"))
	}
	if loc.Query().Get("state") != f.state || loc.Query().Get("code") == "" {
		t.Fatalf("RP redirect %q: want state %q and a code", loc, f.state)
	}
	return loc.Query().Get("code")
}

// authorizeByScan runs a whole authorization: the login page, a scan by
// user, the code. It returns the code and the hub session of the login.
func authorizeByScan(t testing.TB, h *testHub, b *http.Client, f flow, user string) (string, authcore.Session) {
	t.Helper()
	id, callback := loginPage(t, b, f)
	if callback != "" {
		t.Fatalf("login page completed at once; want a login")
	}
	s := scanLogin(t, h, user)
	callback = completeOK(t, h, b, id, s.AccessToken)
	return codeFrom(t, b, callback, f), s
}

func completeOK(t testing.TB, h *testHub, b *http.Client, id, accessToken string) string {
	t.Helper()
	status, redirect := complete(t, h, b, id, accessToken)
	if status != 200 || redirect == "" {
		t.Fatalf("complete: status %d, redirect %q", status, redirect)
	}
	return redirect
}

type idClaims struct {
	Nonce    string   `json:"nonce"`
	AMR      []string `json:"amr"`
	AuthTime int64    `json:"auth_time"`
	SID      string   `json:"sid"`
	Name     string   `json:"name"`
}

func (rp *relyingParty) exchange(t testing.TB, code string, f flow, opts ...oauth2.AuthCodeOption) (*oauth2.Token, *gooidc.IDToken, idClaims) {
	t.Helper()
	tok, err := rp.cfg.Exchange(context.Background(), code, append(opts, oauth2.VerifierOption(f.verifier))...)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify id_token: %v", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return tok, idt, c
}

// introspect posts token to the provider's introspection endpoint as the
// RP with secret, and returns the status and the answer.
func introspect(t testing.TB, h *testHub, token, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.URL+oidcprovider.IntrospectPath, strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("rp", secret)
	resp, err := client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// tokenAnswer is the token endpoint's answer, or its error.
type tokenAnswer struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	RefreshToken string `json:"refresh_token"`
	Error        string `json:"error"`
}

// postToken posts form to the token endpoint, with the DPoP proof when
// not empty, as the RP with secret, or as the public client named in form
// when secret is empty.
func postToken(t testing.TB, h *testHub, form url.Values, secret, proof string) (int, tokenAnswer) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.URL+oidcprovider.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if secret != "" {
		req.SetBasicAuth("rp", secret)
	}
	resp, err := client("").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a tokenAnswer
	json.NewDecoder(resp.Body).Decode(&a)
	return resp.StatusCode, a
}

// boundKeyOf is an access token's cnf.jkt (the token is not verified).
func boundKeyOf(t testing.TB, accessToken string) string {
	t.Helper()
	parts := strings.Split(accessToken, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a JWT", accessToken)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var at struct {
		Cnf struct{ JKT string } `json:"cnf"`
	}
	json.Unmarshal(raw, &at)
	return at.Cnf.JKT
}

// oauthError is the error code of a failed token request.
func oauthError(err error) string {
	var re *oauth2.RetrieveError
	if e, ok := err.(*oauth2.RetrieveError); ok {
		re = e
		return re.ErrorCode
	}
	return ""
}

func userOf(t testing.TB, h *testHub, accessToken string) string {
	t.Helper()
	r := call(t, client(""), "GET", h.URL+"/v1/me", accessToken, nil)
	mustStatus(t, "/v1/me", r, 200)
	var me struct{ User struct{ ID string } }
	r.decode(t, &me)
	if me.User.ID == "" {
		var flat struct{ ID string }
		r.decode(t, &flat)
		return flat.ID
	}
	return me.User.ID
}

// TestOIDCProvider: a standard RP logs a user in through the hub by a
// scan, verifies the id_token, uses and refreshes its tokens, and logs
// out; and each way of getting it wrong is refused.
func TestOIDCProvider(t *testing.T) {
	h := startHub(t, map[string]string{"LOGINHUB_OIDC_CLIENTS": writeClients(t, rpRedirect)})
	rp := newRelyingParty(t, h.URL)
	ctx := context.Background()
	b := browser()

	before := time.Now().Add(-time.Second)
	f := rp.start()
	code, hubSession := authorizeByScan(t, h, b, f, "oidc-alice")
	tok, idt, claims := rp.exchange(t, code, f)
	aliceID := userOf(t, h, hubSession.AccessToken)
	if idt.Subject != aliceID || claims.Nonce != f.nonce || !slices.Equal(claims.AMR, []string{"wx", "qr"}) || claims.SID == "" {
		t.Errorf("id_token: sub %q (want %q), nonce %q (want %q), amr %v (want [wx qr]), sid %q",
			idt.Subject, aliceID, claims.Nonce, f.nonce, claims.AMR, claims.SID)
	}
	if at := time.Unix(claims.AuthTime, 0); at.Before(before.Truncate(time.Second)) || at.After(time.Now()) {
		t.Errorf("auth_time %v, want the scan's time (after %v)", at, before)
	}
	if tok.RefreshToken == "" || tok.TokenType != "Bearer" {
		t.Fatalf("token response: refresh %q, type %q", tok.RefreshToken, tok.TokenType)
	}

	t.Run("FaceStepUpInAMR", func(t *testing.T) {
		// A session that passed a face check completes an authorization:
		// the id_token's amr says face, and auth_time is the check's.
		f3, b3 := rp.start(), browser()
		id, callback := loginPage(t, b3, f3)
		if callback != "" {
			t.Fatal("login page completed at once; want a login")
		}
		c := client("")
		phone := phoneLogin(t, h, "oidc-dan")
		r := call(t, c, "POST", h.URL+"/v1/face/verify-id", phone.AccessToken, map[string]string{"name": "张小丹", "id_number": idNumber("11010519491231003")})
		mustStatus(t, "face verify-id", r, 200)
		var v struct {
			VerifyID string `json:"verify_id"`
		}
		r.decode(t, &v)
		mustStatus(t, "the face check on the phone", call(t, c, "POST", h.URL+"/sandbox/wechat/requestFacialVerify", "", map[string]string{"verify_id": v.VerifyID}), 200)
		mustStatus(t, "face result", call(t, c, "POST", h.URL+"/v1/face/result", phone.AccessToken, map[string]string{"verify_id": v.VerifyID}), 200)
		callback = completeOK(t, h, b3, id, phone.AccessToken)
		_, _, claims := rp.exchange(t, codeFrom(t, b3, callback, f3), f3)
		if !slices.Contains(claims.AMR, "face") || !slices.Contains(claims.AMR, "wx") || claims.AuthTime == 0 {
			t.Errorf("id_token of a session with a face check: amr %v, auth_time %d; want wx and face, and a time", claims.AMR, claims.AuthTime)
		}
	})

	t.Run("OneCodePerAuthorization", func(t *testing.T) {
		// The callback that issues the code, hit again (a reload, a
		// replay), issues none: one consent, one grant.
		f2, b2 := rp.start(), browser()
		id, callback := loginPage(t, b2, f2)
		if callback != "" {
			t.Fatal("login page completed at once; want a login")
		}
		s := scanLogin(t, h, "oidc-carol")
		callback = completeOK(t, h, b2, id, s.AccessToken)
		code := codeFrom(t, b2, callback, f2)
		resp := get(t, b2, callback)
		if loc, _ := url.Parse(resp.Header.Get("Location")); loc != nil && loc.Query().Get("code") != "" {
			t.Fatalf("the callback again gave a second code (%d, %s)", resp.StatusCode, loc)
		}
		if _, _, claims := rp.exchange(t, code, f2); claims.Nonce != f2.nonce {
			t.Errorf("the first code's id_token: nonce %q, want %q", claims.Nonce, f2.nonce)
		}
	})

	t.Run("AccessTokenOffline", func(t *testing.T) {
		// A backend checks the access token against the JWKS alone.
		v := rp.provider.VerifierContext(ctx, &gooidc.Config{ClientID: "rp"})
		at, err := v.Verify(ctx, tok.AccessToken)
		if err != nil || at.Subject != aliceID {
			t.Fatalf("access token: %v, sub %v", err, at)
		}
		ui, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || ui.Subject != aliceID {
			t.Fatalf("userinfo: %+v, %v", ui, err)
		}
		var profile struct{ Name, Nickname string }
		if err := ui.Claims(&profile); err != nil || !strings.Contains(profile.Name, "oidc-alice") {
			t.Errorf("userinfo name %q (%v), want the user's nickname", profile.Name, err)
		}
	})

	t.Run("Introspection", func(t *testing.T) {
		if st, m := introspect(t, h, tok.AccessToken, rpSecret); st != 200 || m["active"] != true || m["sub"] != aliceID || m["client_id"] != "rp" {
			t.Errorf("introspection: %d %v", st, m)
		}
		if st, _ := introspect(t, h, tok.AccessToken, "wrong"); st != http.StatusUnauthorized {
			t.Errorf("introspection with a wrong secret: %d, want 401", st)
		}
	})

	t.Run("RefreshRotatesAndReuseRevokes", func(t *testing.T) {
		f := rp.start()
		id, cb := loginPage(t, b, f)
		if cb == "" {
			// The browser's hub session (the first login's cookie)
			// completed it without a new login.
			t.Fatalf("second authorization of one browser: want SSO, got the login page (%s)", id)
		}
		tok, _, _ := rp.exchange(t, codeFrom(t, b, cb, f), f)
		next, err := rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh: %v (new refresh %q)", err, next.RefreshToken)
		}
		if raw, _ := next.Extra("id_token").(string); raw != "" {
			if _, err := rp.verifier.Verify(ctx, raw); err != nil {
				t.Errorf("refreshed id_token: %v", err)
			}
		}
		_, err = rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if oauthError(err) != "invalid_grant" {
			t.Fatalf("reused refresh token: %v, want invalid_grant", err)
		}
		_, err = rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: next.RefreshToken}).Token()
		if oauthError(err) != "invalid_grant" {
			t.Errorf("the newer refresh token after a reuse: %v, want invalid_grant (the grant is revoked)", err)
		}
	})

	t.Run("RevokedRefreshToken", func(t *testing.T) {
		f := rp.start()
		_, cb := loginPage(t, b, f)
		tok, _, _ := rp.exchange(t, codeFrom(t, b, cb, f), f)
		req, _ := http.NewRequest("POST", h.URL+oidcprovider.RevokePath, strings.NewReader(url.Values{"token": {tok.RefreshToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rp", rpSecret)
		resp, err := client("").Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("revoke: %v %v", resp, err)
		}
		resp.Body.Close()
		if _, err := rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthError(err) != "invalid_grant" {
			t.Errorf("a revoked refresh token: %v, want invalid_grant", err)
		}
		if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
			t.Error("userinfo with an access token of a revoked grant succeeded")
		}
	})

	t.Run("CodeRefusals", func(t *testing.T) {
		f := rp.start()
		_, cb := loginPage(t, b, f)
		code := codeFrom(t, b, cb, f)
		// A wrong redirect URI at the token endpoint.
		if _, err := rp.cfg.Exchange(ctx, code, oauth2.VerifierOption(f.verifier),
			oauth2.SetAuthURLParam("redirect_uri", "http://127.0.0.1/elsewhere")); oauthError(err) != "invalid_grant" {
			t.Errorf("wrong redirect_uri: %v, want invalid_grant", err)
		}
		// The code was spent by that try: a code is single use.
		if _, err := rp.cfg.Exchange(ctx, code, oauth2.VerifierOption(f.verifier)); oauthError(err) != "invalid_grant" {
			t.Errorf("a spent code: %v, want invalid_grant", err)
		}

		f = rp.start()
		_, cb = loginPage(t, b, f)
		code = codeFrom(t, b, cb, f)
		if _, err := rp.cfg.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); oauthError(err) != "invalid_grant" {
			t.Errorf("wrong PKCE verifier: %v, want invalid_grant", err)
		}

		f = rp.start()
		_, cb = loginPage(t, b, f)
		code = codeFrom(t, b, cb, f)
		first, _, _ := rp.exchange(t, code, f)
		if first.RefreshToken == "" {
			t.Fatal("the first exchange gave no refresh token")
		}
		if _, err := rp.cfg.Exchange(ctx, code, oauth2.VerifierOption(f.verifier)); oauthError(err) != "invalid_grant" {
			t.Errorf("replayed code: %v, want invalid_grant", err)
		}
		// The replay revoked the grant of the first exchange (RFC 6749
		// section 4.1.2): its tokens stop.
		if _, err := rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: first.RefreshToken}).Token(); oauthError(err) != "invalid_grant" {
			t.Errorf("the refresh token of a replayed code: %v, want invalid_grant", err)
		}
		if _, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(first)); err == nil {
			t.Error("userinfo with the access token of a replayed code succeeded")
		}
		if st, m := introspect(t, h, first.AccessToken, rpSecret); st != 200 || m["active"] != false {
			t.Errorf("introspection of the access token of a replayed code: %d %v, want inactive", st, m)
		}
		other := oauth2.Config{ClientID: "spa", Endpoint: rp.cfg.Endpoint, RedirectURL: rpRedirect}
		f = rp.start()
		_, cb = loginPage(t, b, f)
		if _, err := other.Exchange(ctx, codeFrom(t, b, cb, f), oauth2.VerifierOption(f.verifier)); err == nil {
			t.Error("another client redeemed the RP's code")
		}
	})

	t.Run("AuthorizeRefusals", func(t *testing.T) {
		// An unregistered redirect URI: no redirect to it, an error page.
		bad := rp.cfg
		bad.RedirectURL = "http://127.0.0.1/evil"
		resp := get(t, b, bad.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "http://127.0.0.1/evil") || resp.StatusCode < 400 {
			t.Errorf("unregistered redirect URI: %d to %q, want an error without a redirect", resp.StatusCode, loc)
		}
		// A public client without PKCE is sent back with an error.
		spa := oauth2.Config{ClientID: "spa", Endpoint: rp.cfg.Endpoint, RedirectURL: "https://spa.example/cb", Scopes: []string{"openid"}}
		resp = get(t, b, spa.AuthCodeURL("s"))
		if loc := resp.Header.Get("Location"); !strings.Contains(loc, "error=invalid_request") {
			t.Errorf("public client without PKCE: %d to %q, want error=invalid_request", resp.StatusCode, loc)
		}
	})

	t.Run("FreshLogin", func(t *testing.T) {
		for _, opt := range []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("prompt", "login"),
			oauth2.SetAuthURLParam("max_age", "0"),
		} {
			f := rp.start(opt)
			id, cb := loginPage(t, b, f)
			if cb != "" {
				t.Fatalf("%v: the browser's session completed it; want the login page", opt)
			}
			// The page's earlier session is not fresh enough.
			if status, _ := complete(t, h, b, id, hubSession.AccessToken); status != http.StatusForbidden {
				t.Errorf("completing with an old session: %d, want 403", status)
			}
		}
		f := rp.start(oauth2.SetAuthURLParam("prompt", "login"))
		id, _ := loginPage(t, b, f)
		fresh := scanLogin(t, h, "oidc-alice")
		_, _, c := rp.exchange(t, codeFrom(t, b, completeOK(t, h, b, id, fresh.AccessToken), f), f)
		if c.SID == claims.SID {
			t.Errorf("a fresh login's sid %q is the old session's", c.SID)
		}
		if status, _ := complete(t, h, b, id, fresh.AccessToken); status != http.StatusNotFound && status != http.StatusConflict {
			t.Errorf("completing a request twice: %d, want 404 or 409", status)
		}
	})

	t.Run("DPoP", func(t *testing.T) {
		f := rp.start()
		_, cb := loginPage(t, b, f)
		code := codeFrom(t, b, cb, f)
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		jkt, _ := authcore.DPoPThumbprint(&key.PublicKey)
		proof, _ := authcore.NewDPoPProof(key, "POST", h.URL+oidcprovider.TokenPath, time.Now())
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}, "code_verifier": {f.verifier}}
		st, body := postToken(t, h, form, rpSecret, proof)
		if st != 200 || body.TokenType != "DPoP" {
			t.Fatalf("token with a DPoP proof: %d, token_type %q", st, body.TokenType)
		}
		if got := boundKeyOf(t, body.AccessToken); got != jkt {
			t.Errorf("access token cnf.jkt %q, want %q", got, jkt)
		}
		// A replayed proof is refused.
		if st, a := postToken(t, h, form, rpSecret, proof); st != http.StatusBadRequest || a.Error != "invalid_dpop_proof" {
			t.Errorf("replayed DPoP proof: %d %q, want 400 invalid_dpop_proof", st, a.Error)
		}

		// Introspection says the token is bound, and to which key; the
		// discovery document names the proofs' algorithm.
		req, _ := http.NewRequest("POST", h.URL+oidcprovider.IntrospectPath, strings.NewReader(url.Values{"token": {body.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("rp", rpSecret)
		resp, err := client("").Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var intro struct {
			Active    bool   `json:"active"`
			TokenType string `json:"token_type"`
			Cnf       struct {
				JKT string `json:"jkt"`
			} `json:"cnf"`
		}
		json.NewDecoder(resp.Body).Decode(&intro)
		resp.Body.Close()
		if !intro.Active || intro.TokenType != "DPoP" || intro.Cnf.JKT != jkt {
			t.Errorf("introspection of a DPoP-bound token: %+v, want active, token_type DPoP, cnf.jkt %s", intro, jkt)
		}
		resp, err = client("").Get(h.URL + oidcprovider.DiscoveryPath)
		if err != nil {
			t.Fatal(err)
		}
		var disco struct {
			DPoPAlgs []string `json:"dpop_signing_alg_values_supported"`
			Issuer   string   `json:"issuer"`
		}
		json.NewDecoder(resp.Body).Decode(&disco)
		resp.Body.Close()
		if len(disco.DPoPAlgs) != 1 || disco.DPoPAlgs[0] != "ES256" || disco.Issuer == "" {
			t.Errorf("discovery: %+v, want dpop_signing_alg_values_supported [ES256] beside the rest", disco)
		}

		// Userinfo takes the bound token with a proof of its key for this
		// request (ath: the token's hash), never as a bearer token.
		userinfo := func(scheme string, proof string) int {
			req, _ := http.NewRequest("GET", h.URL+oidcprovider.UserinfoPath, nil)
			req.Header.Set("Authorization", scheme+" "+body.AccessToken)
			if proof != "" {
				req.Header.Set("DPoP", proof)
			}
			resp, err := client("").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if st := userinfo("Bearer", ""); st != http.StatusUnauthorized {
			t.Errorf("a DPoP-bound token as a bearer token: %d, want 401", st)
		}
		noATH, _ := authcore.NewDPoPProof(key, "GET", h.URL+oidcprovider.UserinfoPath, time.Now())
		if st := userinfo("DPoP", noATH); st != http.StatusUnauthorized {
			t.Errorf("a proof without ath: %d, want 401", st)
		}
		wrongATH, _ := authcore.NewDPoPAccessProof(key, "GET", h.URL+oidcprovider.UserinfoPath, "another token", time.Now())
		if st := userinfo("DPoP", wrongATH); st != http.StatusUnauthorized {
			t.Errorf("a proof for another token: %d, want 401", st)
		}
		other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		otherKey, _ := authcore.NewDPoPAccessProof(other, "GET", h.URL+oidcprovider.UserinfoPath, body.AccessToken, time.Now())
		if st := userinfo("DPoP", otherKey); st != http.StatusUnauthorized {
			t.Errorf("a proof of another key: %d, want 401", st)
		}
		good, _ := authcore.NewDPoPAccessProof(key, "GET", h.URL+oidcprovider.UserinfoPath, body.AccessToken, time.Now())
		if st := userinfo("DPoP", good); st != http.StatusOK {
			t.Errorf("the bound token with its proof: %d, want 200", st)
		}
		if st := userinfo("DPoP", good); st != http.StatusUnauthorized {
			t.Errorf("the same proof again: %d, want 401 (jti replay)", st)
		}
	})

	// A public client's refresh token is bound to the DPoP key of the
	// request that got it (RFC 9449 section 5): each refresh proves that
	// key, and its access token is bound again.
	newKey := func() (*ecdsa.PrivateKey, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		jkt, _ := authcore.DPoPThumbprint(&k.PublicKey)
		return k, jkt
	}
	tokenProof := func(k *ecdsa.PrivateKey) string {
		p, err := authcore.NewDPoPProof(k, "POST", h.URL+oidcprovider.TokenPath, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	spa := *rp
	spa.cfg = oauth2.Config{ClientID: "spa", Endpoint: rp.cfg.Endpoint, RedirectURL: "https://spa.example/cb",
		Scopes: []string{gooidc.ScopeOpenID, gooidc.ScopeOfflineAccess}}
	spaCode := func(t *testing.T) (string, flow) {
		f := spa.start()
		_, cb := loginPage(t, b, f)
		if cb == "" {
			t.Fatal("the SPA's authorization showed the login page; want the browser's hub session to complete it")
		}
		return codeFrom(t, b, cb, f), f
	}
	codeForm := func(code string, f flow, client string) url.Values {
		v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {f.redirect}, "code_verifier": {f.verifier}}
		if client != "" {
			v.Set("client_id", client)
		}
		return v
	}
	refreshForm := func(refresh, client string) url.Values {
		v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
		if client != "" {
			v.Set("client_id", client)
		}
		return v
	}
	// wantBound checks a successful token answer bound to jkt (or a
	// bearer one when jkt is empty) with a refresh token.
	wantBound := func(t *testing.T, what string, st int, a tokenAnswer, jkt string) {
		t.Helper()
		typ := "Bearer"
		if jkt != "" {
			typ = "DPoP"
		}
		if st != 200 || a.TokenType != typ || a.RefreshToken == "" {
			t.Fatalf("%s: %d %q, token_type %q, refresh token %t; want 200 %s with a refresh token", what, st, a.Error, a.TokenType, a.RefreshToken != "", typ)
		}
		if got := boundKeyOf(t, a.AccessToken); got != jkt {
			t.Errorf("%s: access token cnf.jkt %q, want %q", what, got, jkt)
		}
	}
	wantRefused := func(t *testing.T, what string, st int, a tokenAnswer, code string) {
		t.Helper()
		if st != http.StatusBadRequest || a.Error != code {
			t.Errorf("%s: %d %q, want 400 %s", what, st, a.Error, code)
		}
	}

	t.Run("DPoPBoundRefreshPublic", func(t *testing.T) {
		key, jkt := newKey()
		other, _ := newKey()
		code, f := spaCode(t)
		st, a := postToken(t, h, codeForm(code, f, "spa"), "", tokenProof(key))
		wantBound(t, "code exchange with a proof", st, a, jkt)

		st, r := postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", "")
		wantRefused(t, "refresh of a bound token without a proof", st, r, "invalid_grant")
		st, r = postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", tokenProof(other))
		wantRefused(t, "refresh of a bound token with a proof of another key", st, r, "invalid_grant")
		bad, _ := authcore.NewDPoPProof(key, "POST", h.URL+"/elsewhere", time.Now())
		st, r = postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", bad)
		wantRefused(t, "refresh with a proof for another URL", st, r, "invalid_dpop_proof")

		// The refusals changed nothing: the key's holder refreshes.
		st, next := postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", tokenProof(key))
		wantBound(t, "refresh with a proof of the key", st, next, jkt)
		if next.RefreshToken == a.RefreshToken {
			t.Error("the refresh did not rotate the refresh token")
		}
		// The rotated token is bound to the same key.
		st, r = postToken(t, h, refreshForm(next.RefreshToken, "spa"), "", tokenProof(other))
		wantRefused(t, "refresh of the rotated token with another key", st, r, "invalid_grant")
		st, last := postToken(t, h, refreshForm(next.RefreshToken, "spa"), "", tokenProof(key))
		wantBound(t, "refresh of the rotated token with the key", st, last, jkt)
	})

	t.Run("DPoPOptionalPublic", func(t *testing.T) {
		// Without a proof at the exchange the grant is unbound, until a
		// refresh with a proof binds it to that proof's key.
		code, f := spaCode(t)
		st, a := postToken(t, h, codeForm(code, f, "spa"), "", "")
		wantBound(t, "code exchange without a proof", st, a, "")
		st, a = postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", "")
		wantBound(t, "refresh of an unbound token without a proof", st, a, "")
		key, jkt := newKey()
		st, a = postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", tokenProof(key))
		wantBound(t, "refresh of an unbound token with a proof", st, a, jkt)
		st, r := postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", "")
		wantRefused(t, "refresh without a proof after a refresh with one", st, r, "invalid_grant")
		st, a = postToken(t, h, refreshForm(a.RefreshToken, "spa"), "", tokenProof(key))
		wantBound(t, "refresh with the key that bound it", st, a, jkt)
	})

	t.Run("DPoPRefreshConfidential", func(t *testing.T) {
		// A confidential client's refresh token is bound to its client
		// authentication, not to a key (RFC 9449 section 5): each
		// refresh's access token is bound to that refresh's proof, if any.
		key, jkt := newKey()
		other, otherJKT := newKey()
		f := rp.start()
		_, cb := loginPage(t, b, f)
		st, a := postToken(t, h, codeForm(codeFrom(t, b, cb, f), f, ""), rpSecret, tokenProof(key))
		wantBound(t, "confidential code exchange with a proof", st, a, jkt)
		st, a = postToken(t, h, refreshForm(a.RefreshToken, ""), rpSecret, tokenProof(other))
		wantBound(t, "confidential refresh with a new key", st, a, otherJKT)
		st, a = postToken(t, h, refreshForm(a.RefreshToken, ""), rpSecret, "")
		wantBound(t, "confidential refresh without a proof", st, a, "")
		st, r := postToken(t, h, refreshForm(a.RefreshToken, ""), "wrong", tokenProof(key))
		if st == 200 {
			t.Errorf("confidential refresh with a wrong secret: %d %q, want a refusal", st, r.Error)
		}
	})

	t.Run("Logout", func(t *testing.T) {
		// Last: it ends the browser's hub session.
		raw, _ := tok.Extra("id_token").(string)
		q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {rpLogout}, "state": {"bye"}}
		resp := get(t, b, h.URL+oidcprovider.LogoutPath+"?"+q.Encode())
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, rpLogout) || !strings.Contains(loc, "state=bye") {
			t.Fatalf("logout: %d to %q", resp.StatusCode, loc)
		}
		if _, err := rp.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthError(err) != "invalid_grant" {
			t.Errorf("refresh token of the ended session: %v, want invalid_grant", err)
		}
		if r := call(t, client(""), "GET", h.URL+"/v1/me", hubSession.AccessToken, nil); r.Status != http.StatusUnauthorized {
			t.Errorf("the ended hub session: /v1/me %d, want 401", r.Status)
		}
		// And the browser has no session left: the next authorization
		// shows the login page.
		if _, cb := loginPage(t, b, rp.start()); cb != "" {
			t.Error("after logout the browser's session still completed an authorization")
		}
	})
}

// TestOIDCKeyRotation: tokens signed before a rotation verify until their
// key is removed; new tokens use the new key.
func TestOIDCKeyRotation(t *testing.T) {
	k1, k2 := oidcprovider.RandomSigningKey("k1"), oidcprovider.RandomSigningKey("k2")
	clients := writeClients(t, rpRedirect)
	token := func(h *testHub) (string, string) {
		rp := newRelyingParty(t, h.URL)
		b := browser()
		f := rp.start()
		code, _ := authorizeByScan(t, h, b, f, "rot-alice")
		tok, _, _ := rp.exchange(t, code, f)
		raw, _ := tok.Extra("id_token").(string)
		return raw, kidOf(t, raw)
	}
	// Each hub has its own address, so its own issuer: what matters here
	// is the signature against the hub's JWKS.
	verify := func(h *testHub, raw string) error {
		ks := gooidc.NewRemoteKeySet(context.Background(), h.URL+oidcprovider.JWKSPath)
		v := gooidc.NewVerifier("", ks, &gooidc.Config{ClientID: "rp", SkipIssuerCheck: true, SupportedSigningAlgs: []string{"ES256"}})
		_, err := v.Verify(context.Background(), raw)
		return err
	}
	env := func(keys ...oidcprovider.SigningKey) map[string]string {
		var s []string
		for _, k := range keys {
			s = append(s, oidcprovider.EncodeSigningKey(k))
		}
		return map[string]string{"LOGINHUB_OIDC_CLIENTS": clients, "LOGINHUB_SIGNING_KEYS": strings.Join(s, ",")}
	}
	old, kid := token(startHub(t, env(k1)))
	if kid != "k1" {
		t.Fatalf("signed with %q, want k1", kid)
	}
	rotated := startHub(t, env(k2, k1))
	if err := verify(rotated, old); err != nil {
		t.Errorf("a token signed before the rotation: %v, want it verified", err)
	}
	if _, kid := token(rotated); kid != "k2" {
		t.Errorf("after the rotation tokens are signed with %q, want k2", kid)
	}
	removed := startHub(t, env(k2))
	if err := verify(removed, old); err == nil {
		t.Error("a token signed by a retired and removed key verified")
	}
	r := call(t, client(""), "GET", removed.URL+oidcprovider.UserinfoPath, old, nil)
	if r.Status == 200 {
		t.Errorf("userinfo with a token of a removed key: %d", r.Status)
	}
}

func kidOf(t testing.TB, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	json.Unmarshal(raw, &h)
	return h.Kid
}

// TestOIDCClientsFile: the clients file is checked at start, every problem
// named.
func TestOIDCClientsFile(t *testing.T) {
	hash := oidcprovider.HashSecret("s")
	for _, tc := range []struct{ name, json, want string }{
		{"unknown field", `[{"client_id":"a","client_secret_hash":"` + hash + `","redirect_uris":["https://a/cb"],"secret":"x"}]`, `unknown field "secret"`},
		{"http redirect", `[{"client_id":"a","client_secret_hash":"` + hash + `","redirect_uris":["http://a.example/cb"]}]`, "http is allowed only for loopback"},
		{"duplicate", `[{"client_id":"a","public":true,"redirect_uris":["https://a/cb"]},{"client_id":"a","public":true,"redirect_uris":["https://a/cb"]}]`, `client "a": duplicate client_id`},
		{"no secret", `[{"client_id":"a","redirect_uris":["https://a/cb"]}]`, "needs client_secret_hash"},
		{"bad hash", `[{"client_id":"a","client_secret_hash":"plain","redirect_uris":["https://a/cb"]}]`, "sha256:<64 hex digits>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.json")
			os.WriteFile(path, []byte(tc.json), 0o600)
			_, err := loadConfig(nil, func(k string) string {
				return map[string]string{"LOGINHUB_OIDC_CLIENTS": path, "LOGINHUB_QR_TTL": "120s"}[k]
			}, &syncBuffer{})
			if err == nil || !strings.Contains(err.Error(), "LOGINHUB_OIDC_CLIENTS") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming LOGINHUB_OIDC_CLIENTS and %q", err, tc.want)
			}
		})
	}
}

// TestOIDCAcrossNodes: on Redis, an authorization started on one node is
// completed and redeemed on another, and its refresh token rotates on a
// third node's view of the same grant.
func TestOIDCAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		keys, dataKey := sharedKeys(), sharedDataKey()
		signing := oidcprovider.EncodeSigningKey(oidcprovider.RandomSigningKey("s1"))
		clients := writeClients(t, rpRedirect)
		a := startNode(t, "node1", be.url, keys, dataKey, "LOGINHUB_OIDC_CLIENTS="+clients, "LOGINHUB_SIGNING_KEYS="+signing)
		b := startNode(t, "node2", be.url, keys, dataKey, "LOGINHUB_OIDC_CLIENTS="+clients, "LOGINHUB_SIGNING_KEYS="+signing)
		// The nodes' issuer is the cluster's public URL; requests go to
		// each node's own address.
		on := func(n *node, u string) string { return strings.Replace(u, clusterOrigin, n.URL, 1) }
		rp := oauth2.Config{ClientID: "rp", ClientSecret: rpSecret, RedirectURL: rpRedirect, Scopes: []string{"openid", "offline_access"},
			Endpoint: oauth2.Endpoint{AuthURL: a.URL + oidcprovider.AuthorizePath, TokenURL: b.URL + oidcprovider.TokenPath}}
		f := flow{state: "st", nonce: "n-1", verifier: oauth2.GenerateVerifier()}
		br := browser()
		resp := get(t, br, rp.AuthCodeURL(f.state, gooidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier)))
		login, err := url.Parse(resp.Header.Get("Location"))
		if err != nil || login.Query().Get("id") == "" {
			t.Fatalf("authorize on node1: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		id := login.Query().Get("id")
		if resp := get(t, br, on(b, login.String())); resp.StatusCode != 200 {
			t.Fatalf("the login page on node2: %d", resp.StatusCode)
		}

		// The page's login: a ticket on node1, the phone on node2.
		nt := createTicket(t, client("127.0.0.1"), a.testHub, "")
		phone := onLogin(t, client(""), b, wxCode(t, b.testHub, "cross-alice"))
		mustStatus(t, "scan", call(t, client(""), "POST", b.URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}), 200)
		mustStatus(t, "confirm", call(t, client(""), "POST", b.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", phone.AccessToken, nil), 200)
		r := call(t, client("127.0.0.1"), "POST", a.URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil)
		mustStatus(t, "redeem", r, 200)
		var s authcore.Session
		r.decode(t, &s)

		callback := completeOK(t, b.testHub, br, id, s.AccessToken)
		code := codeFrom(t, br, on(a, callback), f)
		tok, err := rp.Exchange(context.Background(), code, oauth2.VerifierOption(f.verifier))
		if err != nil {
			t.Fatalf("token on node2 for a code of node1: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		v := gooidc.NewVerifier(clusterOrigin, gooidc.NewRemoteKeySet(context.Background(), a.URL+oidcprovider.JWKSPath),
			&gooidc.Config{ClientID: "rp", SupportedSigningAlgs: []string{"ES256"}})
		idt, err := v.Verify(context.Background(), raw)
		if err != nil || idt.Nonce != f.nonce {
			t.Fatalf("id_token from node2 against node1's JWKS: %v", err)
		}
		onA := rp
		onA.Endpoint.TokenURL = a.URL + oidcprovider.TokenPath
		next, err := onA.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh on node1: %v", err)
		}
		if _, err := rp.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); oauthError(err) != "invalid_grant" {
			t.Errorf("the rotated refresh token on node2: %v, want invalid_grant", err)
		}
		if _, err := onA.TokenSource(context.Background(), &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); oauthError(err) != "invalid_grant" {
			t.Errorf("after a reuse on node2, node1 still rotates the grant: %v", err)
		}
	})
}
