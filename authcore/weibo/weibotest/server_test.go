package weibotest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/browsertest"
	"github.com/loginhub/loginhub/authcore/weibo/weibotest"
)

const callback = "https://hub.example/v1/oauth/weibo/callback"

type fixture struct {
	srv         *weibotest.Server
	base        string
	clock       *oauthsandbox.Clock
	key, secret string
}

func start(t *testing.T, srv *weibotest.Server) *fixture {
	t.Helper()
	if srv.RedirectURIs == nil {
		srv.RedirectURIs = []string{callback}
	}
	c := srv.ManualClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	key, secret := srv.App()
	return &fixture{srv: srv, base: oauthsandbox.Start(t, srv), clock: c, key: key, secret: secret}
}

func (f *fixture) authorizeURL(extra url.Values) string {
	q := url.Values{"client_id": {f.key}, "redirect_uri": {callback}, "response_type": {"code"}, "state": {"st-1"}}
	for k, v := range extra {
		q[k] = v
	}
	return f.base + weibotest.PathAuthorize + "?" + q.Encode()
}

func (f *fixture) login(t *testing.T, user string) string {
	t.Helper()
	return browsertest.Login(t, f.authorizeURL(nil), user).Get("code")
}

// call sends method to path with params (a form for POST, the query for
// GET) and returns the status and the decoded JSON.
func (f *fixture) call(t *testing.T, method, path string, params url.Values) (int, map[string]any) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodPost {
		resp, err = http.PostForm(f.base+path, params)
	} else {
		resp, err = http.Get(f.base + path + "?" + params.Encode())
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s %s: %q: %v", method, path, body, err)
	}
	return resp.StatusCode, v
}

func (f *fixture) exchange(t *testing.T, code string, extra url.Values) (int, map[string]any) {
	t.Helper()
	p := url.Values{"client_id": {f.key}, "client_secret": {f.secret}, "grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}}
	for k, v := range extra {
		p[k] = v
	}
	return f.call(t, http.MethodPost, weibotest.PathAccessToken, p)
}

func (f *fixture) token(t *testing.T, user string) string {
	t.Helper()
	status, v := f.exchange(t, f.login(t, user), nil)
	tok, _ := v["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("access_token: %d %v", status, v)
	}
	return tok
}

func TestConsent(t *testing.T) {
	f := start(t, &weibotest.Server{})
	resp, err := http.Get(f.authorizeURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `<form method="post">`) {
		t.Fatalf("consent page: %s %q", resp.Status, page)
	}

	loc := browsertest.Choose(t, f.authorizeURL(nil), url.Values{"user": {"ann"}}).Location
	if loc == nil {
		t.Fatal("allow: no redirect")
	}
	if q := loc.Query(); !strings.HasPrefix(loc.String(), callback+"?") || q.Get("state") != "st-1" || len(q.Get("code")) != 32 {
		t.Errorf("allow redirected to %s; want the callback with a code and state st-1", loc)
	}

	loc = browsertest.Choose(t, f.authorizeURL(nil), url.Values{"deny": {"1"}}).Location
	if loc == nil {
		t.Fatal("deny: no redirect")
	}
	want := url.Values{"error": {"access_denied"}, "error_code": {"21330"}, "error_uri": {"/oauth2/authorize"},
		"error_description": {"user denied your request."}, "state": {"st-1"}}
	if got := loc.Query(); got.Encode() != want.Encode() {
		t.Errorf("deny redirected with %v, want %v", got, want)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	f := start(t, &weibotest.Server{})
	for _, c := range []struct {
		extra url.Values
		want  string
	}{
		{url.Values{"client_id": {""}}, "error_code:21323"},
		{url.Values{"client_id": {"1000000001"}}, "error_code:21324"},
		{url.Values{"redirect_uri": {"https://evil.example/cb"}}, "error_code:21322"},
		{url.Values{"response_type": {"token"}}, "error_code:21329"},
	} {
		if a := browsertest.Choose(t, f.authorizeURL(c.extra), url.Values{"user": {"ann"}}); a.Location != nil || !strings.Contains(a.Body, c.want) {
			t.Errorf("%v: %d %q; want an error page with %s and no redirect", c.extra, a.Status, a.Body, c.want)
		}
	}
}

func TestAccessToken(t *testing.T) {
	f := start(t, &weibotest.Server{})
	status, v := f.exchange(t, f.login(t, "ann"), nil)
	if status != http.StatusOK || v["uid"] != weibotest.UserNamed("ann").IDStr() || v["remind_in"] != "157679999" ||
		v["expires_in"] != float64(157679999) || !strings.HasPrefix(v["access_token"].(string), "2.00") {
		t.Errorf("access_token: %d %v; want uid and remind_in strings, expires_in a number", status, v)
	}
	// Parameters in the query of a POST, as some SDKs send them.
	p := url.Values{"client_id": {f.key}, "client_secret": {f.secret}, "grant_type": {"authorization_code"}, "code": {f.login(t, "ann")}, "redirect_uri": {callback}}
	resp, err := http.Post(f.base+weibotest.PathAccessToken+"?"+p.Encode(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("access_token with the parameters in the query: %s", resp.Status)
	}
}

func TestAccessTokenErrors(t *testing.T) {
	f := start(t, &weibotest.Server{})
	used := f.login(t, "ann")
	f.exchange(t, used, nil)
	expired := f.login(t, "ann")
	f.clock.Add(weibotest.CodeLifetime)
	live := f.login(t, "ann")
	for _, c := range []struct {
		name  string
		code  string
		extra url.Values
		want  float64
		error string
	}{
		{"no client_id", live, url.Values{"client_id": {""}}, 21323, "invalid_request"},
		{"wrong secret", live, url.Values{"client_secret": {"00"}}, 21324, "invalid_client"},
		{"grant_type", live, url.Values{"grant_type": {"password"}}, 21328, "unsupported_grant_type"},
		{"no code", "", nil, 21323, "invalid_request"},
		{"redirect_uri", live, url.Values{"redirect_uri": {"https://evil.example/"}}, 21322, "redirect_uri_mismatch"},
		{"unknown code", "0123", nil, 21325, "invalid_grant"},
		{"used code", used, nil, 21325, "invalid_grant"},
		{"expired code", expired, nil, 21325, "invalid_grant"},
	} {
		status, v := f.exchange(t, c.code, c.extra)
		if status != http.StatusBadRequest || v["error_code"] != c.want || v["error"] != c.error ||
			v["request"] != weibotest.PathAccessToken || v["error_description"] == nil {
			t.Errorf("%s: %d %v; want 400 %s %v", c.name, status, v, c.error, c.want)
		}
	}
	if status, v := f.call(t, http.MethodGet, weibotest.PathAccessToken, url.Values{"code": {live}}); status != http.StatusBadRequest || v["error_code"] != float64(10021) {
		t.Errorf("GET access_token: %d %v; want 10021", status, v)
	}
	if status, v := f.exchange(t, live, nil); status != http.StatusOK {
		t.Errorf("live code after the failures: %d %v; want it unconsumed", status, v)
	}
}

func TestGetTokenInfo(t *testing.T) {
	f := start(t, &weibotest.Server{})
	tok := f.token(t, "ann")
	f.clock.Add(time.Hour)
	status, v := f.call(t, http.MethodPost, weibotest.PathGetTokenInfo, url.Values{"access_token": {tok}})
	if status != http.StatusOK || v["uid"] != float64(weibotest.UserNamed("ann").UID) || v["appkey"] != f.key ||
		v["scope"] != nil || v["create_at"] != float64(f.clock.Now().Add(-time.Hour).Unix()) || v["expire_in"] != float64(157679999-3600) {
		t.Errorf("get_token_info: %d %v", status, v)
	}
	f.clock.Add(weibotest.TokenLifetime)
	for _, c := range []struct {
		token string
		want  float64
	}{{tok, 21327}, {"2.00nope", 21332}, {"", 21323}} {
		if status, v := f.call(t, http.MethodPost, weibotest.PathGetTokenInfo, url.Values{"access_token": {c.token}}); status != http.StatusBadRequest || v["error_code"] != c.want {
			t.Errorf("get_token_info(%q): %d %v; want %v", c.token, status, v, c.want)
		}
	}
}

func TestUsersShow(t *testing.T) {
	f := start(t, &weibotest.Server{})
	ann := weibotest.UserNamed("ann")
	tok := f.token(t, "ann")
	status, v := f.call(t, http.MethodGet, weibotest.PathUsersShow, url.Values{"access_token": {tok}, "uid": {ann.IDStr()}})
	if status != http.StatusOK || v["idstr"] != ann.IDStr() || v["id"] != float64(ann.UID) || v["screen_name"] != "ann (sandbox)" || v["avatar_large"] == "" {
		t.Errorf("users/show: %d %v", status, v)
	}
	if _, v := f.call(t, http.MethodGet, weibotest.PathUsersShow, url.Values{"access_token": {tok}, "screen_name": {ann.ScreenName}}); v["idstr"] != ann.IDStr() {
		t.Errorf("users/show by screen_name: %v", v)
	}
	expiring := f.token(t, "ann")
	f.clock.Add(weibotest.TokenLifetime)
	tok = f.token(t, "ann")
	for _, c := range []struct {
		name string
		q    url.Values
		want float64
	}{
		{"no token", url.Values{"uid": {ann.IDStr()}}, 21301},
		{"unknown token", url.Values{"access_token": {"2.00nope"}, "uid": {ann.IDStr()}}, 21332},
		{"expired token", url.Values{"access_token": {expiring}, "uid": {ann.IDStr()}}, 21327},
		{"no uid", url.Values{"access_token": {tok}}, 10016},
		{"another user", url.Values{"access_token": {tok}, "uid": {weibotest.UserNamed("bob").IDStr()}}, 20003},
	} {
		if status, v := f.call(t, http.MethodGet, weibotest.PathUsersShow, c.q); status != http.StatusBadRequest || v["error_code"] != c.want || v["request"] != weibotest.PathUsersShow {
			t.Errorf("%s: %d %v; want %v", c.name, status, v, c.want)
		}
	}
}

func TestUIDs(t *testing.T) {
	ann, bob := weibotest.UserNamed("ann"), weibotest.UserNamed("bob")
	if ann.UID == bob.UID || len(ann.IDStr()) != 10 || weibotest.UserNamed("ann") != ann {
		t.Errorf("uids %d, %d; want 10 digits, stable and distinct", ann.UID, bob.UID)
	}
}

func TestKnobs(t *testing.T) {
	f := start(t, &weibotest.Server{})
	code := f.login(t, "ann")
	f.srv.FailNext(weibotest.PathAccessToken, 21331, 1)
	if status, v := f.exchange(t, code, nil); status != http.StatusBadRequest || v["error"] != "temporarily_unavailable" {
		t.Errorf("injected failure: %d %v", status, v)
	}
	if status, _ := f.exchange(t, code, nil); status != http.StatusOK {
		t.Errorf("the code after an injected failure: %d; want it unconsumed", status)
	}
	f.srv.SetDown(true)
	resp, err := http.Get(f.authorizeURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || f.srv.Requests(weibotest.PathAuthorize) != 2 {
		t.Errorf("down: %s, %d authorize requests; want 503, 2", resp.Status, f.srv.Requests(weibotest.PathAuthorize))
	}
}

func TestSharedState(t *testing.T) {
	key, secret := weibotest.DefaultApp()
	st := oauthsandbox.NewMemoryState()
	a := start(t, &weibotest.Server{AppKey: key, AppSecret: secret, State: st})
	b := start(t, &weibotest.Server{AppKey: key, AppSecret: secret, State: st})
	status, v := b.exchange(t, a.login(t, "ann"), nil)
	if status != http.StatusOK {
		t.Fatalf("a code from node a on node b: %d %v", status, v)
	}
	if status, _ := a.call(t, http.MethodPost, weibotest.PathGetTokenInfo, url.Values{"access_token": {v["access_token"].(string)}}); status != http.StatusOK {
		t.Errorf("node b's token on node a: %d", status)
	}
}
