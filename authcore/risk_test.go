package authcore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

// Two places, as a GeoIP database would name them.
var (
	inShenzhen  = netip.MustParseAddr("203.0.113.10")
	inHangzhou  = netip.MustParseAddr("198.51.100.20")
	placeByAddr = mapRegions{inShenzhen: "CN/Guangdong/Shenzhen", inHangzhou: "CN/Zhejiang/Hangzhou"}
)

type mapRegions map[netip.Addr]string

func (m mapRegions) Region(a netip.Addr) string { return m[a] }

const (
	homeDevice  = "home-device-0123456789"
	otherDevice = "other-device-0123456789"
	riskPW      = "correct horse battery"
)

type riskFixture struct {
	svc   *authcore.Service
	store *memstore.Store
	box   *outbox
	clock *clock
	wx    *fakeWeChat
	logs  *bytes.Buffer

	mu        sync.Mutex
	decisions []authcore.RiskDecision
}

func newRiskFixture(t *testing.T, policy authcore.RiskPolicy) *riskFixture {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	store := memstore.New(nil, c.Now)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	f := &riskFixture{store: store, box: &outbox{}, clock: c, wx: &fakeWeChat{codes: map[string]string{}}, logs: &bytes.Buffer{}}
	svc, err := authcore.NewService(authcore.Config{
		Store: store, Signer: signer, Vault: vault, SMS: f.box, Limiter: store, WeChat: f.wx, PublicURL: "https://hub.example",
		Now: c.Now, Logger: slog.New(slog.NewJSONHandler(f.logs, nil)), Regions: placeByAddr, Risk: policy,
		OnRiskDecision: func(d authcore.RiskDecision) {
			f.mu.Lock()
			f.decisions = append(f.decisions, d)
			f.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// lastDecision is the last decision reported to OnRiskDecision.
func (f *riskFixture) lastDecision(t *testing.T) authcore.RiskDecision {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.decisions) == 0 {
		t.Fatal("no risk decision reported")
	}
	return f.decisions[len(f.decisions)-1]
}

// smsUser makes a user of phone by an SMS login from Shenzhen on the home
// device, and gives it a password.
func (f *riskFixture) smsUser(t *testing.T, phone string) authcore.Principal {
	t.Helper()
	ctx := context.Background()
	if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Phone: phone, Purpose: "login", ClientIP: inShenzhen}); err != nil {
		t.Fatal(err)
	}
	sess, err := f.svc.SMSLogin(ctx, authcore.SMSLoginRequest{Phone: phone, Code: f.box.last(t, phone),
		Client: authcore.Client{IP: inShenzhen, DeviceID: homeDevice}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.svc.Authenticate(ctx, sess.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.SetPassword(ctx, p, authcore.SetPasswordRequest{Password: riskPW}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(authcore.SMSResendAfter) // the number may get another code
	return p
}

func (f *riskFixture) passwordLogin(phone string, ip netip.Addr, device string) (authcore.Session, error) {
	return f.svc.PasswordLogin(context.Background(), authcore.PasswordLoginRequest{Login: phone, Password: riskPW,
		Client: authcore.Client{IP: ip, DeviceID: device}})
}

// stepUpOf returns the challenge of a stepped-up login's error.
func stepUpOf(t *testing.T, what string, err error) *authcore.StepUp {
	t.Helper()
	var e *authcore.Error
	if authcore.KindOf(err) != authcore.KindStepUpRequired || !asError(err, &e) || e.StepUp == nil || e.StepUp.ID == "" {
		t.Fatalf("%s: %v, want step_up_required with a challenge", what, err)
	}
	return e.StepUp
}

// TestRiskPolicies: which logins each policy steps up, by whether the
// place and the device were seen in a successful login before.
func TestRiskPolicies(t *testing.T) {
	cases := []struct {
		name   string
		ip     netip.Addr
		device string
		want   map[authcore.RiskPolicy]bool // stepped up
	}{
		{"same place, same device", inShenzhen, homeDevice,
			map[authcore.RiskPolicy]bool{authcore.RiskNewRegion: false, authcore.RiskStrict: false, authcore.RiskOff: false}},
		{"same place, new device", inShenzhen, otherDevice,
			map[authcore.RiskPolicy]bool{authcore.RiskNewRegion: false, authcore.RiskStrict: true, authcore.RiskOff: false}},
		{"new place, same device", inHangzhou, homeDevice,
			map[authcore.RiskPolicy]bool{authcore.RiskNewRegion: false, authcore.RiskStrict: true, authcore.RiskOff: false}},
		{"new place, new device", inHangzhou, otherDevice,
			map[authcore.RiskPolicy]bool{authcore.RiskNewRegion: true, authcore.RiskStrict: true, authcore.RiskOff: false}},
		{"new place, no device id", inHangzhou, "",
			map[authcore.RiskPolicy]bool{authcore.RiskNewRegion: true, authcore.RiskStrict: true, authcore.RiskOff: false}},
	}
	for _, policy := range []authcore.RiskPolicy{authcore.RiskNewRegion, authcore.RiskStrict, authcore.RiskOff} {
		f := newRiskFixture(t, policy)
		for i, c := range cases {
			phone := fmt.Sprintf("+861380013801%d", i)
			f.smsUser(t, phone)
			_, err := f.passwordLogin(phone, c.ip, c.device)
			if got := authcore.KindOf(err) == authcore.KindStepUpRequired; got != c.want[policy] || (!got && err != nil) {
				t.Errorf("%s, %s: %v; want stepped up %v", policy, c.name, err, c.want[policy])
			}
			if policy != authcore.RiskOff {
				if d := f.lastDecision(t); d.StepUp != c.want[policy] || d.Method != "pwd" || len(d.Reasons) == 0 {
					t.Errorf("%s, %s: decision %+v", policy, c.name, d)
				}
			}
		}
		if policy == authcore.RiskOff && len(f.decisions) != 0 {
			t.Errorf("off: decisions %+v reported, want none", f.decisions)
		}
	}
}

// TestStepUpCompletes: a stepped-up login names its challenge; a code sent
// for it to the user's own phone completes it once into the session the
// login would have had (amr pwd + sms), after which the place and device
// are known; the attempt is in the history as step_up.
func TestStepUpCompletes(t *testing.T) {
	f := newRiskFixture(t, authcore.RiskNewRegion)
	ctx := context.Background()
	const phone = "+8613800138000"
	p := f.smsUser(t, phone)
	_, err := f.passwordLogin(phone, inHangzhou, otherDevice)
	su := stepUpOf(t, "login from Hangzhou on a new device", err)
	if !strings.HasPrefix(su.ID, "su_") || !slices.Equal(su.Methods, []string{"sms"}) || su.PhoneMasked != "+86 138****8000" ||
		su.Region != "CN/Zhejiang/Hangzhou" || su.ExpiresIn != 300 {
		t.Fatalf("step_up %+v", su)
	}
	if d := f.lastDecision(t); !d.StepUp || !slices.Equal(d.Reasons, []string{"new_device", "new_region"}) {
		t.Errorf("decision %+v, want step_up for new_device, new_region", d)
	}
	logins, err := f.svc.MyLogins(ctx, p)
	if err != nil || len(logins) == 0 || logins[0].Outcome != "step_up" || logins[0].Region != "CN/Zhejiang/Hangzhou" {
		t.Fatalf("login history %+v, %v; want the step_up attempt first", logins, err)
	}

	// The code goes to the user's phone whatever phone the request names.
	if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Phone: "+8613900139000", Purpose: "step_up", StepUpID: su.ID, ClientIP: inHangzhou}); err != nil {
		t.Fatal(err)
	}
	code := f.box.last(t, phone)
	if _, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: su.ID, Code: wrongCode(code)}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Fatalf("a wrong code: %v, want unauthorized", err)
	}
	sess, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: su.ID, Code: code, Client: authcore.Client{IP: inHangzhou}})
	if err != nil {
		t.Fatalf("the right code: %v", err)
	}
	got, err := f.svc.Authenticate(ctx, sess.AccessToken)
	if err != nil || got.User.ID != p.User.ID || !slices.Equal(got.Session.AMR, []string{"pwd", "sms"}) || got.Session.DeviceID != otherDevice {
		t.Fatalf("the step-up's session: %+v, %v; want the user's, amr [pwd sms], the attempt's device", got.Session, err)
	}

	// Once: another code for the same challenge does not log in again.
	f.clock.Advance(authcore.SMSResendAfter)
	if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Purpose: "step_up", StepUpID: su.ID, ClientIP: inHangzhou}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: su.ID, Code: f.box.last(t, phone)}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Fatalf("a used challenge: %v, want unauthorized", err)
	}

	// The place and device are known now.
	if _, err := f.passwordLogin(phone, inHangzhou, otherDevice); err != nil {
		t.Fatalf("the same place and device again: %v", err)
	}
	if d := f.lastDecision(t); d.StepUp || !slices.Equal(d.Reasons, []string{"known_device", "known_region"}) {
		t.Errorf("decision %+v, want a pass for known_device, known_region", d)
	}
	// Ninety days later they are forgotten.
	f.clock.Advance(authcore.RiskMemory + time.Hour)
	if _, err := f.passwordLogin(phone, inHangzhou, otherDevice); authcore.KindOf(err) != authcore.KindStepUpRequired {
		t.Errorf("after %v: %v, want stepped up again", authcore.RiskMemory, err)
	}
	if strings.Contains(f.logs.String(), "13800138000") || strings.Contains(f.logs.String(), code) {
		t.Errorf("the log holds the phone number or the code:\n%s", f.logs)
	}
	if !strings.Contains(f.logs.String(), `"reasons":"new_device,new_region"`) {
		t.Errorf("the log lacks the decision's reasons:\n%s", f.logs)
	}
}

func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

// TestStepUpRefusals: a challenge is bound to its attempt (another
// challenge's code does not complete it), expires, and cannot be forged.
func TestStepUpRefusals(t *testing.T) {
	f := newRiskFixture(t, authcore.RiskNewRegion)
	ctx := context.Background()
	const phone = "+8613800138001"
	f.smsUser(t, phone)
	_, errA := f.passwordLogin(phone, inHangzhou, otherDevice)
	_, errB := f.passwordLogin(phone, inHangzhou, "third-device-0123456789")
	a, b := stepUpOf(t, "attempt A", errA), stepUpOf(t, "attempt B", errB)
	if a.ID == b.ID {
		t.Fatal("two attempts share a challenge id")
	}
	if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Purpose: "step_up", StepUpID: a.ID, ClientIP: inHangzhou}); err != nil {
		t.Fatal(err)
	}
	codeA := f.box.last(t, phone)
	if _, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: b.ID, Code: codeA}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Fatalf("B with A's code: %v, want unauthorized", err)
	}
	for _, bad := range []struct {
		id   string
		kind authcore.Kind
	}{
		{"", authcore.KindInvalid},
		{"not-a-challenge", authcore.KindInvalid},
		{"su_" + strings.Repeat("A", 2000), authcore.KindInvalid},
		{"su_d1.AAAA", authcore.KindUnauthorized},
		{a.ID[:len(a.ID)-2] + "AA", authcore.KindUnauthorized},
	} {
		_, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: bad.id, Code: codeA})
		if authcore.KindOf(err) != bad.kind {
			t.Errorf("CompleteStepUp(%.20q): %v, want %v", bad.id, err, bad.kind.Code())
		}
		if bad.id == "" {
			continue
		}
		_, err = f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Purpose: "step_up", StepUpID: bad.id})
		if authcore.KindOf(err) != bad.kind {
			t.Errorf("SendSMSCode(step_up %.20q): %v, want %v", bad.id, err, bad.kind.Code())
		}
	}
	if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Purpose: "step_up"}); authcore.KindOf(err) != authcore.KindInvalid {
		t.Errorf("purpose step_up without step_up_id: %v, want invalid", err)
	}
	f.clock.Advance(authcore.StepUpTTL)
	if _, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: a.ID, Code: codeA}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("an expired challenge: %v, want unauthorized", err)
	}
}

// TestRiskSkips: a user's first login and a user without a phone are not
// stepped up (and the decision says why); a WeChat user with a phone is.
func TestRiskSkips(t *testing.T) {
	f := newRiskFixture(t, authcore.RiskStrict)
	ctx := context.Background()
	wx := func(openid string, ip netip.Addr) (authcore.Session, error) {
		code := "code-" + openid + "-" + ip.String()
		f.wx.mu.Lock()
		f.wx.codes[code] = openid
		f.wx.mu.Unlock()
		return f.svc.WxLogin(ctx, authcore.WxLoginRequest{Code: code, Client: authcore.Client{IP: ip, DeviceID: homeDevice}})
	}
	sess, err := wx("o-first", inShenzhen)
	if err != nil {
		t.Fatalf("first login: %v", err)
	}
	if d := f.lastDecision(t); d.StepUp || !slices.Equal(d.Reasons, []string{"first_login"}) || d.Method != "wx" {
		t.Errorf("first login: decision %+v", d)
	}
	if _, err := wx("o-first", inHangzhou); err != nil {
		t.Fatalf("a user without a phone from a new place: %v, want a session", err)
	}
	if d := f.lastDecision(t); d.StepUp || !slices.Equal(d.Reasons, []string{"no_phone"}) {
		t.Errorf("no phone: decision %+v", d)
	}
	p, err := f.svc.Authenticate(ctx, sess.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.LinkIdentity(ctx, authcore.Identity{Provider: authcore.ProviderPhone, Subject: "+8613800138002"}, p.User.ID); err != nil {
		t.Fatal(err)
	}
	_, err = wx("o-first", netip.MustParseAddr("192.0.2.1"))
	su := stepUpOf(t, "a WeChat user with a phone from a third place", err)
	if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Purpose: "step_up", StepUpID: su.ID}); err != nil {
		t.Fatal(err)
	}
	done, err := f.svc.CompleteStepUp(ctx, authcore.StepUpRequest{ID: su.ID, Code: f.box.last(t, "+8613800138002")})
	if err != nil || done.User.ID != p.User.ID || done.User.OpenID != "o-first" {
		t.Fatalf("completed wx step-up: %+v, %v; want the WeChat user's session", done.User, err)
	}
}
