package authcore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// fakeSessionKey is the session_key fakeWeChat's Code2Session hands out.
const fakeSessionKey = "c2Vzc2lvbmtleTEyMzQ1Ng=="

// CheckSessionKey answers whether key is the one Code2Session gave, so
// that a test sees which key the core read back from the store.
func (f *fakeWeChat) CheckSessionKey(_ context.Context, _, key string) (bool, error) {
	return key == fakeSessionKey, nil
}

// TestSessionKeySealedAndExpiring: the store holds the WeChat session_key
// sealed (not in clear, not even as a substring), the core opens it, and
// it is gone after the refresh token's lifetime.
func TestSessionKeySealedAndExpiring(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, authcore.IPStrict)
	p := f.phone(t, "o-sk", "Sk")
	stored, err := f.store.SessionKey(ctx, "o-sk")
	if err != nil {
		t.Fatalf("stored session key: %v", err)
	}
	if strings.Contains(stored, fakeSessionKey) || strings.Contains(stored, "sessionkey123456") {
		t.Fatalf("the store holds the session_key in clear: %q", stored)
	}
	if got, err := f.svc.WxCheckSession(ctx, p); err != nil || !got.Valid {
		t.Fatalf("WxCheckSession with the sealed key: %+v, %v; want valid (the core opens it)", got, err)
	}
	f.clock.Advance(authcore.RefreshTokenTTL - time.Second)
	if _, err := f.store.SessionKey(ctx, "o-sk"); err != nil {
		t.Fatalf("session key a second before the refresh lifetime: %v", err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.store.SessionKey(ctx, "o-sk"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("session key after the refresh lifetime: %v, want ErrNotFound", err)
	}
}
