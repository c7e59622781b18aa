package wechat

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

func TestGetPhoneNumberRoundTrip(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	code := f.phoneCode("quinn")
	got, err := f.c.GetPhoneNumber(context.Background(), code)
	if err != nil {
		t.Fatal(err)
	}
	u := srv.User("quinn")
	if got.PhoneNumber != u.PhoneNumber || got.PurePhoneNumber != u.PurePhoneNumber || got.CountryCode != "86" ||
		got.Watermark.AppID != f.c.appID || got.Watermark.Timestamp == 0 {
		t.Errorf("GetPhoneNumber = %+v, want quinn's number with a watermark for %s", got, f.c.appID)
	}
	_, err = f.c.GetPhoneNumber(context.Background(), code)
	wantKind(t, "reused phone code", err, authcore.KindUnauthorized)
	_, err = f.c.GetPhoneNumber(context.Background(), f.wxLogin("quinn"))
	wantKind(t, "a wx.login code", err, authcore.KindUnauthorized)
	if n := srv.Requests(wechattest.PathStableToken); n != 1 {
		t.Errorf("stable_token requests = %d for 3 calls, want 1", n)
	}
}

func TestGetPhoneNumberSingleFlight(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	code := f.phoneCode("rosa")
	mustToken(t, f.c.Tokens())
	release := srv.Hold(wechattest.PathGetPhoneNumber)
	defer release()
	const n = 8
	var joined sync.WaitGroup
	joined.Add(n)
	f.c.afterJoin = joined.Done
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := f.c.GetPhoneNumber(context.Background(), code)
			errs <- err
		}()
	}
	within(t, "callers join", waitGroupDone(&joined))
	release()
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("GetPhoneNumber: %v", err)
		}
	}
	if got := srv.Requests(wechattest.PathGetPhoneNumber); got != 1 {
		t.Errorf("getuserphonenumber requests = %d for %d concurrent calls with one code, want 1", got, n)
	}
}

func TestSessionKeyCheckAndReset(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	code := f.wxLogin("sam")
	s, err := f.c.Code2Session(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.c.CheckSessionKey(ctx, s.OpenID, s.SessionKey); !ok || err != nil {
		t.Fatalf("CheckSessionKey(current key) = %v, %v; want true", ok, err)
	}
	newKey, err := f.c.ResetSessionKey(ctx, s.OpenID, s.SessionKey)
	if err != nil || newKey == "" || newKey == s.SessionKey || newKey != srv.User("sam").SessionKey {
		t.Fatalf("ResetSessionKey = %q, %v; want the fake's new key", newKey, err)
	}
	if ok, err := f.c.CheckSessionKey(ctx, s.OpenID, s.SessionKey); ok || err != nil {
		t.Fatalf("CheckSessionKey(replaced key) = %v, %v; want false, nil", ok, err)
	}
	_, err = f.c.ResetSessionKey(ctx, s.OpenID, s.SessionKey)
	wantKind(t, "reset with a replaced key", err, authcore.KindUnauthorized)
	if ok, err := f.c.CheckSessionKey(ctx, s.OpenID, newKey); !ok || err != nil {
		t.Fatalf("CheckSessionKey(new key) = %v, %v; want true", ok, err)
	}
	f.wxLogin("sam") // a new wx.login replaces the key, as on a phone
	if ok, err := f.c.CheckSessionKey(ctx, s.OpenID, newKey); ok || err != nil {
		t.Fatalf("CheckSessionKey after another wx.login = %v, %v; want false, nil", ok, err)
	}
	if n := srv.Requests(wechattest.PathStableToken); n != 1 {
		t.Errorf("stable_token requests = %d, want 1", n)
	}
}

func TestTokenAPIsRejectBadInput(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	for _, code := range []string{"", strings.Repeat("a", MaxCodeLength+1), "a b", "a/b"} {
		_, err := f.c.GetPhoneNumber(ctx, code)
		wantKind(t, fmt.Sprintf("phone code %q", code), err, authcore.KindInvalid)
	}
	for _, tc := range []struct{ openid, key string }{
		{"", "k"}, {"o&x=1", "k"}, {strings.Repeat("o", 129), "k"}, {"oValid", ""},
	} {
		_, err := f.c.CheckSessionKey(ctx, tc.openid, tc.key)
		wantKind(t, fmt.Sprintf("CheckSessionKey(%q, %q)", tc.openid, tc.key), err, authcore.KindInvalid)
		_, err = f.c.ResetSessionKey(ctx, tc.openid, tc.key)
		wantKind(t, fmt.Sprintf("ResetSessionKey(%q, %q)", tc.openid, tc.key), err, authcore.KindInvalid)
	}
	for _, p := range []string{wechattest.PathGetPhoneNumber, wechattest.PathCheckSession, wechattest.PathResetSession, wechattest.PathStableToken} {
		if n := srv.Requests(p); n != 0 {
			t.Errorf("%s: %d requests for bad input, want none", p, n)
		}
	}
}

// tokenAPI is one of the API calls that take an access token, run against
// a fresh user.
type tokenAPI struct {
	name string
	path string
	// call makes the call; ok reports whether it returned its success
	// value.
	call func(f *fixture) (ok bool, err error)
}

var tokenAPIs = []tokenAPI{
	{"GetPhoneNumber", wechattest.PathGetPhoneNumber, func(f *fixture) (bool, error) {
		code := f.phoneCode("tess")
		p, err := f.c.GetPhoneNumber(context.Background(), code)
		return p.PurePhoneNumber != "", err
	}},
	{"CheckSessionKey", wechattest.PathCheckSession, func(f *fixture) (bool, error) {
		u := f.srv.User("tess")
		return f.c.CheckSessionKey(context.Background(), u.OpenID, u.SessionKey)
	}},
	{"ResetSessionKey", wechattest.PathResetSession, func(f *fixture) (bool, error) {
		u := f.srv.User("tess")
		k, err := f.c.ResetSessionKey(context.Background(), u.OpenID, u.SessionKey)
		return k != "", err
	}},
}

// TestTokenAPIErrcodes maps each errcode these APIs answer (injected with
// FailNext) to the documented error.
func TestTokenAPIErrcodes(t *testing.T) {
	type want struct {
		kind       authcore.Kind // KindInternal: no error
		ok         bool          // the success value, when no error
		retryAfter time.Duration
		requests   int
	}
	common := []struct {
		errcode, n int
		want       want
	}{
		{45011, 1, want{authcore.KindRateLimited, false, time.Minute, 1}},
		{45009, 1, want{authcore.KindRateLimited, false, time.Minute, 1}},
		{40226, 1, want{authcore.KindForbidden, false, 0, 1}},
		{40013, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},
		{41001, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},
		{48001, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},
		{99999, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},
		{-1, 3, want{authcore.KindUpstreamUnavailable, false, 0, 3}},      // busy: retried twice, then given up
		{-1, 2, want{authcore.KindInternal, true, 0, 3}},                  // busy twice, then an answer
		{40001, 2, want{authcore.KindUpstreamUnavailable, false, 0, 2}},   // refused, refreshed, refused again
		{42001, 2, want{authcore.KindUpstreamUnavailable, false, 0, 2}},   //
		{40014, 2, want{authcore.KindUpstreamUnavailable, false, 0, 2}},   //
		{40001, 1, want{authcore.KindInternal, true, 0, 2}},               // refused once: refreshed and retried
		{42001, 1, want{authcore.KindInternal, true, 0, 2}},               //
		{40014, 1, want{authcore.KindInternal, true, 0, 2}},               //
		{0, 0, want{authcore.KindInternal, true, 0, 1}},                   // nothing injected
		{40003, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   // openid of another app: unexpected
		{47001, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   // malformed request: a bug of ours
		{40097, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   // invalid args: a bug of ours
		{40125, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   //
		{40164, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   //
		{43001, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   //
		{43002, 1, want{authcore.KindUpstreamUnavailable, false, 0, 1}},   //
		{45009, 2, want{authcore.KindRateLimited, false, time.Minute, 1}}, // not retried
	}
	specific := map[string][]struct {
		errcode, n int
		want       want
	}{
		"GetPhoneNumber": {
			{40029, 1, want{authcore.KindUnauthorized, false, 0, 1}},
			{40163, 1, want{authcore.KindUnauthorized, false, 0, 1}},
		},
		"CheckSessionKey": {
			{87009, 1, want{authcore.KindInternal, false, 0, 1}}, // stale: false, no error
		},
		"ResetSessionKey": {
			{87009, 1, want{authcore.KindUnauthorized, false, 0, 1}},
		},
	}
	for _, api := range tokenAPIs {
		for _, tt := range append(common[:len(common):len(common)], specific[api.name]...) {
			t.Run(fmt.Sprintf("%s/%d×%d", api.name, tt.errcode, tt.n), func(t *testing.T) {
				srv := &wechattest.Server{}
				f := newFixture(t, srv, nil)
				srv.FailNext(api.path, tt.errcode, tt.n)
				ok, err := api.call(f)
				if tt.want.kind == authcore.KindInternal {
					if err != nil || ok != tt.want.ok {
						t.Fatalf("got %v, %v; want %v, no error", ok, err, tt.want.ok)
					}
				} else {
					e := wantKind(t, api.name, err, tt.want.kind)
					if e.RetryAfter != tt.want.retryAfter {
						t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.want.retryAfter)
					}
					if !strings.Contains(e.Err.Error(), fmt.Sprint(tt.errcode)) {
						t.Errorf("cause %q does not name errcode %d", e.Err, tt.errcode)
					}
				}
				f.checkOneCall(t, api.path, tt.want.requests)
			})
		}
	}
}

// TestTokensStayOutOfLogs: access tokens, session keys and their
// signatures never reach the log or an error, also when WeChat rejects the
// token or the transport fails.
func TestTokensStayOutOfLogs(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	secrets := []string{mustToken(t, f.c.Tokens())}
	var errs []error
	for _, errcode := range []int{40001, 42001, -1} {
		srv.FailNext(wechattest.PathGetPhoneNumber, errcode, 3)
		_, err := f.c.GetPhoneNumber(ctx, f.phoneCode("uma"))
		errs = append(errs, err)
		tok, err := f.c.Tokens().Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, tok)
	}
	u := srv.User("uma")
	srv.FailNext(wechattest.PathCheckSession, 87009, 1)
	f.c.CheckSessionKey(ctx, u.OpenID, u.SessionKey)
	srv.FailNextHTTP(wechattest.PathResetSession, 502, 3)
	_, err := f.c.ResetSessionKey(ctx, u.OpenID, u.SessionKey)
	errs = append(errs, err)
	secrets = append(secrets, u.SessionKey, SessionKeySignature(u.SessionKey))
	logs := f.log.String()
	if !strings.Contains(logs, "refreshing_token") {
		t.Fatalf("log lacks the token refresh; is the test looking at the right log?\n%s", logs)
	}
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains secret %q", s)
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains secret %q", err, s)
			}
		}
	}
}
