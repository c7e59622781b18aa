package weibo_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/providertest"
	"github.com/loginhub/loginhub/authcore/weibo"
)

const (
	appKey    = "3141592653"
	appSecret = "SECRETa1b2c3d4e5f60718293a4b5c6d"
	code      = "c0de0123456789abcdef0123456789ab"
	token     = "2.00TOKENabcdef0123456789abcdef01"
	uid       = "5432109876"
	redirect  = "https://hub.example/v1/oauth/weibo/callback"
)

// answer is a canned Weibo answer: JSON with a status.
func answer(status int, body string) providertest.Answer {
	return providertest.Answer{Status: status, ContentType: "application/json;charset=UTF-8", Body: body}
}

// weiboError is Weibo's error answer on the OAuth paths: HTTP 400.
func weiboError(path string, code int, name, description string) providertest.Answer {
	return answer(http.StatusBadRequest, fmt.Sprintf(`{"error":%q,"error_code":%d,"request":%q,"error_uri":%q,"error_description":%q}`,
		name, code, path, path, description))
}

// Real shapes of Weibo's answers.
var (
	tokenOK = answer(http.StatusOK, `{"access_token":"`+token+`","remind_in":"157679999","expires_in":157679999,"uid":"`+uid+`","isRealName":"true"}`)
	userOK  = answer(http.StatusOK, `{"id":5432109876,"idstr":"`+uid+`","class":1,"screen_name":"微博小明","name":"微博小明","province":"11",`+
		`"profile_image_url":"http://tvax1.sinaimg.cn/crop.0.0.50.50.50/abc.jpg","avatar_large":"https://tvax1.sinaimg.cn/crop.0.0.180.180.180/abc.jpg",`+
		`"avatar_hd":"https://tvax1.sinaimg.cn/crop.0.0.1024.1024.1024/abc.jpg","followers_count":3,"verified":false,"lang":"zh-cn"}`)
)

// Weibo's routes and the paths its errors name.
const (
	tokenPath, showPath   = "/oauth2/access_token", "/2/users/show.json"
	tokenRoute, showRoute = "POST " + tokenPath, "GET " + showPath
)

func okAnswers() providertest.Routes {
	return providertest.Routes{tokenRoute: providertest.Fixed(tokenOK), showRoute: providertest.Fixed(userOK)}
}

// newUpstream is a stub Weibo that fails the test on credentials sent in
// a basic Authorization header: Weibo reads them from the form.
func newUpstream(t *testing.T, answers providertest.Routes) *providertest.Upstream {
	return providertest.NewUpstream(t, answers, func(t testing.TB, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			t.Errorf("%s: credentials in a basic Authorization header; Weibo reads them from the form", r.URL.Path)
		}
	})
}

func newProvider(t *testing.T, base string, hc *http.Client) (*weibo.Provider, *providertest.LogBuffer) {
	t.Helper()
	logger, logs := providertest.NewLogger()
	p, err := weibo.New(weibo.Config{BaseURL: base, ClientID: appKey, ClientSecret: appSecret, HTTPClient: hc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func exchange() authcore.OAuthExchange {
	return authcore.OAuthExchange{Code: code, RedirectURI: redirect, CodeVerifier: "verifier-not-for-weibo", Nonce: "n"}
}

// secrets are the app secret and the access token.
var secrets = providertest.Secrets{appSecret, token}

func TestNewValidates(t *testing.T) {
	providertest.CheckNewRejects(t, weibo.New, map[string]weibo.Config{
		"no client id": {ClientSecret: appSecret},
		"no secret":    {ClientID: appKey},
		"not http":     {BaseURL: "api.weibo.com", ClientID: appKey, ClientSecret: appSecret},
		"query":        {BaseURL: "https://api.weibo.com?a=b", ClientID: appKey, ClientSecret: appSecret},
	}, secrets)
}

func TestAuthorizeURL(t *testing.T) {
	for _, c := range []struct{ base, wantPrefix string }{
		{"", "https://api.weibo.com/oauth2/authorize?"},
		{"http://127.0.0.1:8080/sandbox/weibo/", "http://127.0.0.1:8080/sandbox/weibo/oauth2/authorize?"},
	} {
		p, err := weibo.New(weibo.Config{BaseURL: c.base, ClientID: appKey, ClientSecret: appSecret})
		if err != nil {
			t.Fatal(err)
		}
		start, err := p.AuthorizeURL(t.Context(), authcore.OAuthAuthorize{RedirectURI: redirect, State: "st4te", CodeChallenge: "challenge", Nonce: "nonce"})
		providertest.CheckAuthorizeURL(t, start, err, c.wantPrefix,
			url.Values{"client_id": {appKey}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"st4te"}}, secrets)
	}
}

func TestIdentity(t *testing.T) {
	for _, c := range []struct {
		name string
		user providertest.Answer
		want authcore.ExternalIdentity
	}{
		{"avatar_large", userOK, authcore.ExternalIdentity{Subject: uid, Nickname: "微博小明",
			AvatarURL: "https://tvax1.sinaimg.cn/crop.0.0.180.180.180/abc.jpg"}},
		{"only profile_image_url, over http", answer(http.StatusOK, `{"id":5432109876,"idstr":"`+uid+`","screen_name":"小明",`+
			`"profile_image_url":"http://tvax1.sinaimg.cn/crop.0.0.50.50.50/abc.jpg"}`),
			authcore.ExternalIdentity{Subject: uid, Nickname: "小明", AvatarURL: "https://tvax1.sinaimg.cn/crop.0.0.50.50.50/abc.jpg"}},
		{"no avatar", answer(http.StatusOK, `{"id":5432109876,"idstr":"`+uid+`","screen_name":"小明"}`),
			authcore.ExternalIdentity{Subject: uid, Nickname: "小明"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers[showRoute] = providertest.Fixed(c.user)
			up := newUpstream(t, answers)
			p, logs := newProvider(t, up.URL, nil)
			got, err := p.Identity(context.Background(), exchange())
			if err != nil {
				t.Fatalf("Identity: %v", err)
			}
			if got != c.want {
				t.Errorf("Identity = %+v, want %+v", got, c.want)
			}
			secrets.Check(t, "log", logs.String())
			up.CheckOneRequest(t, tokenRoute, url.Values{"client_id": {appKey}, "client_secret": {appSecret}, "grant_type": {"authorization_code"},
				"code": {code}, "redirect_uri": {redirect}})
			up.CheckOneRequest(t, showRoute, url.Values{"access_token": {token}, "uid": {uid}})
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
		{"code used or expired", tokenRoute, weiboError(tokenPath, 21325, "invalid_grant", "invalid authorization code:"+code),
			authcore.KindUnauthorized, []string{"21325", "invalid_grant"}},
		{"wrong secret", tokenRoute, weiboError(tokenPath, 21324, "invalid_client", "client_id or client_secret is invalid"),
			authcore.KindUpstreamUnavailable, []string{"21324", "invalid_client", "misconfiguration", `"level":"ERROR"`}},
		{"missing client credentials", tokenRoute, weiboError(tokenPath, 21323, "invalid_request", "miss client id or secret"),
			authcore.KindUpstreamUnavailable, []string{"21323", "miss client id or secret", "misconfiguration"}},
		{"redirect_uri mismatch", tokenRoute, weiboError(tokenPath, 21322, "redirect_uri_mismatch", "redirect_uri does not match"),
			authcore.KindUpstreamUnavailable, []string{"21322", "misconfiguration"}},
		{"temporarily unavailable", tokenRoute, weiboError(tokenPath, 21331, "temporarily_unavailable", "the service is temporarily unavailable"),
			authcore.KindUpstreamUnavailable, []string{"21331", `"level":"WARN"`}},
		{"token HTTP 502 page", tokenRoute, answer(http.StatusBadGateway, "<html>502 "+token+"</html>"),
			authcore.KindUpstreamUnavailable, []string{"HTTP 502"}},
		{"token without uid", tokenRoute, answer(http.StatusOK, `{"access_token":"`+token+`","expires_in":157679999}`),
			authcore.KindUpstreamUnavailable, []string{"without uid"}},
		{"token without access_token", tokenRoute, answer(http.StatusOK, `{"uid":"`+uid+`"}`),
			authcore.KindUpstreamUnavailable, []string{"missing access_token"}},
		{"token garbled", tokenRoute, answer(http.StatusOK, `{"access_token":`),
			authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"show: token expired", showRoute, weiboError(showPath, 21327, "expired_token", "the access token expired"),
			authcore.KindUnauthorized, []string{"21327", "expired_token"}},
		{"show: invalid token", showRoute, weiboError(showPath, 21332, "invalid_access_token", "the access token is invalid"),
			authcore.KindUnauthorized, []string{"21332"}},
		{"show: no such user", showRoute, answer(http.StatusBadRequest, `{"error":"User does not exists!","error_code":20003,"request":"/2/users/show.json"}`),
			authcore.KindUpstreamUnavailable, []string{"20003", "User does not exists!"}},
		{"show: another user", showRoute, answer(http.StatusOK, `{"idstr":"1111111111","screen_name":"x"}`),
			authcore.KindUpstreamUnavailable, []string{"1111111111"}},
		{"show: HTTP 500 page", showRoute, answer(http.StatusInternalServerError, "<html>oops</html>"),
			authcore.KindUpstreamUnavailable, []string{"HTTP 500"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers[c.route] = providertest.Fixed(c.answer)
			up := newUpstream(t, answers)
			p, logs := newProvider(t, up.URL, nil)
			_, err := p.Identity(context.Background(), exchange())
			providertest.CheckFailed(t, err, c.want, logs.String(), c.wantLogs, secrets, "error", "213")
		})
	}
}

func TestIdentityRejectsCodeLocally(t *testing.T) {
	up := newUpstream(t, okAnswers())
	p, _ := newProvider(t, up.URL, nil)
	providertest.CheckRejectsCodeLocally(t, p, exchange(), up, tokenRoute)
}

// TestIdentityTimeout: a Weibo that never answers fails the login with
// KindUpstreamUnavailable when the HTTP client's timeout or the caller's
// deadline passes, and the error and log hold no secret.
func TestIdentityTimeout(t *testing.T) {
	providertest.CheckTimeouts(t, []string{tokenRoute, showRoute},
		func(t *testing.T) *providertest.Upstream { return newUpstream(t, okAnswers()) },
		func(t *testing.T, base string, hc *http.Client) (authcore.OAuthProvider, *providertest.LogBuffer) {
			return newProvider(t, base, hc)
		}, exchange(), secrets)
}
