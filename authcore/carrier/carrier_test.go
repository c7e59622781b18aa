package carrier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/carrier"
	"github.com/loginhub/loginhub/authcore/carrier/carriertest"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type fixture struct {
	fake  *carriertest.Server
	url   string
	g     *carrier.Gateway
	log   *logBuffer
	clock *oauthsandbox.Clock // the breakers'

	mu    sync.Mutex
	calls []carrier.Call
}

// start serves a fake and returns a Gateway on route to it, with budget.
func start(t *testing.T, route string, mutate ...func(*carrier.Config)) *fixture {
	t.Helper()
	f := &fixture{fake: &carriertest.Server{}, log: &logBuffer{}, clock: oauthsandbox.NewClock(time.Unix(1_700_000_000, 0))}
	f.url = oauthsandbox.Start(t, f.fake)
	cfg := carrier.Config{Route: route, CMCCBaseURL: f.url + "/cmcc", DypnsBaseURL: f.url + "/aliyun",
		Logger: slog.New(slog.NewJSONHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Budget: 300 * time.Millisecond, Now: f.clock.Now,
		Observe: func(c carrier.Call) { f.mu.Lock(); f.calls = append(f.calls, c); f.mu.Unlock() }}
	cfg.AliyunAccessKeyID, cfg.AliyunAccessKeySecret = f.fake.Aliyun()
	if route == carrier.RouteDirect {
		cfg.CMCCAppID, cfg.CMCCAppKey = f.fake.CMCC()
	}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := carrier.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	return f
}

// token plays the carrier SDK on a phone.
func (f *fixture) token(t *testing.T, carrierName, phone, fail string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"carrier": carrierName, "phone": phone, "fail": fail})
	resp, err := http.Post(f.url+carriertest.PathToken, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Token string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Token == "" {
		t.Fatalf("POST /token: %d %v %+v", resp.StatusCode, err, out)
	}
	return out.Token
}

func (f *fixture) outcomes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		out = append(out, c.Carrier+"/"+c.Route+"/"+c.Op+":"+c.Outcome)
	}
	return out
}

func wantKind(t *testing.T, what string, err error, kind authcore.Kind) *authcore.Error {
	t.Helper()
	var e *authcore.Error
	if !errors.As(err, &e) || e.Kind != kind {
		t.Fatalf("%s: %v, want kind %s", what, err, kind.Code())
	}
	if kind == authcore.KindUpstreamUnavailable && e.Fallback != authcore.FallbackSMS {
		t.Errorf("%s: fallback %q, want sms", what, e.Fallback)
	}
	return e
}

var routes = []struct {
	route string
	via   map[string]string // carrier → the route its calls take
}{
	{carrier.RouteDirect, map[string]string{"cmcc": "cmcc", "cucc": "aliyun", "ctcc": "aliyun"}},
	{carrier.RouteAliyun, map[string]string{"cmcc": "aliyun", "cucc": "aliyun", "ctcc": "aliyun"}},
}

// TestNumberAndVerify: each carrier on each route gives the token's
// number once; a reused or expired token is refused; verification
// matches the phone's own number only.
func TestNumberAndVerify(t *testing.T) {
	for _, rt := range routes {
		t.Run(rt.route, func(t *testing.T) {
			f := start(t, rt.route)
			ctx := context.Background()
			for _, c := range []string{"cmcc", "cucc", "ctcc"} {
				const phone = "+8613800138000"
				tok := f.token(t, c, "138 0013 8000", "")
				got, err := f.g.Number(ctx, c, tok)
				if err != nil || got != phone {
					t.Fatalf("%s: Number = %q, %v; want %s", c, got, err, phone)
				}
				_, err = f.g.Number(ctx, c, tok)
				wantKind(t, c+": a reused token", err, authcore.KindUnauthorized)
				_, err = f.g.Number(ctx, c, f.token(t, c, phone, carriertest.FailExpired))
				wantKind(t, c+": an expired token", err, authcore.KindUnauthorized)

				match, err := f.g.Verify(ctx, c, f.token(t, c, phone, ""), phone)
				if err != nil || !match {
					t.Errorf("%s: Verify of the phone's own number = %v, %v; want true", c, match, err)
				}
				match, err = f.g.Verify(ctx, c, f.token(t, c, phone, ""), "+8613900139000")
				if err != nil || match {
					t.Errorf("%s: Verify of another number = %v, %v; want false", c, match, err)
				}
				via := rt.via[c]
				want := []string{c + "/" + via + "/number:ok", c + "/" + via + "/number:refused", c + "/" + via + "/number:refused",
					c + "/" + via + "/verify:ok", c + "/" + via + "/verify:ok"}
				if got := f.outcomes(); strings.Join(got[len(got)-5:], " ") != strings.Join(want, " ") {
					t.Errorf("%s: observed %q, want %q", c, got[len(got)-5:], want)
				}
			}
			if logs := f.log.String(); strings.Contains(logs, "13800138000") || strings.Contains(logs, "13900139000") || strings.Contains(logs, "STsid") {
				t.Errorf("the log holds a number or a token:\n%s", logs)
			}
		})
	}
}

// TestBadSign: credentials the carrier does not accept are a
// configuration error in the log, and unavailable (fallback SMS) to the
// caller.
func TestBadSign(t *testing.T) {
	for _, rt := range routes {
		t.Run(rt.route, func(t *testing.T) {
			f := start(t, rt.route, func(c *carrier.Config) {
				c.AliyunAccessKeySecret = "wrong"
				if c.CMCCAppKey != "" {
					c.CMCCAppKey = "wrong"
				}
			})
			_, err := f.g.Number(context.Background(), "cmcc", f.token(t, "cmcc", "+8613800138000", ""))
			wantKind(t, "a bad sign", err, authcore.KindUpstreamUnavailable)
			logs := f.log.String()
			if !strings.Contains(logs, `"level":"ERROR","msg":"carrier: the carrier refused our configuration"`) {
				t.Errorf("no configuration error in the log:\n%s", logs)
			}
			if strings.Contains(logs, "wrong") || strings.Contains(logs, "STsid") {
				t.Errorf("the log holds a secret or token:\n%s", logs)
			}
		})
	}
}

// TestFailuresAndBreaker: a network failure and a timeout are
// unavailable (fallback SMS) within the budget; five in a row open the
// carrier's breaker, which fails calls at once without a request and
// leaves the other carriers alone; after the cool-down one probe goes
// through and its success closes the breaker.
func TestFailuresAndBreaker(t *testing.T) {
	f := start(t, carrier.RouteAliyun)
	ctx := context.Background()
	const phone = "+8613800138000"
	start := time.Now()
	_, err := f.g.Number(ctx, "cucc", f.token(t, "cucc", phone, carriertest.FailTimeout))
	wantKind(t, "a timeout", err, authcore.KindUpstreamUnavailable)
	if el := time.Since(start); el > 300*time.Millisecond+200*time.Millisecond {
		t.Errorf("a timeout took %v, budget 300ms", el)
	}
	for i := range carrier.DefaultBreakerFailures - 1 {
		_, err := f.g.Number(ctx, "cucc", f.token(t, "cucc", phone, carriertest.FailNetwork))
		wantKind(t, "a network failure "+string(rune('1'+i)), err, authcore.KindUpstreamUnavailable)
	}
	if got := f.g.BreakerState("cucc"); got != "open" {
		t.Fatalf("after 5 failures: breaker %s, want open", got)
	}
	before := f.fake.Requests(carriertest.PathDypns)
	_, err = f.g.Number(ctx, "cucc", f.token(t, "cucc", phone, ""))
	if e := wantKind(t, "breaker open", err, authcore.KindUpstreamUnavailable); e.RetryAfter != carrier.DefaultBreakerCoolDown {
		t.Errorf("breaker open: RetryAfter %v, want %v", e.RetryAfter, carrier.DefaultBreakerCoolDown)
	}
	if got := f.fake.Requests(carriertest.PathDypns); got != before {
		t.Errorf("the breaker is open but %d requests reached the carrier", got-before)
	}
	if got, err := f.g.Number(ctx, "ctcc", f.token(t, "ctcc", phone, "")); err != nil || got != phone {
		t.Errorf("another carrier while cucc's breaker is open: %q, %v", got, err)
	}
	f.clock.Add(carrier.DefaultBreakerCoolDown)
	if got, err := f.g.Number(ctx, "cucc", f.token(t, "cucc", phone, "")); err != nil || got != phone {
		t.Fatalf("the probe: %q, %v", got, err)
	}
	if got := f.g.BreakerState("cucc"); got != "closed" {
		t.Errorf("after a passed probe: breaker %s, want closed", got)
	}
	want := "cucc/aliyun/number:timeout cucc/aliyun/number:failed cucc/aliyun/number:failed cucc/aliyun/number:failed cucc/aliyun/number:failed " +
		"cucc/aliyun/number:breaker_open ctcc/aliyun/number:ok cucc/aliyun/number:ok"
	if got := strings.Join(f.outcomes(), " "); got != want {
		t.Errorf("observed\n%s\nwant\n%s", got, want)
	}
}

// TestDisabledCarrier: route direct without an Aliyun AccessKey enables
// China Mobile only.
func TestDisabledCarrier(t *testing.T) {
	f := start(t, carrier.RouteDirect, func(c *carrier.Config) { c.AliyunAccessKeyID, c.AliyunAccessKeySecret = "", "" })
	if got := f.g.Carriers(); len(got) != 1 || got[0] != "cmcc" {
		t.Errorf("Carriers() = %q, want [cmcc]", got)
	}
	_, err := f.g.Number(context.Background(), "ctcc", "sometoken")
	wantKind(t, "a disabled carrier", err, authcore.KindNotFound)
}

func TestNewRequires(t *testing.T) {
	for name, cfg := range map[string]carrier.Config{
		"no route":            {AliyunAccessKeyID: "a", AliyunAccessKeySecret: "b"},
		"aliyun without key":  {Route: carrier.RouteAliyun},
		"direct without cmcc": {Route: carrier.RouteDirect, AliyunAccessKeyID: "a", AliyunAccessKeySecret: "b"},
		"half a key":          {Route: carrier.RouteAliyun, AliyunAccessKeyID: "a"},
		"cmcc on aliyun":      {Route: carrier.RouteAliyun, AliyunAccessKeyID: "a", AliyunAccessKeySecret: "b", CMCCAppID: "1", CMCCAppKey: "2"},
		"bad base":            {Route: carrier.RouteAliyun, AliyunAccessKeyID: "a", AliyunAccessKeySecret: "b", DypnsBaseURL: "ftp://x"},
	} {
		if _, err := carrier.New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

// TestCMCCSign: the sign of the protocol's field order, upper-case hex.
func TestCMCCSign(t *testing.T) {
	r := carrier.CMCCRequest{Version: "2.0", MsgID: "m1", SystemTime: "20240102030405006", StrictCheck: "0", AppID: "300011", Token: "STsid1"}
	// md5("300011" + "2.0" + "m1" + "20240102030405006" + "0" + "STsid1" + "key")
	// (computed with md5sum).
	if got, want := carrier.CMCCSign(r, "key"), "035650D54997AAA6B2BB9449B545462C"; got != want {
		t.Errorf("sign %s, want %s", got, want)
	}
	if got, want := carrier.CMCCSystemTime(time.Date(2024, 1, 1, 19, 4, 5, 6_000_000, time.UTC)), "20240102030405006"; got != want {
		t.Errorf("systemtime %s, want %s (China time, milliseconds)", got, want)
	}
}
