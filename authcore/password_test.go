package authcore_test

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

// passwordFixture is a service on a memory store with a test clock, and a
// user with a phone identity.
func passwordFixture(t *testing.T) (*authcore.Service, *clock, authcore.User) {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	store := memstore.New(nil, c.Now)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	// The user is made in the store, with no login history: risk control
	// (tested in risk_test.go) would hold its every login for an SMS code.
	svc, err := authcore.NewService(authcore.Config{Store: store, Signer: signer, Vault: vault, Limiter: store,
		PublicURL: "https://hub.example", Now: c.Now, Risk: authcore.RiskOff})
	if err != nil {
		t.Fatal(err)
	}
	u, _, err := store.UpsertIdentity(context.Background(), authcore.Identity{Provider: "phone", Subject: "+8613800138000"},
		authcore.Profile{}, authcore.User{ID: "u-pwd", Nickname: "p", CreatedAt: c.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return svc, c, u
}

// TestSetPasswordNeedsRecentLogin: the first password needs no recent
// login; replacing it does, and the step-up names the way to renew.
func TestSetPasswordNeedsRecentLogin(t *testing.T) {
	svc, c, u := passwordFixture(t)
	ctx := context.Background()
	old := c.Now().Add(-time.Hour)
	p := authcore.Principal{User: u, Session: authcore.SessionRecord{FamilyID: "f1", UserID: u.ID, AuthTime: old,
		Provider: authcore.ProviderPassword, Subject: "alice"}}
	if err := svc.SetPassword(ctx, p, authcore.SetPasswordRequest{Password: "correct horse battery"}); err != nil {
		t.Fatalf("the first password with an hour-old login: %v, want it set", err)
	}
	err := svc.SetPassword(ctx, p, authcore.SetPasswordRequest{Password: "another fine phrase", CurrentPassword: "correct horse battery"})
	var e *authcore.Error
	if authcore.KindOf(err) != authcore.KindStepUpRequired || !asError(err, &e) || e.StepUp == nil ||
		len(e.StepUp.Methods) != 1 || e.StepUp.Methods[0] != "pwd" {
		t.Fatalf("replacing with an hour-old login: %v, want step_up_required with methods [pwd]", err)
	}
	p.Session.AuthTime = c.Now().Add(-4 * time.Minute)
	if err := svc.SetPassword(ctx, p, authcore.SetPasswordRequest{Password: "another fine phrase", CurrentPassword: "correct horse battery"}); err != nil {
		t.Fatalf("replacing with a 4-minute-old login: %v", err)
	}
}

// TestPasswordAddressLock: 30 failures from one address, spread over
// many logins, lock the address; another address is not locked, and the
// lock ends after 15 minutes.
func TestPasswordAddressLock(t *testing.T) {
	svc, c, u := passwordFixture(t)
	ctx := context.Background()
	p := authcore.Principal{User: u, Session: authcore.SessionRecord{FamilyID: "f1", UserID: u.ID, AuthTime: c.Now()}}
	const pw = "correct horse battery"
	if err := svc.SetPassword(ctx, p, authcore.SetPasswordRequest{Password: pw}); err != nil {
		t.Fatal(err)
	}
	bad, good := netip.MustParseAddr("198.51.100.9"), netip.MustParseAddr("198.51.100.10")
	login := func(login, password string, addr netip.Addr) error {
		_, err := svc.PasswordLogin(ctx, authcore.PasswordLoginRequest{Login: login, Password: password, Client: authcore.Client{IP: addr}})
		return err
	}
	for i := range authcore.PasswordAddrFails {
		if err := login("user"+strconv.Itoa(i), "wrong password", bad); authcore.KindOf(err) != authcore.KindUnauthorized {
			t.Fatalf("failure %d: %v, want KindUnauthorized", i+1, err)
		}
	}
	err := login("13800138000", pw, bad)
	var e *authcore.Error
	if authcore.KindOf(err) != authcore.KindRateLimited || !asError(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > authcore.PasswordLockFor {
		t.Fatalf("the right password from a locked address: %v, want KindRateLimited with RetryAfter in (0, 15m]", err)
	}
	if err := login("13800138000", pw, good); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	c.Advance(authcore.PasswordLockFor)
	if err := login("13800138000", pw, bad); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
}
