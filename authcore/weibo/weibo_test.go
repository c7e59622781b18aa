package weibo_test

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

// answer is a canned Weibo answer: JSON with a status.
type answer struct {
	status int
	body   string
}

// weiboError is Weibo's error answer on the OAuth paths: HTTP 400.
func weiboError(path string, code int, name, description string) answer {
	return answer{http.StatusBadRequest, fmt.Sprintf(`{"error":%q,"error_code":%d,"request":%q,"error_uri":%q,"error_description":%q}`,
		name, code, path, path, description)}
}

// Real shapes of Weibo's answers.
var (
	tokenOK = answer{http.StatusOK, `{"access_token":"` + token + `","remind_in":"157679999","expires_in":157679999,"uid":"` + uid + `","isRealName":"true"}`}
	userOK  = answer{http.StatusOK, `{"id":5432109876,"idstr":"` + uid + `","class":1,"screen_name":"微博小明","name":"微博小明","province":"11",` +
		`"profile_image_url":"http://tvax1.sinaimg.cn/crop.0.0.50.50.50/abc.jpg","avatar_large":"https://tvax1.sinaimg.cn/crop.0.0.180.180.180/abc.jpg",` +
		`"avatar_hd":"https://tvax1.sinaimg.cn/crop.0.0.1024.1024.1024/abc.jpg","followers_count":3,"verified":false,"lang":"zh-cn"}`}
)

// fake is an httptest server that answers each Weibo path from its table
// and fails the test on any other path. It records the parameters it got
// (form and query).
type fake struct {
	t       *testing.T
	srv     *httptest.Server
	answers map[string]func() answer

	mu     sync.Mutex
	params map[string][]url.Values
}

func newFake(t *testing.T, answers map[string]func() answer) *fake {
	f := &fake{t: t, answers: answers, params: map[string][]url.Values{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

var methods = map[string]string{"/oauth2/access_token": http.MethodPost, "/2/users/show.json": http.MethodGet}

func (f *fake) serve(w http.ResponseWriter, r *http.Request) {
	if want := methods[r.URL.Path]; r.Method != want {
		f.t.Errorf("%s %s, want %s", r.Method, r.URL.Path, want)
	}
	if err := r.ParseForm(); err != nil {
		f.t.Errorf("%s: %v", r.URL.Path, err)
	}
	if _, _, ok := r.BasicAuth(); ok {
		f.t.Errorf("%s: credentials in a basic Authorization header; Weibo reads them from the form", r.URL.Path)
	}
	f.mu.Lock()
	f.params[r.URL.Path] = append(f.params[r.URL.Path], r.Form)
	f.mu.Unlock()
	a, ok := f.answers[r.URL.Path]
	if !ok {
		f.t.Errorf("unexpected request to %s", r.URL.Path)
		http.NotFound(w, r)
		return
	}
	ans := a()
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(ans.status)
	fmt.Fprint(w, ans.body)
}

func (f *fake) requests(path string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.params[path]
}

func fixed(a answer) func() answer { return func() answer { return a } }

func okAnswers() map[string]func() answer {
	return map[string]func() answer{"/oauth2/access_token": fixed(tokenOK), "/2/users/show.json": fixed(userOK)}
}

func newProvider(t *testing.T, base string, hc *http.Client) (*weibo.Provider, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	p, err := weibo.New(weibo.Config{BaseURL: base, ClientID: appKey, ClientSecret: appSecret, HTTPClient: hc,
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	return p, logs
}

func exchange() authcore.OAuthExchange {
	return authcore.OAuthExchange{Code: code, RedirectURI: redirect, CodeVerifier: "verifier-not-for-weibo", Nonce: "n"}
}

// checkNoSecrets fails if the app secret or the access token shows in s.
func checkNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{appSecret, token} {
		if strings.Contains(s, secret) {
			t.Errorf("%s holds a secret %q: %s", what, secret, s)
		}
	}
}

func TestNewValidates(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  weibo.Config
	}{
		{"no client id", weibo.Config{ClientSecret: appSecret}},
		{"no secret", weibo.Config{ClientID: appKey}},
		{"not http", weibo.Config{BaseURL: "api.weibo.com", ClientID: appKey, ClientSecret: appSecret}},
		{"query", weibo.Config{BaseURL: "https://api.weibo.com?a=b", ClientID: appKey, ClientSecret: appSecret}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := weibo.New(c.cfg)
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
		{"", "https://api.weibo.com/oauth2/authorize?"},
		{"http://127.0.0.1:8080/sandbox/weibo/", "http://127.0.0.1:8080/sandbox/weibo/oauth2/authorize?"},
	} {
		p, err := weibo.New(weibo.Config{BaseURL: c.base, ClientID: appKey, ClientSecret: appSecret})
		if err != nil {
			t.Fatal(err)
		}
		start, err := p.AuthorizeURL(t.Context(), authcore.OAuthAuthorize{RedirectURI: redirect, State: "st4te", CodeChallenge: "challenge", Nonce: "nonce"})
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
		want := url.Values{"client_id": {appKey}, "redirect_uri": {redirect}, "response_type": {"code"}, "state": {"st4te"}}
		if q := u.Query(); q.Encode() != want.Encode() {
			t.Errorf("query = %v, want %v (no PKCE, no nonce, no secret)", q, want)
		}
		checkNoSecrets(t, "authorize URL", got)
	}
}

func TestIdentity(t *testing.T) {
	for _, c := range []struct {
		name string
		user answer
		want authcore.ExternalIdentity
	}{
		{"avatar_large", userOK, authcore.ExternalIdentity{Subject: uid, Nickname: "微博小明",
			AvatarURL: "https://tvax1.sinaimg.cn/crop.0.0.180.180.180/abc.jpg"}},
		{"only profile_image_url, over http", answer{http.StatusOK, `{"id":5432109876,"idstr":"` + uid + `","screen_name":"小明",` +
			`"profile_image_url":"http://tvax1.sinaimg.cn/crop.0.0.50.50.50/abc.jpg"}`},
			authcore.ExternalIdentity{Subject: uid, Nickname: "小明", AvatarURL: "https://tvax1.sinaimg.cn/crop.0.0.50.50.50/abc.jpg"}},
		{"no avatar", answer{http.StatusOK, `{"id":5432109876,"idstr":"` + uid + `","screen_name":"小明"}`},
			authcore.ExternalIdentity{Subject: uid, Nickname: "小明"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			answers := okAnswers()
			answers["/2/users/show.json"] = fixed(c.user)
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
			wantToken := url.Values{"client_id": {appKey}, "client_secret": {appSecret}, "grant_type": {"authorization_code"},
				"code": {code}, "redirect_uri": {redirect}}
			if tq := f.requests("/oauth2/access_token"); len(tq) != 1 || tq[0].Encode() != wantToken.Encode() {
				t.Errorf("access_token requests = %v, want one with %v", tq, wantToken)
			}
			wantShow := url.Values{"access_token": {token}, "uid": {uid}}
			if sq := f.requests("/2/users/show.json"); len(sq) != 1 || sq[0].Encode() != wantShow.Encode() {
				t.Errorf("users/show requests = %v, want one with %v", sq, wantShow)
			}
		})
	}
}

func TestIdentityErrors(t *testing.T) {
	const tokenPath, showPath = "/oauth2/access_token", "/2/users/show.json"
	for _, c := range []struct {
		name     string
		path     string
		answer   answer
		want     authcore.Kind
		wantLogs []string
	}{
		{"code used or expired", tokenPath, weiboError(tokenPath, 21325, "invalid_grant", "invalid authorization code:"+code),
			authcore.KindUnauthorized, []string{"21325", "invalid_grant"}},
		{"wrong secret", tokenPath, weiboError(tokenPath, 21324, "invalid_client", "client_id or client_secret is invalid"),
			authcore.KindUpstreamUnavailable, []string{"21324", "invalid_client", "misconfiguration", `"level":"ERROR"`}},
		{"missing client credentials", tokenPath, weiboError(tokenPath, 21323, "invalid_request", "miss client id or secret"),
			authcore.KindUpstreamUnavailable, []string{"21323", "miss client id or secret", "misconfiguration"}},
		{"redirect_uri mismatch", tokenPath, weiboError(tokenPath, 21322, "redirect_uri_mismatch", "redirect_uri does not match"),
			authcore.KindUpstreamUnavailable, []string{"21322", "misconfiguration"}},
		{"temporarily unavailable", tokenPath, weiboError(tokenPath, 21331, "temporarily_unavailable", "the service is temporarily unavailable"),
			authcore.KindUpstreamUnavailable, []string{"21331", `"level":"WARN"`}},
		{"token HTTP 502 page", tokenPath, answer{http.StatusBadGateway, "<html>502 " + token + "</html>"},
			authcore.KindUpstreamUnavailable, []string{"HTTP 502"}},
		{"token without uid", tokenPath, answer{http.StatusOK, `{"access_token":"` + token + `","expires_in":157679999}`},
			authcore.KindUpstreamUnavailable, []string{"without uid"}},
		{"token without access_token", tokenPath, answer{http.StatusOK, `{"uid":"` + uid + `"}`},
			authcore.KindUpstreamUnavailable, []string{"missing access_token"}},
		{"token garbled", tokenPath, answer{http.StatusOK, `{"access_token":`},
			authcore.KindUpstreamUnavailable, []string{"unexpected answer"}},
		{"show: token expired", showPath, weiboError(showPath, 21327, "expired_token", "the access token expired"),
			authcore.KindUnauthorized, []string{"21327", "expired_token"}},
		{"show: invalid token", showPath, weiboError(showPath, 21332, "invalid_access_token", "the access token is invalid"),
			authcore.KindUnauthorized, []string{"21332"}},
		{"show: no such user", showPath, answer{http.StatusBadRequest, `{"error":"User does not exists!","error_code":20003,"request":"/2/users/show.json"}`},
			authcore.KindUpstreamUnavailable, []string{"20003", "User does not exists!"}},
		{"show: another user", showPath, answer{http.StatusOK, `{"idstr":"1111111111","screen_name":"x"}`},
			authcore.KindUpstreamUnavailable, []string{"1111111111"}},
		{"show: HTTP 500 page", showPath, answer{http.StatusInternalServerError, "<html>oops</html>"},
			authcore.KindUpstreamUnavailable, []string{"HTTP 500"}},
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
			if errors.As(err, &e) && (strings.Contains(e.Message, "error") || strings.Contains(e.Message, "213")) {
				t.Errorf("client message %q shows Weibo's text", e.Message)
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
	if n := len(f.requests("/oauth2/access_token")); n != 0 {
		t.Errorf("%d token requests, want none", n)
	}
}

// TestIdentityTimeout: a Weibo that never answers fails the login with
// KindUpstreamUnavailable when the HTTP client's timeout or the caller's
// deadline passes, and the error and log hold no secret.
func TestIdentityTimeout(t *testing.T) {
	for _, path := range []string{"/oauth2/access_token", "/2/users/show.json"} {
		for _, how := range []string{"client timeout", "context deadline"} {
			t.Run(path+" "+how, func(t *testing.T) {
				release := make(chan struct{})
				answers := okAnswers()
				answers[path] = func() answer { <-release; return tokenOK }
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
			})
		}
	}
}
