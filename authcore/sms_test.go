package authcore_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

func TestNormalizePhone(t *testing.T) {
	good := map[string]string{
		"13800138000":        "+8613800138000",
		"+8613800138000":     "+8613800138000",
		"+86 138 0013 8000":  "+8613800138000",
		"+86-138-0013-8000":  "+8613800138000",
		"008613800138000":    "+8613800138000",
		"0086 138 0013 8000": "+8613800138000",
		"+14155552671":       "+14155552671",
		"+44 20 7946 0958":   "+442079460958",
		"+852 6123 4567":     "+85261234567",
		"+123456789012345":   "+123456789012345",
		"001 415 555 2671":   "+14155552671",
		"+86 13800138000":    "+8613800138000",
		"+86 138.0013.8000":  "+8613800138000",
		"19912345678":        "+8619912345678",
		"+1 415 555 2671":    "+14155552671",
	}
	for in, want := range good {
		got, err := authcore.NormalizePhone(in)
		if err != nil || got != want {
			t.Errorf("NormalizePhone(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", " ", "1380013800", "138001380001", "23800138000", "03800138000",
		"+86 2380013800", "+8612345", "+861380013800", "+86138001380000",
		"+1234567", "+1234567890123456", "+0123456789", "++8613800138000",
		"8613800138000", "+86  13800138000", " +8613800138000", "+8613800138000 ",
		"+86-", "+ 8613800138000", "+86 138 0013 800a", "１３８００１３８０００",
		"+86\x0013800138000", "tel:+8613800138000", "13800138000;", "+8613800138000\n",
		strings.Repeat("1", 33), "+" + strings.Repeat("1 ", 16) + "1",
	}
	for _, in := range bad {
		got, err := authcore.NormalizePhone(in)
		if authcore.KindOf(err) != authcore.KindInvalid {
			t.Errorf("NormalizePhone(%q) = %q, %v; want KindInvalid", in, got, err)
		}
	}
}

func TestMaskE164(t *testing.T) {
	for in, want := range map[string]string{
		"+8613800138000": "+86 138****8000",
		"+14155552671":   "+1********71",
	} {
		if got := authcore.MaskE164(in); got != want {
			t.Errorf("MaskE164(%q) = %q, want %q", in, got, want)
		}
	}
}

// outbox is an SMSSender that keeps what it is given.
type outbox struct {
	mu       sync.Mutex
	sent     []authcore.SMSMessage
	failNext bool // the next send fails as a provider outage would
}

func (o *outbox) SendCode(_ context.Context, m authcore.SMSMessage) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failNext {
		o.failNext = false
		return authcore.Errorf(authcore.KindUpstreamUnavailable, "SMS provider failed")
	}
	o.sent = append(o.sent, m)
	return nil
}

// last returns the last code sent to phone.
func (o *outbox) last(t *testing.T, phone string) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := len(o.sent) - 1; i >= 0; i-- {
		if o.sent[i].Phone == phone {
			return o.sent[i].Code
		}
	}
	t.Fatalf("no code sent to %s", phone)
	return ""
}

type smsFixture struct {
	svc   *authcore.Service
	box   *outbox
	clock *clock
	logs  *bytes.Buffer
}

func newSMSFixture(t *testing.T) *smsFixture {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	store := memstore.New(nil, c.Now)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	f := &smsFixture{box: &outbox{}, clock: c, logs: &bytes.Buffer{}}
	svc, err := authcore.NewService(authcore.Config{
		Store: store, Signer: signer, Vault: vault, SMS: f.box, Limiter: store, PublicURL: "https://hub.example",
		Now: c.Now, Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

var testAddr = netip.MustParseAddr("198.51.100.7")

func (f *smsFixture) send(phone string) (authcore.SMSCodeSent, error) {
	return f.svc.SendSMSCode(context.Background(), authcore.SMSCodeRequest{Phone: phone, Purpose: "login", ClientIP: testAddr})
}

func (f *smsFixture) login(phone, code string) (authcore.Session, error) {
	return f.svc.SMSLogin(context.Background(), authcore.SMSLoginRequest{Phone: phone, Code: code})
}

func TestSMSLoginFlow(t *testing.T) {
	f := newSMSFixture(t)
	const phone = "+8613800138000"
	want := authcore.SMSCodeSent{ExpiresIn: 300, ResendAfter: 60}
	got, err := f.send("138 0013 8000")
	if err != nil || got != want {
		t.Fatalf("first send: %+v, %v; want %+v", got, err, want)
	}
	s1, err := f.login("13800138000", f.box.last(t, phone))
	if err != nil {
		t.Fatalf("first login: %v", err)
	}
	if s1.User.IsNew == nil || !*s1.User.IsNew || s1.User.PhoneMasked != "+86 138****8000" || s1.User.Nickname != authcore.DefaultPhoneNickname {
		t.Errorf("first login user %+v, want a new user with phone_masked +86 138****8000", s1.User)
	}
	p, err := f.svc.Authenticate(context.Background(), s1.AccessToken)
	if err != nil || p.User.ID != s1.User.ID {
		t.Fatalf("Authenticate the SMS session: %+v, %v", p.User, err)
	}
	if !p.Session.AuthTime.Equal(f.clock.Now()) {
		t.Errorf("session auth time %v, want the login's", p.Session.AuthTime)
	}
	if _, err := f.login(phone, f.box.last(t, phone)); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("the same code again: %v, want unauthorized", err)
	}

	// Five minutes on, sensitive operations want a fresh SMS login.
	f.clock.Advance(authcore.RecentLoginMaxAge + time.Second)
	p, _ = f.svc.Authenticate(context.Background(), s1.AccessToken)
	var e *authcore.Error
	if err := f.svc.RequireRecentLogin(p); !asError(err, &e) || e.StepUp == nil || len(e.StepUp.Methods) != 1 || e.StepUp.Methods[0] != "sms" {
		t.Errorf("RequireRecentLogin of a stale SMS session: %v, want step-up by sms", err)
	}

	// A known number gets the same answer as an unknown one.
	f.clock.Advance(61 * time.Second)
	if got, err := f.send(phone); err != nil || got != want {
		t.Fatalf("send to a known number: %+v, %v; want %+v", got, err, want)
	}
	s2, err := f.login(phone, f.box.last(t, phone))
	if err != nil {
		t.Fatalf("second login: %v", err)
	}
	if s2.User.ID != s1.User.ID || s2.User.IsNew == nil || *s2.User.IsNew {
		t.Errorf("second login user %+v, want %s and not new", s2.User, s1.User.ID)
	}

	// Expired at 5 minutes.
	f.clock.Advance(61 * time.Second)
	f.send(phone)
	f.clock.Advance(authcore.SMSCodeTTL)
	if _, err := f.login(phone, f.box.last(t, phone)); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("an expired code: %v, want unauthorized", err)
	}
}

func TestSMSWrongTries(t *testing.T) {
	f := newSMSFixture(t)
	const phone = "+8613800138001"
	f.send(phone)
	code := f.box.last(t, phone)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		if _, err := f.login(phone, wrong); authcore.KindOf(err) != authcore.KindUnauthorized {
			t.Fatalf("wrong try %d: %v, want unauthorized", i+1, err)
		}
	}
	if _, err := f.login(phone, code); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("the right code after 5 wrong tries: %v, want unauthorized (void)", err)
	}
}

func rateLimited(t *testing.T, what string, err error, maxWait time.Duration) {
	t.Helper()
	var e *authcore.Error
	if authcore.KindOf(err) != authcore.KindRateLimited || !asError(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > maxWait {
		t.Errorf("%s: %v, want rate limited with a retry within %v", what, err, maxWait)
	}
}

func asError(err error, e **authcore.Error) bool {
	de, ok := err.(*authcore.Error)
	*e = de
	return ok
}

func TestSMSLimits(t *testing.T) {
	f := newSMSFixture(t)
	const phone = "+8613800138002"
	if _, err := f.send(phone); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(20 * time.Second)
	_, err := f.send(phone)
	rateLimited(t, "a resend after 20 s", err, 40*time.Second)
	for i := 2; i <= authcore.SMSPerNumberDay; i++ {
		f.clock.Advance(61 * time.Second)
		if _, err := f.send(phone); err != nil {
			t.Fatalf("send %d of the day: %v", i, err)
		}
	}
	f.clock.Advance(61 * time.Second)
	_, err = f.send(phone)
	rateLimited(t, "send 11 of the day", err, 24*time.Hour)

	// Per address: 30 an hour, whatever the numbers.
	f = newSMSFixture(t)
	for i := range authcore.SMSPerAddrHour {
		if _, err := f.send("+861380013" + strings.Repeat("0", 4-len(itoa(i))) + itoa(i)); err != nil {
			t.Fatalf("send %d from one address: %v", i+1, err)
		}
	}
	_, err = f.send("+8613900139000")
	rateLimited(t, "send 31 from one address", err, time.Hour)
}

// TestSMSFailedSendFreesResend: a send the provider failed does not hold
// the number's 60-second window (nothing reached the phone), but counts
// against the day's limit.
func TestSMSFailedSendFreesResend(t *testing.T) {
	f := newSMSFixture(t)
	const phone = "+8613800138003"
	f.box.failNext = true
	if _, err := f.send(phone); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Fatalf("a failed send: %v, want upstream_unavailable", err)
	}
	if _, err := f.send(phone); err != nil {
		t.Fatalf("asking again at once after a failed send: %v, want a code", err)
	}
	if _, err := f.login(phone, f.box.last(t, phone)); err != nil {
		t.Fatalf("the code of the retry: %v", err)
	}
	_, err := f.send(phone)
	rateLimited(t, "a resend after a successful send", err, time.Minute)
	for i := 3; i <= authcore.SMSPerNumberDay; i++ {
		f.clock.Advance(61 * time.Second)
		if _, err := f.send(phone); err != nil {
			t.Fatalf("send %d of the day: %v", i, err)
		}
	}
	f.clock.Advance(61 * time.Second)
	_, err = f.send(phone)
	rateLimited(t, "send 11 of the day, the failed one included", err, 24*time.Hour)
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

func TestSMSRefusals(t *testing.T) {
	f := newSMSFixture(t)
	ctx := context.Background()
	for _, req := range []authcore.SMSCodeRequest{
		{Phone: "13800138000", Purpose: "bind", StepUpID: "x"},
		{Phone: "13800138000", Purpose: "step_up", StepUpID: "x"},
		{Phone: "13800138000", Purpose: "signup"},
		{Phone: "13800138000"},
		{Phone: "13800138000", Purpose: "login", StepUpID: "x"},
		{Phone: "12345", Purpose: "login"},
	} {
		if _, err := f.svc.SendSMSCode(ctx, req); authcore.KindOf(err) != authcore.KindInvalid {
			t.Errorf("SendSMSCode(%+v): %v, want invalid", req, err)
		}
	}
	for _, req := range []authcore.SMSLoginRequest{
		{Phone: "13800138000", Code: "12345"},
		{Phone: "13800138000", Code: "1234567"},
		{Phone: "13800138000", Code: "12345a"},
		{Phone: "13800138000", Code: ""},
		{Phone: "bad", Code: "123456"},
		{Phone: "13800138000", Code: "123456", Client: authcore.Client{DeviceID: "short"}},
		{Phone: "13800138000", Code: "123456", Client: authcore.Client{DeviceID: strings.Repeat("d", 65)}},
		{Phone: "13800138000", Code: "123456", Client: authcore.Client{DeviceID: "device id with spaces!"}},
	} {
		if _, err := f.svc.SMSLogin(ctx, req); authcore.KindOf(err) != authcore.KindInvalid {
			t.Errorf("SMSLogin(%+v): %v, want invalid", req, err)
		}
	}
	if len(f.box.sent) != 0 {
		t.Errorf("refused requests sent %d messages", len(f.box.sent))
	}

	// Without a sender SMS does not exist.
	store := memstore.New(nil, nil)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: store, Signer: signer, Vault: vault, PublicURL: "https://hub.example"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Phone: "13800138000", Purpose: "login"}); authcore.KindOf(err) != authcore.KindNotFound {
		t.Errorf("SendSMSCode without a sender: %v, want not found", err)
	}
	if _, err := svc.SMSLogin(ctx, authcore.SMSLoginRequest{Phone: "13800138000", Code: "123456"}); authcore.KindOf(err) != authcore.KindNotFound {
		t.Errorf("SMSLogin without a sender: %v, want not found", err)
	}
	if _, err := authcore.NewService(authcore.Config{Store: store, Signer: signer, Vault: vault, PublicURL: "https://hub.example", SMS: &outbox{}}); err == nil {
		t.Error("NewService accepted SMS without a Limiter")
	}
}

// TestSMSCodeNotLogged: the core logs sends and refusals, never a code
// nor a whole number.
func TestSMSCodeNotLogged(t *testing.T) {
	f := newSMSFixture(t)
	const phone = "+8613800138003"
	f.send(phone)
	code := f.box.last(t, phone)
	f.login(phone, "000000")
	if _, err := f.login(phone, code); err != nil {
		t.Fatal(err)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "sms code sent") {
		t.Fatalf("the send was not logged; logs:\n%s", logs)
	}
	for _, secret := range []string{code, "13800138003"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
}
