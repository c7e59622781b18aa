package wechatweb_test

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

// fake is an httptest server that answers each WeChat path from its table
// and fails the test on any other path. It records the queries it got.
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	answers map[string]func() string

	mu      sync.Mutex
	queries map[string][]url.Values
}

func newFake(t *testing.T, answers map[string]func() string) *fake {
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
	body := a()
	if strings.HasPrefix(body, "HTTP ") { // a status page instead of WeChat's JSON
		var status int
		fmt.Sscanf(body, "HTTP %d", &status)
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, body)
}

func (f *fake) requests(path string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[path]
}

func fixed(body string) func() string { return func() string { return body } }

func okAnswers() map[string]func() string {
	return map[string]func() string{"/sns/oauth2/access_token": fixed(tokenOK), "/sns/userinfo": fixed(userOK)}
}

func newProvider(t *testing.T, api string, hc *http.Client) (*wechatweb.Provider, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	p, err := wechatweb.New(wechatweb.Config{OpenBaseURL: "https://open.example", APIBaseURL: api, AppID: appID, Secret: secret,
		HTTPClient: hc, Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func exchange() authcore.OAuthExchange {
	return authcore.OAuthExchange{Code: code, RedirectURI: redirect, CodeVerifier: "verifier-not-for-wechat", Nonce: "n"}
}

// checkNoSecrets fails if the app secret or the access token shows in s.
func checkNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range []string{secret, token} {
		if strings.Contains(s, sec) {
			t.Errorf("%s holds a secret %q: %s", what, sec, s)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  wechatweb.Config
	}{
		{"no app id", wechatweb.Config{Secret: secret}},
		{"no secret", wechatweb.Config{AppID: appID}},
		{"open base not http", wechatweb.Config{OpenBaseURL: "open.weixin.qq.com", AppID: appID, Secret: secret}},
		{"api base with query", wechatweb.Config{APIBaseURL: "https://api.weixin.qq.com?x", AppID: appID, Secret: secret}},
		{"open base with fragment", wechatweb.Config{OpenBaseURL: "https://open.weixin.qq.com#x", AppID: appID, Secret: secret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := wechatweb.New(c.cfg)
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
		if err != nil || start.Carry != "" {
			t.Fatalf("AuthorizeURL: %+v, %v; want a URL and no carry", start, err)
		}
		got := start.URL
		if got != c.want {
			t.Errorf("AuthorizeURL =\n%s\nwant\n%s", got, c.want)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatal(err)
		}
		if u.Fragment != "wechat_redirect" || u.Query().Get("state") != state {
			t.Errorf("fragment %q, state %q", u.Fragment, u.Query().Get("state"))
		}
		checkNoSecrets(t, "authorize URL", got)
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
			f := newFake(t, map[string]func() string{"/sns/oauth2/access_token": fixed(c.token), "/sns/userinfo": fixed(c.user)})
			p, logs := newProvider(t, f.srv.URL+"/", nil)
			got, err := p.Identity(context.Background(), exchange())
			if err != nil {
				t.Fatalf("Identity: %v", err)
			}
			if got != c.want {
				t.Errorf("Identity = %+v, want %+v", got, c.want)
			}
			checkNoSecrets(t, "log", logs.String())
			wantToken := url.Values{"appid": {appID}, "secret": {secret}, "code": {code}, "grant_type": {"authorization_code"}}
			if tq := f.requests("/sns/oauth2/access_token"); len(tq) != 1 || tq[0].Encode() != wantToken.Encode() {
				t.Errorf("access_token requests = %v, want one with %v", tq, wantToken)
			}
			wantInfo := url.Values{"access_token": {token}, "openid": {openID}}
			if iq := f.requests("/sns/userinfo"); len(iq) != 1 || iq[0].Encode() != wantInfo.Encode() {
				t.Errorf("userinfo requests = %v, want one with %v", iq, wantInfo)
			}
		})
	}
}

func TestIdentityErrors(t *testing.T) {
	const tokenPath, infoPath = "/sns/oauth2/access_token", "/sns/userinfo"
	for _, c := range []struct {
		name     string
		path     string
		body     string
		want     authcore.Kind
		wantLogs []string
	}{
		{"invalid code", tokenPath, wechatError(40029, "invalid code"), authcore.KindUnauthorized, []string{"40029", "invalid code"}},
		{"code used", tokenPath, wechatError(40163, "code been used"), authcore.KindUnauthorized, []string{"40163", "code been used"}},
		{"code expired", tokenPath, wechatError(42003, "code expired"), authcore.KindUnauthorized, []string{"42003", "code expired"}},
		{"bad appid", tokenPath, wechatError(40013, "invalid appid"), authcore.KindUpstreamUnavailable,
			[]string{"40013", "invalid appid", "misconfiguration", `"level":"ERROR"`}},
		{"bad secret", tokenPath, wechatError(40125, "invalid appsecret"), authcore.KindUpstreamUnavailable,
			[]string{"40125", "invalid appsecret", "misconfiguration"}},
		{"system busy", tokenPath, wechatError(-1, "system error"), authcore.KindUpstreamUnavailable, []string{`"errcode":-1`, "system error", `"level":"WARN"`}},
		{"quota", tokenPath, wechatError(45011, "api minute-quota reach limit"), authcore.KindUpstreamUnavailable, []string{"45011"}},
		{"token without openid", tokenPath, `{"access_token":"` + token + `","expires_in":7200}`, authcore.KindUpstreamUnavailable,
			[]string{"without access_token or openid"}},
		{"token not JSON", tokenPath, "<html>" + token + "</html>", authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"token HTTP 502", tokenPath, "HTTP 502", authcore.KindUpstreamUnavailable, []string{"HTTP 502"}},
		{"userinfo: token expired", infoPath, wechatError(42001, "access_token expired"), authcore.KindUpstreamUnavailable,
			[]string{"42001", "access_token expired"}},
		{"userinfo: another user", infoPath, `{"openid":"o-someone-else","nickname":"x"}`, authcore.KindUpstreamUnavailable,
			[]string{"o-someone-else"}},
		{"userinfo HTTP 404", infoPath, "HTTP 404", authcore.KindUpstreamUnavailable, []string{"HTTP 404"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers[c.path] = fixed(c.body)
			f := newFake(t, answers)
			p, logs := newProvider(t, f.srv.URL, nil)
			_, err := p.Identity(context.Background(), exchange())
			if got := authcore.KindOf(err); err == nil || got != c.want {
				t.Fatalf("Identity error = %v (kind %v), want kind %v", err, got, c.want)
			}
			var e *authcore.Error
			if errors.As(err, &e) && (strings.Contains(e.Message, "errcode") || strings.Contains(e.Message, "invalid")) {
				t.Errorf("client message %q shows WeChat's text", e.Message)
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

func TestIdentityRejectsCodeLocally(t *testing.T) {
	f := newFake(t, okAnswers())
	p, _ := newProvider(t, f.srv.URL, nil)
	for _, c := range []string{"", strings.Repeat("a", 513)} {
		e := exchange()
		e.Code = c
		if _, err := p.Identity(context.Background(), e); authcore.KindOf(err) != authcore.KindUnauthorized {
			t.Errorf("Identity(code of %d bytes) = %v, want KindUnauthorized", len(c), err)
		}
	}
	if n := len(f.requests("/sns/oauth2/access_token")); n != 0 {
		t.Errorf("%d token requests, want none", n)
	}
}

// TestIdentityTimeout: a WeChat that never answers fails the login with
// KindUpstreamUnavailable when the HTTP client's timeout or the caller's
// deadline passes, and the error and log hold no secret.
func TestIdentityTimeout(t *testing.T) {
	for _, path := range []string{"/sns/oauth2/access_token", "/sns/userinfo"} {
		for _, how := range []string{"client timeout", "context deadline"} {
			t.Run(path+" "+how, func(t *testing.T) {
				release := make(chan struct{})
				answers := okAnswers()
				answers[path] = func() string { <-release; return tokenOK }
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
