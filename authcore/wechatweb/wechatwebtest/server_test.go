package wechatwebtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/browsertest"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
	"github.com/loginhub/loginhub/authcore/wechatweb/wechatwebtest"
)

const callback = "https://hub.example/v1/oauth/wechat_web/callback"

type fixture struct {
	srv           *wechatwebtest.Server
	base          string
	clock         *oauthsandbox.Clock
	appid, secret string
}

func start(t *testing.T, srv *wechatwebtest.Server) *fixture {
	t.Helper()
	if srv.RedirectURIs == nil {
		srv.RedirectURIs = []string{callback}
	}
	c := srv.ManualClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	appid, secret := srv.App()
	return &fixture{srv: srv, base: oauthsandbox.Start(t, srv), clock: c, appid: appid, secret: secret}
}

func (f *fixture) qrconnectURL(extra url.Values) string {
	q := url.Values{"appid": {f.appid}, "redirect_uri": {callback}, "response_type": {"code"}, "scope": {"snsapi_login"}, "state": {"st-1"}}
	for k, v := range extra {
		q[k] = v
	}
	return f.base + wechatwebtest.PathQRConnect + "?" + q.Encode() + "#wechat_redirect"
}

func (f *fixture) login(t *testing.T, user string) string {
	t.Helper()
	return browsertest.Login(t, f.qrconnectURL(nil), user).Get("code")
}

// get calls path with q and returns the decoded JSON.
func (f *fixture) get(t *testing.T, path string, q url.Values) map[string]any {
	t.Helper()
	resp, err := http.Get(f.base + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s %q: %v", path, resp.Status, body, err)
	}
	return v
}

func (f *fixture) exchange(t *testing.T, code string, extra url.Values) map[string]any {
	t.Helper()
	q := url.Values{"appid": {f.appid}, "secret": {f.secret}, "code": {code}, "grant_type": {"authorization_code"}}
	for k, v := range extra {
		q[k] = v
	}
	return f.get(t, wechatwebtest.PathAccessToken, q)
}

var rid = regexp.MustCompile(` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

func wantErr(t *testing.T, what string, v map[string]any, errcode float64) {
	t.Helper()
	if msg, _ := v["errmsg"].(string); v["errcode"] != errcode || !rid.MatchString(msg) {
		t.Errorf("%s: %v; want errcode %v and an errmsg with a rid", what, v, errcode)
	}
}

func TestConsent(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	resp, err := http.Get(f.qrconnectURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `<form method="post">`) {
		t.Fatalf("qrconnect: %s %q", resp.Status, page)
	}
	loc := browsertest.Choose(t, f.qrconnectURL(nil), url.Values{"user": {"ann"}}).Location
	if loc == nil {
		t.Fatal("allow: no redirect")
	}
	if q := loc.Query(); !strings.HasPrefix(loc.String(), callback+"?") || q.Get("state") != "st-1" || !regexp.MustCompile(`^[A-Za-z0-9_-]{32}$`).MatchString(q.Get("code")) {
		t.Errorf("allow redirected to %s; want the callback with a URL-safe code and state", loc)
	}
	if a := browsertest.Choose(t, f.qrconnectURL(nil), url.Values{"deny": {"1"}}); a.Location == nil || a.Location.RawQuery != "state=st-1" {
		t.Errorf("deny: %d to %v; want the callback with state alone", a.Status, a.Location)
	}
}

func TestQRConnectErrors(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	for _, c := range []struct {
		extra url.Values
		want  string
	}{
		{url.Values{"appid": {"wx0000000000000000"}}, "appid 参数错误"},
		{url.Values{"redirect_uri": {"https://evil.example/"}}, "redirect_uri 参数错误"},
		{url.Values{"response_type": {"token"}}, "response_type 参数错误"},
		{url.Values{"scope": {"snsapi_userinfo"}}, "Scope 参数错误或没有 Scope 权限"},
	} {
		if a := browsertest.Choose(t, f.qrconnectURL(c.extra), url.Values{"user": {"ann"}}); a.Location != nil || !strings.Contains(a.Body, c.want) {
			t.Errorf("%v: %d %q; want the page %q and no redirect", c.extra, a.Status, a.Body, c.want)
		}
	}
}

func TestAccessTokenAndUserInfo(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	u := f.srv.User("ann")
	v := f.exchange(t, f.login(t, "ann"), nil)
	if v["expires_in"] != float64(7200) || v["openid"] != u.OpenID || v["unionid"] != u.UnionID || v["scope"] != "snsapi_login" ||
		v["refresh_token"] == nil || v["errcode"] != nil {
		t.Errorf("access_token: %v", v)
	}
	tok := v["access_token"].(string)
	q := url.Values{"access_token": {tok}, "openid": {u.OpenID}}
	if v := f.get(t, wechatwebtest.PathAuth, q); v["errcode"] != float64(0) || v["errmsg"] != "ok" {
		t.Errorf("auth: %v", v)
	}
	info := f.get(t, wechatwebtest.PathUserInfo, q)
	if info["openid"] != u.OpenID || info["unionid"] != u.UnionID || info["nickname"] != "ann (sandbox)" || info["sex"] != float64(0) {
		t.Errorf("userinfo: %v", info)
	}
	if p, ok := info["privilege"].([]any); !ok || len(p) != 0 {
		t.Errorf("privilege %#v, want []", info["privilege"])
	}
}

// TestOnePerson: a sandbox user name is one person in the mini-program and
// the website app: one unionid, two openids.
func TestOnePerson(t *testing.T) {
	mini := (&wechattest.Server{UnionIDs: true}).User("ann")
	web := (&wechatwebtest.Server{}).User("ann")
	if web.UnionID != mini.UnionID || web.OpenID == mini.OpenID {
		t.Errorf("ann: mini-program %s/%s, website %s/%s; want one unionid and two openids", mini.OpenID, mini.UnionID, web.OpenID, web.UnionID)
	}
	if (&wechatwebtest.Server{}).User("bob").UnionID == web.UnionID {
		t.Error("two users share a unionid")
	}
}

func TestAccessTokenErrors(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	used := f.login(t, "ann")
	f.exchange(t, used, nil)
	expired := f.login(t, "ann")
	f.clock.Add(wechatwebtest.CodeLifetime)
	live := f.login(t, "ann")
	other := start(t, &wechatwebtest.Server{AppID: "wx0000000000000001"})
	othersCode := other.login(t, "ann")
	for _, c := range []struct {
		name  string
		code  string
		extra url.Values
		want  float64
	}{
		{"no appid", live, url.Values{"appid": {""}}, 41002},
		{"wrong appid", live, url.Values{"appid": {"wx0000000000000000"}}, 40013},
		{"no secret", live, url.Values{"secret": {""}}, 41004},
		{"wrong secret", live, url.Values{"secret": {"00"}}, 40125},
		{"grant_type", live, url.Values{"grant_type": {"client_credential"}}, 40002},
		{"no code", "", nil, 41008},
		{"unknown code", "nope", nil, 40029},
		{"another app's code", othersCode, nil, 40029},
		{"used code", used, nil, 40163},
		{"expired code", expired, nil, 42003},
	} {
		wantErr(t, c.name, f.exchange(t, c.code, c.extra), c.want)
	}
	if v := f.exchange(t, live, nil); v["access_token"] == nil {
		t.Errorf("the live code after the failures: %v; want it unconsumed", v)
	}
}

func TestRefresh(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	v := f.exchange(t, f.login(t, "ann"), nil)
	first, refresh := v["access_token"].(string), v["refresh_token"].(string)
	f.clock.Add(wechatwebtest.TokenLifetime)
	u := f.srv.User("ann")
	wantErr(t, "auth with an expired token", f.get(t, wechatwebtest.PathAuth, url.Values{"access_token": {first}, "openid": {u.OpenID}}), 42001)

	q := url.Values{"appid": {f.appid}, "grant_type": {"refresh_token"}, "refresh_token": {refresh}}
	v = f.get(t, wechatwebtest.PathRefreshToken, q)
	if v["refresh_token"] != refresh || v["openid"] != u.OpenID || v["expires_in"] != float64(7200) || v["access_token"] == first || v["unionid"] != nil {
		t.Errorf("refresh_token: %v; want a new access_token, the same refresh_token, no unionid", v)
	}
	if info := f.get(t, wechatwebtest.PathUserInfo, url.Values{"access_token": {v["access_token"].(string)}, "openid": {u.OpenID}}); info["unionid"] != u.UnionID {
		t.Errorf("userinfo with the refreshed token: %v", info)
	}
	for _, c := range []struct {
		name string
		set  url.Values
		want float64
	}{
		{"no appid", url.Values{"appid": {""}}, 41002},
		{"grant_type", url.Values{"grant_type": {"authorization_code"}}, 40002},
		{"no refresh_token", url.Values{"refresh_token": {""}}, 41003},
		{"unknown refresh_token", url.Values{"refresh_token": {"nope"}}, 40030},
		{"an access token", url.Values{"refresh_token": {first}}, 40030},
	} {
		p := url.Values{}
		for k, vs := range q {
			p[k] = vs
		}
		for k, vs := range c.set {
			p[k] = vs
		}
		wantErr(t, c.name, f.get(t, wechatwebtest.PathRefreshToken, p), c.want)
	}
	f.clock.Add(wechatwebtest.RefreshLifetime)
	wantErr(t, "expired refresh_token", f.get(t, wechatwebtest.PathRefreshToken, q), 42002)
}

func TestTokenErrors(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	v := f.exchange(t, f.login(t, "ann"), nil)
	tok, u := v["access_token"].(string), f.srv.User("ann")
	for _, path := range []string{wechatwebtest.PathAuth, wechatwebtest.PathUserInfo} {
		for _, c := range []struct {
			name string
			q    url.Values
			want float64
		}{
			{"no token", url.Values{"openid": {u.OpenID}}, 41001},
			{"unknown token", url.Values{"access_token": {"nope"}, "openid": {u.OpenID}}, 40001},
			{"a refresh token", url.Values{"access_token": {v["refresh_token"].(string)}, "openid": {u.OpenID}}, 40001},
			{"another openid", url.Values{"access_token": {tok}, "openid": {f.srv.User("bob").OpenID}}, 40003},
		} {
			wantErr(t, path+": "+c.name, f.get(t, path, c.q), c.want)
		}
	}
}

func TestKnobs(t *testing.T) {
	f := start(t, &wechatwebtest.Server{})
	code := f.login(t, "ann")
	f.srv.FailNext(wechatwebtest.PathAccessToken, 45011, 1)
	wantErr(t, "injected failure", f.exchange(t, code, nil), 45011)
	if v := f.exchange(t, code, nil); v["access_token"] == nil {
		t.Errorf("the code after an injected failure: %v; want it unconsumed", v)
	}
}

func TestSharedState(t *testing.T) {
	appid, secret := wechatwebtest.DefaultApp()
	st := oauthsandbox.NewMemoryState()
	a := start(t, &wechatwebtest.Server{AppID: appid, Secret: secret, State: st})
	b := start(t, &wechatwebtest.Server{AppID: appid, Secret: secret, State: st})
	v := b.exchange(t, a.login(t, "ann"), nil)
	u := a.srv.User("ann")
	if info := a.get(t, wechatwebtest.PathUserInfo, url.Values{"access_token": {v["access_token"].(string)}, "openid": {u.OpenID}}); info["unionid"] != u.UnionID {
		t.Errorf("node b's token on node a: %v", info)
	}
}
