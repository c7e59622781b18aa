// Package wechatweb is WeChat's website login (an Open Platform website
// app, 网站应用微信登录): an authcore.OAuthProvider that sends the browser
// to open.weixin.qq.com's QR code page (qrconnect), exchanges the code at
// api.weixin.qq.com (/sns/oauth2/access_token) and reads the profile
// (/sns/userinfo). Both hosts are configurable: the hub's
// /sandbox/wechat_web or a wechatwebtest.Server in the sandbox and in
// tests.
//
// The user is keyed by unionid, which is the same person's across the
// website app, the mini-program and the official account bound to one
// Open Platform account, so a website login finds the mini-program's user.
//
// The exchange is written by hand: WeChat names its parameters appid and
// secret, not client_id and client_secret, sends the secret in the query
// of a GET and answers errors with HTTP 200 and an errcode, none of which
// golang.org/x/oauth2 speaks. WeChat has no PKCE.
//
// Errors are *authcore.Error whose Message is safe to show; WeChat's
// errcode and errmsg go into the wrapped cause and the log, never the
// access token or the app secret.
package wechatweb

import (
	"context"
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

const (
	// DefaultOpenBaseURL is the host of WeChat's authorize page.
	DefaultOpenBaseURL = "https://open.weixin.qq.com"
	// DefaultAPIBaseURL is the host of WeChat's sns API.
	DefaultAPIBaseURL = "https://api.weixin.qq.com"
	// DefaultTimeout bounds each request of a Provider whose
	// Config.HTTPClient is nil.
	DefaultTimeout = 5 * time.Second
	// MaxStateLength is the longest state WeChat takes back.
	MaxStateLength = 128

	maxCodeLength    = 512 // WeChat's codes are 32 characters
	maxResponseBytes = 1 << 20
)

// WeChat's errcodes that mean a bad code: the user starts again.
const (
	errInvalidCode = 40029
	errCodeUsed    = 40163
	errCodeExpired = 42003
)

// Client-visible messages.
const (
	msgUnavailable = "WeChat login is unavailable right now, please try again later"
	msgBadCode     = "the WeChat login was not accepted (used or expired); please start again"
)

// Config configures a Provider.
type Config struct {
	// OpenBaseURL is the base of the authorize page: "" means
	// DefaultOpenBaseURL. APIBaseURL is the base of the sns API: "" means
	// DefaultAPIBaseURL. The sandbox passes "http://host/sandbox/wechat_web"
	// for both. A trailing slash is ignored.
	OpenBaseURL string
	APIBaseURL  string
	// AppID and Secret are the website app's credentials (AppID,
	// AppSecret), not the mini-program's. Required.
	AppID  string
	Secret string
	// HTTPClient sends the requests. Nil means a client of its own whose
	// Timeout is DefaultTimeout; one given here should have a Timeout.
	HTTPClient *http.Client
	// Logger receives WeChat's refusals and failures, with its errcode and
	// errmsg. Nil discards them.
	Logger *slog.Logger
}

// Validate reports a KindInvalid error if c cannot make a working
// Provider.
func (c Config) Validate() error {
	for _, b := range []struct{ name, v string }{{"OpenBaseURL", c.OpenBaseURL}, {"APIBaseURL", c.APIBaseURL}} {
		if b.v != "" && !authcore.ValidBaseURL(b.v) {
			return authcore.Errorf(authcore.KindInvalid, "wechatweb: %s %q is not an http(s) URL without query", b.name, b.v)
		}
	}
	if c.AppID == "" || c.Secret == "" {
		return authcore.Errorf(authcore.KindInvalid, "wechatweb: AppID and Secret are required")
	}
	return nil
}

// Provider is WeChat website login for one website app. It is safe for
// concurrent use.
type Provider struct {
	open   string
	api    string
	appID  string
	secret string
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
		open:   strings.TrimRight(cfg.OpenBaseURL, "/"),
		api:    strings.TrimRight(cfg.APIBaseURL, "/"),
		appID:  cfg.AppID,
		secret: cfg.Secret,
		http:   cfg.HTTPClient,
		report: authcore.ProviderReport{Name: "wechatweb", Log: cfg.Logger, Unavailable: msgUnavailable, Refused: msgBadCode},
	}
	if p.open == "" {
		p.open = DefaultOpenBaseURL
	}
	if p.api == "" {
		p.api = DefaultAPIBaseURL
	}
	if p.http == nil {
		p.http = &http.Client{Timeout: DefaultTimeout}
	}
	return p, nil
}

// AuthorizeURL is WeChat's QR code login page,
// /connect/qrconnect?appid&redirect_uri&response_type=code&scope=snsapi_login&state#wechat_redirect
// (WeChat requires the fragment, and takes a state of at most
// MaxStateLength bytes: the core's are 43). WeChat has no PKCE or nonce:
// a.CodeChallenge and a.Nonce are left out.
func (p *Provider) AuthorizeURL(_ context.Context, a authcore.OAuthAuthorize) (authcore.OAuthStart, error) {
	// url.Values sorts its keys, which is also the order WeChat documents.
	q := url.Values{
		"appid":         {p.appID},
		"redirect_uri":  {a.RedirectURI},
		"response_type": {"code"},
		"scope":         {"snsapi_login"},
		"state":         {a.State},
	}
	return authcore.OAuthStart{URL: p.open + "/connect/qrconnect?" + q.Encode() + "#wechat_redirect"}, nil
}

// Identity exchanges e.Code for an access token, the openid and the
// unionid (/sns/oauth2/access_token) and reads the profile
// (/sns/userinfo). The Subject is the unionid, or the openid when the app
// is bound to no Open Platform account; UnionID is the unionid, so that a
// mini-program login of the same person finds the same user; AvatarURL is
// headimgurl over https, or "".
//
// Nothing is retried: WeChat accepts a code once. Errors: KindUnauthorized
// (40029 invalid code, 40163 code used, 42003 code expired),
// KindUpstreamUnavailable (anything else, including WeChat refusing the
// app's own credentials, "system busy" (-1), a timeout or ctx ending).
// Safe for concurrent use.
func (p *Provider) Identity(ctx context.Context, e authcore.OAuthExchange) (authcore.ExternalIdentity, error) {
	if e.Code == "" || len(e.Code) > maxCodeLength {
		return authcore.ExternalIdentity{}, authcore.Errorf(authcore.KindUnauthorized, "%s", msgBadCode)
	}
	tok, err := p.token(ctx, e.Code)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	info, err := p.userInfo(ctx, tok.AccessToken, tok.OpenID)
	if err != nil {
		return authcore.ExternalIdentity{}, err
	}
	unionID := tok.UnionID
	if unionID == "" {
		unionID = info.UnionID
	}
	id := authcore.ExternalIdentity{Subject: unionID, UnionID: unionID, Nickname: info.Nickname,
		AvatarURL: authcore.ProviderAvatarURL(info.HeadImgURL)}
	if id.Subject == "" {
		id.Subject = tok.OpenID
	}
	return id, nil
}

// apiStatus is the errcode/errmsg pair of WeChat's answers; success has
// neither.
type apiStatus struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

type token struct {
	apiStatus
	AccessToken string `json:"access_token"`
	OpenID      string `json:"openid"`
	UnionID     string `json:"unionid"`
	// expires_in, refresh_token and scope are not read: the token is used
	// at once and dropped.
}

// token exchanges the code: GET /sns/oauth2/access_token.
func (p *Provider) token(ctx context.Context, code string) (token, error) {
	const op = "oauth2/access_token"
	q := url.Values{"appid": {p.appID}, "secret": {p.secret}, "code": {code}, "grant_type": {"authorization_code"}}
	var t token
	if err := p.get(ctx, op, "/sns/oauth2/access_token?"+q.Encode(), &t); err != nil {
		return token{}, err
	}
	switch {
	case t.ErrCode != 0:
		return token{}, p.apiError(ctx, op, t.apiStatus)
	case t.AccessToken == "" || t.OpenID == "":
		return token{}, p.report.Garbled(ctx, op, errors.New("answer without access_token or openid"))
	}
	return t, nil
}

type userInfo struct {
	apiStatus
	OpenID     string `json:"openid"`
	Nickname   string `json:"nickname"`
	HeadImgURL string `json:"headimgurl"`
	UnionID    string `json:"unionid"`
}

// userInfo reads the profile: GET /sns/userinfo.
func (p *Provider) userInfo(ctx context.Context, accessToken, openID string) (userInfo, error) {
	const op = "userinfo"
	q := url.Values{"access_token": {accessToken}, "openid": {openID}}
	var u userInfo
	if err := p.get(ctx, op, "/sns/userinfo?"+q.Encode(), &u); err != nil {
		return userInfo{}, err
	}
	switch {
	case u.ErrCode != 0:
		return userInfo{}, p.apiError(ctx, op, u.apiStatus)
	case u.OpenID != "" && u.OpenID != openID:
		return userInfo{}, p.report.Garbled(ctx, op, fmt.Errorf("asked for openid %s, got %s", openID, u.OpenID))
	}
	return u, nil
}

// get sends one GET of path (with its query) to the API host and decodes
// the JSON of a 200 answer into out; WeChat answers its errors with 200
// too. Failures are logged and returned as KindUpstreamUnavailable,
// without the query (it holds the secret or the token).
func (p *Provider) get(ctx context.Context, op, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.api+path, nil)
	if err != nil {
		return p.report.Failed(ctx, op, authcore.ScrubURLError(err))
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return p.report.Failed(ctx, op, authcore.ScrubURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	switch {
	case err != nil:
		return p.report.Failed(ctx, op, fmt.Errorf("reading the answer: %w", authcore.ScrubURLError(err)))
	case resp.StatusCode != http.StatusOK:
		return p.report.Failed(ctx, op, fmt.Errorf("HTTP %d from %s", resp.StatusCode, authcore.URLWithoutQuery(req.URL)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return p.report.Garbled(ctx, op, err)
	}
	return nil
}

// apiError logs an errcode WeChat answered and returns its domain error: a
// bad code is the user's to start again, anything else the hub's or
// WeChat's problem.
func (p *Provider) apiError(ctx context.Context, op string, st apiStatus) error {
	cause := fmt.Errorf("wechatweb %s: errcode %d: %s", op, st.ErrCode, st.ErrMsg)
	attrs := []slog.Attr{slog.String("op", op), slog.Int("errcode", st.ErrCode), slog.String("errmsg", st.ErrMsg)}
	switch st.ErrCode {
	case errInvalidCode, errCodeUsed, errCodeExpired:
		return p.report.LoginRefused(ctx, cause, attrs...)
	case 40002, 40013, 40125, 41002, 41004, 40164, 48001:
		// grant_type, appid or appsecret wrong or missing, the server's IP
		// not allowed, the API not granted: no user can log in until an
		// operator fixes the configuration.
		return p.report.APIError(ctx, cause, "check the website app's AppID, AppSecret and allow-list", attrs...)
	}
	return p.report.APIError(ctx, cause, "", attrs...)
}
