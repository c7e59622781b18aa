package authcore_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// wantStepUp fails t unless err asks for a step-up by methods.
func wantStepUp(t *testing.T, what string, err error, methods []string) {
	t.Helper()
	var e *authcore.Error
	if !errors.As(err, &e) || e.Kind != authcore.KindStepUpRequired || e.StepUp == nil || !slices.Equal(e.StepUp.Methods, methods) {
		t.Fatalf("%s: got %v (%+v), want step_up_required with methods %q", what, err, e, methods)
	}
}

// TestRecentLoginForSensitiveOperations: the data export and the erasure
// need a login on this device within 5 minutes; a refresh does not renew
// it, a face check does, and a desktop's session from a QR scan never has
// one.
func TestRecentLoginForSensitiveOperations(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, authcore.IPStrict)
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	svc, err := authcore.NewService(authcore.Config{Store: f.store, Signer: f.signer, Vault: vault, WeChat: f.wx,
		Verifiers: map[string]authcore.Verifier{authcore.VerifierWeChatFace: &fakeFace{results: map[string]legacyFace{}}}, PublicURL: "https://login.example.com", Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	login := f.clock.Now()
	alice := f.phone(t, "o-alice", "Alice")
	if got := alice.Facts().AuthTime; got == nil || !got.Equal(login) {
		t.Fatalf("a fresh wx.login's auth_time: %v, want %v", got, login)
	}
	if _, err := svc.ExportMyData(ctx, alice, ""); err != nil {
		t.Fatalf("export right after wx.login: %v", err)
	}

	f.clock.Advance(authcore.RecentLoginMaxAge + time.Second)
	p, err := svc.Authenticate(ctx, f.token(alice))
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.ExportMyData(ctx, p, "")
	wantStepUp(t, "export 5 minutes after wx.login", err, []string{"wx", "face"})
	wantStepUp(t, "erase 5 minutes after wx.login", svc.EraseMyData(ctx, p, ""), []string{"wx", "face"})
	_, err = svc.LinkWeChat(ctx, p, f.code("o-bob"))
	wantStepUp(t, "link WeChat 5 minutes after wx.login", err, []string{"wx", "face"})
	_, err = svc.LinkPhone(ctx, p, "+8613800138000", "123456")
	wantStepUp(t, "link a phone 5 minutes after wx.login", err, []string{"wx", "face"})
	_, err = svc.UnlinkIdentities(ctx, p, "wechat")
	wantStepUp(t, "unlink 5 minutes after wx.login", err, []string{"wx", "face"})
	if ids, err := svc.MyIdentities(ctx, p); err != nil || len(ids.Identities) != 1 {
		t.Fatalf("identities after refused links: %+v, %v", ids, err)
	}
	if _, err := f.store.User(ctx, alice.User.ID); err != nil {
		t.Fatalf("a refused erasure erased: %v", err)
	}

	// A refresh is not an authentication: it keeps the login's time.
	sess, err := svc.WxLogin(ctx, authcore.WxLoginRequest{Code: f.code("o-alice")})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(authcore.RecentLoginMaxAge + time.Second)
	refreshed, err := svc.Refresh(ctx, sess.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	p, err = svc.Authenticate(ctx, refreshed.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.ExportMyData(ctx, p, "")
	wantStepUp(t, "export with a refreshed session of an old login", err, []string{"wx", "face"})

	// A face check renews it.
	st, err := svc.FaceVerifyID(ctx, p, "", "爱丽丝", "110105194912310029", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.FaceResult(ctx, p, st.VerifyID, ""); err != nil {
		t.Fatal(err)
	}
	if p, err = svc.Authenticate(ctx, refreshed.AccessToken); err != nil {
		t.Fatal(err)
	}
	if got := p.Facts().AuthTime; got == nil || !got.Equal(f.clock.Now()) {
		t.Errorf("auth_time after a face check: %v, want %v", got, f.clock.Now())
	}
	if _, err := svc.ExportMyData(ctx, p, ""); err != nil {
		t.Fatalf("export right after a face check: %v", err)
	}

	// A desktop's session from a scan, redeemed a moment after a fresh
	// wx.login on the phone: not an authentication on the desktop.
	bob := f.phone(t, "o-bob", "Bob")
	nt, err := svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Scan(ctx, f.token(bob), nt.Ticket); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Confirm(ctx, f.token(bob), nt.ID); err != nil {
		t.Fatal(err)
	}
	desktop, err := svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	d, err := svc.Authenticate(ctx, desktop.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Facts().AuthTime; got != nil {
		t.Errorf("a desktop session's auth_time: %v, want none", got)
	}
	_, err = svc.ExportMyData(ctx, d, "")
	wantStepUp(t, "export from a desktop session", err, []string{})
	wantStepUp(t, "erase from a desktop session", svc.EraseMyData(ctx, d, ""), []string{})
}

// code registers a fresh wx.login code of openid with the fake WeChat.
func (f *fixture) code(openid string) string {
	f.n++
	code := "code" + strings.Repeat("y", f.n)
	f.wx.mu.Lock()
	f.wx.codes[code] = openid
	f.wx.mu.Unlock()
	return code
}
