package authcore_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// fakeLiveness is a second vendor behind the verifier port, for this test
// only: it checks any session's user (by user id), and a check passes once
// the test says so.
type fakeLiveness struct {
	mu      sync.Mutex
	started map[string]string // verify_id -> subject
	passed  map[string]bool
	checked []string // verify_ids asked about
}

func (f *fakeLiveness) Method() string { return authcore.MethodFace }

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
	live.mu.Lock()
	live.passed[st.VerifyID] = true
	live.mu.Unlock()
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

// A verifier whose pass the session cannot keep (only face times are
// kept) or with a bad name is refused at start-up.
type voiceprint struct{ *fakeLiveness }

func (voiceprint) Method() string { return "vbm" }

func TestVerifierConfig(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	for name, v := range map[string]authcore.Verifier{
		"voiceprint":    voiceprint{&fakeLiveness{}},
		"Bad Name":      &fakeLiveness{},
		"oidc:liveness": &fakeLiveness{},
		"nil":           nil,
	} {
		_, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault,
			Verifiers: map[string]authcore.Verifier{name: v}, PublicURL: "https://login.example.com"})
		if err == nil || !strings.Contains(err.Error(), "verifier") {
			t.Errorf("verifier %q: got %v, want an error about it", name, err)
		}
	}
}
