// Package qq is a QQ Connect (QQ互联, graph.qq.com) login: an
// authcore.OAuthProvider that sends the browser to QQ's consent page,
// exchanges the code for an access token, reads the user's openid and
// unionid (/oauth2.0/me) and profile (/user/get_user_info), against a
// configurable base URL: https://graph.qq.com in production, the hub's
// /sandbox/qq or a qqtest.Server in the sandbox and in tests.
//
// QQ's endpoints are not standard OAuth 2.0 in their answers: the token
// comes urlencoded by default (JSON with fmt=json, expires_in a string
// there), /oauth2.0/me answers JSONP, and errors come with HTTP 200 and a
// numeric "error". So the exchange is written here by hand rather than
// with golang.org/x/oauth2, which parses a text/html answer as JSON and
// fails to decode a numeric "error" (losing the code that tells a used
// code from a wrong app key). QQ has no PKCE.
//
// Errors are *authcore.Error whose Message is safe to show; QQ's code and
// text go into the wrapped cause and the log, never the access token or
// the app key.
package qq

import (
	"bytes"
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

	"github.com/loginhub/loginhub/authcore"
)

const (
	// DefaultBaseURL is QQ Connect's API host.
	DefaultBaseURL = "https://graph.qq.com"
	// DefaultTimeout bounds each request of a Provider whose
	// Config.HTTPClient is nil.
	DefaultTimeout = 5 * time.Second

	maxCodeLength    = 512 // QQ's codes are 32 characters
	maxResponseBytes = 1 << 20
)

// QQ Connect's error codes this client tells apart.
const (
	errTokenIllegal = 100013 // access token is illegal
	errTokenExpired = 100014
	errTokenRevoked = 100015
	errTokenCheck   = 100016 // access token check failed
	errCodeExchange = 100019 // code unknown, expired or another app's
	errCodeReused   = 100020
	errNoUnionID    = 100048 // the app lacks the unionid permission
)

// Client-visible messages.
const (
	msgUnavailable = "QQ login is unavailable right now, please try again later"
	msgBadCode     = "the QQ login was not accepted (used or expired); please start again"
)

// Config configures a Provider.
type Config struct {
	// BaseURL is QQ Connect's base: "" means DefaultBaseURL; the sandbox
	// passes "http://host/sandbox/qq". A trailing slash is ignored.
	BaseURL string
	// AppID and AppKey are the website app's credentials (APP ID, the
	// client_id; APP Key, the client_secret). Required.
	AppID  string
	AppKey string
	// HTTPClient sends the requests. Nil means a client of its own whose
	// Timeout is DefaultTimeout; one given here should have a Timeout.
	HTTPClient *http.Client
	// Logger receives QQ's refusals and failures, with QQ's error code and
	// text. Nil discards them.
	Logger *slog.Logger
}

// Validate reports a KindInvalid error if c cannot make a working
// Provider.
func (c Config) Validate() error {
	if c.BaseURL != "" && !authcore.ValidBaseURL(c.BaseURL) {
		return authcore.Errorf(authcore.KindInvalid, "qq: BaseURL %q is not an http(s) URL without query", c.BaseURL)
	}
	if c.AppID == "" || c.AppKey == "" {
		return authcore.Errorf(authcore.KindInvalid, "qq: AppID and AppKey are required")
	}
	return nil
}

// Provider is QQ Connect login for one website app. It is safe for
// concurrent use.
type Provider struct {
	base   string
	appID  string
	appKey string
	http   *http.Client
	report authcore.ProviderReport
}

var _ authcore.OAuthProvider = (*Provider)(nil)

// New returns a Provider for cfg, or cfg.Validate's error.
func New(cfg Config) (*Provider, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Provider{
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		appID:  cfg.AppID,
		appKey: cfg.AppKey,
		http:   cfg.HTTPClient,
		report: authcore.ProviderReport{Name: "qq", Log: cfg.Logger, Unavailable: msgUnavailable, Refused: msgBadCode},
	}
	if p.base == "" {
		p.base = DefaultBaseURL
	}
	if p.http == nil {
		p.http = &http.Client{Timeout: DefaultTimeout}
	}
	return p, nil
}

// AuthorizeURL is QQ's login and consent page (/oauth2.0/authorize) with
// scope get_user_info. QQ has no PKCE or nonce: a.CodeChallenge and
// a.Nonce are left out.
func (p *Provider) AuthorizeURL(_ context.Context, a authcore.OAuthAuthorize) (authcore.OAuthStart, error) {
	q := url.Values{
		"response_type": {"code"},
		"client_id":     {p.appID},
		"redirect_uri":  {a.RedirectURI},
		"state":         {a.State},
		"scope":         {"get_user_info"},
	}
	return authcore.OAuthStart{URL: p.base + "/oauth2.0/authorize?" + q.Encode()}, nil
}

// Identity exchanges e.Code for an access token (/oauth2.0/token), reads
// the user's openid and unionid (/oauth2.0/me?unionid=1; asked again
// without unionid when QQ answers 100048, the app lacks that permission)
// and profile (/user/get_user_info). The Subject is the unionid, or the
// openid for an app without the unionid permission; UnionID stays empty
// (QQ's unionid is not WeChat's); AvatarURL is QQ's 100×100 avatar (else
// 40×40) over https, or "".
//
// Nothing is retried: QQ accepts a code once. Errors: KindUnauthorized (a
// code QQ does not know, has seen already or let expire: 100019, 100020;
// a token QQ then refuses: 100013-100016), KindUpstreamUnavailable
// (anything else, including QQ refusing the app's own configuration, a
// timeout or ctx ending). Safe for concurrent use.
func (p *Provider) Identity(ctx context.Context, e authcore.OAuthExchange) (authcore.ExternalIdentity, error) {
	if e.Code == "" || len(e.Code) > maxCodeLength {
		return authcore.ExternalIdentity{}, authcore.Errorf(authcore.KindUnauthorized, "%s", msgBadCode)
	}
	token, err := p.token(ctx, e)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	me, err := p.me(ctx, token)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	info, err := p.userInfo(ctx, token, me.OpenID)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	id := authcore.ExternalIdentity{
		Subject:   me.UnionID,
		Nickname:  info.Nickname,
		AvatarURL: authcore.ProviderAvatarURL(info.FigureURLQQ2),
	}
	if id.Subject == "" {
		id.Subject = me.OpenID
	}
	if id.AvatarURL == "" {
		id.AvatarURL = authcore.ProviderAvatarURL(info.FigureURLQQ1)
	}
	return id, nil
}

// status is QQ's error pair on /oauth2.0: a number in "error" (json.Number
// takes a numeric string too) and its text.
type status struct {
	Error       json.Number `json:"error"`
	Description string      `json:"error_description"`
}

func (s status) code() int {
	n, _ := strconv.Atoi(s.Error.String())
	return n
}

// token exchanges the code: GET /oauth2.0/token as QQ documents it, asking
// for fmt=json but reading the urlencoded default as well.
func (p *Provider) token(ctx context.Context, e authcore.OAuthExchange) (string, error) {
	const op = "token"
	q := url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {p.appID},
		"client_secret": {p.appKey},
		"code":          {e.Code},
		"redirect_uri":  {e.RedirectURI},
		"fmt":           {"json"},
	}
	body, err := p.get(ctx, op, "/oauth2.0/token?"+q.Encode())
	if err != nil {
		return "", err
	}
	var resp struct {
		status
		AccessToken string `json:"access_token"`
		// expires_in ("7776000", a string in JSON) is not read: the token
		// is used at once and dropped.
	}
	if obj, ok := jsonObject(body); ok {
		if err := json.Unmarshal(obj, &resp); err != nil {
			return "", p.report.Garbled(ctx, op, err)
		}
	} else {
		// access_token=..&expires_in=7776000&refresh_token=..
		v, err := url.ParseQuery(string(bytes.TrimSpace(body)))
		if err != nil {
			return "", p.report.Garbled(ctx, op, errors.New("answer is neither JSON nor urlencoded"))
		}
		resp.AccessToken = v.Get("access_token")
	}
	if resp.Error != "" {
		return "", p.apiError(ctx, op, resp.code(), resp.Description)
	}
	if resp.AccessToken == "" {
		return "", p.report.Garbled(ctx, op, errors.New("answer without access_token"))
	}
	return resp.AccessToken, nil
}

type me struct {
	ClientID string `json:"client_id"`
	OpenID   string `json:"openid"`
	UnionID  string `json:"unionid"`
}

// me reads the token's openid and unionid, or only the openid when the
// app lacks the unionid permission.
func (p *Provider) me(ctx context.Context, token string) (me, error) {
	const op = "me"
	ask := func(unionID bool) (me, status, error) {
		q := url.Values{"access_token": {token}, "fmt": {"json"}}
		if unionID {
			q.Set("unionid", "1")
		}
		body, err := p.get(ctx, op, "/oauth2.0/me?"+q.Encode())
		if err != nil {
			return me{}, status{}, err
		}
		var resp struct {
			status
			me
		}
		obj, _ := jsonObject(body)
		if err := json.Unmarshal(obj, &resp); err != nil {
			return me{}, status{}, p.report.Garbled(ctx, op, err)
		}
		return resp.me, resp.status, nil
	}
	m, st, err := ask(true)
	if err == nil && st.code() == errNoUnionID {
		p.report.Logger().LogAttrs(ctx, slog.LevelInfo, "qq: the app lacks the unionid permission; users are keyed by openid",
			slog.String("op", op), slog.Int("error", errNoUnionID), slog.String("error_description", st.Description))
		m, st, err = ask(false)
	}
	switch {
	case err != nil:
		return me{}, err
	case st.Error != "":
		return me{}, p.apiError(ctx, op, st.code(), st.Description)
	case m.OpenID == "":
		return me{}, p.report.Garbled(ctx, op, errors.New("answer without openid"))
	case m.ClientID != "" && m.ClientID != p.appID:
		return me{}, p.report.Garbled(ctx, op, fmt.Errorf("the token is app %s's", m.ClientID))
	}
	return m, nil
}

type userInfo struct {
	Nickname     string `json:"nickname"`
	FigureURLQQ1 string `json:"figureurl_qq_1"` // 40×40
	FigureURLQQ2 string `json:"figureurl_qq_2"` // 100×100, not every user has one
}

// userInfo reads the profile. Its errors are "ret" (non-zero) and "msg".
func (p *Provider) userInfo(ctx context.Context, token, openID string) (userInfo, error) {
	const op = "get_user_info"
	q := url.Values{"access_token": {token}, "oauth_consumer_key": {p.appID}, "openid": {openID}}
	body, err := p.get(ctx, op, "/user/get_user_info?"+q.Encode())
	if err != nil {
		return userInfo{}, err
	}
	var resp struct {
		Ret *int   `json:"ret"`
		Msg string `json:"msg"`
		userInfo
	}
	if err := json.Unmarshal(body, &resp); err != nil {
		return userInfo{}, p.report.Garbled(ctx, op, err)
	}
	switch {
	case resp.Ret == nil:
		return userInfo{}, p.report.Garbled(ctx, op, errors.New("answer without ret"))
	case *resp.Ret != 0:
		return userInfo{}, p.apiError(ctx, op, *resp.Ret, resp.Msg)
	}
	return resp.userInfo, nil
}

// jsonObject returns the JSON object in body, unwrapped from QQ's JSONP
// "callback( {...} );", and whether body is one.
func jsonObject(body []byte) ([]byte, bool) {
	b := bytes.TrimSpace(body)
	if rest, ok := bytes.CutPrefix(b, []byte("callback(")); ok {
		b = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(rest), []byte(";")))
		b = bytes.TrimSpace(bytes.TrimSuffix(b, []byte(")")))
	}
	return b, bytes.HasPrefix(b, []byte("{"))
}

// get sends one GET of path (with its query) and returns the body of a 200
// answer; QQ answers its errors with 200 too. Failures are logged and
// returned as KindUpstreamUnavailable, without the query (it holds the
// token or the app key).
func (p *Provider) get(ctx context.Context, op, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return nil, p.report.Failed(ctx, op, authcore.ScrubURLError(err))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, p.report.Failed(ctx, op, authcore.ScrubURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	switch {
	case err != nil:
		return nil, p.report.Failed(ctx, op, fmt.Errorf("reading the answer: %w", authcore.ScrubURLError(err)))
	case resp.StatusCode != http.StatusOK:
		return nil, p.report.Failed(ctx, op, fmt.Errorf("HTTP %d from %s", resp.StatusCode, authcore.URLWithoutQuery(req.URL)))
	}
	return body, nil
}

// apiError logs an error QQ answered and returns its domain error: a bad
// code or token is the user's to start again, anything else the hub's or
// QQ's problem.
func (p *Provider) apiError(ctx context.Context, op string, code int, text string) error {
	cause := fmt.Errorf("qq %s: error %d: %s", op, code, text)
	attrs := []slog.Attr{slog.String("op", op), slog.Int("error", code), slog.String("error_description", text)}
	switch code {
	case errCodeExchange, errCodeReused, errTokenIllegal, errTokenExpired, errTokenRevoked, errTokenCheck:
		return p.report.LoginRefused(ctx, cause, attrs...)
	}
	if code >= 100000 && code <= 100012 {
		// Missing or wrong parameters, appid, app key or redirect_uri:
		// no QQ login works until an operator fixes the configuration.
		return p.report.APIError(ctx, cause, "check the QQ app id, app key and registered callback", attrs...)
	}
	return p.report.APIError(ctx, cause, "", attrs...)
}
