package sms

import (
	"bytes"
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
