package qq_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/providertest"
	"github.com/loginhub/loginhub/authcore/qq"
)

const (
	appID    = "101234567"
	appKey   = "APPKEYf3c1b2a4d5e6f708192a3b4c5d6"
	code     = "CODE9A8B7C6D5E4F3A2B1C0D9E8F7A6B"
	token    = "TOKENE1D2C3B4A5968778695A4B3C2D1"
	openID   = "OPENIDA1B2C3D4E5F60718293A4B5C6D7"
	unionID  = "UID_UNIONIDF1E2D3C4B5A69788796A5B"
	redirect = "https://hub.example/v1/oauth/qq/callback"
)

// QQ's answers: a body with its content type, HTTP 200 as QQ answers even
// its errors.
func jsonp(obj string) providertest.Answer {
	return providertest.Answer{ContentType: "text/html; charset=utf-8", Body: "callback( " + obj + " );\n"}
}
func jsonBody(obj string) providertest.Answer {
	return providertest.Answer{ContentType: "application/json", Body: obj}
}
func form(body string) providertest.Answer {
	return providertest.Answer{ContentType: "text/html; charset=utf-8", Body: body}
}

// Real shapes of QQ's answers.
var (
	tokenJSON     = jsonBody(`{"access_token":"` + token + `","expires_in":"7776000","refresh_token":"REFRESH0123456789ABCDEF0123456789"}`)
	tokenForm     = form("access_token=" + token + "&expires_in=7776000&refresh_token=REFRESH0123456789ABCDEF0123456789")
	meUnion       = jsonp(`{"client_id":"` + appID + `","openid":"` + openID + `","unionid":"` + unionID + `"}`)
	meOpenID      = jsonp(`{"client_id":"` + appID + `","openid":"` + openID + `"}`)
	meNoUnionPerm = jsonp(`{"error":100048,"error_description":"unionid permission denied"}`)
	userInfoOK    = jsonBody(`{"ret":0,"msg":"","is_lost":0,"nickname":"小明","gender":"男","gender_type":1,"province":"","city":"","year":"2000",` +
		`"figureurl":"http://qzapp.qlogo.cn/qzapp/101234567/` + openID + `/30","figureurl_qq_1":"http://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=40",` +
		`"figureurl_qq_2":"http://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100","is_yellow_vip":"0","vip":"0","yellow_vip_level":"0","level":"0","is_yellow_year_vip":"0"}`)
)

// QQ's routes, all GET.
const (
	tokenRoute = "GET /oauth2.0/token"
	meRoute    = "GET /oauth2.0/me"
	infoRoute  = "GET /user/get_user_info"
)

// okAnswers is a login that succeeds, with a unionid and the JSON token.
func okAnswers() providertest.Routes {
	return providertest.Routes{
		tokenRoute: providertest.Fixed(tokenJSON),
		meRoute:    providertest.Fixed(meUnion),
		infoRoute:  providertest.Fixed(userInfoOK),
	}
}

func newProvider(t *testing.T, base string, hc *http.Client) (*qq.Provider, *providertest.LogBuffer) {
	t.Helper()
	logger, logs := providertest.NewLogger()
	p, err := qq.New(qq.Config{BaseURL: base + "/", AppID: appID, AppKey: appKey, HTTPClient: hc, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func exchange() authcore.OAuthExchange {
	return authcore.OAuthExchange{Code: code, RedirectURI: redirect, CodeVerifier: "verifier-not-for-qq", Nonce: "n"}
}

// secrets are the app key and the access token.
var secrets = providertest.Secrets{appKey, token}

func TestNewValidates(t *testing.T) {
	providertest.CheckNewRejects(t, qq.New, map[string]qq.Config{
		"no app id":  {AppKey: appKey},
		"no app key": {AppID: appID},
		"not http":   {BaseURL: "ftp://graph.qq.com", AppID: appID, AppKey: appKey},
		"no host":    {BaseURL: "https://", AppID: appID, AppKey: appKey},
		"query":      {BaseURL: "https://graph.qq.com?x=1", AppID: appID, AppKey: appKey},
	}, secrets)
}

func TestAuthorizeURL(t *testing.T) {
	for _, c := range []struct{ base, wantPrefix string }{
		{"", "https://graph.qq.com/oauth2.0/authorize?"},
		{"http://127.0.0.1:8080/sandbox/qq/", "http://127.0.0.1:8080/sandbox/qq/oauth2.0/authorize?"},
	} {
		p, err := qq.New(qq.Config{BaseURL: c.base, AppID: appID, AppKey: appKey})
		if err != nil {
			t.Fatal(err)
		}
		start, err := p.AuthorizeURL(t.Context(), authcore.OAuthAuthorize{RedirectURI: redirect, State: "st4te-43-characters_____________________x",
			CodeChallenge: "challenge", Nonce: "nonce"})
		providertest.CheckAuthorizeURL(t, start, err, c.wantPrefix, url.Values{
			"response_type": {"code"},
			"client_id":     {appID},
			"redirect_uri":  {redirect},
			"state":         {"st4te-43-characters_____________________x"},
			"scope":         {"get_user_info"},
		}, secrets)
	}
}

func TestIdentity(t *testing.T) {
	want := authcore.ExternalIdentity{Subject: unionID, Nickname: "小明", AvatarURL: "https://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100"}
	for _, c := range []struct {
		name    string
		answers providertest.Routes
		want    authcore.ExternalIdentity
	}{
		{"JSON token, expires_in a string", nil, want},
		{"urlencoded token (QQ's default)", providertest.Routes{tokenRoute: providertest.Fixed(tokenForm)}, want},
		{"me as plain JSON", providertest.Routes{meRoute: providertest.Fixed(jsonBody(strings.TrimSpace(
			strings.TrimSuffix(strings.TrimPrefix(meUnion.Body, "callback( "), " );\n"))))}, want},
		{"JSONP without spaces", providertest.Routes{meRoute: providertest.Fixed(providertest.Answer{ContentType: "text/html", Body: `callback({"client_id":"` + appID + `","openid":"` + openID + `","unionid":"` + unionID + `"});`})}, want},
		{"only the 40×40 avatar", providertest.Routes{infoRoute: providertest.Fixed(jsonBody(
			`{"ret":0,"msg":"","nickname":"小明","figureurl_qq_1":"http://thirdqq.qlogo.cn/g?s=40","figureurl_qq_2":""}`))},
			authcore.ExternalIdentity{Subject: unionID, Nickname: "小明", AvatarURL: "https://thirdqq.qlogo.cn/g?s=40"}},
		{"an avatar that is no URL", providertest.Routes{infoRoute: providertest.Fixed(jsonBody(
			`{"ret":0,"msg":"","nickname":"小明","figureurl_qq_1":"javascript:alert(1)","figureurl_qq_2":"data:x"}`))},
			authcore.ExternalIdentity{Subject: unionID, Nickname: "小明"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			for path, a := range c.answers {
				answers[path] = a
			}
			up := providertest.NewUpstream(t, answers)
			p, logs := newProvider(t, up.URL, nil)
			got, err := p.Identity(context.Background(), exchange())
			if err != nil {
				t.Fatalf("Identity: %v", err)
			}
			if got != c.want {
				t.Errorf("Identity = %+v, want %+v", got, c.want)
			}
			secrets.Check(t, "log", logs.String())

			up.CheckOneRequest(t, tokenRoute, url.Values{"grant_type": {"authorization_code"}, "client_id": {appID}, "client_secret": {appKey},
				"code": {code}, "redirect_uri": {redirect}, "fmt": {"json"}})
			if mq := up.Requests(meRoute); len(mq) != 1 || mq[0].Get("access_token") != token || mq[0].Get("unionid") != "1" {
				t.Errorf("me requests = %v, want one with the token and unionid=1", mq)
			}
			up.CheckOneRequest(t, infoRoute, url.Values{"access_token": {token}, "oauth_consumer_key": {appID}, "openid": {openID}})
		})
	}
}

// TestIdentityWithoutUnionIDPermission: QQ answers 100048 to unionid=1 for
// an app without that permission; the client asks again without it and
// keys the user by openid.
func TestIdentityWithoutUnionIDPermission(t *testing.T) {
	answers := okAnswers()
	answers[meRoute] = func(q url.Values) providertest.Answer {
		if q.Get("unionid") == "1" {
			return meNoUnionPerm
		}
		return meOpenID
	}
	up := providertest.NewUpstream(t, answers)
	p, logs := newProvider(t, up.URL, nil)
	got, err := p.Identity(context.Background(), exchange())
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	if want := (authcore.ExternalIdentity{Subject: openID, Nickname: "小明", AvatarURL: "https://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100"}); got != want {
		t.Errorf("Identity = %+v, want %+v", got, want)
	}
	mq := up.Requests(meRoute)
	if len(mq) != 2 || mq[0].Get("unionid") != "1" || mq[1].Has("unionid") {
		t.Errorf("me requests = %v, want unionid=1 then none", mq)
	}
	if !strings.Contains(logs.String(), "100048") {
		t.Errorf("log lacks QQ's 100048: %s", logs.String())
	}
	secrets.Check(t, "log", logs.String())
}

func TestIdentityErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		path     string
		answer   providertest.Answer
		want     authcore.Kind
		wantLogs []string // QQ's code and text, as logged
	}{
		{"code unknown or expired (JSONP)", tokenRoute, jsonp(`{"error":100019,"error_description":"code to access token error"}`),
			authcore.KindUnauthorized, []string{"100019", "code to access token error"}},
		{"code reused (JSON)", tokenRoute, jsonBody(`{"error":100020,"error_description":"code is reused error"}`),
			authcore.KindUnauthorized, []string{"100020", "code is reused error"}},
		{"error code as a string", tokenRoute, jsonBody(`{"error":"100020","error_description":"code is reused error"}`),
			authcore.KindUnauthorized, []string{"100020"}},
		{"wrong app key", tokenRoute, jsonp(`{"error":100009,"error_description":"client_secret is invalid"}`),
			authcore.KindUpstreamUnavailable, []string{"100009", "client_secret is invalid", "misconfiguration", `"level":"ERROR"`}},
		{"redirect_uri not registered", tokenRoute, jsonp(`{"error":100010,"error_description":"redirect uri is illegal"}`),
			authcore.KindUpstreamUnavailable, []string{"100010", "redirect uri is illegal", "misconfiguration"}},
		{"token without access_token", tokenRoute, form("expires_in=7776000"),
			authcore.KindUpstreamUnavailable, []string{"without access_token"}},
		{"token answer garbled", tokenRoute, jsonBody(`{"access_token":`),
			authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"token HTTP 502", tokenRoute, providertest.Answer{Status: http.StatusBadGateway, ContentType: "text/html", Body: "<html>bad gateway " + token + "</html>"},
			authcore.KindUpstreamUnavailable, []string{"HTTP 502"}},
		{"me: token check failed", meRoute, jsonp(`{"error":100016,"error_description":"access token check failed"}`),
			authcore.KindUnauthorized, []string{"100016", "access token check failed"}},
		{"me: another app's token", meRoute, jsonp(`{"client_id":"109999999","openid":"` + openID + `"}`),
			authcore.KindUpstreamUnavailable, []string{"109999999"}},
		{"me without openid", meRoute, jsonp(`{"client_id":"` + appID + `"}`),
			authcore.KindUpstreamUnavailable, []string{"without openid"}},
		{"me not JSONP", meRoute, form("<html>maintenance</html>"),
			authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"get_user_info: bad parameters", infoRoute, jsonBody(`{"ret":-1,"msg":"client request's parameters are invalid, invalid openid"}`),
			authcore.KindUpstreamUnavailable, []string{`"error":-1`, "invalid openid"}},
		{"get_user_info: token expired", infoRoute, jsonBody(`{"ret":100014,"msg":"access token is expired"}`),
			authcore.KindUnauthorized, []string{"100014", "access token is expired"}},
		{"get_user_info without ret", infoRoute, jsonBody(`{"nickname":"x"}`),
			authcore.KindUpstreamUnavailable, []string{"without ret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers[c.path] = providertest.Fixed(c.answer)
			up := providertest.NewUpstream(t, answers)
			p, logs := newProvider(t, up.URL, nil)
			_, err := p.Identity(context.Background(), exchange())
			providertest.CheckFailed(t, err, c.want, logs.String(), c.wantLogs, secrets, "error", "100")
		})
	}
}

// TestIdentityRejectsCodeLocally: a code that cannot be QQ's is refused
// without a request.
func TestIdentityRejectsCodeLocally(t *testing.T) {
	up := providertest.NewUpstream(t, okAnswers())
	p, _ := newProvider(t, up.URL, nil)
	providertest.CheckRejectsCodeLocally(t, p, exchange(), up, tokenRoute)
}

// TestIdentityTimeout: a QQ that never answers fails the login with
// KindUpstreamUnavailable when the HTTP client's timeout or the caller's
// deadline passes, and the error and log hold no secret, nor the code.
func TestIdentityTimeout(t *testing.T) {
	providertest.CheckTimeouts(t, []string{tokenRoute, meRoute, infoRoute},
		func(t *testing.T) *providertest.Upstream { return providertest.NewUpstream(t, okAnswers()) },
		func(t *testing.T, base string, hc *http.Client) (authcore.OAuthProvider, *providertest.LogBuffer) {
			return newProvider(t, base, hc)
		}, exchange(), append(providertest.Secrets{code}, secrets...))
}
