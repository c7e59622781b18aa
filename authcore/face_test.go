package authcore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// fakeFace is a Verifier like WeChat's face check, whose legacy verify_results the test writes:
// who they are of, whether they passed and when the face check happened.
type fakeFace struct {
	mu      sync.Mutex
	n       int
	results map[string]legacyFace
}

type legacyFace struct {
	openid string
	at     time.Time
}

func (f *fakeFace) Method() string { return authcore.MethodFace }

func (f *fakeFace) Subject(s authcore.SessionRecord) (string, error) {
	if s.Provider != "wechat" {
		return "", authcore.Errorf(authcore.KindForbidden, "not a WeChat login")
	}
	return s.Subject, nil
}

func (f *fakeFace) Start(context.Context, string, string, string, string) (authcore.FaceStart, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return authcore.FaceStart{VerifyID: fmt.Sprint("vid-", f.n), CertHash: "h", ExpiresIn: time.Hour}, nil
}

func (f *fakeFace) Check(context.Context, authcore.FaceVerification) (authcore.FaceOutcome, error) {
	return authcore.FaceOutcome{Passed: true, Finished: true}, nil
}

func (f *fakeFace) CheckResult(_ context.Context, verifyResult string) (authcore.FaceOutcome, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.results[verifyResult]
	if !ok {
		return authcore.FaceOutcome{}, "", authcore.Errorf(authcore.KindUnauthorized, "unknown verify_result")
	}
	return authcore.FaceOutcome{Passed: true, Finished: true, IdentifiedAt: r.at}, r.openid, nil
}

func (f *fakeFace) result(name, openid string, at time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.results[name] = legacyFace{openid, at}
	return name
}

// TestFaceLegacyResultBinding: a legacy verify_result passes only for the
// check the hub started (its verify_id, the caller's, the result identified
// within that check's time), once, and stamps the session with WeChat's
// identify_time, not the time it was presented.
func TestFaceLegacyResultBinding(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, authcore.IPStrict)
	face := &fakeFace{results: map[string]legacyFace{}}
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault, WeChat: f.wx, Verifiers: map[string]authcore.Verifier{authcore.VerifierWeChatFace: face},
		PublicURL: "https://login.example.com", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	alice := f.phone(t, "o-alice", "Alice")
	bob := f.phone(t, "o-bob", "Bob")
	start := func(p authcore.Principal) string {
		t.Helper()
		st, err := svc.FaceVerifyID(ctx, p, "", "爱丽丝", "110105194912310029", "")
		if err != nil {
			t.Fatalf("FaceVerifyID: %v", err)
		}
		return st.VerifyID
	}

	before := face.result("before", "o-alice", f.clock.Now().Add(-5*time.Minute))
	f.clock.Advance(time.Minute)
	vid := start(alice)
	started := f.clock.Now()
	f.clock.Advance(2 * time.Minute)
	good := face.result("good", "o-alice", started.Add(time.Minute).Truncate(time.Second))
	for _, tc := range []struct {
		name   string
		p      authcore.Principal
		vid    string
		result string
		want   authcore.Kind
	}{
		{"no verify_id", alice, "", good, authcore.KindInvalid},
		{"another user's verify_id", bob, vid, good, authcore.KindForbidden},
		{"a result from before the check started", alice, vid, before, authcore.KindForbidden},
		{"a result from the future", alice, start(alice), face.result("future", "o-alice", f.clock.Now().Add(time.Hour)), authcore.KindForbidden},
		{"a result without identify_time", alice, start(alice), face.result("timeless", "o-alice", time.Time{}), authcore.KindForbidden},
		{"another WeChat user's result", alice, start(alice), face.result("bobs", "o-bob", f.clock.Now()), authcore.KindForbidden},
	} {
		_, err := svc.FaceResult(ctx, tc.p, tc.vid, tc.result)
		wantKind(t, tc.name, err, tc.want)
	}

	// Two checks started, then one face check on the phone: its result
	// passes once, with either verify_id, and is stamped with WeChat's time.
	vidA, vidB := start(alice), start(alice)
	identified := f.clock.Now().Add(time.Second).Truncate(time.Second)
	once := face.result("once", "o-alice", identified)
	f.clock.Advance(10 * time.Minute)
	passed, err := svc.FaceResult(ctx, alice, vidA, once)
	if err != nil {
		t.Fatalf("the check's own result: %v", err)
	}
	if !passed.IdentifyTime.Equal(identified) || passed.Session.FaceAt == nil || !passed.Session.FaceAt.Equal(identified) {
		t.Errorf("passed: identify_time %v, face_at %v; want both %v (WeChat's time, not now)", passed.IdentifyTime, passed.Session.FaceAt, identified)
	}
	if p, err := svc.Authenticate(ctx, f.token(alice)); err != nil || !p.Session.StepUps[authcore.MethodFace].Equal(identified) {
		t.Errorf("the session's face time: %v, %v; want %v", p.Session.StepUps[authcore.MethodFace], err, identified)
	}
	_, err = svc.FaceResult(ctx, alice, vidB, once)
	wantKind(t, "the same result again, with the other verify_id", err, authcore.KindForbidden)
	_, err = svc.FaceResult(ctx, alice, start(alice), once)
	wantKind(t, "the same result with a check started after it", err, authcore.KindForbidden)

	// WeChat's clock a little ahead: the result counts, at our now.
	vid = start(alice)
	passed, err = svc.FaceResult(ctx, alice, vid, face.result("ahead", "o-alice", f.clock.Now().Add(10*time.Second)))
	if err != nil {
		t.Fatalf("a result 10 s ahead of the hub's clock: %v", err)
	}
	if !passed.IdentifyTime.Equal(f.clock.Now()) {
		t.Errorf("a result ahead of the hub's clock: identify_time %v, want the hub's now %v", passed.IdentifyTime, f.clock.Now())
	}
}
