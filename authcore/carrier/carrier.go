// Package carrier is carrier one-click login (本机号码一键登录) and number
// verification (本机号码校验) against the carriers' servers: a Gateway
// implements authcore.Carriers over two routes, China Mobile's own
// loginTokenValidate ("direct", cmcc.go) and Aliyun's Dypnsapi GetMobile and
// VerifyMobile for all three carriers ("aliyun", dypns.go). Each carrier
// has its circuit breaker (authcore/breaker), each call a budget (2 s), and
// every call's outcome and latency go to an observer hook for metrics.
// carrier/carriertest is a fake of both routes.
package carrier

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/aliyunrpc"
	"github.com/loginhub/loginhub/authcore/breaker"
)

// The routes to the carriers (LOGINHUB_CARRIER_ROUTE).
const (
	// RouteDirect: China Mobile's loginTokenValidate; Unicom and Telecom
	// through Aliyun's Dypnsapi when its AccessKey is configured.
	RouteDirect = "direct"
	// RouteAliyun: Aliyun's Dypnsapi for all three carriers.
	RouteAliyun = "aliyun"
)

// Defaults, used when Config leaves them zero.
const (
	// DefaultBudget bounds one call to a carrier: past it the client is
	// told to fall back to SMS, which leaves it time to do so.
	DefaultBudget          = 2 * time.Second
	DefaultBreakerFailures = 5
	DefaultBreakerCoolDown = 10 * time.Second
)

// The outcomes of a Call.
const (
	OutcomeOK            = "ok"            // the carrier vouched (or answered a verification)
	OutcomeRefused       = "refused"       // the carrier refused the token: invalid, used or expired
	OutcomeFailed        = "failed"        // network error, 5xx, garbage, the carrier's system error
	OutcomeTimeout       = "timeout"       // no answer within the budget
	OutcomeMisconfigured = "misconfigured" // the carrier refused the hub's credentials or account
	OutcomeBreakerOpen   = "breaker_open"  // not sent: the carrier's breaker is open
)

// Call is one call to a carrier, as the Gateway reports it to
// Config.Observe.
type Call struct {
	Carrier  string // authcore.CarrierMobile, ...
	Route    string // "cmcc" (loginTokenValidate) or "aliyun" (Dypnsapi): where the call went
	Op       string // "number" or "verify"
	Outcome  string // Outcome*
	Duration time.Duration
}

// Config configures a Gateway.
type Config struct {
	// Route is RouteDirect or RouteAliyun; required.
	Route string
	// CMCCAppID and CMCCAppKey are the China Mobile app's credentials
	// (RouteDirect); both or neither.
	CMCCAppID, CMCCAppKey string
	// CMCCBaseURL is loginTokenValidate's host; "" means CMCCBaseURL.
	CMCCBaseURL string
	// AliyunAccessKeyID and AliyunAccessKeySecret are a RAM user's
	// AccessKey with permission for Dypnsapi; both or neither. Required
	// with RouteAliyun; with RouteDirect they enable Unicom and Telecom.
	AliyunAccessKeyID, AliyunAccessKeySecret string
	// DypnsBaseURL is Dypnsapi's endpoint; "" means DypnsBaseURL.
	DypnsBaseURL string
	// HTTPClient sends the requests; nil means http.DefaultClient's
	// transport. The budget bounds each call whatever its Timeout.
	HTTPClient *http.Client
	// Logger receives every failure, with the carrier's code and message
	// but never a token or a whole number. Nil discards.
	Logger *slog.Logger
	// Budget bounds one call; zero means DefaultBudget.
	Budget time.Duration
	// BreakerFailures calls failing in a row open a carrier's breaker for
	// BreakerCoolDown; zero means the defaults.
	BreakerFailures int
	BreakerCoolDown time.Duration
	// Now is the breakers' clock; nil means time.Now.
	Now func() time.Time
	// Observe, if set, is called after every call (for metrics); it must
	// be fast and safe for concurrent use.
	Observe func(Call)
}

// Gateway is the carriers' number authentication over the configured
// route. It is safe for concurrent use.
type Gateway struct {
	lanes   map[string]*lane
	log     *slog.Logger
	budget  time.Duration
	observe func(Call)
}

var _ authcore.Carriers = (*Gateway)(nil)

// lane is one carrier: the API its calls go to, and its breaker.
type lane struct {
	carrier string
	api     api
	breaker *breaker.Breaker
}

// api is one route's protocol. Its errors are *refusal or transport
// errors.
type api interface {
	route() string
	number(ctx context.Context, token string) (string, error)
	verify(ctx context.Context, token, phone string) (bool, error)
}

// refusal is a carrier's answer that is not a success, classified.
type refusal struct {
	outcome       string // OutcomeRefused, OutcomeFailed or OutcomeMisconfigured
	code, message string // the carrier's, for the log (redacted)
	requestID     string
}

func (r *refusal) Error() string {
	return fmt.Sprintf("carrier answered %s: %s (request %s)", r.code, r.message, r.requestID)
}

// New returns a Gateway for cfg, or an error naming what cfg lacks. With
// RouteDirect and no Aliyun AccessKey, only China Mobile is enabled.
func New(cfg Config) (*Gateway, error) {
	if (cfg.CMCCAppID == "") != (cfg.CMCCAppKey == "") {
		return nil, errors.New("carrier: the China Mobile appid and appkey go together")
	}
	if (cfg.AliyunAccessKeyID == "") != (cfg.AliyunAccessKeySecret == "") {
		return nil, errors.New("carrier: the Aliyun AccessKey ID and secret go together")
	}
	if cfg.Budget < 0 {
		return nil, errors.New("carrier: Budget must not be negative")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	var dypns api
	if cfg.AliyunAccessKeyID != "" {
		base := cmp.Or(cfg.DypnsBaseURL, DypnsBaseURL)
		if !authcore.ValidBaseURL(base) {
			return nil, fmt.Errorf("carrier: Dypnsapi base URL %q is not an http(s) URL without query", base)
		}
		dypns = &dypnsAPI{base: strings.TrimRight(base, "/"), keyID: cfg.AliyunAccessKeyID, secret: cfg.AliyunAccessKeySecret,
			http: hc, nonce: aliyunrpc.Nonce, now: time.Now}
	}
	apis := map[string]api{}
	switch cfg.Route {
	case RouteAliyun:
		if dypns == nil {
			return nil, errors.New("carrier: route aliyun needs the Aliyun AccessKey ID and secret")
		}
		if cfg.CMCCAppID != "" {
			return nil, errors.New("carrier: the China Mobile appid and appkey are for route direct, not aliyun")
		}
		for _, c := range []string{authcore.CarrierMobile, authcore.CarrierUnicom, authcore.CarrierTelecom} {
			apis[c] = dypns
		}
	case RouteDirect:
		if cfg.CMCCAppID == "" {
			return nil, errors.New("carrier: route direct needs the China Mobile appid and appkey")
		}
		base := cmp.Or(cfg.CMCCBaseURL, CMCCBaseURL)
		if !authcore.ValidBaseURL(base) {
			return nil, fmt.Errorf("carrier: China Mobile base URL %q is not an http(s) URL without query", base)
		}
		apis[authcore.CarrierMobile] = &cmccAPI{base: strings.TrimRight(base, "/"), appID: cfg.CMCCAppID, appKey: cfg.CMCCAppKey,
			http: hc, now: time.Now, msgid: newMsgID}
		if dypns != nil {
			apis[authcore.CarrierUnicom], apis[authcore.CarrierTelecom] = dypns, dypns
		}
	default:
		return nil, fmt.Errorf("carrier: route %q: want %s or %s", cfg.Route, RouteDirect, RouteAliyun)
	}
	g := &Gateway{lanes: map[string]*lane{}, log: cfg.Logger, budget: cmp.Or(cfg.Budget, DefaultBudget), observe: cfg.Observe}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	for c, a := range apis {
		c := c
		g.lanes[c] = &lane{carrier: c, api: a, breaker: breaker.New(cmp.Or(cfg.BreakerFailures, DefaultBreakerFailures),
			cmp.Or(cfg.BreakerCoolDown, DefaultBreakerCoolDown), cfg.Now, func(from, to string, failures int) {
				level := slog.LevelInfo
				if to == breaker.Open {
					level = slog.LevelError
				}
				g.log.LogAttrs(context.Background(), level, "carrier: circuit breaker "+to, slog.String("carrier", c),
					slog.String("from", from), slog.String("to", to), slog.Int("consecutive_failures", failures))
			})}
	}
	return g, nil
}

// Carriers lists the enabled carriers.
func (g *Gateway) Carriers() []string {
	var out []string
	for _, c := range []string{authcore.CarrierMobile, authcore.CarrierUnicom, authcore.CarrierTelecom} {
		if g.lanes[c] != nil {
			out = append(out, c)
		}
	}
	return out
}

// BreakerState is carrier's breaker's state (breaker.Closed, Open or
// HalfOpen), "" for a carrier that is not enabled.
func (g *Gateway) BreakerState(carrier string) string {
	if l := g.lanes[carrier]; l != nil {
		return l.breaker.State()
	}
	return ""
}

// Number implements authcore.Carriers.
func (g *Gateway) Number(ctx context.Context, carrier, token string) (string, error) {
	var number string
	err := g.do(ctx, carrier, "number", token, "", func(ctx context.Context, a api) (err error) {
		number, err = a.number(ctx, token)
		return err
	})
	if err != nil {
		return "", err
	}
	phone, err := authcore.NormalizePhone(number)
	if err != nil {
		return "", authcore.Wrap(authcore.KindUpstreamUnavailable, fmt.Errorf("carrier %s: a malformed number", carrier), msgUnavailable)
	}
	return phone, nil
}

// Verify implements authcore.Carriers. A number outside the mainland is
// no carrier's to vouch for: false, without a call.
func (g *Gateway) Verify(ctx context.Context, carrier, token, phone string) (bool, error) {
	if !strings.HasPrefix(phone, "+86") {
		if g.lanes[carrier] == nil {
			return false, errNotEnabled(carrier)
		}
		return false, nil
	}
	var match bool
	err := g.do(ctx, carrier, "verify", token, phone, func(ctx context.Context, a api) (err error) {
		match, err = a.verify(ctx, token, phone)
		return err
	})
	return match, err
}

const (
	msgUnavailable = "the carrier is unavailable; log in with an SMS code"
	msgRefused     = "the carrier refused this token (invalid, used or expired); get a new one, or log in with an SMS code"
)

func errNotEnabled(carrier string) error {
	return authcore.Errorf(authcore.KindNotFound, "carrier %s is not enabled on this hub", carrier)
}

var errBudget = errors.New("carrier: no answer within the budget")

// do makes one call through carrier's breaker within the budget, and
// turns its outcome into the breaker's verdict, an observation, a log line
// and the domain error.
func (g *Gateway) do(ctx context.Context, carrier, op, token, phone string, call func(context.Context, api) error) error {
	l := g.lanes[carrier]
	if l == nil {
		return errNotEnabled(carrier)
	}
	route := l.api.route()
	attrs := []slog.Attr{slog.String("carrier", carrier), slog.String("route", route), slog.String("op", op)}
	done, retryAfter, ok := l.breaker.Allow()
	if !ok {
		g.log.LogAttrs(ctx, slog.LevelDebug, "carrier: call refused by the circuit breaker", attrs...)
		g.report(Call{Carrier: carrier, Route: route, Op: op, Outcome: OutcomeBreakerOpen})
		e := unavailable(fmt.Errorf("carrier %s: circuit breaker open", carrier))
		e.RetryAfter = retryAfter
		return e
	}
	start := time.Now()
	cctx, cancel := context.WithTimeoutCause(ctx, g.budget, errBudget)
	err := call(cctx, l.api)
	timedOut := errors.Is(context.Cause(cctx), errBudget)
	cancel()
	elapsed := time.Since(start)
	outcome := OutcomeOK
	var rf *refusal
	switch {
	case err == nil:
	case errors.As(err, &rf):
		outcome = rf.outcome
	case timedOut:
		outcome = OutcomeTimeout
	case ctx.Err() != nil:
		// The client gave up: no verdict on the carrier.
		done(breaker.Ignored)
		return fmt.Errorf("carrier %s: %w", carrier, ctx.Err())
	default:
		outcome = OutcomeFailed
	}
	if outcome == OutcomeFailed || outcome == OutcomeTimeout {
		done(breaker.Failure)
	} else {
		done(breaker.Success)
	}
	g.report(Call{Carrier: carrier, Route: route, Op: op, Outcome: outcome, Duration: elapsed})
	if err == nil {
		return nil
	}
	cause := redact(err.Error(), token, phone)
	attrs = append(attrs, slog.String("error", cause), slog.Duration("elapsed", elapsed))
	switch outcome {
	case OutcomeRefused:
		g.log.LogAttrs(ctx, slog.LevelInfo, "carrier: token refused", attrs...)
		return authcore.Wrap(authcore.KindUnauthorized, errors.New(cause), msgRefused)
	case OutcomeMisconfigured:
		g.log.LogAttrs(ctx, slog.LevelError, "carrier: the carrier refused our configuration", append(attrs,
			slog.String("misconfiguration", misconfigHint(route)))...)
	case OutcomeTimeout:
		g.log.LogAttrs(ctx, slog.LevelWarn, "carrier: no answer within the budget", append(attrs, slog.Duration("budget", g.budget))...)
	default:
		g.log.LogAttrs(ctx, slog.LevelWarn, "carrier: call failed", attrs...)
	}
	return unavailable(errors.New(cause))
}

func (g *Gateway) report(c Call) {
	if g.observe != nil {
		g.observe(c)
	}
}

func misconfigHint(route string) string {
	if route == routeCMCC {
		return "check LOGINHUB_CMCC_APPID and LOGINHUB_CMCC_APPKEY, and the app's permissions with China Mobile"
	}
	return "check LOGINHUB_ALIYUN_ACCESS_KEY_ID/_SECRET, the RAM user's Dypnsapi permission and the account's balance"
}

// unavailable is the error of a failed call: 503, and the client should
// fall back to SMS.
func unavailable(cause error) *authcore.Error {
	e := authcore.Wrap(authcore.KindUpstreamUnavailable, cause, msgUnavailable)
	e.Fallback = authcore.FallbackSMS
	return e
}

// mobileRun finds mainland mobile numbers in text from a carrier or
// net/http.
var mobileRun = regexp.MustCompile(`1[3-9][0-9]{9}`)

// redact keeps the token and numbers out of text that is logged.
func redact(s, token, phone string) string {
	if token != "" {
		for _, form := range []string{aliyunrpc.Encode(aliyunrpc.Encode(token)), aliyunrpc.Encode(token), token} {
			s = strings.ReplaceAll(s, form, "<token>")
		}
	}
	_ = phone // every mainland number is masked below, this one included
	s = mobileRun.ReplaceAllStringFunc(s, authcore.MaskPhone)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// maxAnswerBytes bounds a carrier's answer.
const maxAnswerBytes = 64 << 10

// exchange sends req and returns the answer's status and body.
func exchange(hc *http.Client, req *http.Request) (int, []byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, authcore.ScrubURLError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("reading the answer: %w", authcore.ScrubURLError(err))
	}
	return resp.StatusCode, body, nil
}

// excerpt is the start of an answer that is not what the carrier sends.
func excerpt(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}
