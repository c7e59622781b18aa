package wechatweb_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/providertest"
	"github.com/loginhub/loginhub/authcore/wechatweb"
)

const (
	appID    = "wx0123456789abcdef"
	secret   = "SECRETf0e1d2c3b4a5968778695a4b3c"
	code     = "061a2B3c4D5e6F7g8H9i0J1k2L3m4N5o"
	token    = "TOKEN_abcdefABCDEF0123456789_xyz"
	openID   = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
	unionID  = "o6_bmasdasdsad6_2sgVt7hMZOPfL"
	redirect = "https://hub.example/v1/oauth/wechat_web/callback"
)

// answer is WeChat's answer: HTTP 200 with a JSON body sent as text/plain.
func answer(body string) providertest.Answer {
	return providertest.Answer{ContentType: "text/plain", Body: body}
}

// statusPage is a status page instead of WeChat's JSON.
func statusPage(status int) providertest.Answer { return providertest.Answer{Status: status} }

// wechatError is WeChat's error answer: HTTP 200 and an errcode.
func wechatError(errcode int, errmsg string) string {
	return fmt.Sprintf(`{"errcode":%d,"errmsg":"%s rid: 6571a2b3-0c1d2e3f-4a5b6c7d"}`, errcode, errmsg)
}

// Real shapes of WeChat's answers.
const (
	tokenOK = `{"access_token":"` + token + `","expires_in":7200,"refresh_token":"REFRESH_0123456789","openid":"` + openID +
		`","scope":"snsapi_login","unionid":"` + unionID + `"}`
	userOK = `{"openid":"` + openID + `","nickname":"微信小明","sex":1,"province":"广东","city":"广州","country":"中国",` +
		`"headimgurl":"https://thirdwx.qlogo.cn/mmopen/g3MonUZtNHkdmzicIlibx6iaFqAc56vxLSUfpb6n5WKSYVY0ChQKkiaJSgQ1dZuTOgvLLrhJbERQQ4eMsv84eavHiaiceqxibJxCfHe/0",` +
		`"privilege":[],"unionid":"` + unionID + `"}`
)

// WeChat's routes, both GET.
const (
	tokenRoute = "GET /sns/oauth2/access_token"
	infoRoute  = "GET /sns/userinfo"
)

func okAnswers() providertest.Routes {
	return providertest.Routes{tokenRoute: providertest.Fixed(answer(tokenOK)), infoRoute: providertest.Fixed(answer(userOK))}
}

func newProvider(t *testing.T, api string, hc *http.Client) (*wechatweb.Provider, *providertest.LogBuffer) {
	t.Helper()
	logger, logs := providertest.NewLogger()
	p, err := wechatweb.New(wechatweb.Config{OpenBaseURL: "https://open.example", APIBaseURL: api, AppID: appID, Secret: secret,
		HTTPClient: hc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func exchange() authcore.OAuthExchange {
	return authcore.OAuthExchange{Code: code, RedirectURI: redirect, CodeVerifier: "verifier-not-for-wechat", Nonce: "n"}
}

// secrets are the app secret and the access token.
var secrets = providertest.Secrets{secret, token}

func TestNewValidates(t *testing.T) {
	providertest.CheckNewRejects(t, wechatweb.New, map[string]wechatweb.Config{
		"no app id":               {Secret: secret},
		"no secret":               {AppID: appID},
		"open base not http":      {OpenBaseURL: "open.weixin.qq.com", AppID: appID, Secret: secret},
		"api base with query":     {APIBaseURL: "https://api.weixin.qq.com?x", AppID: appID, Secret: secret},
		"open base with fragment": {OpenBaseURL: "https://open.weixin.qq.com#x", AppID: appID, Secret: secret},
	}, secrets)
}

func TestAuthorizeURL(t *testing.T) {
	state := "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCd" // the core's: 43 characters
	for _, c := range []struct{ open, want string }{
		{"", "https://open.weixin.qq.com/connect/qrconnect?appid=" + appID + "&redirect_uri=" + url.QueryEscape(redirect) +
			"&response_type=code&scope=snsapi_login&state=" + state + "#wechat_redirect"},
		{"http://127.0.0.1:8080/sandbox/wechat_web/", "http://127.0.0.1:8080/sandbox/wechat_web/connect/qrconnect?appid=" + appID +
			"&redirect_uri=" + url.QueryEscape(redirect) + "&response_type=code&scope=snsapi_login&state=" + state + "#wechat_redirect"},
	} {
		p, err := wechatweb.New(wechatweb.Config{OpenBaseURL: c.open, AppID: appID, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		start, err := p.AuthorizeURL(t.Context(), authcore.OAuthAuthorize{RedirectURI: redirect, State: state, CodeChallenge: "challenge", Nonce: "nonce"})
		u := providertest.CheckAuthorizeURL(t, start, err, c.want[:strings.Index(c.want, "?")+1],
			url.Values{"appid": {appID}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"snsapi_login"}, "state": {state}}, secrets)
		if start.URL != c.want {
			t.Errorf("AuthorizeURL =\n%s\nwant\n%s", start.URL, c.want)
		}
		if u.Fragment != "wechat_redirect" || u.Query().Get("state") != state {
			t.Errorf("fragment %q, state %q", u.Fragment, u.Query().Get("state"))
		}
	}
}

func TestIdentity(t *testing.T) {
	avatar := "https://thirdwx.qlogo.cn/mmopen/g3MonUZtNHkdmzicIlibx6iaFqAc56vxLSUfpb6n5WKSYVY0ChQKkiaJSgQ1dZuTOgvLLrhJbERQQ4eMsv84eavHiaiceqxibJxCfHe/0"
	for _, c := range []struct {
		name        string
		token, user string
		want        authcore.ExternalIdentity
	}{
		{"unionid", tokenOK, userOK, authcore.ExternalIdentity{Subject: unionID, UnionID: unionID, Nickname: "微信小明", AvatarURL: avatar}},
		{"unionid only in userinfo",
			`{"access_token":"` + token + `","expires_in":7200,"refresh_token":"R","openid":"` + openID + `","scope":"snsapi_login"}`,
			userOK, authcore.ExternalIdentity{Subject: unionID, UnionID: unionID, Nickname: "微信小明", AvatarURL: avatar}},
		{"no unionid: an app bound to no Open Platform account",
			`{"access_token":"` + token + `","expires_in":7200,"refresh_token":"R","openid":"` + openID + `","scope":"snsapi_login"}`,
			`{"openid":"` + openID + `","nickname":"小明","headimgurl":"http://thirdwx.qlogo.cn/mmopen/abc/132","privilege":[]}`,
			authcore.ExternalIdentity{Subject: openID, Nickname: "小明", AvatarURL: "https://thirdwx.qlogo.cn/mmopen/abc/132"}},
		{"no avatar", tokenOK, `{"openid":"` + openID + `","nickname":"小明","headimgurl":"","unionid":"` + unionID + `"}`,
			authcore.ExternalIdentity{Subject: unionID, UnionID: unionID, Nickname: "小明"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			up := providertest.NewUpstream(t, providertest.Routes{tokenRoute: providertest.Fixed(answer(c.token)), infoRoute: providertest.Fixed(answer(c.user))})
			p, logs := newProvider(t, up.URL+"/", nil)
			got, err := p.Identity(context.Background(), exchange())
			if err != nil {
				t.Fatalf("Identity: %v", err)
			}
			if got != c.want {
				t.Errorf("Identity = %+v, want %+v", got, c.want)
			}
			secrets.Check(t, "log", logs.String())
			up.CheckOneRequest(t, tokenRoute, url.Values{"appid": {appID}, "secret": {secret}, "code": {code}, "grant_type": {"authorization_code"}})
			up.CheckOneRequest(t, infoRoute, url.Values{"access_token": {token}, "openid": {openID}})
		})
	}
}

func TestIdentityErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		route    string
		answer   providertest.Answer
		want     authcore.Kind
		wantLogs []string
	}{
		{"invalid code", tokenRoute, answer(wechatError(40029, "invalid code")), authcore.KindUnauthorized, []string{"40029", "invalid code"}},
		{"code used", tokenRoute, answer(wechatError(40163, "code been used")), authcore.KindUnauthorized, []string{"40163", "code been used"}},
		{"code expired", tokenRoute, answer(wechatError(42003, "code expired")), authcore.KindUnauthorized, []string{"42003", "code expired"}},
		{"bad appid", tokenRoute, answer(wechatError(40013, "invalid appid")), authcore.KindUpstreamUnavailable,
			[]string{"40013", "invalid appid", "misconfiguration", `"level":"ERROR"`}},
		{"bad secret", tokenRoute, answer(wechatError(40125, "invalid appsecret")), authcore.KindUpstreamUnavailable,
			[]string{"40125", "invalid appsecret", "misconfiguration"}},
		{"system busy", tokenRoute, answer(wechatError(-1, "system error")), authcore.KindUpstreamUnavailable, []string{`"errcode":-1`, "system error", `"level":"WARN"`}},
		{"quota", tokenRoute, answer(wechatError(45011, "api minute-quota reach limit")), authcore.KindUpstreamUnavailable, []string{"45011"}},
		{"token without openid", tokenRoute, answer(`{"access_token":"` + token + `","expires_in":7200}`), authcore.KindUpstreamUnavailable,
			[]string{"without access_token or openid"}},
		{"token not JSON", tokenRoute, answer("<html>" + token + "</html>"), authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"token HTTP 502", tokenRoute, statusPage(502), authcore.KindUpstreamUnavailable, []string{"HTTP 502"}},
		{"userinfo: token expired", infoRoute, answer(wechatError(42001, "access_token expired")), authcore.KindUpstreamUnavailable,
			[]string{"42001", "access_token expired"}},
		{"userinfo: another user", infoRoute, answer(`{"openid":"o-someone-else","nickname":"x"}`), authcore.KindUpstreamUnavailable,
			[]string{"o-someone-else"}},
		{"userinfo HTTP 404", infoRoute, statusPage(404), authcore.KindUpstreamUnavailable, []string{"HTTP 404"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers[c.route] = providertest.Fixed(c.answer)
			up := providertest.NewUpstream(t, answers)
			p, logs := newProvider(t, up.URL, nil)
			_, err := p.Identity(context.Background(), exchange())
			providertest.CheckFailed(t, err, c.want, logs.String(), c.wantLogs, secrets, "errcode", "invalid")
		})
	}
}

func TestIdentityRejectsCodeLocally(t *testing.T) {
	up := providertest.NewUpstream(t, okAnswers())
	p, _ := newProvider(t, up.URL, nil)
	providertest.CheckRejectsCodeLocally(t, p, exchange(), up, tokenRoute)
}

// TestIdentityTimeout: a WeChat that never answers fails the login with
// KindUpstreamUnavailable when the HTTP client's timeout or the caller's
// deadline passes, and the error and log hold no secret, nor the code.
func TestIdentityTimeout(t *testing.T) {
	providertest.CheckTimeouts(t, []string{tokenRoute, infoRoute},
		func(t *testing.T) *providertest.Upstream { return providertest.NewUpstream(t, okAnswers()) },
		func(t *testing.T, base string, hc *http.Client) (authcore.OAuthProvider, *providertest.LogBuffer) {
			return newProvider(t, base, hc)
		}, exchange(), append(providertest.Secrets{code}, secrets...))
}
