package authcore_test

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// fakeLiveness is a second vendor behind the verifier port, for these
// tests only: it checks any session's user (by user id), and a check
// passes once the test says so. Its method is face, or method if set (a
// voiceprint vendor's "vbm").
type fakeLiveness struct {
	method  string
	mu      sync.Mutex
	started map[string]string // verify_id -> subject
	passed  map[string]bool
	checked []string // verify_ids asked about
}

func (f *fakeLiveness) Method() string { return cmp.Or(f.method, authcore.MethodFace) }

// pass makes the check verifyID pass.
func (f *fakeLiveness) pass(verifyID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.passed[verifyID] = true
}

func (f *fakeLiveness) Subject(s authcore.SessionRecord) (string, error) {
	return "user:" + s.UserID, nil
}

func (f *fakeLiveness) Start(_ context.Context, ref, subject, _, _ string) (authcore.FaceStart, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := "live-" + ref
	f.started[id] = subject
	return authcore.FaceStart{VerifyID: id, ExpiresIn: 10 * time.Minute}, nil
}

func (f *fakeLiveness) Check(_ context.Context, c authcore.FaceVerification) (authcore.FaceOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, c.VerifyID)
	if f.started[c.VerifyID] != c.OpenID {
		return authcore.FaceOutcome{}, authcore.Errorf(authcore.KindForbidden, "not this subject's check")
	}
	return authcore.FaceOutcome{Passed: f.passed[c.VerifyID], Finished: true, Reason: "no live face"}, nil
}

func (f *fakeLiveness) CheckResult(context.Context, string) (authcore.FaceOutcome, string, error) {
	return authcore.FaceOutcome{}, "", authcore.Errorf(authcore.KindInvalid, "this verifier has no verify_result")
}

// TestSecondVerifier: a second verifier registered next to WeChat's face
// check is reached by name through the same core calls the /v1/face
// handlers make; a check is answered by the verifier that started it; a
// pass marks the session like WeChat's; every answer is reported to
// OnStepUpCheck with the verifier's name; an unnamed call still goes to
// WeChat's.
func TestSecondVerifier(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, authcore.IPStrict)
	wx := &fakeFace{results: map[string]legacyFace{}}
	live := &fakeLiveness{started: map[string]string{}, passed: map[string]bool{}}
	var mu sync.Mutex
	var reports []authcore.StepUpCheck
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault, WeChat: f.wx,
		Verifiers: map[string]authcore.Verifier{authcore.VerifierWeChatFace: wx, "fake_liveness": live},
		OnStepUpCheck: func(c authcore.StepUpCheck) {
			mu.Lock()
			defer mu.Unlock()
			reports = append(reports, c)
		},
		PublicURL: "https://login.example.com", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	alice := f.phone(t, "o-alice", "Alice")

	_, err = svc.FaceVerifyID(ctx, alice, "no_such_vendor", "爱丽丝", "110105194912310029", "")
	wantKind(t, "an unknown verifier", err, authcore.KindInvalid)

	failing, err := svc.FaceVerifyID(ctx, alice, "fake_liveness", "爱丽丝", "110105194912310029", "")
	if err != nil {
		t.Fatalf("start a check with the second verifier: %v", err)
	}
	_, err = svc.FaceResult(ctx, alice, failing.VerifyID, "")
	wantKind(t, "a failed liveness check", err, authcore.KindForbidden)

	st, err := svc.FaceVerifyID(ctx, alice, "fake_liveness", "爱丽丝", "110105194912310029", "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := live.started[st.VerifyID], "user:"+alice.User.ID; got != want {
		t.Errorf("the second verifier was asked about %q, want %q", got, want)
	}
	live.pass(st.VerifyID)
	passed, err := svc.FaceResult(ctx, alice, st.VerifyID, "")
	if err != nil {
		t.Fatalf("a passed liveness check: %v", err)
	}
	if !passed.Passed || passed.Session.FaceAt == nil || !passed.Session.FaceAt.Equal(f.clock.Now()) || !slices.Contains(passed.Session.AMR, "face") {
		t.Errorf("a passed liveness check: %+v, want amr face and face_at now", passed)
	}
	if want := []string{failing.VerifyID, st.VerifyID}; !slices.Equal(live.checked, want) {
		t.Errorf("the second verifier answered for %q, want %q", live.checked, want)
	}

	// No name: WeChat's face check, as before verifiers had names.
	if _, err := svc.FaceVerifyID(ctx, alice, "", "爱丽丝", "110105194912310029", ""); err != nil || wx.n != 1 {
		t.Errorf("an unnamed start: %v, WeChat's verifier started %d checks, want 1", err, wx.n)
	}

	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, r := range reports {
		if r.Method != "face" || r.Duration < 0 {
			t.Errorf("report %+v: want method face and a duration", r)
		}
		got = append(got, r.Verifier+" "+r.Outcome)
	}
	if want := []string{"fake_liveness fail", "fake_liveness pass"}; !slices.Equal(got, want) {
		t.Errorf("reported %q, want %q", got, want)
	}
}

// TestVerifierConfig: a verifier with a bad name, or whose method is no
// amr (RFC 8176's shape: a-z 0-9, from a letter, up to 32) or a login's,
// is refused at start-up; one of any other method is taken.
func TestVerifierConfig(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	newService := func(name string, v authcore.Verifier) error {
		_, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault,
			Verifiers: map[string]authcore.Verifier{name: v}, PublicURL: "https://login.example.com"})
		return err
	}
	for name, v := range map[string]authcore.Verifier{
		"Bad Name":      &fakeLiveness{},
		"oidc:liveness": &fakeLiveness{},
		"nil":           nil,
		"upper":         &fakeLiveness{method: "Face"},
		"dash":          &fakeLiveness{method: "face-id"},
		"at":            &fakeLiveness{method: "face@1"},
		"digit first":   &fakeLiveness{method: "2fa"},
		"too long":      &fakeLiveness{method: strings.Repeat("a", 33)},
		"sms":           &fakeLiveness{method: "sms"},
		"wx":            &fakeLiveness{method: "wx"},
		"carrier":       &fakeLiveness{method: authcore.MethodCarrier},
	} {
		if err := newService(name, v); err == nil || !strings.Contains(err.Error(), "verifier") {
			t.Errorf("verifier %q: got %v, want an error about it", name, err)
		}
	}
	for _, method := range []string{"face", "vbm", "iris", "retina", "fpt", strings.Repeat("a", 32)} {
		if err := newService("vendor", &fakeLiveness{method: method}); err != nil {
			t.Errorf("a verifier of method %q: %v", method, err)
		}
	}
}

// TestVoiceprintVerifier: a verifier of another method than face (a
// voiceprint vendor's "vbm") plugs in by name: require=vbm is a step-up
// of its own, which its pass satisfies, setting amr vbm and its time and
// leaving the face step-up as it was; the methods a session is told are
// those of the verifiers that can check it; a method no verifier grants
// is a bad request, face excepted (the contract's).
func TestVoiceprintVerifier(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, authcore.IPStrict)
	voice := &fakeLiveness{method: "vbm", started: map[string]string{}, passed: map[string]bool{}}
	var reports []authcore.StepUpCheck
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault, WeChat: f.wx,
		Verifiers: map[string]authcore.Verifier{
			authcore.VerifierWeChatFace: &fakeFace{results: map[string]legacyFace{}}, "fake_voiceprint": voice},
		OnStepUpCheck: func(c authcore.StepUpCheck) { reports = append(reports, c) },
		PublicURL:     "https://login.example.com", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const maxAge = 300 * time.Second
	alice := f.phone(t, "o-alice", "Alice")
	wantStepUp(t, "require=vbm before a voiceprint check", svc.RequireStepUp(alice, "vbm", maxAge), []string{"vbm"})
	wantKind(t, "require=retina, which no verifier grants", svc.RequireStepUp(alice, "retina", maxAge), authcore.KindInvalid)
	wantStepUp(t, "a stale login", func() error {
		f.clock.Advance(authcore.RecentLoginMaxAge + time.Second)
		p, _ := svc.Authenticate(ctx, f.token(alice))
		return svc.RequireRecentLogin(p)
	}(), []string{"wx", "face", "vbm"})

	st, err := svc.FaceVerifyID(ctx, alice, "fake_voiceprint", "爱丽丝", "110105194912310029", "")
	if err != nil {
		t.Fatal(err)
	}
	voice.pass(st.VerifyID)
	passed, err := svc.FaceResult(ctx, alice, st.VerifyID, "")
	if err != nil {
		t.Fatalf("a passed voiceprint check: %v", err)
	}
	now := f.clock.Now()
	if !passed.Passed || !slices.Contains(passed.Session.AMR, "vbm") || slices.Contains(passed.Session.AMR, "face") ||
		!passed.Session.StepUps["vbm"].Equal(now) || passed.Session.FaceAt != nil || !passed.Session.AuthTime.Equal(now) {
		t.Errorf("a passed voiceprint check: %+v, want amr vbm, step_ups vbm now, no face_at, auth_time now", passed)
	}
	p, err := svc.Authenticate(ctx, f.token(alice))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RequireStepUp(p, "vbm", maxAge); err != nil {
		t.Errorf("require=vbm right after a voiceprint check: %v", err)
	}
	if err := svc.RequireRecentLogin(p); err != nil {
		t.Errorf("a recent login right after a voiceprint check: %v", err)
	}
	wantStepUp(t, "require=face after a voiceprint check", svc.RequireStepUp(p, "face", maxAge), []string{"face"})
	if len(reports) != 1 || reports[0].Method != "vbm" || reports[0].Verifier != "fake_voiceprint" || reports[0].Outcome != authcore.StepUpPass {
		t.Errorf("reported %+v, want one pass of fake_voiceprint, method vbm", reports)
	}

	// A hub whose only verifier is WeChat's face check: vbm is unknown.
	wantKind(t, "require=vbm without a voiceprint verifier", f.svc.RequireStepUp(alice, "vbm", maxAge), authcore.KindInvalid)
}
