// Package weibo is a Weibo (api.weibo.com) OAuth 2.0 login: an
// authcore.OAuthProvider that sends the browser to Weibo's consent page,
// exchanges the code for an access token and the user's uid, and reads the
// profile (/2/users/show.json), against a configurable base URL:
// https://api.weibo.com in production, the hub's /sandbox/weibo or a
// weibotest.Server in the sandbox and in tests.
//
// Weibo's authorize and token endpoints are standard enough for
// golang.org/x/oauth2 (client credentials in the form, a JSON answer, errors
// with HTTP 400); the uid comes as an extra field of the token answer.
// Weibo has no PKCE.
//
// Errors are *authcore.Error whose Message is safe to show; Weibo's code
// and text go into the wrapped cause and the log, never the access token
// or the app secret.
package weibo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/loginhub/loginhub/authcore"
)

const (
	// DefaultBaseURL is Weibo's API host.
	DefaultBaseURL = "https://api.weibo.com"
	// DefaultTimeout bounds each request of a Provider whose
	// Config.HTTPClient is nil.
	DefaultTimeout = 5 * time.Second

	maxCodeLength    = 512 // Weibo's codes are 32 characters
	maxResponseBytes = 1 << 20
)

// Weibo's error codes this client tells apart.
const (
	errInvalidGrant       = 21325 // the code is unknown, used, expired or another app's
	errExpiredToken       = 21327
	errInvalidAccessToken = 21332
	errAuthFailed         = 21301 // an API call whose token Weibo does not accept
)

// Client-visible messages.
const (
	msgUnavailable = "Weibo login is unavailable right now, please try again later"
	msgBadCode     = "the Weibo login was not accepted (used or expired); please start again"
)

// Config configures a Provider.
type Config struct {
	// BaseURL is Weibo's API base: "" means DefaultBaseURL; the sandbox
	// passes "http://host/sandbox/weibo". A trailing slash is ignored.
	BaseURL string
	// ClientID and ClientSecret are the app's App Key and App Secret.
	// Required.
	ClientID     string
	ClientSecret string
	// HTTPClient sends the requests. Nil means a client of its own whose
	// Timeout is DefaultTimeout; one given here should have a Timeout.
	HTTPClient *http.Client
	// Logger receives Weibo's refusals and failures, with Weibo's error
	// code and text. Nil discards them.
	Logger *slog.Logger
}

// Validate reports a KindInvalid error if c cannot make a working
// Provider.
func (c Config) Validate() error {
	if c.BaseURL != "" && !authcore.ValidBaseURL(c.BaseURL) {
		return authcore.Errorf(authcore.KindInvalid, "weibo: BaseURL %q is not an http(s) URL without query", c.BaseURL)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		return authcore.Errorf(authcore.KindInvalid, "weibo: ClientID and ClientSecret are required")
	}
	return nil
}

// Provider is Weibo login for one app. It is safe for concurrent use.
type Provider struct {
	base   string
	oauth  oauth2.Config // without RedirectURL: each call sets its own
	http   *http.Client
	report authcore.ProviderReport
}

var _ authcore.OAuthProvider = (*Provider)(nil)

// New returns a Provider for cfg, or cfg.Validate's error.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{base: strings.TrimRight(cfg.BaseURL, "/"), http: cfg.HTTPClient,
		report: authcore.ProviderReport{Name: "weibo", Log: cfg.Logger, Unavailable: msgUnavailable, Refused: msgBadCode}}
	if p.base == "" {
		p.base = DefaultBaseURL
	}
	if p.http == nil {
		p.http = &http.Client{Timeout: DefaultTimeout}
	}
	p.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint: oauth2.Endpoint{
			AuthURL:  p.base + "/oauth2/authorize",
			TokenURL: p.base + "/oauth2/access_token",
			// Weibo reads client_id and client_secret from the form only.
			AuthStyle: oauth2.AuthStyleInParams,
		},
	}
	return p, nil
}

// AuthorizeURL is Weibo's consent page (/oauth2/authorize) with client_id,
// redirect_uri, response_type=code and state. Weibo has no PKCE or nonce:
// a.CodeChallenge and a.Nonce are left out.
func (p *Provider) AuthorizeURL(_ context.Context, a authcore.OAuthAuthorize) (authcore.OAuthStart, error) {
	c := p.oauth
	c.RedirectURL = a.RedirectURI
	return authcore.OAuthStart{URL: c.AuthCodeURL(a.State)}, nil
}

// Identity exchanges e.Code for an access token and the user's uid
// (POST /oauth2/access_token) and reads the profile
// (/2/users/show.json). The Subject is the uid; UnionID stays empty;
// Nickname is the screen_name and AvatarURL avatar_large (else
// profile_image_url) over https, or "".
//
// Nothing is retried: Weibo accepts a code once. Errors: KindUnauthorized
// (21325, a code Weibo does not know, has seen already or let expire;
// 21327, 21332, 21301, a token Weibo then refuses), KindUpstreamUnavailable
// (anything else, including Weibo refusing the app's own configuration, a
// timeout or ctx ending). Safe for concurrent use.
func (p *Provider) Identity(ctx context.Context, e authcore.OAuthExchange) (authcore.ExternalIdentity, error) {
	if e.Code == "" || len(e.Code) > maxCodeLength {
		return authcore.ExternalIdentity{}, authcore.Errorf(authcore.KindUnauthorized, "%s", msgBadCode)
	}
	token, uid, err := p.token(ctx, e)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	u, err := p.user(ctx, token, uid)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	id := authcore.ExternalIdentity{Subject: uid, Nickname: u.ScreenName, AvatarURL: authcore.ProviderAvatarURL(u.AvatarLarge)}
	if id.AvatarURL == "" {
		id.AvatarURL = authcore.ProviderAvatarURL(u.ProfileImageURL)
	}
	return id, nil
}

// apiError is Weibo's error answer. On the OAuth paths "error" is a name
// (invalid_grant) and error_description a sentence; on the /2 API "error"
// is the sentence.
type apiError struct {
	Error       string `json:"error"`
	Code        int    `json:"error_code"`
	Description string `json:"error_description"`
}

func (e apiError) text() string {
	if e.Description == "" {
		return e.Error
	}
	return e.Error + ": " + e.Description
}

// token exchanges the code with x/oauth2 and returns the access token and
// the uid the answer carries.
func (p *Provider) token(ctx context.Context, e authcore.OAuthExchange) (token, uid string, err error) {
	const op = "access_token"
	c := p.oauth
	c.RedirectURL = e.RedirectURI
	tok, err := c.Exchange(context.WithValue(ctx, oauth2.HTTPClient, p.http), e.Code)
	if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
		// Weibo's error JSON, with HTTP 400; re.Error() would quote the
		// whole answer, so only the parsed code and text are kept.
		var ae apiError
		if json.Unmarshal(re.Body, &ae) != nil || ae.Code == 0 {
			return "", "", p.report.Failed(ctx, op, fmt.Errorf("HTTP %d without Weibo's error JSON", re.Response.StatusCode))
		}
		return "", "", p.apiError(ctx, op, ae)
	}
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			return "", "", p.report.Failed(ctx, op, authcore.ScrubURLError(ue))
		}
		// x/oauth2's own: an answer it cannot parse, or without
		// access_token. Neither quotes the answer.
		return "", "", p.report.Garbled(ctx, op, err)
	}
	switch v := tok.Extra("uid").(type) {
	case string:
		uid = v
	case float64: // a number, as /oauth2/get_token_info sends it
		uid = strconv.FormatFloat(v, 'f', -1, 64)
	}
	if uid == "" {
		return "", "", p.report.Garbled(ctx, op, errors.New("answer without uid"))
	}
	return tok.AccessToken, uid, nil
}

type user struct {
	IDStr           string `json:"idstr"`
	ScreenName      string `json:"screen_name"`
	AvatarLarge     string `json:"avatar_large"`      // 180×180
	ProfileImageURL string `json:"profile_image_url"` // 50×50
}

// user reads uid's profile: GET /2/users/show.json, errors with HTTP 4xx.
func (p *Provider) user(ctx context.Context, token, uid string) (user, error) {
	const op = "users/show"
	q := url.Values{"access_token": {token}, "uid": {uid}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/2/users/show.json?"+q.Encode(), nil)
	if err != nil {
		return user{}, p.report.Failed(ctx, op, authcore.ScrubURLError(err))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return user{}, p.report.Failed(ctx, op, authcore.ScrubURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return user{}, p.report.Failed(ctx, op, fmt.Errorf("reading the answer: %w", authcore.ScrubURLError(err)))
	}
	if resp.StatusCode != http.StatusOK {
		var ae apiError
		if json.Unmarshal(body, &ae) != nil || ae.Code == 0 {
			return user{}, p.report.Failed(ctx, op, fmt.Errorf("HTTP %d from %s", resp.StatusCode, authcore.URLWithoutQuery(req.URL)))
		}
		return user{}, p.apiError(ctx, op, ae)
	}
	var u user
	switch err := json.Unmarshal(body, &u); {
	case err != nil:
		return user{}, p.report.Garbled(ctx, op, err)
	case u.IDStr != "" && u.IDStr != uid:
		return user{}, p.report.Garbled(ctx, op, fmt.Errorf("asked for uid %s, got %s", uid, u.IDStr))
	}
	return u, nil
}

// apiError logs an error Weibo answered and returns its domain error: a
// bad code or token is the user's to start again, anything else the hub's
// or Weibo's problem.
func (p *Provider) apiError(ctx context.Context, op string, ae apiError) error {
	cause := fmt.Errorf("weibo %s: error_code %d: %s", op, ae.Code, ae.text())
	attrs := []slog.Attr{slog.String("op", op), slog.Int("error_code", ae.Code), slog.String("error", ae.text())}
	switch ae.Code {
	case errInvalidGrant, errExpiredToken, errInvalidAccessToken, errAuthFailed:
		return p.report.LoginRefused(ctx, cause, attrs...)
	}
	if ae.Code >= 21321 && ae.Code <= 21329 {
		// 21321 app not approved, 21322 redirect_uri mismatch, 21323
		// missing client credentials or parameters, 21324 wrong client,
		// 21328/21329 grant or response type: no Weibo login works until
		// an operator fixes the configuration.
		return p.report.APIError(ctx, cause, "check the Weibo App Key, App Secret and registered callback", attrs...)
	}
	return p.report.APIError(ctx, cause, "", attrs...)
}
