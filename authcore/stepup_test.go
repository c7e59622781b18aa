package authcore_test

import (
	"context"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// TestRequireStepUp: require=face with max_age 300 refuses a session
// before a face check (saying face renews it), allows it right after and
// up to 300 s later, and refuses it again once the check is older; a
// session no verifier can check is told it has no way; a method sessions
// do not keep or a max_age out of range is a bad request.
func TestRequireStepUp(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, authcore.IPStrict)
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault, WeChat: f.wx,
		Verifiers: map[string]authcore.Verifier{authcore.VerifierWeChatFace: &fakeFace{results: map[string]legacyFace{}}},
		PublicURL: "https://login.example.com", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	const maxAge = 300 * time.Second
	alice := f.phone(t, "o-alice", "Alice")
	wantStepUp(t, "a fresh wx.login without a face check", svc.RequireStepUp(alice, "face", maxAge), []string{"face"})

	st, err := svc.FaceVerifyID(ctx, alice, "", "爱丽丝", "110105194912310029", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.FaceResult(ctx, alice, st.VerifyID, ""); err != nil {
		t.Fatalf("face result: %v", err)
	}
	p, err := svc.Authenticate(ctx, f.token(alice))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.RequireStepUp(p, "face", maxAge); err != nil {
		t.Fatalf("right after a face check: %v", err)
	}
	f.clock.Advance(maxAge)
	if p, err = svc.Authenticate(ctx, f.token(alice)); err != nil {
		t.Fatal(err)
	}
	if err := svc.RequireStepUp(p, "face", maxAge); err != nil {
		t.Fatalf("a face check exactly max_age old: %v", err)
	}
	f.clock.Advance(time.Second)
	if p, err = svc.Authenticate(ctx, f.token(alice)); err != nil {
		t.Fatal(err)
	}
	wantStepUp(t, "a face check max_age + 1 s old", svc.RequireStepUp(p, "face", maxAge), []string{"face"})
	if err := svc.RequireStepUp(p, "face", maxAge+time.Second); err != nil {
		t.Errorf("the same check with a max_age 1 s longer: %v", err)
	}

	// No verifier can check this hub's sessions: a step-up with no way.
	plain := newFixture(t, authcore.IPStrict)
	bob := plain.phone(t, "o-bob", "Bob")
	wantStepUp(t, "a hub without verifiers", plain.svc.RequireStepUp(bob, "face", maxAge), []string{})

	for _, tc := range []struct {
		name   string
		method string
		maxAge time.Duration
	}{
		{"an unknown method", "retina", maxAge},
		{"a method sessions do not keep", "sms", maxAge},
		{"no method", "", maxAge},
		{"max_age 0", "face", 0},
		{"a negative max_age", "face", -time.Second},
		{"max_age beyond a day", "face", authcore.MaxStepUpAge + time.Second},
		{"max_age not whole seconds", "face", 1500 * time.Millisecond},
	} {
		wantKind(t, tc.name, svc.RequireStepUp(p, tc.method, tc.maxAge), authcore.KindInvalid)
	}
	if err := svc.RequireStepUp(p, "face", authcore.MaxStepUpAge); err != nil {
		t.Errorf("max_age of exactly a day: %v", err)
	}
}
