// Package oidcprovider makes the hub an OpenID Connect provider, on
// zitadel/oidc's op package (OpenID Certified): discovery, JWKS, the
// authorization code flow with PKCE, tokens, userinfo, introspection
// (RFC 7662), revocation (RFC 7009) and RP-initiated logout. Its records
// (authorization requests, codes, grants) live in the hub's store
// (authcore.ProviderStore), so that any node serves any step. The user
// logs in on the hub's own login page; the hub session it yields
// completes the authorization (Provider.Complete).
package oidcprovider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/loginhub/loginhub/authcore"
)

// The provider's paths, under the hub's public URL.
const (
	AuthorizePath  = "/oauth2/authorize"
	LoginPath      = "/oauth2/authorize/login"    // the login page of a request (?id=)
	CompletePath   = "/oauth2/authorize/complete" // the page posts the hub session here (?id=)
	TokenPath      = "/oauth2/token"
	UserinfoPath   = "/oauth2/userinfo"
	IntrospectPath = "/oauth2/introspect"
	RevokePath     = "/oauth2/revoke"
	LogoutPath     = "/oauth2/logout"
	JWKSPath       = "/.well-known/jwks.json"
	DiscoveryPath  = "/.well-known/openid-configuration"
)

// SessionCookie holds the browser's hub session (its access token) for
// the provider's paths only: a later authorization without prompt=login
// uses it instead of a new login, and logout ends it.
const SessionCookie = "lh_oidc_session"

// Sessions resolves a hub session's access token (authcore.Service).
type Sessions interface {
	Authenticate(ctx context.Context, accessToken string) (authcore.Principal, error)
}

// Config configures a Provider.
type Config struct {
	Issuer   string       // the hub's public URL; http only on loopback
	Store    Store        // required
	Sessions Sessions     // required
	Clients  []Client     // the registered apps (LoadClients)
	Keys     []SigningKey // the first signs; all are published; required
	// DPoP checks proofs sent to the token endpoint; its Replay is
	// required.
	DPoP   authcore.DPoPVerifier
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: slog.Default()
}

// Provider is the hub's OpenID Connect provider. It is safe for
// concurrent use.
type Provider struct {
	op      *op.Provider
	storage *storage
	issuer  string
	dpop    authcore.DPoPVerifier
	handler http.Handler
}

// New checks cfg and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Store == nil || cfg.Sessions == nil || len(cfg.Keys) == 0 || cfg.DPoP.Replay == nil {
		return nil, errors.New("oidcprovider: Store, Sessions, Keys and DPoP.Replay are required")
	}
	issuer := strings.TrimRight(cfg.Issuer, "/")
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	clients := map[string]Client{}
	for _, c := range cfg.Clients {
		clients[c.ID] = c
	}
	st := &storage{store: cfg.Store, sess: cfg.Sessions, clients: clients, keys: cfg.Keys, now: cfg.Now, log: cfg.Logger,
		loginURL: func(id string) string { return issuer + LoginPath + "?id=" + url.QueryEscape(id) }}
	var cryptoKey [32]byte
	rand.Read(cryptoKey[:]) // access tokens are JWTs; op wants a key for opaque ones anyway
	opts := []op.Option{
		op.WithCustomAuthEndpoint(op.NewEndpoint(AuthorizePath)),
		op.WithCustomTokenEndpoint(op.NewEndpoint(TokenPath)),
		op.WithCustomUserinfoEndpoint(op.NewEndpoint(UserinfoPath)),
		op.WithCustomIntrospectionEndpoint(op.NewEndpoint(IntrospectPath)),
		op.WithCustomRevocationEndpoint(op.NewEndpoint(RevokePath)),
		op.WithCustomEndSessionEndpoint(op.NewEndpoint(LogoutPath)),
		op.WithCustomKeysEndpoint(op.NewEndpoint(JWKSPath)),
		op.WithLogger(cfg.Logger),
	}
	if strings.HasPrefix(issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	o, err := op.NewProvider(&op.Config{
		CryptoKey:                cryptoKey,
		DefaultLogoutRedirectURI: issuer + "/",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeOfflineAccess},
		SupportedClaims:          []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "sid", "azp", "at_hash", "c_hash", "name", "nickname", "picture"},
	}, st, op.StaticIssuer(issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("oidcprovider: %w", err)
	}
	p := &Provider{op: o, storage: st, issuer: issuer, dpop: cfg.DPoP}
	p.handler = p.intercept(o)
	return p, nil
}

// ServeHTTP serves discovery, the JWKS, /oauth2/authorize and its
// callback, token, userinfo, introspection, revocation and logout.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) { p.handler.ServeHTTP(w, r) }

// intercept adds what op does not do: DPoP proofs at the token endpoint,
// and the browser's session cookie at logout.
func (p *Provider) intercept(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case TokenPath:
			proof := r.Header.Get("DPoP")
			if proof == "" {
				next.ServeHTTP(w, r)
				return
			}
			jkt, err := p.checkDPoP(r.Context(), proof, r.Method)
			if err != nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_dpop_proof", "error_description": authcoreMessage(err)})
				return
			}
			// The response says the token is a DPoP one (RFC 9449 §5).
			rec := &bufferedWriter{header: http.Header{}}
			next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), dpopKey{}, jkt)))
			body := rec.body.Bytes()
			if rec.status == 0 || rec.status == http.StatusOK {
				body = bytes.Replace(body, []byte(`"token_type":"Bearer"`), []byte(`"token_type":"DPoP"`), 1)
			}
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			if rec.status != 0 {
				w.WriteHeader(rec.status)
			}
			w.Write(body)
		case UserinfoPath:
			r, ok := p.dpopResource(w, r)
			if !ok {
				return
			}
			next.ServeHTTP(w, r)
		case IntrospectPath:
			// RFC 9449 section 6.2: introspecting a DPoP-bound token says
			// so (token_type DPoP, cnf.jkt). The form is parsed here, and
			// op reads it from the request as parsed.
			if err := r.ParseForm(); err == nil {
				if jkt := boundKey(r.PostForm.Get("token")); jkt != "" {
					r = r.WithContext(context.WithValue(r.Context(), dpopKey{}, jkt))
				}
			}
			next.ServeHTTP(w, r)
		case DiscoveryPath:
			// The provider binds tokens to ES256 DPoP keys (RFC 9449
			// section 5.1): op's discovery document does not say so.
			rec := &bufferedWriter{header: http.Header{}}
			next.ServeHTTP(rec, r)
			body := rec.body.Bytes()
			var doc map[string]any
			if (rec.status == 0 || rec.status == http.StatusOK) && json.Unmarshal(body, &doc) == nil {
				doc["dpop_signing_alg_values_supported"] = []string{"ES256"}
				if b, err := json.Marshal(doc); err == nil {
					body = b
				}
			}
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			if rec.status != 0 {
				w.WriteHeader(rec.status)
			}
			w.Write(body)
		case LogoutPath:
			if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
				r = r.WithContext(context.WithValue(r.Context(), sessionTokenKey{}, c.Value))
			}
			http.SetCookie(w, p.SessionCookie("", -1))
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// dpopResource holds userinfo to RFC 9449 section 7: a DPoP-bound access
// token (cnf.jkt) comes as "Authorization: DPoP <token>" with a proof of
// its key for this request, carrying the token's hash (ath); it is never
// taken as a bearer token. A checked one goes on to op as a bearer token.
// Bearer tokens without cnf pass as they are. It answers the refusal
// itself and reports false.
func (p *Provider) dpopResource(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	jkt := boundKey(token)
	refuse := func(challenge, desc string) (*http.Request, bool) {
		w.Header().Set("WWW-Authenticate", challenge+` error="invalid_token", error_description="`+desc+`"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_token", "error_description": desc})
		return nil, false
	}
	switch {
	case strings.EqualFold(scheme, "DPoP"):
		if jkt == "" {
			return refuse("DPoP", "not a DPoP-bound token")
		}
		if err := p.dpop.VerifyAccess(r.Context(), r.Header.Get("DPoP"), r.Method, p.issuer+UserinfoPath, jkt, token, p.storage.now()); err != nil {
			return refuse("DPoP", authcoreMessage(err))
		}
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+token)
		return r, true
	case jkt != "":
		return refuse("DPoP", "a DPoP-bound token needs Authorization: DPoP and a proof")
	}
	return r, true
}

// boundKey is the cnf.jkt of an access token (a JWT; not verified here:
// op verifies it after), or "".
func boundKey(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Cnf struct {
			JKT string `json:"jkt"`
		} `json:"cnf"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Cnf.JKT
}

func authcoreMessage(err error) string {
	var e *authcore.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "invalid DPoP proof"
}

// checkDPoP verifies a token request's proof and returns its key's
// thumbprint.
func (p *Provider) checkDPoP(ctx context.Context, proof, method string) (string, error) {
	head, _, ok := strings.Cut(proof, ".")
	if !ok {
		return "", authcore.Errorf(authcore.KindUnauthorized, "invalid DPoP proof: malformed")
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", authcore.Errorf(authcore.KindUnauthorized, "invalid DPoP proof: malformed header")
	}
	var h struct {
		JWK jose.JSONWebKey `json:"jwk"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return "", authcore.Errorf(authcore.KindUnauthorized, "invalid DPoP proof: malformed jwk")
	}
	pub, ok := h.JWK.Key.(*ecdsa.PublicKey)
	if !ok {
		return "", authcore.Errorf(authcore.KindUnauthorized, "invalid DPoP proof: want an ES256 jwk")
	}
	jkt, err := authcore.DPoPThumbprint(pub)
	if err != nil {
		return "", authcore.Errorf(authcore.KindUnauthorized, "invalid DPoP proof: bad jwk")
	}
	if err := p.dpop.Verify(ctx, proof, method, p.issuer+TokenPath, jkt, p.storage.now()); err != nil {
		return "", err
	}
	return jkt, nil
}

type bufferedWriter struct {
	header http.Header
	body   bytes.Buffer
	status int
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedWriter) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}

type dpopKey struct{}
type sessionTokenKey struct{}

func dpopKeyFrom(ctx context.Context) string {
	s, _ := ctx.Value(dpopKey{}).(string)
	return s
}

func sessionTokenFrom(ctx context.Context) string {
	s, _ := ctx.Value(sessionTokenKey{}).(string)
	return s
}

// SessionCookie returns the cookie that keeps the browser's hub session
// token for the provider's paths (maxAge < 0 deletes it).
func (p *Provider) SessionCookie(token string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: token, Path: "/oauth2/", MaxAge: maxAge, HttpOnly: true,
		Secure: strings.HasPrefix(p.issuer, "https://"), SameSite: http.SameSiteLaxMode}
}

// Step is what the login page of an authorization request does.
type Step struct {
	// Redirect, when set, is where the browser goes now: the request was
	// completed with the browser's hub session, or refused (prompt=none
	// without one).
	Redirect string
	// Otherwise the page shows the hub's login for the request.
}

// Login decides the login page of request id: sessionToken is the
// browser's hub session (SessionCookie), or "". A live session that the
// request's prompt and max_age accept completes the request at once.
// Errors: KindNotFound for an unknown or expired request, KindConflict
// for one already completed.
func (p *Provider) Login(ctx context.Context, id, sessionToken string) (Step, error) {
	r, err := p.request(ctx, id)
	if err != nil {
		return Step{}, err
	}
	if sessionToken != "" && !slices.Contains(r.Prompt, oidc.PromptLogin) {
		if pr, err := p.storage.sess.Authenticate(ctx, sessionToken); err == nil && fresh(r, pr, p.storage.now()) {
			redirect, err := p.complete(ctx, r, pr)
			return Step{Redirect: redirect}, err
		}
	}
	if slices.Contains(r.Prompt, oidc.PromptNone) {
		u, err := url.Parse(r.RedirectURI)
		if err != nil {
			return Step{}, err
		}
		q := u.Query()
		q.Set("error", "login_required")
		if r.State != "" {
			q.Set("state", r.State)
		}
		u.RawQuery = q.Encode()
		return Step{Redirect: u.String()}, nil
	}
	return Step{}, nil
}

func (p *Provider) request(ctx context.Context, id string) (authcore.ProviderRequest, error) {
	r, err := p.storage.store.ProviderRequest(ctx, id, p.storage.now())
	if errors.Is(err, authcore.ErrNotFound) {
		return r, authcore.Errorf(authcore.KindNotFound, "no such authorization request, or it expired; go back to the app and log in again")
	}
	if err != nil {
		return r, err
	}
	if r.Login != nil {
		return r, authcore.Errorf(authcore.KindConflict, "this authorization request is already complete")
	}
	return r, nil
}

// authTime is when the user of a hub session authenticated: its login's
// time, or, for a QR redeem (which has none on the desktop), when the
// session was made, just after the phone confirmed.
func authTime(pr authcore.Principal) time.Time {
	if !pr.Session.AuthTime.IsZero() {
		return pr.Session.AuthTime
	}
	return pr.Session.CreatedAt
}

// fresh reports whether session pr may complete request r: a login made
// for the request (after it began; stores keep session times to the
// millisecond) always may; with prompt=login nothing else may, and with
// max_age only a login that recent (op turns prompt=login into
// max_age=0 as well).
func fresh(r authcore.ProviderRequest, pr authcore.Principal, now time.Time) bool {
	at := authTime(pr)
	if !at.Before(r.CreatedAt.Truncate(time.Millisecond)) {
		return true
	}
	if slices.Contains(r.Prompt, oidc.PromptLogin) {
		return false
	}
	return r.MaxAge < 0 || now.Sub(at) <= time.Duration(r.MaxAge)*time.Second
}

// Complete completes request id with the hub session of accessToken, made
// by a login on the request's page, and returns where the browser goes
// next (the provider's callback, which redirects to the app with a code).
// Errors: KindUnauthorized for a dead session, KindNotFound,
// KindConflict (already complete), KindForbidden when prompt=login or
// max_age want a newer login than the session's.
func (p *Provider) Complete(ctx context.Context, id, accessToken string) (string, error) {
	r, err := p.request(ctx, id)
	if err != nil {
		return "", err
	}
	pr, err := p.storage.sess.Authenticate(ctx, accessToken)
	if err != nil {
		return "", err
	}
	if !fresh(r, pr, p.storage.now()) {
		return "", authcore.Errorf(authcore.KindForbidden, "this app asks for a fresh login; log in again")
	}
	return p.complete(ctx, r, pr)
}

func (p *Provider) complete(ctx context.Context, r authcore.ProviderRequest, pr authcore.Principal) (string, error) {
	l := authcore.ProviderLogin{UserID: pr.User.ID, AMR: pr.Session.AMR, AuthTime: authTime(pr), SID: pr.Session.FamilyID}
	if l.AMR == nil {
		l.AMR = []string{}
	}
	switch err := p.storage.store.CompleteProviderRequest(ctx, r.ID, l, p.storage.now()); {
	case errors.Is(err, authcore.ErrConflict):
		return "", authcore.Errorf(authcore.KindConflict, "this authorization request is already complete")
	case errors.Is(err, authcore.ErrNotFound):
		return "", authcore.Errorf(authcore.KindNotFound, "no such authorization request, or it expired")
	case err != nil:
		return "", err
	}
	return p.issuer + AuthorizePath + "/callback?id=" + url.QueryEscape(r.ID), nil
}
