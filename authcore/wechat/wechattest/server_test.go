package wechattest_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

var (
	urlSafe  = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	ridShape = regexp.MustCompile(` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)
)

// fixture is a Server behind a real HTTP server, with helpers that speak
// to it as a client would.
type fixture struct {
	t   *testing.T
	srv *wechattest.Server
	url string
}

func newFixture(t *testing.T, srv *wechattest.Server) *fixture {
	t.Helper()
	url := wechattest.Start(t, srv)
	return &fixture{t: t, srv: srv, url: url}
}

// do sends a request and decodes the JSON answer into a map.
func (f *fixture) do(method, path string, body any) (int, map[string]any) {
	f.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			f.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, f.url+path, rd)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		f.t.Fatalf("%s %s: answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, m
}

func (f *fixture) wxLogin(user string) string {
	f.t.Helper()
	status, m := f.do("POST", "/wx.login", map[string]string{"user": user})
	code, _ := m["code"].(string)
	if status != 200 || code == "" {
		f.t.Fatalf("wx.login(%q) = %d %v, want 200 and a code", user, status, m)
	}
	return code
}

func (f *fixture) code2Session(code string) map[string]any {
	f.t.Helper()
	appid, secret := f.srv.App()
	q := url.Values{"appid": {appid}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	_, m := f.do("GET", "/sns/jscode2session?"+q.Encode(), nil)
	return m
}

func (f *fixture) stableToken(force bool) (string, float64) {
	f.t.Helper()
	appid, secret := f.srv.App()
	_, m := f.do("POST", "/cgi-bin/stable_token", map[string]any{
		"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force})
	tok, _ := m["access_token"].(string)
	exp, _ := m["expires_in"].(float64)
	if tok == "" {
		f.t.Fatalf("stable_token = %v, want a token", m)
	}
	return tok, exp
}

func errcode(m map[string]any) int {
	n, _ := m["errcode"].(float64)
	return int(n)
}

// wantErrcode checks WeChat's error shape: errcode and "... rid: ...".
func wantErrcode(t *testing.T, what string, m map[string]any, want int) {
	t.Helper()
	msg, _ := m["errmsg"].(string)
	if got := errcode(m); got != want || !ridShape.MatchString(msg) {
		t.Errorf("%s = %v, want errcode %d and an errmsg ending in a rid", what, m, want)
	}
}

// clock is a settable clock for SetClock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestZeroValueServesApp(t *testing.T) {
	var srv wechattest.Server
	f := newFixture(t, &srv)
	status, m := f.do("GET", "/app", nil)
	appid, secret := srv.App()
	if status != 200 || m["appid"] != appid || m["secret"] != secret {
		t.Errorf("GET /app = %d %v, want 200 and App() = %q, %q", status, m, appid, secret)
	}
	if !regexp.MustCompile(`^wx[0-9a-f]{16}$`).MatchString(appid) {
		t.Errorf("default appid = %q, want wx and 16 hex characters", appid)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(secret) {
		t.Errorf("default secret = %q, want 32 hex characters", secret)
	}
	var other wechattest.Server
	if a, s := other.App(); a != appid || s == secret {
		t.Errorf("another Server's App() = %q, %q; want the same appid and another secret", a, s)
	}
	custom := wechattest.Server{AppID: "wx0123456789abcdef", Secret: "s3cr3t"}
	if a, s := custom.App(); a != custom.AppID || s != custom.Secret {
		t.Errorf("App() = %q, %q, want the configured %q, %q", a, s, custom.AppID, custom.Secret)
	}
}

func TestCode2SessionRoundTrip(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)

	code := f.wxLogin("alice")
	m := f.code2Session(code)
	alice := srv.User("alice")
	if m["openid"] != alice.OpenID || m["session_key"] != alice.SessionKey {
		t.Fatalf("jscode2session = %v, want openid %q and the current session_key", m, alice.OpenID)
	}
	for _, k := range []string{"unionid", "errcode", "expires_in"} {
		if _, ok := m[k]; ok {
			t.Errorf("jscode2session has %q, want no such field (WeChat sends none here)", k)
		}
	}
	if len(alice.OpenID) != 28 || !strings.HasPrefix(alice.OpenID, "o") {
		t.Errorf("openid = %q, want 28 characters starting with o", alice.OpenID)
	}
	if key, err := base64.StdEncoding.DecodeString(alice.SessionKey); err != nil || len(key) != 16 {
		t.Errorf("session_key = %q, want base64 of 16 bytes", alice.SessionKey)
	}
	if alice.Nickname != "alice (sandbox)" {
		t.Errorf("nickname = %q, want %q", alice.Nickname, "alice (sandbox)")
	}
	if !regexp.MustCompile(`^1380000\d{4}$`).MatchString(alice.PurePhoneNumber) || alice.CountryCode != "86" {
		t.Errorf("phone = %q/%q, want 1380000xxxx/86", alice.PurePhoneNumber, alice.CountryCode)
	}

	wantErrcode(t, "reused code", f.code2Session(code), 40163)

	again := f.code2Session(f.wxLogin("alice"))
	if again["openid"] != alice.OpenID {
		t.Errorf("second login openid = %v, want the stable %q", again["openid"], alice.OpenID)
	}
	if bob := srv.User("bob"); bob.OpenID == alice.OpenID {
		t.Errorf("bob and alice share openid %q", bob.OpenID)
	}
	other := &wechattest.Server{AppID: "wx00000000000000ff"}
	if got := other.User("alice").OpenID; got == alice.OpenID {
		t.Errorf("openid %q is the same in two apps, want one per app", got)
	}
}

func TestUnionIDs(t *testing.T) {
	srv := &wechattest.Server{UnionIDs: true}
	f := newFixture(t, srv)
	m := f.code2Session(f.wxLogin("carol"))
	want := srv.User("carol").UnionID
	if m["unionid"] != want || len(want) != 28 {
		t.Errorf("unionid = %v, want %q (28 characters)", m["unionid"], want)
	}
	other := &wechattest.Server{AppID: "wx00000000000000ff", UnionIDs: true}
	if got := other.User("carol").UnionID; got != want {
		t.Errorf("unionid in another app = %q, want the same %q", got, want)
	}
}

func TestCode2SessionErrors(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	appid, secret := srv.App()
	code := f.wxLogin("dave")
	tests := []struct {
		name  string
		query url.Values
		want  int
	}{
		{"missing appid", url.Values{"secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}, 41002},
		{"wrong appid", url.Values{"appid": {"wx1111111111111111"}, "secret": {secret}, "js_code": {code}, "grant_type": {"authorization_code"}}, 40013},
		{"missing secret", url.Values{"appid": {appid}, "js_code": {code}, "grant_type": {"authorization_code"}}, 41004},
		{"wrong secret", url.Values{"appid": {appid}, "secret": {"nope"}, "js_code": {code}, "grant_type": {"authorization_code"}}, 40125},
		{"wrong grant_type", url.Values{"appid": {appid}, "secret": {secret}, "js_code": {code}, "grant_type": {"client_credential"}}, 40002},
		{"missing code", url.Values{"appid": {appid}, "secret": {secret}, "grant_type": {"authorization_code"}}, 41008},
		{"unknown code", url.Values{"appid": {appid}, "secret": {secret}, "js_code": {"nope"}, "grant_type": {"authorization_code"}}, 40029},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := f.do("GET", "/sns/jscode2session?"+tt.query.Encode(), nil)
			if status != 200 {
				t.Errorf("HTTP status = %d, want 200 (WeChat reports errors in the body)", status)
			}
			wantErrcode(t, tt.name, m, tt.want)
		})
	}
	// None of the failures above consumed the code.
	if m := f.code2Session(code); m["openid"] == nil {
		t.Errorf("jscode2session after failed attempts = %v, want success", m)
	}
	status, m := f.do("POST", "/sns/jscode2session", nil)
	if status != 200 {
		t.Errorf("POST status = %d, want 200", status)
	}
	wantErrcode(t, "POST jscode2session", m, 43001)
}

func TestCodeExpiry(t *testing.T) {
	srv := &wechattest.Server{}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv.SetClock(clk.now)
	f := newFixture(t, srv)

	fresh, stale := f.wxLogin("erin"), f.wxLogin("erin")
	clk.add(wechattest.CodeLifetime - time.Second)
	if m := f.code2Session(fresh); m["openid"] == nil {
		t.Errorf("code at 4m59s = %v, want success", m)
	}
	clk.add(time.Second)
	wantErrcode(t, "code at 5m", f.code2Session(stale), 40029)
}

func TestSessionKeyRotatesOnLogin(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	first := f.wxLogin("frank")
	k1 := srv.User("frank").SessionKey
	second := f.wxLogin("frank")
	k2 := srv.User("frank").SessionKey
	if k1 == k2 {
		t.Fatalf("session_key %q did not change on a new wx.login", k1)
	}
	// Like WeChat, the answer carries the user's current key.
	if m := f.code2Session(first); m["session_key"] != k2 {
		t.Errorf("session_key for the older code = %v, want the current %q", m["session_key"], k2)
	}
	if m := f.code2Session(second); m["session_key"] != k2 {
		t.Errorf("session_key = %v, want %q", m["session_key"], k2)
	}
}

func TestTokens(t *testing.T) {
	srv := &wechattest.Server{}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv.SetClock(clk.now)
	f := newFixture(t, srv)
	appid, secret := srv.App()

	q := url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}
	_, m := f.do("GET", "/cgi-bin/token?"+q.Encode(), nil)
	if tok, _ := m["access_token"].(string); tok == "" || m["expires_in"] != 7200.0 {
		t.Errorf("/cgi-bin/token = %v, want a token and expires_in 7200", m)
	}
	q.Set("secret", "wrong")
	_, m = f.do("GET", "/cgi-bin/token?"+q.Encode(), nil)
	wantErrcode(t, "token with a wrong secret", m, 40125)

	tok, exp := f.stableToken(false)
	if exp != 7200 {
		t.Errorf("first stable_token expires_in = %v, want 7200", exp)
	}
	clk.add(100 * time.Second)
	tok2, exp2 := f.stableToken(false)
	if tok2 != tok || exp2 != 7100 {
		t.Errorf("stable_token again = %q, %v; want the same token with 7100 left", tok2, exp2)
	}
	forced, exp3 := f.stableToken(true)
	if forced == tok || exp3 != 7200 {
		t.Errorf("forced stable_token = %q, %v; want a new token with 7200", forced, exp3)
	}

	status, m := f.do("GET", "/cgi-bin/stable_token", nil)
	if status != 200 {
		t.Errorf("GET stable_token status = %d, want 200", status)
	}
	wantErrcode(t, "GET stable_token", m, 43002)

	// The replaced token works for five more minutes, then expires.
	phone := func(token string) map[string]any {
		_, m := f.do("POST", "/getPhoneNumber", map[string]string{"user": "gina"})
		_, m = f.do("POST", "/wxa/business/getuserphonenumber?access_token="+token, map[string]string{"code": m["code"].(string)})
		return m
	}
	if m := phone(tok); errcode(m) != 0 {
		t.Errorf("replaced token within overlap: %v, want success", m)
	}
	clk.add(5 * time.Minute)
	wantErrcode(t, "replaced token after overlap", phone(tok), 42001)
	if m := phone(forced); errcode(m) != 0 {
		t.Errorf("current token: %v, want success", m)
	}
	wantErrcode(t, "unknown token", phone("nope"), 40001)
	wantErrcode(t, "missing token", phone(""), 41001)
}

func TestPhoneNumber(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	tok, _ := f.stableToken(false)
	appid, _ := srv.App()
	hank := srv.User("hank")

	_, button := f.do("POST", "/getPhoneNumber", map[string]string{"user": "hank"})
	code := button["code"].(string)
	status, m := f.do("POST", "/wxa/business/getuserphonenumber?access_token="+tok, map[string]string{"code": code})
	if status != 200 || errcode(m) != 0 || m["errmsg"] != "ok" {
		t.Fatalf("getuserphonenumber = %d %v, want errcode 0, errmsg ok", status, m)
	}
	info := m["phone_info"].(map[string]any)
	wm := info["watermark"].(map[string]any)
	if info["purePhoneNumber"] != hank.PurePhoneNumber || info["phoneNumber"] != hank.PhoneNumber ||
		info["countryCode"] != "86" || wm["appid"] != appid || wm["timestamp"] == nil {
		t.Errorf("phone_info = %v, want hank's number, countryCode \"86\" and a watermark for %s", info, appid)
	}
	_, m = f.do("POST", "/wxa/business/getuserphonenumber?access_token="+tok, map[string]string{"code": code})
	wantErrcode(t, "reused phone code", m, 40029)
	loginCode := f.wxLogin("hank")
	_, m = f.do("POST", "/wxa/business/getuserphonenumber?access_token="+tok, map[string]string{"code": loginCode})
	wantErrcode(t, "a wx.login code as phone code", m, 40029)
}

func TestEncryptedPhoneDecryptsWithCurrentSessionKey(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	f.wxLogin("ivy")
	key := srv.User("ivy").SessionKey
	_, button := f.do("POST", "/getPhoneNumber", map[string]string{"user": "ivy"})

	plain, err := decrypt(key, button["encryptedData"].(string), button["iv"].(string))
	if err != nil {
		t.Fatalf("decrypt with the current session_key: %v", err)
	}
	// Exactly WeChat's field order, countryCode a string.
	appid, _ := srv.App()
	ivy := srv.User("ivy")
	wantPrefix := fmt.Sprintf(`{"phoneNumber":%q,"purePhoneNumber":%q,"countryCode":"86","watermark":{"appid":%q,"timestamp":`,
		ivy.PhoneNumber, ivy.PurePhoneNumber, appid)
	if !strings.HasPrefix(string(plain), wantPrefix) {
		t.Errorf("plaintext = %s, want it to start with %s", plain, wantPrefix)
	}

	f.wxLogin("ivy") // rotates the key: the old payload no longer opens with the new one
	if plain, err := decrypt(srv.User("ivy").SessionKey, button["encryptedData"].(string), button["iv"].(string)); err == nil && json.Valid(plain) {
		t.Errorf("payload decrypted with a rotated session_key to %s, want failure", plain)
	}
}

func TestGetUserInfo(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	_, m := f.do("POST", "/getUserInfo", map[string]string{"user": "jack"})
	jack := srv.User("jack")
	raw := m["rawData"].(string)
	sum := sha1.Sum([]byte(raw + jack.SessionKey))
	if m["signature"] != hex.EncodeToString(sum[:]) {
		t.Errorf("signature = %v, want sha1(rawData + session_key)", m["signature"])
	}
	plain, err := decrypt(jack.SessionKey, m["encryptedData"].(string), m["iv"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		OpenID   string `json:"openId"`
		NickName string `json:"nickName"`
	}
	if err := json.Unmarshal(plain, &got); err != nil || got.OpenID != jack.OpenID || got.NickName != jack.Nickname {
		t.Errorf("decrypted user info = %s, want openId %q and nickName %q", plain, jack.OpenID, jack.Nickname)
	}
}

func TestUnknownPathIsLoud(t *testing.T) {
	srv := &wechattest.Server{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/sns/jscode2sessions?secret=x")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 404 || errcode(m) != -404 {
		t.Errorf("unknown path = %d %v, want 404 with errcode -404", resp.StatusCode, m)
	}
	if got, want := srv.UnknownRequests(), []string{"GET /sns/jscode2sessions"}; len(got) != 1 || got[0] != want[0] {
		t.Errorf("UnknownRequests() = %q, want %q", got, want)
	}
}

func TestMountedUnderPrefix(t *testing.T) {
	srv := &wechattest.Server{}
	mux := http.NewServeMux()
	mux.Handle("/sandbox/wechat/", http.StripPrefix("/sandbox/wechat", srv))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	f := &fixture{t: t, srv: srv, url: ts.URL + "/sandbox/wechat"}
	if m := f.code2Session(f.wxLogin("kate")); m["openid"] != srv.User("kate").OpenID {
		t.Errorf("jscode2session under a prefix = %v, want kate's openid", m)
	}
	if got := srv.UnknownRequests(); len(got) != 0 {
		t.Errorf("UnknownRequests() = %q, want none", got)
	}
}

func TestURLSafeCharset(t *testing.T) {
	srv := &wechattest.Server{UnionIDs: true}
	f := newFixture(t, srv)
	for i := range 200 {
		name := fmt.Sprintf("user %d ü/+=?", i)
		u := srv.User(name)
		_, button := f.do("POST", "/getPhoneNumber", map[string]string{"user": name})
		tok, _ := f.stableToken(i%50 == 0)
		for what, v := range map[string]string{
			"wx.login code": f.wxLogin(name), "openid": u.OpenID, "unionid": u.UnionID,
			"phone code": button["code"].(string), "access_token": tok,
		} {
			if !urlSafe.MatchString(v) {
				t.Fatalf("%s %q has characters outside A-Z a-z 0-9 _ -", what, v)
			}
		}
	}
}

func TestUserNames(t *testing.T) {
	f := newFixture(t, &wechattest.Server{})
	tests := []struct {
		name string
		body any
		want int
	}{
		{"empty", map[string]string{"user": ""}, 400},
		{"missing", map[string]string{}, 400},
		{"65 characters", map[string]string{"user": strings.Repeat("a", 65)}, 400},
		{"control character", map[string]string{"user": "a\nb"}, 400},
		{"not an object", "alice", 400},
		{"64 characters", map[string]string{"user": strings.Repeat("张", 64)}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/wx.login", "/getPhoneNumber"} {
				status, m := f.do("POST", path, tt.body)
				if status != tt.want {
					t.Errorf("POST %s %v = %d %v, want %d", path, tt.body, status, m, tt.want)
				}
				if status != 200 && m["errmsg"] == nil {
					t.Errorf("POST %s error = %v, want an errmsg", path, m)
				}
			}
		})
	}
	if status, _ := f.do("GET", "/wx.login", nil); status != http.StatusMethodNotAllowed {
		t.Errorf("GET /wx.login = %d, want 405", status)
	}
}

func TestKnobs(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)

	code := f.wxLogin("liam")
	srv.FailNext(wechattest.PathCode2Session, -1, 2)
	srv.FailNext("sns/jscode2session", 45011, 1) // queued behind; path without the slash works too
	wantErrcode(t, "1st injected", f.code2Session(code), -1)
	wantErrcode(t, "2nd injected", f.code2Session(code), -1)
	wantErrcode(t, "3rd injected", f.code2Session(code), 45011)
	if m := f.code2Session(code); m["openid"] == nil {
		t.Errorf("after injected failures = %v, want success (they must not consume the code)", m)
	}
	if got := srv.Requests(wechattest.PathCode2Session); got != 4 {
		t.Errorf("Requests = %d, want 4", got)
	}

	srv.FailNextHTTP(wechattest.PathStableToken, 502, 1)
	resp, err := http.Post(f.url+"/cgi-bin/stable_token", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("FailNextHTTP: status = %d, want 502", resp.StatusCode)
	}

	// Hold: the request waits until released; WaitRequests sees it arrive.
	release := srv.Hold(wechattest.PathApp)
	defer release()
	done := make(chan int)
	go func() {
		resp, err := http.Get(f.url + "/app")
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	timeout := time.After(10 * time.Second)
	if !srv.WaitRequests(timeoutChan(t), wechattest.PathApp, 1) {
		t.Fatal("held request never arrived")
	}
	select {
	case status := <-done:
		t.Fatalf("held request answered %d before release", status)
	default:
	}
	release()
	release() // idempotent
	select {
	case status := <-done:
		if status != 200 {
			t.Errorf("released request = %d, want 200", status)
		}
	case <-timeout:
		t.Fatal("released request did not finish")
	}
}

// timeoutChan is closed when the test has waited too long for an event.
func timeoutChan(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	timer := time.AfterFunc(10*time.Second, func() { close(ch) })
	t.Cleanup(func() { timer.Stop() })
	return ch
}

// decrypt opens WeChat's legacy encryptedData, validating the padding
// strictly.
func decrypt(sessionKey, data, iv string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		return nil, err
	}
	ivb, err := base64.StdEncoding.DecodeString(iv)
	if err != nil {
		return nil, err
	}
	buf, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if len(ivb) != aes.BlockSize || len(buf) == 0 || len(buf)%aes.BlockSize != 0 {
		return nil, errors.New("bad iv or ciphertext length")
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(buf, buf)
	pad := int(buf[len(buf)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, errors.New("bad padding")
	}
	for _, b := range buf[len(buf)-pad:] {
		if int(b) != pad {
			return nil, errors.New("bad padding")
		}
	}
	return buf[:len(buf)-pad], nil
}

// TestStableTokenRenewsInLastFiveMinutes: a non-forced stable_token call
// returns the same token until it has 5 minutes left, then a new one; the
// old one works until its own expiry.
func TestStableTokenRenewsInLastFiveMinutes(t *testing.T) {
	srv := &wechattest.Server{}
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv.SetClock(clk.now)
	f := newFixture(t, srv)
	tok, _ := f.stableToken(false)
	clk.add(2*time.Hour - 6*time.Minute)
	if again, left := f.stableToken(false); again != tok || left != 360 {
		t.Fatalf("6 minutes before expiry: same %v, expires_in %v; want the same token, 360", again == tok, left)
	}
	clk.add(2 * time.Minute)
	renewed, left := f.stableToken(false)
	if renewed == tok || left != 7200 {
		t.Fatalf("4 minutes before expiry: same %v, expires_in %v; want a new token, 7200", renewed == tok, left)
	}
	if srv.ForceRefreshes() != 0 {
		t.Errorf("ForceRefreshes = %d, want 0", srv.ForceRefreshes())
	}
	f.stableToken(true)
	if srv.ForceRefreshes() != 1 {
		t.Errorf("ForceRefreshes = %d, want 1", srv.ForceRefreshes())
	}
	// The old token still works until its expiry, then it does not.
	_, m := f.do("GET", "/wxa/checksession?"+url.Values{"access_token": {tok}, "openid": {srv.User("yan").OpenID},
		"signature": {sessionSig(srv.User("yan").SessionKey)}, "sig_method": {"hmac_sha256"}}.Encode(), nil)
	if errcode(m) != 0 {
		t.Errorf("old token before its expiry: %v, want success", m)
	}
	clk.add(4 * time.Minute)
	_, m = f.do("GET", "/wxa/checksession?"+url.Values{"access_token": {tok}, "openid": {srv.User("yan").OpenID},
		"signature": {sessionSig(srv.User("yan").SessionKey)}, "sig_method": {"hmac_sha256"}}.Encode(), nil)
	wantErrcode(t, "old token after its expiry", m, 42001)
}

func sessionSig(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	return hex.EncodeToString(m.Sum(nil))
}

func TestCheckAndResetSessionKey(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	tok, _ := f.stableToken(false)
	f.wxLogin("zoe")
	zoe := srv.User("zoe")
	call := func(path, token, openid, sig, method string) map[string]any {
		q := url.Values{"access_token": {token}, "openid": {openid}, "signature": {sig}, "sig_method": {method}}
		_, m := f.do("GET", path+"?"+q.Encode(), nil)
		return m
	}
	for _, path := range []string{wechattest.PathCheckSession, wechattest.PathResetSession} {
		good := sessionSig(zoe.SessionKey)
		wantErrcode(t, path+" unknown token", call(path, "nope", zoe.OpenID, good, "hmac_sha256"), 40001)
		wantErrcode(t, path+" no token", call(path, "", zoe.OpenID, good, "hmac_sha256"), 41001)
		wantErrcode(t, path+" wrong sig_method", call(path, tok, zoe.OpenID, good, "md5"), 40097)
		wantErrcode(t, path+" unknown openid", call(path, tok, "oUnknown", good, "hmac_sha256"), 40003)
		wantErrcode(t, path+" wrong signature", call(path, tok, zoe.OpenID, sessionSig("other"), "hmac_sha256"), 87009)
		_, m := f.do("POST", path+"?"+url.Values{"access_token": {tok}}.Encode(), nil)
		wantErrcode(t, path+" POST", m, 43001)
	}
	wantErrcode(t, "upper-case hex signature",
		call(wechattest.PathCheckSession, tok, zoe.OpenID, strings.ToUpper(sessionSig(zoe.SessionKey)), "hmac_sha256"), 87009)
	if m := call(wechattest.PathCheckSession, tok, zoe.OpenID, sessionSig(zoe.SessionKey), "hmac_sha256"); errcode(m) != 0 || m["errmsg"] != "ok" {
		t.Errorf("checksession with the current key = %v, want errcode 0, errmsg ok", m)
	}
	m := call(wechattest.PathResetSession, tok, zoe.OpenID, sessionSig(zoe.SessionKey), "hmac_sha256")
	newKey, _ := m["session_key"].(string)
	if errcode(m) != 0 || m["openid"] != zoe.OpenID || newKey == "" || newKey == zoe.SessionKey || newKey != srv.User("zoe").SessionKey {
		t.Fatalf("resetusersessionkey = %v, want zoe's openid and a new session_key", m)
	}
	if k, err := base64.StdEncoding.DecodeString(newKey); err != nil || len(k) != 16 {
		t.Errorf("new session_key %q is not base64 of 16 bytes", newKey)
	}
	wantErrcode(t, "checksession with the replaced key",
		call(wechattest.PathCheckSession, tok, zoe.OpenID, sessionSig(zoe.SessionKey), "hmac_sha256"), 87009)
	f.wxLogin("zoe") // wx.login replaces the key too
	wantErrcode(t, "checksession after wx.login",
		call(wechattest.PathCheckSession, tok, zoe.OpenID, sessionSig(newKey), "hmac_sha256"), 87009)
}

func TestSetDown(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	srv.SetDown(true)
	for _, path := range []string{wechattest.PathStableToken, wechattest.PathCode2Session, wechattest.PathApp} {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || srv.Requests(path) != 1 {
			t.Errorf("%s while down: %d, %d requests counted; want 503, 1", path, resp.StatusCode, srv.Requests(path))
		}
	}
	srv.SetDown(false)
	if status, m := f.do("GET", wechattest.PathApp, nil); status != 200 || m["appid"] == nil {
		t.Errorf("/app after SetDown(false) = %d %v, want 200 and the app", status, m)
	}
}

// TestUsersBounded: a sandbox anyone can reach cannot be made to remember
// every name it is sent: beyond MaxUsers the least recently used user is
// forgotten, and comes back with the same identifiers and a new
// session_key.
func TestUsersBounded(t *testing.T) {
	s := &wechattest.Server{MaxUsers: 3}
	first := s.User("u0")
	for i := 1; i <= 2; i++ {
		s.User(fmt.Sprint("u", i))
	}
	if again := s.User("u0"); again.SessionKey != first.SessionKey {
		t.Fatalf("u0 forgotten within MaxUsers")
	}
	for i := 3; i < 1000; i++ { // u0 was used last before these
		s.User(fmt.Sprint("u", i))
	}
	again := s.User("u0")
	if again.SessionKey == first.SessionKey {
		t.Fatalf("u0 still remembered after 997 newer users with MaxUsers 3")
	}
	if again.OpenID != first.OpenID || again.UnionID != first.UnionID || again.PhoneNumber != first.PhoneNumber {
		t.Errorf("u0 came back as %+v, want the identifiers of %+v", again, first)
	}
}
