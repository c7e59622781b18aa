package sms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// DefaultTimeout bounds one send to a provider when a Config's Timeout is
// zero.
const DefaultTimeout = 5 * time.Second

const maxAnswerBytes = 64 << 10

// Messages safe for clients; the provider's own text is only logged.
const (
	msgUnavailable = "the SMS provider is unavailable; try again later"
	msgLimited     = "the SMS provider sends no more codes to this number for now; try again later"
	msgBadNumber   = "this number cannot receive SMS codes"
)

// verdict is what loginhub makes of one provider error code.
type verdict struct {
	kind   authcore.Kind // KindRateLimited, KindInvalid or KindUpstreamUnavailable
	retry  time.Duration // Retry-After of a KindRateLimited; 0 with daily
	daily  bool          // a limit per natural day in China: Retry-After runs to the next midnight there
	config bool          // the provider refused our account, key, signature or template: logged as an error
}

var (
	limitedFor   = func(d time.Duration) verdict { return verdict{kind: authcore.KindRateLimited, retry: d} }
	limitedToday = verdict{kind: authcore.KindRateLimited, daily: true}
	badNumber    = verdict{kind: authcore.KindInvalid}
	misconfig    = verdict{kind: authcore.KindUpstreamUnavailable, config: true}
	unavailable  = verdict{kind: authcore.KindUpstreamUnavailable}
)

// chinaTime is China Standard Time (no daylight saving), where both
// providers' daily limits end.
var chinaTime = time.FixedZone("CST", 8*60*60)

// untilChinaMidnight is how long from now until the next midnight in China.
func untilChinaMidnight(now time.Time) time.Duration {
	t := now.In(chinaTime)
	next := time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, chinaTime)
	return next.Sub(now)
}

// sender is what both providers share: the HTTP exchange, its timeout and
// the translation of an outcome into the domain error and a log line.
type sender struct {
	provider string // "aliyun" or "tencent", in logs and errors
	base     string
	http     *http.Client
	log      *slog.Logger
	timeout  time.Duration
	now      func() time.Time
}

func newSender(provider, base, def string, hc *http.Client, log *slog.Logger, timeout time.Duration) (sender, error) {
	if base == "" {
		base = def
	}
	if !authcore.ValidBaseURL(base) {
		return sender{}, fmt.Errorf("sms %s: base URL %q is not an http(s) URL without query", provider, base)
	}
	if timeout < 0 {
		return sender{}, fmt.Errorf("sms %s: Timeout must not be negative", provider)
	}
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return sender{provider: provider, base: strings.TrimRight(base, "/"), http: hc, log: log, timeout: timeout, now: time.Now}, nil
}

// exchange sends one request, once, and returns the answer's status and
// body. It never retries: a request that reached the provider may have
// sent the message, and a repeat would send a second one (and cost
// twice). The send is detached from the caller's cancellation, so that a
// client hanging up cannot leave a paid send with an unknown outcome, and
// is bounded by the sender's timeout.
func (s sender) exchange(ctx context.Context, build func(context.Context) (*http.Request, error)) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	req, err := build(ctx)
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.http.Do(req)
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

// failed logs a send that did not happen (or whose outcome is unknown)
// and returns its KindUpstreamUnavailable error.
func (s sender) failed(ctx context.Context, m authcore.SMSMessage, cause error) error {
	cause = fmt.Errorf("sms %s: %w", s.provider, cause)
	level := slog.LevelWarn
	what := "sms: send failed"
	if errors.Is(cause, context.DeadlineExceeded) {
		// The provider may have sent it: not retried, see exchange.
		what = "sms: send timed out; the provider may still deliver it"
	}
	s.log.LogAttrs(ctx, level, what, slog.String("provider", s.provider), slog.Any("sms", m),
		slog.String("error", redact(cause.Error(), m)))
	return authcore.Wrap(authcore.KindUpstreamUnavailable, errors.New(redact(cause.Error(), m)), msgUnavailable)
}

// refused logs a send the provider refused with code and message and
// returns the error its verdict calls for.
func (s sender) refused(ctx context.Context, m authcore.SMSMessage, v verdict, code, message, requestID string) error {
	message = redact(message, m)
	cause := fmt.Errorf("sms %s: %s: %s (request %s)", s.provider, code, message, requestID)
	attrs := []slog.Attr{slog.String("provider", s.provider), slog.Any("sms", m),
		slog.String("code", code), slog.String("message", message), slog.String("request_id", requestID)}
	switch {
	case v.config:
		s.log.LogAttrs(ctx, slog.LevelError, "sms: the provider refused our configuration", append(attrs,
			slog.String("misconfiguration", "check LOGINHUB_SMS_ACCESS_KEY_ID/_SECRET, the account's balance and permissions, LOGINHUB_SMS_SIGN_NAME and LOGINHUB_SMS_TEMPLATE"))...)
	case v.kind == authcore.KindUpstreamUnavailable:
		s.log.LogAttrs(ctx, slog.LevelWarn, "sms: the provider failed", attrs...)
	default:
		s.log.LogAttrs(ctx, slog.LevelInfo, "sms: the provider refused the number", attrs...)
	}
	switch v.kind {
	case authcore.KindRateLimited:
		e := authcore.Wrap(authcore.KindRateLimited, cause, msgLimited)
		e.RetryAfter = v.retry
		if v.daily {
			e.RetryAfter = untilChinaMidnight(s.now())
		}
		return e
	case authcore.KindInvalid:
		return authcore.Wrap(authcore.KindInvalid, cause, msgBadNumber)
	}
	return authcore.Wrap(authcore.KindUpstreamUnavailable, cause, msgUnavailable)
}

// sent logs a send the provider accepted.
func (s sender) sent(ctx context.Context, m authcore.SMSMessage, id, requestID string) {
	s.log.LogAttrs(ctx, slog.LevelDebug, "sms: the provider accepted the message", slog.String("provider", s.provider),
		slog.Any("sms", m), slog.String("id", id), slog.String("request_id", requestID))
}

// redact keeps the code and the number out of text that came from the
// provider or from net/http, before it is logged or wrapped.
func redact(s string, m authcore.SMSMessage) string {
	if m.Code != "" {
		s = strings.ReplaceAll(s, m.Code, "******")
	}
	if p := strings.TrimPrefix(m.Phone, "+"); len(p) > 4 {
		masked := authcore.MaskE164(m.Phone)
		s = strings.ReplaceAll(s, p, masked)
		if national, ok := strings.CutPrefix(p, "86"); ok {
			s = strings.ReplaceAll(s, national, masked)
		}
	}
	return s
}

// answerExcerpt is the start of an answer that is not what the provider
// sends, for the log.
func answerExcerpt(b []byte) string {
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}
