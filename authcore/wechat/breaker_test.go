package wechat

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// failCalls makes n Code2Session calls that fail upstream (the fake must
// be down) and checks each was tried 3 times.
func failCalls(t *testing.T, f *fixture, n int) {
	t.Helper()
	for i := range n {
		before := f.srv.Requests(wechattest.PathCode2Session)
		_, err := f.c.Code2Session(context.Background(), "deadbeefcode")
		wantKind(t, "call to a down WeChat", err, authcore.KindUpstreamUnavailable)
		if errors.Is(err, errBreakerOpen) {
			t.Fatalf("call %d of %d: refused by the breaker already", i+1, n)
		}
		if got := f.srv.Requests(wechattest.PathCode2Session) - before; got != 3 {
			t.Fatalf("call %d: %d requests, want 3 (retried twice)", i+1, got)
		}
	}
}

// wantFastFail checks that a call fails at once, without a request, with
// the breaker's error and retryAfter.
func wantFastFail(t *testing.T, f *fixture, call func() error, retryAfter time.Duration) {
	t.Helper()
	before := f.srv.Requests(wechattest.PathCode2Session) + f.srv.Requests(wechattest.PathGetPhoneNumber) + f.srv.Requests(wechattest.PathStableToken)
	err := call()
	e := wantKind(t, "call with the breaker open", err, authcore.KindUpstreamUnavailable)
	if !errors.Is(err, errBreakerOpen) || e.Message != msgBreakerOpen {
		t.Errorf("error = %v, want the breaker's %q", err, msgBreakerOpen)
	}
	if e.RetryAfter != retryAfter {
		t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, retryAfter)
	}
	after := f.srv.Requests(wechattest.PathCode2Session) + f.srv.Requests(wechattest.PathGetPhoneNumber) + f.srv.Requests(wechattest.PathStableToken)
	if after != before {
		t.Errorf("%d requests reached the fake, want none", after-before)
	}
}

func breakerFixture(t *testing.T) (*fixture, *testClock) {
	t.Helper()
	clk := newTestClock()
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	f.c.clock = clk.now
	return f, clk
}

func wantState(t *testing.T, f *fixture, want string) {
	t.Helper()
	if got := f.c.BreakerState(); got != want {
		t.Fatalf("BreakerState = %q, want %q", got, want)
	}
}

// TestBreakerOutage: WeChat goes down; after 5 failed calls the breaker
// opens and calls fail fast without reaching WeChat, with RetryAfter the
// rest of the cool-down; when WeChat is back and the cool-down is over,
// one probe closes it.
func TestBreakerOutage(t *testing.T) {
	f, clk := breakerFixture(t)
	code := f.wxLogin("vera")
	f.srv.SetDown(true)
	failCalls(t, f, DefaultBreakerFailures-1)
	wantState(t, f, BreakerClosed)
	failCalls(t, f, 1)
	wantState(t, f, BreakerOpen)
	if !strings.Contains(f.log.String(), "circuit breaker open") {
		t.Errorf("log does not report the breaker opening:\n%s", f.log.String())
	}

	code2session := func() error { _, err := f.c.Code2Session(context.Background(), code); return err }
	phone := func() error { _, err := f.c.GetPhoneNumber(context.Background(), "somephonecode"); return err }
	for range 10 {
		wantFastFail(t, f, code2session, DefaultBreakerCoolDown)
	}
	wantFastFail(t, f, phone, DefaultBreakerCoolDown) // every WeChat call, the token fetch included
	clk.add(4 * time.Second)
	wantFastFail(t, f, code2session, DefaultBreakerCoolDown-4*time.Second)

	f.srv.SetDown(false) // back up, but the cool-down is not over
	wantFastFail(t, f, code2session, DefaultBreakerCoolDown-4*time.Second)
	clk.add(DefaultBreakerCoolDown - 4*time.Second)
	wantState(t, f, BreakerHalfOpen)
	s, err := f.c.Code2Session(context.Background(), code)
	if err != nil || s.OpenID != f.srv.User("vera").OpenID {
		t.Fatalf("probe = %+v, %v; want vera's session", s, err)
	}
	wantState(t, f, BreakerClosed)
	if _, err := f.c.GetPhoneNumber(context.Background(), f.phoneCode("vera")); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// TestBreakerProbeFailureReopens: a failed probe opens the breaker for
// another full cool-down.
func TestBreakerProbeFailureReopens(t *testing.T) {
	f, clk := breakerFixture(t)
	f.srv.SetDown(true)
	failCalls(t, f, DefaultBreakerFailures)
	wantState(t, f, BreakerOpen)
	clk.add(DefaultBreakerCoolDown)
	wantState(t, f, BreakerHalfOpen)
	failCalls(t, f, 1) // the probe
	wantState(t, f, BreakerOpen)
	call := func() error { _, err := f.c.Code2Session(context.Background(), "abcd"); return err }
	wantFastFail(t, f, call, DefaultBreakerCoolDown)
}

// TestBreakerOneProbe: while the probe is out, other calls still fail
// fast.
func TestBreakerOneProbe(t *testing.T) {
	f, clk := breakerFixture(t)
	code := f.wxLogin("walt")
	f.srv.SetDown(true)
	failCalls(t, f, DefaultBreakerFailures)
	f.srv.SetDown(false)
	clk.add(DefaultBreakerCoolDown)
	release := f.srv.Hold(wechattest.PathCode2Session)
	defer release()
	before := f.srv.Requests(wechattest.PathCode2Session)
	probe := make(chan error, 1)
	go func() {
		_, err := f.c.Code2Session(context.Background(), code)
		probe <- err
	}()
	if !f.srv.WaitRequests(timeoutChan(t), wechattest.PathCode2Session, before+1) {
		t.Fatal("the probe never reached the fake")
	}
	wantFastFail(t, f, func() error { _, err := f.c.Code2Session(context.Background(), "other"); return err }, time.Second)
	release()
	select {
	case err := <-probe:
		if err != nil {
			t.Fatalf("probe: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("probe did not return")
	}
	wantState(t, f, BreakerClosed)
}

// TestBreakerIgnoresAnswers: WeChat's errcodes (the code is bad, the user
// is blocked) are answers, not failures, and an answer resets the count.
func TestBreakerIgnoresAnswers(t *testing.T) {
	f, _ := breakerFixture(t)
	ctx := context.Background()
	f.srv.FailNext(wechattest.PathCode2Session, 40029, 3*DefaultBreakerFailures)
	for range 3 * DefaultBreakerFailures {
		_, err := f.c.Code2Session(ctx, "abcd")
		wantKind(t, "bad code", err, authcore.KindUnauthorized)
	}
	wantState(t, f, BreakerClosed)

	f.srv.SetDown(true)
	failCalls(t, f, DefaultBreakerFailures-1)
	f.srv.SetDown(false)
	_, err := f.c.Code2Session(ctx, "abcd")
	wantKind(t, "an answer", err, authcore.KindUnauthorized)
	f.srv.SetDown(true)
	failCalls(t, f, DefaultBreakerFailures-1)
	wantState(t, f, BreakerClosed)
}

// TestBreakerIgnoresCallersGivingUp: a caller whose context ends says
// nothing about WeChat. (CheckSessionKey is not shared among callers, so
// its call ends with its caller.)
func TestBreakerIgnoresCallersGivingUp(t *testing.T) {
	f, _ := breakerFixture(t)
	mustToken(t, f.c.Tokens())
	u := f.srv.User("xena")
	release := f.srv.Hold(wechattest.PathCheckSession)
	defer release()
	for i := range 2 * DefaultBreakerFailures {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := f.c.CheckSessionKey(ctx, u.OpenID, u.SessionKey)
			errc <- err
		}()
		if !f.srv.WaitRequests(timeoutChan(t), wechattest.PathCheckSession, i+1) {
			t.Fatal("request never arrived")
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
	}
	wantState(t, f, BreakerClosed)
}

// TestBreakerConfig: the threshold and cool-down come from Config.
func TestBreakerConfig(t *testing.T) {
	clk := newTestClock()
	srv := &wechattest.Server{}
	f := newFixture(t, srv, func(c *Config) { c.BreakerFailures, c.BreakerCoolDown = 2, time.Minute })
	f.c.clock = clk.now
	srv.SetDown(true)
	failCalls(t, f, 2)
	wantState(t, f, BreakerOpen)
	wantFastFail(t, f, func() error { _, err := f.c.Code2Session(context.Background(), "abcd"); return err }, time.Minute)

	for _, cfg := range []Config{{BreakerFailures: -1}, {BreakerCoolDown: -1}, {TokenRefreshBefore: -1}, {TokenRefreshBefore: 6 * time.Minute}} {
		cfg.BaseURL, cfg.AppID, cfg.Secret = "https://api.weixin.qq.com", "wx1", "s"
		if _, err := New(cfg); authcore.KindOf(err) != authcore.KindInvalid {
			t.Errorf("New(%+v) = %v, want invalid_request", cfg, err)
		}
	}
}

// waitUp waits, on the breaker's own change signal, until Up reports want.
func waitUp(t *testing.T, c *Client, want bool) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		_, _, _, changed := c.breaker.Watch()
		if c.Up() == want {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("Up() stayed %v for 10s (breaker %s)", !want, c.BreakerState())
		}
	}
}

// TestBreakerHeal: with no user calls at all, Heal probes a down WeChat
// after each cool-down (with stable_token, never a user's code), keeps
// the breaker from closing while WeChat fails, and closes it once WeChat
// answers again; it returns when its context ends.
func TestBreakerHeal(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, func(c *Config) { c.BreakerFailures, c.BreakerCoolDown = 1, 20*time.Millisecond })
	if !f.c.Up() {
		t.Fatal("a new Client reports WeChat down")
	}
	ctx, cancel := context.WithCancel(context.Background())
	healed := make(chan struct{})
	go func() { f.c.Heal(ctx); close(healed) }()
	defer func() { cancel(); within(t, "Heal returning after its context ended", healed) }()

	srv.SetDown(true)
	failCalls(t, f, 1)
	if f.c.Up() {
		t.Fatalf("Up() with the breaker %s", f.c.BreakerState())
	}
	// Two probes (3 attempts each), both failed: still down.
	waitCtx, stopWait := context.WithTimeout(ctx, 10*time.Second)
	defer stopWait()
	if !srv.WaitRequests(waitCtx.Done(), wechattest.PathStableToken, 6) {
		t.Fatal("Heal sent no probes to a down WeChat within 10s")
	}
	if f.c.Up() {
		t.Fatalf("Up() after failed probes (breaker %s)", f.c.BreakerState())
	}
	codes := srv.Requests(wechattest.PathCode2Session)

	srv.SetDown(false)
	waitUp(t, f.c, true)
	wantState(t, f, BreakerClosed)
	if got := srv.Requests(wechattest.PathCode2Session); got != codes {
		t.Errorf("probes sent %d code2Session requests, want none", got-codes)
	}
	if _, err := f.c.Code2Session(context.Background(), f.wxLogin("vera")); err != nil {
		t.Errorf("Code2Session after healing: %v", err)
	}
}
