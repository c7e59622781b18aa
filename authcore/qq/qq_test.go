package qq_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
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

// syncBuffer is a log sink safe for the server's and the client's
// goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// answer is a canned QQ answer: a body with its content type.
type answer struct {
	contentType string
	body        string
	status      int // 0 means 200, as QQ answers even its errors
}

func jsonp(obj string) answer {
	return answer{"text/html; charset=utf-8", "callback( " + obj + " );\n", 0}
}
func jsonBody(obj string) answer {
	return answer{"application/json", obj, 0}
}
func form(body string) answer { return answer{"text/html; charset=utf-8", body, 0} }

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

// fake is an httptest server that answers each QQ path from its table and
// fails the test on any other path. It records the queries it got.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	answers map[string]func(url.Values) answer

	mu      sync.Mutex
	queries map[string][]url.Values
}

func newFake(t *testing.T, answers map[string]func(url.Values) answer) *fake {
	f := &fake{t: t, answers: answers, queries: map[string][]url.Values{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		f.t.Errorf("%s %s, want GET", r.Method, r.URL.Path)
	}
	f.mu.Lock()
	f.queries[r.URL.Path] = append(f.queries[r.URL.Path], r.URL.Query())
	f.mu.Unlock()
	a, ok := f.answers[r.URL.Path]
	if !ok {
		f.t.Errorf("unexpected request to %s", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	ans := a(r.URL.Query())
	w.Header().Set("Content-Type", ans.contentType)
	if ans.status != 0 {
		w.WriteHeader(ans.status)
	}
	fmt.Fprint(w, ans.body)
}

func (f *fake) requests(path string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[path]
}

func fixed(a answer) func(url.Values) answer { return func(url.Values) answer { return a } }

// okAnswers is a login that succeeds, with a unionid and the JSON token.
func okAnswers() map[string]func(url.Values) answer {
	return map[string]func(url.Values) answer{
		"/oauth2.0/token":     fixed(tokenJSON),
		"/oauth2.0/me":        fixed(meUnion),
		"/user/get_user_info": fixed(userInfoOK),
	}
}

func newProvider(t *testing.T, base string, hc *http.Client) (*qq.Provider, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	p, err := qq.New(qq.Config{BaseURL: base + "/", AppID: appID, AppKey: appKey, HTTPClient: hc,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func exchange() authcore.OAuthExchange {
	return authcore.OAuthExchange{Code: code, RedirectURI: redirect, CodeVerifier: "verifier-not-for-qq", Nonce: "n"}
}

// checkNoSecrets fails if the app key or the access token shows in s.
func checkNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{appKey, token} {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds a secret %q: %s", what, secret, s)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  qq.Config
	}{
		{"no app id", qq.Config{AppKey: appKey}},
		{"no app key", qq.Config{AppID: appID}},
		{"not http", qq.Config{BaseURL: "ftp://graph.qq.com", AppID: appID, AppKey: appKey}},
		{"no host", qq.Config{BaseURL: "https://", AppID: appID, AppKey: appKey}},
		{"query", qq.Config{BaseURL: "https://graph.qq.com?x=1", AppID: appID, AppKey: appKey}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := qq.New(c.cfg)
			if got := authcore.KindOf(err); err == nil || got != authcore.KindInvalid {
				t.Errorf("New = %v (kind %v), want a KindInvalid error", err, got)
			}
			if err != nil {
				checkNoSecrets(t, "error", err.Error())
			}
		})
	}
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
		if err != nil || start.Carry != "" {
			t.Fatalf("AuthorizeURL: %+v, %v; want a URL and no carry", start, err)
		}
		got := start.URL
		if !strings.HasPrefix(got, c.wantPrefix) {
			t.Fatalf("AuthorizeURL = %s, want prefix %s", got, c.wantPrefix)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		want := url.Values{
			"response_type": {"code"},
			"client_id":     {appID},
			"redirect_uri":  {redirect},
			"state":         {"st4te-43-characters_____________________x"},
			"scope":         {"get_user_info"},
		}
		if q := u.Query(); q.Encode() != want.Encode() {
			t.Errorf("query = %v, want %v (no PKCE, no nonce, no secret)", q, want)
		}
		checkNoSecrets(t, "authorize URL", got)
	}
}

func TestIdentity(t *testing.T) {
	want := authcore.ExternalIdentity{Subject: unionID, Nickname: "小明", AvatarURL: "https://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100"}
	for _, c := range []struct {
		name    string
		answers map[string]func(url.Values) answer
		want    authcore.ExternalIdentity
	}{
		{"JSON token, expires_in a string", nil, want},
		{"urlencoded token (QQ's default)", map[string]func(url.Values) answer{"/oauth2.0/token": fixed(tokenForm)}, want},
		{"me as plain JSON", map[string]func(url.Values) answer{"/oauth2.0/me": fixed(jsonBody(strings.TrimSpace(
			strings.TrimSuffix(strings.TrimPrefix(meUnion.body, "callback( "), " );\n"))))}, want},
		{"JSONP without spaces", map[string]func(url.Values) answer{"/oauth2.0/me": fixed(answer{"text/html", `callback({"client_id":"` + appID + `","openid":"` + openID + `","unionid":"` + unionID + `"});`, 0})}, want},
		{"only the 40×40 avatar", map[string]func(url.Values) answer{"/user/get_user_info": fixed(jsonBody(
			`{"ret":0,"msg":"","nickname":"小明","figureurl_qq_1":"http://thirdqq.qlogo.cn/g?s=40","figureurl_qq_2":""}`))},
			authcore.ExternalIdentity{Subject: unionID, Nickname: "小明", AvatarURL: "https://thirdqq.qlogo.cn/g?s=40"}},
		{"an avatar that is no URL", map[string]func(url.Values) answer{"/user/get_user_info": fixed(jsonBody(
			`{"ret":0,"msg":"","nickname":"小明","figureurl_qq_1":"javascript:alert(1)","figureurl_qq_2":"data:x"}`))},
			authcore.ExternalIdentity{Subject: unionID, Nickname: "小明"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			for path, a := range c.answers {
				answers[path] = a
			}
			f := newFake(t, answers)
			p, logs := newProvider(t, f.srv.URL, nil)
			got, err := p.Identity(context.Background(), exchange())
			if err != nil {
				t.Fatalf("Identity: %v", err)
			}
			if got != c.want {
				t.Errorf("Identity = %+v, want %+v", got, c.want)
			}
			checkNoSecrets(t, "log", logs.String())

			tq := f.requests("/oauth2.0/token")
			wantToken := url.Values{"grant_type": {"authorization_code"}, "client_id": {appID}, "client_secret": {appKey},
				"code": {code}, "redirect_uri": {redirect}, "fmt": {"json"}}
			if len(tq) != 1 || tq[0].Encode() != wantToken.Encode() {
				t.Errorf("token requests = %v, want one with %v", tq, wantToken)
			}
			if mq := f.requests("/oauth2.0/me"); len(mq) != 1 || mq[0].Get("access_token") != token || mq[0].Get("unionid") != "1" {
				t.Errorf("me requests = %v, want one with the token and unionid=1", mq)
			}
			wantInfo := url.Values{"access_token": {token}, "oauth_consumer_key": {appID}, "openid": {openID}}
			if iq := f.requests("/user/get_user_info"); len(iq) != 1 || iq[0].Encode() != wantInfo.Encode() {
				t.Errorf("get_user_info requests = %v, want one with %v", iq, wantInfo)
			}
		})
	}
}

// TestIdentityWithoutUnionIDPermission: QQ answers 100048 to unionid=1 for
// an app without that permission; the client asks again without it and
// keys the user by openid.
func TestIdentityWithoutUnionIDPermission(t *testing.T) {
	answers := okAnswers()
	answers["/oauth2.0/me"] = func(q url.Values) answer {
		if q.Get("unionid") == "1" {
			return meNoUnionPerm
		}
		return meOpenID
	}
	f := newFake(t, answers)
	p, logs := newProvider(t, f.srv.URL, nil)
	got, err := p.Identity(context.Background(), exchange())
	if err != nil {
		t.Fatalf("Identity: %v", err)
	}
	if want := (authcore.ExternalIdentity{Subject: openID, Nickname: "小明", AvatarURL: "https://thirdqq.qlogo.cn/g?b=oidb&k=abc&s=100"}); got != want {
		t.Errorf("Identity = %+v, want %+v", got, want)
	}
	mq := f.requests("/oauth2.0/me")
	if len(mq) != 2 || mq[0].Get("unionid") != "1" || mq[1].Has("unionid") {
		t.Errorf("me requests = %v, want unionid=1 then none", mq)
	}
	if !strings.Contains(logs.String(), "100048") {
		t.Errorf("log lacks QQ's 100048: %s", logs.String())
	}
	checkNoSecrets(t, "log", logs.String())
}

func TestIdentityErrors(t *testing.T) {
	for _, c := range []struct {
		name     string
		path     string
		answer   answer
		want     authcore.Kind
		wantLogs []string // QQ's code and text, as logged
	}{
		{"code unknown or expired (JSONP)", "/oauth2.0/token", jsonp(`{"error":100019,"error_description":"code to access token error"}`),
			authcore.KindUnauthorized, []string{"100019", "code to access token error"}},
		{"code reused (JSON)", "/oauth2.0/token", jsonBody(`{"error":100020,"error_description":"code is reused error"}`),
			authcore.KindUnauthorized, []string{"100020", "code is reused error"}},
		{"error code as a string", "/oauth2.0/token", jsonBody(`{"error":"100020","error_description":"code is reused error"}`),
			authcore.KindUnauthorized, []string{"100020"}},
		{"wrong app key", "/oauth2.0/token", jsonp(`{"error":100009,"error_description":"client_secret is invalid"}`),
			authcore.KindUpstreamUnavailable, []string{"100009", "client_secret is invalid", "misconfiguration", `"level":"ERROR"`}},
		{"redirect_uri not registered", "/oauth2.0/token", jsonp(`{"error":100010,"error_description":"redirect uri is illegal"}`),
			authcore.KindUpstreamUnavailable, []string{"100010", "redirect uri is illegal", "misconfiguration"}},
		{"token without access_token", "/oauth2.0/token", form("expires_in=7776000"),
			authcore.KindUpstreamUnavailable, []string{"without access_token"}},
		{"token answer garbled", "/oauth2.0/token", jsonBody(`{"access_token":`),
			authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"token HTTP 502", "/oauth2.0/token", answer{"text/html", "<html>bad gateway " + token + "</html>", http.StatusBadGateway},
			authcore.KindUpstreamUnavailable, []string{"HTTP 502"}},
		{"me: token check failed", "/oauth2.0/me", jsonp(`{"error":100016,"error_description":"access token check failed"}`),
			authcore.KindUnauthorized, []string{"100016", "access token check failed"}},
		{"me: another app's token", "/oauth2.0/me", jsonp(`{"client_id":"109999999","openid":"` + openID + `"}`),
			authcore.KindUpstreamUnavailable, []string{"109999999"}},
		{"me without openid", "/oauth2.0/me", jsonp(`{"client_id":"` + appID + `"}`),
			authcore.KindUpstreamUnavailable, []string{"without openid"}},
		{"me not JSONP", "/oauth2.0/me", form("<html>maintenance</html>"),
			authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"get_user_info: bad parameters", "/user/get_user_info", jsonBody(`{"ret":-1,"msg":"client request's parameters are invalid, invalid openid"}`),
			authcore.KindUpstreamUnavailable, []string{`"error":-1`, "invalid openid"}},
		{"get_user_info: token expired", "/user/get_user_info", jsonBody(`{"ret":100014,"msg":"access token is expired"}`),
			authcore.KindUnauthorized, []string{"100014", "access token is expired"}},
		{"get_user_info without ret", "/user/get_user_info", jsonBody(`{"nickname":"x"}`),
			authcore.KindUpstreamUnavailable, []string{"without ret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers[c.path] = fixed(c.answer)
			f := newFake(t, answers)
			p, logs := newProvider(t, f.srv.URL, nil)
			_, err := p.Identity(context.Background(), exchange())
			if got := authcore.KindOf(err); err == nil || got != c.want {
				t.Fatalf("Identity error = %v (kind %v), want kind %v", err, got, c.want)
			}
			var e *authcore.Error
			if errors.As(err, &e) && (strings.Contains(e.Message, "error") || strings.Contains(e.Message, "100")) {
				t.Errorf("client message %q shows QQ's text", e.Message)
			}
			checkNoSecrets(t, "error", err.Error())
			checkNoSecrets(t, "log", logs.String())
			for _, w := range c.wantLogs {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q: %s", w, logs.String())
				}
			}
		})
	}
}

// TestIdentityRejectsCodeLocally: a code that cannot be QQ's is refused
// without a request.
func TestIdentityRejectsCodeLocally(t *testing.T) {
	f := newFake(t, okAnswers())
	p, _ := newProvider(t, f.srv.URL, nil)
	for _, c := range []string{"", strings.Repeat("A", 513)} {
		e := exchange()
		e.Code = c
		if _, err := p.Identity(context.Background(), e); authcore.KindOf(err) != authcore.KindUnauthorized {
			t.Errorf("Identity(code of %d bytes) = %v, want KindUnauthorized", len(c), err)
		}
	}
	if n := len(f.requests("/oauth2.0/token")); n != 0 {
		t.Errorf("%d token requests, want none", n)
	}
}

// TestIdentityTimeout: a QQ that never answers fails the login with
// KindUpstreamUnavailable when the HTTP client's timeout or the caller's
// deadline passes, and the error and log hold no secret.
func TestIdentityTimeout(t *testing.T) {
	for _, path := range []string{"/oauth2.0/token", "/oauth2.0/me", "/user/get_user_info"} {
		for _, how := range []string{"client timeout", "context deadline"} {
			t.Run(path+" "+how, func(t *testing.T) {
				release := make(chan struct{})
				answers := okAnswers()
				answers[path] = func(url.Values) answer { <-release; return tokenJSON }
				f := newFake(t, answers)
				t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
				ctx := context.Background()
				hc := &http.Client{Timeout: 50 * time.Millisecond}
				if how == "context deadline" {
					hc = nil
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
					defer cancel()
				}
				p, logs := newProvider(t, f.srv.URL, hc)
				_, err := p.Identity(ctx, exchange())
				if got := authcore.KindOf(err); err == nil || got != authcore.KindUpstreamUnavailable {
					t.Fatalf("Identity error = %v (kind %v), want KindUpstreamUnavailable", err, got)
				}
				checkNoSecrets(t, "error", err.Error())
				checkNoSecrets(t, "log", logs.String())
				if strings.Contains(err.Error(), code) || strings.Contains(logs.String(), code) {
					t.Errorf("the code shows in the error or log: %v\n%s", err, logs.String())
				}
			})
		}
	}
}
