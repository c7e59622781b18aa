package qqtest_test

import (
	"context"
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
	"github.com/loginhub/loginhub/authcore/qq/qqtest"
)

const callback = "https://hub.example/v1/oauth/qq/callback?x=1"

type fixture struct {
	srv   *qqtest.Server
	base  string
	clock *oauthsandbox.Clock
	appid string
	key   string
}

func start(t *testing.T, srv *qqtest.Server) *fixture {
	t.Helper()
	if srv.RedirectURIs == nil {
		srv.RedirectURIs = []string{callback}
	}
	c := srv.ManualClock(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC))
	appid, key := srv.App()
	return &fixture{srv: srv, base: oauthsandbox.Start(t, srv), clock: c, appid: appid, key: key}
}

func (f *fixture) authorizeURL(extra url.Values) string {
	q := url.Values{"response_type": {"code"}, "client_id": {f.appid}, "redirect_uri": {callback}, "state": {"st-1"}, "scope": {"get_user_info"}}
	for k, v := range extra {
		q[k] = v
	}
	return f.base + qqtest.PathAuthorize + "?" + q.Encode()
}

// login runs the consent page as user and returns the code QQ sends back.
func (f *fixture) login(t *testing.T, user string) string {
	t.Helper()
	return browsertest.Login(t, f.authorizeURL(nil), user).Get("code")
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func (f *fixture) tokenURL(code string, extra url.Values) string {
	q := url.Values{"grant_type": {"authorization_code"}, "client_id": {f.appid}, "client_secret": {f.key}, "code": {code}, "redirect_uri": {callback}}
	for k, v := range extra {
		q[k] = v
	}
	return f.base + qqtest.PathToken + "?" + q.Encode()
}

// token exchanges code and returns the access token (default form).
func (f *fixture) token(t *testing.T, code string) string {
	t.Helper()
	_, body := get(t, f.tokenURL(code, nil))
	v, err := url.ParseQuery(body)
	if err != nil || v.Get("access_token") == "" {
		t.Fatalf("token answer %q", body)
	}
	return v.Get("access_token")
}

var jsonp = regexp.MustCompile(`^callback\( (\{.*\}) \);\n$`)

// unJSONP returns the JSON inside QQ's callback( ... ); failing t if body
// is not in that form.
func unJSONP(t *testing.T, body string) map[string]any {
	t.Helper()
	m := jsonp.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%q is not QQ's JSONP", body)
	}
	return decode(t, m[1])
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

func TestConsentAllow(t *testing.T) {
	f := start(t, &qqtest.Server{})
	status, page := get(t, f.authorizeURL(nil))
	if status != http.StatusOK || !strings.Contains(page, `<form method="post">`) || !strings.Contains(page, `name="user"`) || !strings.Contains(page, `name="deny" value="1"`) {
		t.Fatalf("consent page %d %q; want a form posting user or deny", status, page)
	}
	a := browsertest.Choose(t, f.authorizeURL(nil), url.Values{"user": {"ann"}})
	loc := a.Location
	if a.Status != http.StatusFound || loc == nil {
		t.Fatalf("allow: %d %q; want 302", a.Status, a.Body)
	}
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "https://hub.example/v1/oauth/qq/callback" {
		t.Errorf("redirected to %s, want the callback", got)
	}
	if q.Get("x") != "1" || q.Get("state") != "st-1" || !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(q.Get("code")) {
		t.Errorf("callback query %v; want x=1 kept, state=st-1 and a 32-hex code", q)
	}
}

func TestConsentDeny(t *testing.T) {
	f := start(t, &qqtest.Server{})
	for _, c := range []struct {
		display string
		want    url.Values // nil: no redirect, the window closes
	}{
		{"", nil},
		{"mobile", url.Values{"usercancel": {"1"}, "state": {"st-1"}, "x": {"1"}}},
	} {
		a := browsertest.Choose(t, f.authorizeURL(url.Values{"display": {c.display}}), url.Values{"deny": {"1"}})
		switch {
		case c.want == nil && (a.Status != http.StatusOK || !strings.Contains(a.Body, "window.close()")):
			t.Errorf("deny on the PC page: %d %q; want a page that closes itself", a.Status, a.Body)
		case c.want != nil && (a.Location == nil || a.Location.Query().Encode() != c.want.Encode()):
			t.Errorf("deny on the mobile page: %d to %v; want a redirect with %v", a.Status, a.Location, c.want)
		}
	}
}

func TestConsentBadUserName(t *testing.T) {
	f := start(t, &qqtest.Server{})
	for _, name := range []string{"", strings.Repeat("x", 65), "a\nb"} {
		if a := browsertest.Choose(t, f.authorizeURL(nil), url.Values{"user": {name}}); a.Status != http.StatusBadRequest || !strings.Contains(a.Body, "<form") {
			t.Errorf("user %q: %d, want 400 and the page again", name, a.Status)
		}
	}
}

func TestAuthorizeErrors(t *testing.T) {
	f := start(t, &qqtest.Server{})
	for _, c := range []struct {
		name  string
		extra url.Values
		code  string
	}{
		{"response_type", url.Values{"response_type": {"token"}}, "100000"},
		{"no client_id", url.Values{"client_id": {""}}, "100001"},
		{"unknown appid", url.Values{"client_id": {"101000000"}}, "100008"},
		{"redirect_uri", url.Values{"redirect_uri": {"https://evil.example/cb"}}, "100010"},
		{"redirect_uri's query", url.Values{"redirect_uri": {"https://hub.example/v1/oauth/qq/callback"}}, "100010"},
	} {
		// Even a POST that allows gets the error page, and no code.
		if a := browsertest.Choose(t, f.authorizeURL(c.extra), url.Values{"user": {"ann"}}); a.Location != nil || !strings.Contains(a.Body, "<h1>"+c.code+"</h1>") {
			t.Errorf("%s: %d %q, location %v; want the error page %s", c.name, a.Status, a.Body, a.Location, c.code)
		}
	}
}

func TestTokenForms(t *testing.T) {
	f := start(t, &qqtest.Server{})
	u := f.srv.User("ann")

	_, body := get(t, f.tokenURL(f.login(t, "ann"), nil))
	if !regexp.MustCompile(`^access_token=[0-9A-F]{32}&expires_in=7776000&refresh_token=[0-9A-F]{32}$`).MatchString(body) {
		t.Errorf("default token answer %q; want access_token=..&expires_in=7776000&refresh_token=..", body)
	}
	_, body = get(t, f.tokenURL(f.login(t, "ann"), url.Values{"need_openid": {"1"}}))
	if v, _ := url.ParseQuery(body); v.Get("openid") != u.OpenID || !strings.HasSuffix(body, "&openid="+u.OpenID) {
		t.Errorf("need_openid=1 answer %q; want openid %s last", body, u.OpenID)
	}
	_, body = get(t, f.tokenURL(f.login(t, "ann"), url.Values{"fmt": {"json"}}))
	v := decode(t, body)
	if v["expires_in"] != "7776000" || v["access_token"] == nil || v["refresh_token"] == nil || v["openid"] != nil {
		t.Errorf("fmt=json answer %s; want expires_in the STRING \"7776000\", the tokens and no openid", body)
	}
	_, body = get(t, f.tokenURL(f.login(t, "ann"), url.Values{"fmt": {"json"}, "need_openid": {"1"}}))
	if v := decode(t, body); v["openid"] != u.OpenID {
		t.Errorf("fmt=json&need_openid=1 answer %s; want openid %s", body, u.OpenID)
	}
}

func TestTokenErrors(t *testing.T) {
	f := start(t, &qqtest.Server{})
	used := f.login(t, "ann")
	f.token(t, used)
	expired := f.login(t, "ann")
	f.clock.Add(qqtest.CodeLifetime - time.Second)
	live := f.login(t, "ann")
	f.clock.Add(time.Second) // expired's 10 minutes are up; live's are not

	for _, c := range []struct {
		name  string
		code  string
		extra url.Values
		want  float64
	}{
		{"grant_type", live, url.Values{"grant_type": {"password"}}, 100004},
		{"no client_id", live, url.Values{"client_id": {""}}, 100001},
		{"no client_secret", live, url.Values{"client_secret": {""}}, 100002},
		{"unknown appid", live, url.Values{"client_id": {"101000000"}}, 100008},
		{"wrong appkey", live, url.Values{"client_secret": {"0123456789abcdef0123456789abcdef"}}, 100009},
		{"no code", "", nil, 100005},
		{"unregistered redirect_uri", live, url.Values{"redirect_uri": {"https://evil.example/"}}, 100010},
		{"unknown code", "0123456789ABCDEF0123456789ABCDEF", nil, 100019},
		{"expired code", expired, nil, 100019},
		{"reused code", used, nil, 100020},
	} {
		for _, form := range []string{"jsonp", "json"} {
			extra := url.Values{}
			for k, v := range c.extra {
				extra[k] = v
			}
			if form == "json" {
				extra.Set("fmt", "json")
			}
			status, body := get(t, f.tokenURL(c.code, extra))
			var v map[string]any
			if form == "json" {
				v = decode(t, body)
			} else {
				v = unJSONP(t, body)
			}
			if status != http.StatusOK || v["error"] != c.want || v["error_description"] == "" {
				t.Errorf("%s (%s): %d %s; want error %v", c.name, form, status, body, c.want)
			}
		}
	}
	f.token(t, live) // none of the failures above consumed it

	// An exchange with another registered redirect_uri than the
	// authorization's fails.
	g := start(t, &qqtest.Server{RedirectURIs: []string{callback, "https://hub.example/other"}})
	_, body := get(t, g.tokenURL(g.login(t, "ann"), url.Values{"redirect_uri": {"https://hub.example/other"}}))
	if v := unJSONP(t, body); v["error"] != float64(100010) {
		t.Errorf("exchange with another redirect_uri: %s; want 100010", body)
	}
}

func TestMe(t *testing.T) {
	f := start(t, &qqtest.Server{})
	u := f.srv.User("ann")
	tok := f.token(t, f.login(t, "ann"))
	me := f.base + qqtest.PathMe + "?access_token=" + tok

	_, body := get(t, me)
	if want := `callback( {"client_id":"` + f.appid + `","openid":"` + u.OpenID + `"} );` + "\n"; body != want {
		t.Errorf("me: %q\nwant %q", body, want)
	}
	_, body = get(t, me+"&unionid=1")
	if v := unJSONP(t, body); v["unionid"] != u.UnionID || v["openid"] != u.OpenID {
		t.Errorf("me with unionid=1: %s; want unionid %s", body, u.UnionID)
	}
	_, body = get(t, me+"&unionid=1&fmt=json")
	if v := decode(t, body); v["unionid"] != u.UnionID || v["client_id"] != f.appid {
		t.Errorf("me with fmt=json: %s", body)
	}

	expiring := f.token(t, f.login(t, "bob"))
	f.clock.Add(qqtest.TokenLifetime)
	fresh := f.token(t, f.login(t, "bob"))
	_, body = get(t, f.base+qqtest.PathMe+"?access_token="+fresh)
	if v := unJSONP(t, body); v["openid"] != f.srv.User("bob").OpenID {
		t.Errorf("me with a fresh token: %s", body)
	}
	for _, c := range []struct {
		name, query string
		want        float64
	}{
		{"no token", "", 100007},
		{"unknown token", "access_token=0123456789ABCDEF0123456789ABCDEF", 100016},
		{"expired token", "access_token=" + expiring, 100014},
	} {
		_, body := get(t, f.base+qqtest.PathMe+"?"+c.query)
		if v := unJSONP(t, body); v["error"] != c.want {
			t.Errorf("%s: %s; want error %v", c.name, body, c.want)
		}
	}
}

func TestNoUnionIDPermission(t *testing.T) {
	f := start(t, &qqtest.Server{NoUnionID: true})
	tok := f.token(t, f.login(t, "ann"))
	_, body := get(t, f.base+qqtest.PathMe+"?unionid=1&access_token="+tok)
	if v := unJSONP(t, body); v["error"] != float64(100048) {
		t.Errorf("unionid=1 without the permission: %s; want error 100048", body)
	}
	_, body = get(t, f.base+qqtest.PathMe+"?access_token="+tok)
	if v := unJSONP(t, body); v["openid"] != f.srv.User("ann").OpenID {
		t.Errorf("me without unionid=1: %s; want the openid", body)
	}
}

func TestUserInfo(t *testing.T) {
	f := start(t, &qqtest.Server{})
	u := f.srv.User("ann")
	tok := f.token(t, f.login(t, "ann"))
	info := func(q url.Values) map[string]any {
		_, body := get(t, f.base+qqtest.PathUserInfo+"?"+q.Encode())
		return decode(t, body)
	}
	v := info(url.Values{"access_token": {tok}, "oauth_consumer_key": {f.appid}, "openid": {u.OpenID}})
	if v["ret"] != float64(0) || v["nickname"] != "ann (sandbox)" || v["figureurl_qq_1"] == "" {
		t.Errorf("get_user_info: %v", v)
	}
	for _, k := range []string{"figureurl_type", "is_yellow_vip", "vip", "level", "year"} {
		if _, ok := v[k].(string); !ok {
			t.Errorf("%s = %#v; want a string, as QQ sends numbers", k, v[k])
		}
	}
	for _, c := range []struct {
		name string
		q    url.Values
		want float64
	}{
		{"no token", url.Values{"oauth_consumer_key": {f.appid}, "openid": {u.OpenID}}, 100007},
		{"unknown token", url.Values{"access_token": {"X"}, "oauth_consumer_key": {f.appid}, "openid": {u.OpenID}}, 100016},
		{"no openid", url.Values{"access_token": {tok}, "oauth_consumer_key": {f.appid}}, -1},
		{"another app", url.Values{"access_token": {tok}, "oauth_consumer_key": {"101000000"}, "openid": {u.OpenID}}, -1},
		{"another openid", url.Values{"access_token": {tok}, "oauth_consumer_key": {f.appid}, "openid": {f.srv.User("bob").OpenID}}, -1},
	} {
		if v := info(c.q); v["ret"] != c.want || v["msg"] == "" {
			t.Errorf("%s: %v; want ret %v", c.name, v, c.want)
		}
	}
}

func TestIDs(t *testing.T) {
	a, b := &qqtest.Server{AppID: "101000001"}, &qqtest.Server{AppID: "101000002"}
	ua, ub := a.User("ann"), b.User("ann")
	if ua.OpenID == ub.OpenID || ua.UnionID != ub.UnionID {
		t.Errorf("ann in two apps: %+v, %+v; want openids per app and one unionid", ua, ub)
	}
	if !regexp.MustCompile(`^[0-9A-F]{32}$`).MatchString(ua.OpenID) || !regexp.MustCompile(`^UID_[0-9A-F]{32}$`).MatchString(ua.UnionID) {
		t.Errorf("ids %+v; want 32 upper-case hex, and UID_ and 32", ua)
	}
	if a.User("bob").UnionID == ua.UnionID {
		t.Error("two users share a unionid")
	}
}

func TestKnobs(t *testing.T) {
	f := start(t, &qqtest.Server{})
	code := f.login(t, "ann")

	f.srv.FailNext(qqtest.PathToken, 100019, 1)
	if _, body := get(t, f.tokenURL(code, nil)); unJSONP(t, body)["error"] != float64(100019) {
		t.Errorf("injected failure: %s", body)
	}
	tok := f.token(t, code) // the injected failure did not consume it

	f.srv.FailNext(qqtest.PathUserInfo, 100030, 1)
	if _, body := get(t, f.base+qqtest.PathUserInfo); decode(t, body)["ret"] != float64(100030) {
		t.Errorf("injected get_user_info failure: %s", body)
	}
	f.srv.FailNextHTTP(qqtest.PathMe, http.StatusBadGateway, 1)
	if status, _ := get(t, f.base+qqtest.PathMe+"?access_token="+tok); status != http.StatusBadGateway {
		t.Errorf("injected gateway failure: %d", status)
	}
	f.srv.SetDown(true)
	if status, _ := get(t, f.base+qqtest.PathMe+"?access_token="+tok); status != http.StatusServiceUnavailable {
		t.Errorf("down: %d, want 503", status)
	}
	f.srv.SetDown(false)

	release := f.srv.Hold(qqtest.PathMe)
	done := make(chan string)
	go func() {
		resp, err := http.Get(f.base + qqtest.PathMe + "?access_token=" + tok)
		if err != nil {
			done <- err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- string(body)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before := f.srv.Requests(qqtest.PathMe)
	if !f.srv.WaitRequests(ctx.Done(), qqtest.PathMe, before+1) {
		t.Fatal("the held request never arrived")
	}
	select {
	case body := <-done:
		t.Fatalf("a held request answered %q", body)
	default:
	}
	release()
	if body := <-done; !strings.Contains(body, f.srv.User("ann").OpenID) {
		t.Errorf("released request: %q", body)
	}
}

func TestUnknownPath(t *testing.T) {
	srv := &qqtest.Server{}
	base := oauthsandbox.Start(noUnknownCheck{t}, srv)
	if status, _ := get(t, base+"/oauth2.0/nope"); status != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", status)
	}
	if got := srv.UnknownRequests(); len(got) != 1 || got[0] != "GET /oauth2.0/nope" {
		t.Errorf("UnknownRequests = %q", got)
	}
}

// noUnknownCheck lets a test call an unknown path on purpose: Start's
// end-of-test check reports it through Errorf, which this drops.
type noUnknownCheck struct{ *testing.T }

func (noUnknownCheck) Errorf(string, ...any) {}

// TestSharedState: two Servers on one State answer as one QQ, as two hub
// nodes do.
func TestSharedState(t *testing.T) {
	appid, key := qqtest.DefaultApp()
	st := oauthsandbox.NewMemoryState()
	a := start(t, &qqtest.Server{AppID: appid, AppKey: key, State: st})
	b := start(t, &qqtest.Server{AppID: appid, AppKey: key, State: st})
	tok := b.token(t, a.login(t, "ann"))
	if _, body := get(t, a.base+qqtest.PathMe+"?access_token="+tok); unJSONP(t, body)["openid"] != a.srv.User("ann").OpenID {
		t.Errorf("a token from node b on node a: %s", body)
	}
}
