package sms

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// logBuffer captures a sender's log lines.
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

func newLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// The message every test sends: the code and the number must show
// nowhere but in the request to the provider.
var testMessage = authcore.SMSMessage{Phone: "+8613812345678", Purpose: authcore.PurposeLogin, Code: "904317", SentAt: time.Now()}

// mustNotLeak fails if the logs or the error's text hold a secret, the
// code or the full number.
func mustNotLeak(t *testing.T, logs string, err error, secrets ...string) {
	t.Helper()
	text := logs
	if err != nil {
		text += "\n" + err.Error()
	}
	for _, s := range append(secrets, testMessage.Code, "13812345678") {
		if strings.Contains(text, s) {
			t.Errorf("%q appears in the logs or the error:\n%s", s, text)
		}
	}
}

func TestUntilChinaMidnight(t *testing.T) {
	for _, tc := range []struct {
		now  string
		want time.Duration
	}{
		{"2026-12-07T15:00:00Z", 1 * time.Hour}, // 23:00 in China
		{"2026-12-07T16:00:00Z", 24 * time.Hour},
		{"2026-12-07T16:00:01Z", 24*time.Hour - time.Second},
		{"2026-12-07T02:30:00Z", 13*time.Hour + 30*time.Minute},
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		if got := untilChinaMidnight(now); got != tc.want {
			t.Errorf("untilChinaMidnight(%s) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	m := testMessage
	got := redact("number 13812345678 / 8613812345678 code 904317", m)
	if strings.Contains(got, "904317") || strings.Contains(got, "13812345678") {
		t.Errorf("redact: %q still holds the code or the number", got)
	}
}

// providerRefusal is a provider's answer that refuses a send, as a test
// table names it: the kind and Retry-After the hub must give (retry < 0:
// until midnight in China), the log level, and the provider's code and
// text, which the client must not see.
type providerRefusal struct {
	kind                 authcore.Kind
	retry                time.Duration
	level, code, message string
}

// checkRefusal checks SendCode's err for the refusal rc, after requests
// requests to the provider, against the sender's logs.
func checkRefusal(t *testing.T, provider string, rc providerRefusal, err error, logs string, requests int, secret string) {
	t.Helper()
	var e *authcore.Error
	if !errors.As(err, &e) || e.Kind != rc.kind {
		t.Fatalf("SendCode: %v, want kind %v", err, rc.kind.Code())
	}
	want := rc.retry
	if want < 0 {
		want = untilChinaMidnight(time.Now())
	}
	if (e.RetryAfter - want).Abs() > 2*time.Second {
		t.Errorf("RetryAfter %v, want %v", e.RetryAfter, want)
	}
	if strings.Contains(e.Message, rc.message) || strings.Contains(e.Message, rc.code) {
		t.Errorf("the client's message %q shows %s's text", e.Message, provider)
	}
	if !strings.Contains(logs, `"level":"`+rc.level+`"`) || !strings.Contains(logs, rc.code) {
		t.Errorf("logs do not have %s with %s:\n%s", rc.level, rc.code, logs)
	}
	if requests != 1 {
		t.Errorf("%d requests, want 1 (never repeated)", requests)
	}
	mustNotLeak(t, logs, err, secret)
}

// checkMisconfigured checks that credentials the provider refused are a
// 503 logged as a configuration error naming code, with no secret shown.
func checkMisconfigured(t *testing.T, err error, logs, code string, secrets ...string) {
	t.Helper()
	if authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Fatalf("SendCode: %v, want upstream_unavailable", err)
	}
	if !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, code) || !strings.Contains(logs, "misconfiguration") {
		t.Errorf("logs do not report a configuration error %s:\n%s", code, logs)
	}
	mustNotLeak(t, logs, err, secrets...)
}

// checkTimeoutNotRetried checks that a provider that did not answer in
// time gave a 503 after one request, logged as one that may still deliver
// (SendCode has returned, so a retry would have been sent by now: the
// fakes record a request as it arrives).
func checkTimeoutNotRetried(t *testing.T, err error, logs string, requests int, secrets ...string) {
	t.Helper()
	if authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Fatalf("SendCode: %v, want upstream_unavailable", err)
	}
	if requests != 1 {
		t.Errorf("%d requests, want 1", requests)
	}
	if !strings.Contains(logs, "may still deliver") {
		t.Errorf("the log does not say the message may still arrive:\n%s", logs)
	}
	mustNotLeak(t, logs, err, secrets...)
}
