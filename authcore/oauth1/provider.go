package oauth1

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// DefaultTimeout bounds each request of a Provider whose
// ProviderConfig.HTTPClient is nil.
const DefaultTimeout = 5 * time.Second

// ProviderConfig is a platform that logs people in with OAuth 1.0a's
// three legs (RFC 5849 section 2): temporary credentials, the user's
// authorization, token credentials; then who logged in.
type ProviderConfig struct {
	TemporaryCredentialsURL string // POST, signed with the consumer only, with oauth_callback (section 2.1)
	AuthorizeURL            string // the consent page the browser goes to with oauth_token (section 2.2)
	TokenURL                string // POST, signed with the temporary credentials and oauth_verifier (section 2.3)
	// IdentityURL, if set, is read (GET, signed with the token
	// credentials) for a JSON object naming the user; else the token
	// credentials' answer names the user (as Twitter's user_id did).
	IdentityURL string
	// The fields of that JSON object or answer: the user's stable id
	// (required), a display name and an avatar URL (optional).
	SubjectField, NameField, AvatarField string
	ConsumerKey, ConsumerSecret          string
	HTTPClient                           *http.Client // nil: a client with DefaultTimeout
	Logger                               *slog.Logger // nil: discard
	Now                                  func() time.Time
}

// Provider is an OAuth 1.0a login: an authcore.OAuthProvider. The hub
// keeps the temporary credentials' secret with the login (the core seals
// it) and sends oauth_token and oauth_verifier from the callback back as
// the exchange's Token and Code.
type Provider struct {
	cfg    ProviderConfig
	signer Signer
	http   *http.Client
	log    *slog.Logger
}

var _ authcore.OAuthProvider = (*Provider)(nil)

// maxAnswer bounds what is read of the platform's answers.
const maxAnswer = 1 << 20

// NewProvider checks cfg and returns a Provider.
func NewProvider(cfg ProviderConfig) (*Provider, error) {
	for _, u := range []struct{ name, v string }{{"TemporaryCredentialsURL", cfg.TemporaryCredentialsURL},
		{"AuthorizeURL", cfg.AuthorizeURL}, {"TokenURL", cfg.TokenURL}, {"IdentityURL", cfg.IdentityURL}} {
		if !httpURL(u.v) && (u.v != "" || u.name != "IdentityURL") {
			return nil, fmt.Errorf("oauth1: %s %q is not an http(s) URL", u.name, u.v)
		}
	}
	if cfg.ConsumerKey == "" || cfg.ConsumerSecret == "" || cfg.SubjectField == "" {
		return nil, errors.New("oauth1: ConsumerKey, ConsumerSecret and SubjectField are required")
	}
	p := &Provider{cfg: cfg, signer: Signer{ConsumerKey: cfg.ConsumerKey, ConsumerSecret: cfg.ConsumerSecret, Now: cfg.Now},
		http: cfg.HTTPClient, log: cfg.Logger}
	if p.http == nil {
		p.http = &http.Client{Timeout: DefaultTimeout}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	return p, nil
}

// AuthorizeURL asks for temporary credentials whose callback is the hub's
// redirect URI with the login's state (OAuth 1.0a has no state parameter
// of its own), and returns the consent page for them; the carry is the
// temporary token and its secret.
func (p *Provider) AuthorizeURL(ctx context.Context, a authcore.OAuthAuthorize) (authcore.OAuthStart, error) {
	cb, err := url.Parse(a.RedirectURI)
	if err != nil {
		return authcore.OAuthStart{}, fmt.Errorf("oauth1: redirect URI: %w", err)
	}
	q := cb.Query()
	q.Set("state", a.State)
	cb.RawQuery = q.Encode()
	form, err := p.post(ctx, p.cfg.TemporaryCredentialsURL, "", "", url.Values{"oauth_callback": {cb.String()}})
	if err != nil {
		return authcore.OAuthStart{}, err
	}
	token, secret := form.Get("oauth_token"), form.Get("oauth_token_secret")
	if token == "" || secret == "" || form.Get("oauth_callback_confirmed") != "true" {
		p.log.ErrorContext(ctx, "oauth1 temporary credentials: an answer without token, secret or callback confirmation")
		return authcore.OAuthStart{}, errUnavailable
	}
	u, err := url.Parse(p.cfg.AuthorizeURL)
	if err != nil {
		return authcore.OAuthStart{}, fmt.Errorf("oauth1: authorize URL: %w", err)
	}
	aq := u.Query()
	aq.Set("oauth_token", token)
	u.RawQuery = aq.Encode()
	return authcore.OAuthStart{URL: u.String(), Carry: token + "\n" + secret}, nil
}

var errUnavailable = authcore.Errorf(authcore.KindUpstreamUnavailable, "the login provider is unavailable at the moment; try again later")

// Identity checks that the callback's oauth_token is the login's own,
// exchanges the verifier for token credentials and reads who logged in.
// Errors: KindUnauthorized (another login's token, a refused verifier),
// KindUpstreamUnavailable.
func (p *Provider) Identity(ctx context.Context, e authcore.OAuthExchange) (authcore.ExternalIdentity, error) {
	token, secret, ok := strings.Cut(e.Carry, "\n")
	if !ok || e.Token == "" || subtle.ConstantTimeCompare([]byte(e.Token), []byte(token)) != 1 || e.Code == "" {
		return authcore.ExternalIdentity{}, authcore.Errorf(authcore.KindUnauthorized, "this login does not belong to the provider's answer; start again")
	}
	creds, err := p.post(ctx, p.cfg.TokenURL, token, secret, url.Values{"oauth_verifier": {e.Code}})
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	fields := map[string]any{}
	for k := range creds {
		fields[k] = creds.Get(k)
	}
	if p.cfg.IdentityURL != "" {
		if fields, err = p.identity(ctx, creds.Get("oauth_token"), creds.Get("oauth_token_secret")); err != nil {
			return authcore.ExternalIdentity{}, err
		}
	}
	ext := authcore.ExternalIdentity{Subject: field(fields, p.cfg.SubjectField), Nickname: field(fields, p.cfg.NameField),
		AvatarURL: authcore.ProviderAvatarURL(field(fields, p.cfg.AvatarField))}
	if ext.Subject == "" {
		p.log.ErrorContext(ctx, "oauth1: the answer names no user", slog.String("field", p.cfg.SubjectField))
		return authcore.ExternalIdentity{}, errUnavailable
	}
	return ext, nil
}

// field reads a string or number field; "" when it is absent or another
// type, or when name is "".
func field(m map[string]any, name string) string {
	switch v := m[name].(type) {
	case string:
		return v
	case float64:
		return strings.TrimSuffix(fmt.Sprintf("%.0f", v), ".0")
	}
	return ""
}

// post sends a signed form POST and returns the form it answers.
// A 401 is the platform refusing the credentials or verifier.
func (p *Provider) post(ctx context.Context, endpoint, token, secret string, extra url.Values) (url.Values, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("oauth1: %w", err)
	}
	body, err := p.do(req, token, secret, extra)
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		p.log.ErrorContext(ctx, "oauth1: an answer that is not a form", slog.String("url", endpoint))
		return nil, errUnavailable
	}
	return form, nil
}

// identity reads IdentityURL with the token credentials.
func (p *Provider) identity(ctx context.Context, token, secret string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.IdentityURL, nil)
	if err != nil {
		return nil, fmt.Errorf("oauth1: %w", err)
	}
	body, err := p.do(req, token, secret, nil)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		p.log.ErrorContext(ctx, "oauth1: an identity that is not a JSON object", slog.String("url", p.cfg.IdentityURL))
		return nil, errUnavailable
	}
	return m, nil
}

// do signs and sends req and returns a 200 answer's body.
func (p *Provider) do(req *http.Request, token, secret string, extra url.Values) ([]byte, error) {
	if err := p.signer.Sign(req, token, secret, extra); err != nil {
		return nil, fmt.Errorf("oauth1: sign: %w", err)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		p.log.WarnContext(req.Context(), "oauth1: request failed", slog.String("url", req.URL.Redacted()), slog.Any("err", authcore.ScrubURLError(err)))
		return nil, errUnavailable
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, errUnavailable
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case resp.StatusCode == http.StatusUnauthorized && token != "":
		p.log.InfoContext(req.Context(), "oauth1: refused", slog.String("url", req.URL.Redacted()), slog.Int("status", resp.StatusCode))
		return nil, authcore.Errorf(authcore.KindUnauthorized, "the provider refused this login; start again")
	}
	p.log.ErrorContext(req.Context(), "oauth1: unexpected answer", slog.String("url", req.URL.Redacted()), slog.Int("status", resp.StatusCode),
		slog.String("body", truncate(string(body), 200)))
	return nil, errUnavailable
}

// httpURL reports whether s is an http(s) URL with a host, without user
// or fragment (a query is allowed: it is signed with the request).
func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && u.User == nil && u.Fragment == ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
