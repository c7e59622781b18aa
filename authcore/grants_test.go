package authcore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// TestEndedSessionsRevokeGrants: what apps got through the OpenID Connect
// provider from a hub session ends with it, however the session ends:
// logout, revoking it from another session, logging out everywhere, a
// password change (the other sessions), a reused refresh token.
func TestEndedSessionsRevokeGrants(t *testing.T) {
	ctx := context.Background()
	f := newRiskFixture(t, authcore.RiskOff)
	grantOf := func(t *testing.T, s authcore.Session, name string) func() bool {
		t.Helper()
		p, err := f.svc.Authenticate(ctx, s.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		now := f.clock.Now()
		g := authcore.Grant{ID: "g-" + name, UserID: p.User.ID, ClientID: "app", SID: p.Session.FamilyID,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := f.store.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
		return func() bool {
			_, err := f.store.Grant(ctx, g.UserID, g.ID, f.clock.Now())
			if err != nil && !errors.Is(err, authcore.ErrNotFound) {
				t.Fatal(err)
			}
			return err == nil
		}
	}
	login := func(phone string) authcore.Session {
		t.Helper()
		f.clock.Advance(authcore.SMSResendAfter)
		if _, err := f.svc.SendSMSCode(ctx, authcore.SMSCodeRequest{Phone: phone, Purpose: "login", ClientIP: inShenzhen}); err != nil {
			t.Fatal(err)
		}
		s, err := f.svc.SMSLogin(ctx, authcore.SMSLoginRequest{Phone: phone, Code: f.box.last(t, phone)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	const phone = "+8613800138055"
	a, b := login(phone), login(phone)
	liveA, liveB := grantOf(t, a, "a"), grantOf(t, b, "b")

	if err := f.svc.Logout(ctx, a.AccessToken); err != nil {
		t.Fatal(err)
	}
	if liveA() || !liveB() {
		t.Fatalf("after logging A out: A's grant live %v, B's %v; want only B's", liveA(), liveB())
	}

	pb, _ := f.svc.Authenticate(ctx, b.AccessToken)
	c := login(phone)
	liveC := grantOf(t, c, "c")
	pc, _ := f.svc.Authenticate(ctx, c.AccessToken)
	if err := f.svc.RevokeMySession(ctx, pb, pc.Session.FamilyID); err != nil {
		t.Fatal(err)
	}
	if liveC() || !liveB() {
		t.Fatalf("after B revoked C: C's grant live %v, B's %v", liveC(), liveB())
	}

	d := login(phone)
	liveD := grantOf(t, d, "d")
	pd, _ := f.svc.Authenticate(ctx, d.AccessToken)
	if err := f.svc.SetPassword(ctx, pd, authcore.SetPasswordRequest{Password: riskPW}); err != nil {
		t.Fatal(err)
	}
	if liveB() || !liveD() {
		t.Fatalf("after D set a password: B's grant live %v (want revoked), D's %v (want kept)", liveB(), liveD())
	}

	// A refresh token used twice: its family and its apps' grants go.
	if _, err := f.svc.Refresh(ctx, d.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Refresh(ctx, d.RefreshToken); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Fatalf("a reused refresh token: %v", err)
	}
	if liveD() {
		t.Fatal("D's grant outlived its family's revocation")
	}

	e := login(phone)
	liveE := grantOf(t, e, "e")
	pe, _ := f.svc.Authenticate(ctx, e.AccessToken)
	if err := f.svc.LogoutAll(ctx, pe); err != nil {
		t.Fatal(err)
	}
	if liveE() {
		t.Fatal("E's grant outlived logging out everywhere")
	}
}
