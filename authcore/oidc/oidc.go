// Package oidc is an upstream OpenID Connect provider as a third-party
// login: an authcore.OAuthProvider for any issuer that publishes a
// discovery document (a company's Keycloak, Okta, Entra ID, Google...).
// It uses the authorization code flow with PKCE (S256) and a nonce, and
// trusts only the ID token that the token endpoint returns, checked with
// github.com/coreos/go-oidc: its signature against the issuer's JWKS (a
// token signed by a key the hub has not seen makes it fetch the JWKS again,
// so the provider's key rotation needs nothing from the operator), its
// issuer, its audience (the client ID, and the authorized party when it
// names several), its expiry, and its nonce. Keys
// are trusted for KeysMaxAge at most, so a key that the provider removes
// from its JWKS stops being accepted without a restart.
//
// # Subjects
//
// An identity's subject is "<issuer>#<sub>". The provider's name
// ("oidc:<name>") is only a label in the hub's configuration, and the
// operator may point a name at another issuer; a sub is unique only within
// its issuer, so keying identities by sub alone would let a user of the new
// issuer who happens to have an old user's sub log in as that user. An
// issuer URL has no fragment, so the first '#' separates the two.
//
// # A provider that is down when the hub starts
//
// New discovers the issuer's endpoints and keys. By default it fails when
// discovery does: a hub that starts with a login method missing, or that
// logs in nobody through it, hides a mistake that an operator should see
// at once. But the hub is also the QR, WeChat and password login of every
// user; a company's identity provider that is down during a restart should
// not take all of that down with it (a crash loop of every node during a
// rolling restart). So Config.Lazy starts the hub anyway: New then fails
// only on what cannot be transient (a bad configuration, a discovery
// document naming another issuer), logs the failure, and discovery is tried
// again when the provider is used, at most once per RetryInterval. Until it
// succeeds, AuthorizeURL sends the browser straight back to the callback
// with error=temporarily_unavailable, as an authorization server that
// cannot serve the request would (RFC 6749 section 4.1.2.1), so the login
// ends with the ticket untouched, and Identity answers
// KindUpstreamUnavailable. Once discovered, the endpoints are kept for the
// life of the Provider.
//
// A Provider is safe for concurrent use. Errors it returns are
// *authcore.Error values whose Message is safe to show; the provider's text
// is only in the wrapped cause, which the hub logs. Codes, tokens and the
// client secret are never logged.
package oidc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/loginhub/loginhub/authcore"
)

const (
	// DefaultTimeout bounds each request to the provider when
	// Config.HTTPClient is nil.
	DefaultTimeout = 5 * time.Second
	// RetryInterval is how long a Lazy provider whose discovery failed
	// waits before it tries again; calls in between fail at once.
	RetryInterval = 10 * time.Second
	// KeysMaxAge is how long the issuer's keys are trusted without
	// fetching its JWKS again: a key the provider has retired and removed
	// (say, after a leak) signs nothing the hub accepts after that long.
	// A token signed by a key not seen yet makes go-oidc fetch the JWKS
	// at once, so a new key needs no wait.
	KeysMaxAge = 15 * time.Minute
)

// Config configures a Provider.
type Config struct {
	// Name is the upstream's name in LOGINHUB_OIDC_UPSTREAMS; the hub
	// offers it as the provider "oidc:<Name>". Required.
	Name string
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document and ID tokens spell it. Required.
	Issuer string
	// ClientID and ClientSecret are the hub's credentials at the provider.
	// Required.
	ClientID     string
	ClientSecret string
	// Scopes are asked for at login. Empty means "openid profile";
	// "openid" is added when missing.
	Scopes []string
	// HTTPClient sends every request to the provider (discovery, JWKS,
	// token). Nil means a client whose Timeout is DefaultTimeout.
	HTTPClient *http.Client
	// Logger receives discovery failures and recoveries. Nil discards.
	Logger *slog.Logger
	// Lazy lets New succeed while the provider is unreachable; see the
	// package documentation. False: New fails when discovery fails.
	Lazy bool
	// Now is the clock for ID token expiry and discovery retries. Nil
	// means time.Now.
	Now func() time.Time
}

// LogValue shows the configuration without its secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("issuer", c.Issuer),
		slog.String("client_id", c.ClientID), slog.Any("scopes", c.Scopes), slog.Bool("lazy", c.Lazy))
}

// Provider is an upstream OpenID Connect provider. It implements
// authcore.OAuthProvider.
type Provider struct {
	name     string // "oidc:<Name>"
	issuer   string
	clientID string
	secret   string
	scopes   []string
	client   *http.Client
	log      *slog.Logger
	now      func() time.Time

	found atomic.Pointer[endpoints] // nil until discovery succeeds

	mu       sync.Mutex // one discovery at a time; guards the fields below
	retryAt  time.Time
	lastFail error
}

var _ authcore.OAuthProvider = (*Provider)(nil)

// endpoints is what discovery found.
type endpoints struct {
	oauth *oauth2.Config
	prov  *oidc.Provider
	keys  atomic.Pointer[keySet] // nil: none fetched yet
}

// keySet is an ID token verifier with its own cache of the issuer's keys,
// made at a time.
type keySet struct {
	verifier *oidc.IDTokenVerifier
	made     time.Time
}

// verifier returns a verifier whose key cache is at most KeysMaxAge old.
// (go-oidc keeps a key set's keys until it meets an unknown key ID; a
// fresh key set drops the keys the issuer has removed.)
func (p *Provider) verifier(e *endpoints) *oidc.IDTokenVerifier {
	now := p.now()
	if k := e.keys.Load(); k != nil && now.Sub(k.made) < KeysMaxAge {
		return k.verifier
	}
	k := &keySet{made: now, verifier: e.prov.VerifierContext(oidc.ClientContext(context.Background(), p.client),
		&oidc.Config{ClientID: p.clientID, Now: p.now})}
	e.keys.Store(k)
	return k.verifier
}

// New returns the provider of c after discovering its endpoints, or, with
// c.Lazy, possibly before. Errors name the upstream and its issuer.
func New(ctx context.Context, c Config) (*Provider, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	p := &Provider{name: "oidc:" + c.Name, issuer: c.Issuer, clientID: c.ClientID, secret: c.ClientSecret,
		scopes: scopes(c.Scopes), client: c.HTTPClient, log: c.Logger, now: c.Now}
	if p.client == nil {
		p.client = &http.Client{Timeout: DefaultTimeout}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	_, err := p.discover(ctx)
	var mismatch *oidc.IssuerMismatchError
	switch {
	case err == nil:
	case !c.Lazy || errors.As(err, &mismatch):
		return nil, err
	default:
		p.log.WarnContext(ctx, "oidc provider unreachable; the hub starts without it and retries on use",
			slog.String("provider", p.name), slog.Any("err", err))
	}
	return p, nil
}

func (c Config) validate() error {
	switch {
	case !ValidName(c.Name):
		return fmt.Errorf("oidc: name %q: want 1 to %d of a-z, 0-9, '_', '-', '.'", c.Name, maxNameLen)
	case c.Issuer == "":
		return fmt.Errorf("oidc %s: issuer is required", c.Name)
	case c.ClientID == "":
		return fmt.Errorf("oidc %s: client ID is required", c.Name)
	case c.ClientSecret == "":
		return fmt.Errorf("oidc %s: client secret is required", c.Name)
	}
	if err := checkIssuer(c.Issuer); err != nil {
		return fmt.Errorf("oidc %s: issuer: %w", c.Name, err)
	}
	return nil
}

// scopes is s, or "profile", with "openid" first.
func scopes(s []string) []string {
	if len(s) == 0 {
		s = []string{"profile"}
	}
	out := []string{oidc.ScopeOpenID}
	for _, sc := range s {
		if sc != "" && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// discover returns the endpoints, discovering them if no call has yet.
// After a failure, calls fail at once until RetryInterval has passed.
func (p *Provider) discover(ctx context.Context) (*endpoints, error) {
	if e := p.found.Load(); e != nil {
		return e, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.found.Load(); e != nil {
		return e, nil
	}
	if p.now().Before(p.retryAt) {
		return nil, fmt.Errorf("%w (next try at %s)", p.lastFail, p.retryAt.Format(time.RFC3339))
	}
	e, err := p.discoverNow(ctx)
	if err != nil {
		p.retryAt, p.lastFail = p.now().Add(RetryInterval), err
		return nil, err
	}
	if p.lastFail != nil {
		p.log.InfoContext(ctx, "oidc provider discovered after failures", slog.String("provider", p.name))
	}
	p.found.Store(e)
	return e, nil
}

func (p *Provider) discoverNow(ctx context.Context) (*endpoints, error) {
	ctx = oidc.ClientContext(ctx, p.client)
	prov, err := oidc.NewProvider(ctx, p.issuer)
	if err != nil {
		return nil, fmt.Errorf("%s: discovery at issuer %s: %w", p.name, p.issuer, authcore.ScrubURLError(err))
	}
	var meta struct {
		JWKS        string   `json:"jwks_uri"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := prov.Claims(&meta); err != nil {
		return nil, fmt.Errorf("%s: discovery at issuer %s: %w", p.name, p.issuer, err)
	}
	ep := prov.Endpoint()
	if ep.AuthURL == "" || ep.TokenURL == "" || meta.JWKS == "" {
		return nil, fmt.Errorf("%s: discovery at issuer %s: authorization_endpoint, token_endpoint or jwks_uri missing", p.name, p.issuer)
	}
	// The client authenticates the way the provider says it takes, by
	// default HTTP Basic (OpenID Connect Discovery 1.0, section 3), and
	// never retries a code with the other way.
	ep.AuthStyle = oauth2.AuthStyleInHeader
	if len(meta.AuthMethods) > 0 && !slices.Contains(meta.AuthMethods, "client_secret_basic") &&
		slices.Contains(meta.AuthMethods, "client_secret_post") {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &endpoints{prov: prov,
		oauth: &oauth2.Config{ClientID: p.clientID, ClientSecret: p.secret, Endpoint: ep, Scopes: p.scopes}}, nil
}

// AuthorizeURL returns the provider's authorization endpoint for a code
// flow login with a's redirect URI, state, nonce and PKCE challenge. A Lazy
// provider not discovered yet tries discovery first; if that fails, the
// login cannot start: KindUpstreamUnavailable.
func (p *Provider) AuthorizeURL(ctx context.Context, a authcore.OAuthAuthorize) (authcore.OAuthStart, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	e, err := p.discover(ctx)
	if err != nil {
		p.log.WarnContext(ctx, "oidc provider unavailable; the login cannot start", slog.String("provider", p.name), slog.Any("err", err))
		return authcore.OAuthStart{}, authcore.Wrap(authcore.KindUpstreamUnavailable, err, p.name+" is unavailable at the moment; try again later")
	}
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("redirect_uri", a.RedirectURI), oidc.Nonce(a.Nonce)}
	if a.CodeChallenge != "" {
		opts = append(opts, oauth2.SetAuthURLParam("code_challenge", a.CodeChallenge),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	}
	return authcore.OAuthStart{URL: e.oauth.AuthCodeURL(a.State, opts...)}, nil
}

// claims are the ID token's claims read for the profile.
type claims struct {
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
	Nickname          string `json:"nickname"`
	Picture           string `json:"picture"`
	AuthorizedParty   string `json:"azp"`
}

// Identity exchanges e's code (with its PKCE verifier) at the token
// endpoint and returns who the verified ID token names. Errors:
// KindUnauthorized (invalid_grant: a bad, used or expired code or a wrong
// verifier; no ID token; an ID token that fails its checks),
// KindUpstreamUnavailable (the provider failed, refused the hub's
// credentials, or cannot be discovered or reached).
func (p *Provider) Identity(ctx context.Context, e authcore.OAuthExchange) (authcore.ExternalIdentity, error) {
	ep, err := p.discover(ctx)
	if err != nil {
		return authcore.ExternalIdentity{}, p.unavailable(err)
	}
	if e.Nonce == "" {
		return authcore.ExternalIdentity{}, fmt.Errorf("%s: an exchange without a nonce", p.name)
	}
	ctx = oidc.ClientContext(ctx, p.client)
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("redirect_uri", e.RedirectURI)}
	if e.CodeVerifier != "" {
		opts = append(opts, oauth2.VerifierOption(e.CodeVerifier))
	}
	tok, err := ep.oauth.Exchange(ctx, e.Code, opts...)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
				fmt.Errorf("%s: token: %w", p.name, err), p.refused())
		}
		return authcore.ExternalIdentity{}, p.unavailable(fmt.Errorf("token: %w", authcore.ScrubURLError(err)))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
			fmt.Errorf("%s: the token response has no id_token", p.name), p.refused())
	}
	idt, err := p.verifier(ep).Verify(ctx, raw)
	if err != nil {
		if keysUnavailable(err) {
			return authcore.ExternalIdentity{}, p.unavailable(fmt.Errorf("id_token: %w", err))
		}
		return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
			fmt.Errorf("%s: id_token: %w", p.name, err), p.refused())
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(e.Nonce)) != 1 {
		return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
			fmt.Errorf("%s: id_token: the nonce is not this login's", p.name), p.refused())
	}
	if idt.Subject == "" {
		return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
			fmt.Errorf("%s: id_token: no sub", p.name), p.refused())
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
			fmt.Errorf("%s: id_token claims: %w", p.name, err), p.refused())
	}
	// OpenID Connect Core 1.0, 3.1.3.7: a token for several audiences
	// names the party it was issued to, and that must be this client.
	if (len(idt.Audience) > 1 || c.AuthorizedParty != "") && c.AuthorizedParty != p.clientID {
		return authcore.ExternalIdentity{}, authcore.Wrap(authcore.KindUnauthorized,
			fmt.Errorf("%s: id_token: issued to %q, not this client", p.name, c.AuthorizedParty), p.refused())
	}
	return authcore.ExternalIdentity{
		Subject:   p.issuer + "#" + idt.Subject,
		Nickname:  firstNonEmpty(c.Name, c.PreferredUsername, c.Nickname),
		AvatarURL: httpsURL(c.Picture),
	}, nil
}

// keysUnavailable reports whether a verification failed because the
// issuer's keys could not be fetched (go-oidc's RemoteKeySet says
// "fetching keys"; a test pins this) rather than because the token is bad.
func keysUnavailable(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "fetching keys")
}

func (p *Provider) refused() string {
	return "the login at " + p.name + " was not accepted; start again"
}

func (p *Provider) unavailable(err error) error {
	return authcore.Wrap(authcore.KindUpstreamUnavailable, fmt.Errorf("%s: %w", p.name, err),
		p.name+" is unavailable; try again later")
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

// httpsURL is s when it is an https URL with a host, else "".
func httpsURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return ""
	}
	return s
}
