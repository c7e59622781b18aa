package authcore_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

// countingStore counts the ticket store calls, to prove that forged
// tickets are turned away before the store is touched, and that a phone's
// decision is one call.
type countingStore struct {
	*memstore.Store
	calls atomic.Int64
}

func (c *countingStore) Ticket(ctx context.Context, id string) (authcore.TicketRecord, error) {
	c.calls.Add(1)
	return c.Store.Ticket(ctx, id)
}

func (c *countingStore) TransitionAs(ctx context.Context, ref authcore.TokenRef, slide time.Duration, m authcore.PhoneMove) (authcore.PhoneMoveResult, error) {
	c.calls.Add(1)
	return c.Store.TransitionAs(ctx, ref, slide, m)
}

func (c *countingStore) RedeemTicket(ctx context.Context, r authcore.Redemption) (authcore.User, error) {
	c.calls.Add(1)
	return c.Store.RedeemTicket(ctx, r)
}

// fakeWeChat maps codes to openids; each code works once. The other
// WeChat methods are not used by these tests (calling one panics).
type fakeWeChat struct {
	authcore.WeChat
	mu    sync.Mutex
	codes map[string]string
}

func (f *fakeWeChat) Code2Session(_ context.Context, code string) (authcore.WeChatSession, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	openid, ok := f.codes[code]
	if !ok {
		return authcore.WeChatSession{}, authcore.Errorf(authcore.KindUnauthorized, "invalid or already used wx.login code")
	}
	delete(f.codes, code)
	return authcore.WeChatSession{OpenID: openid, SessionKey: "c2Vzc2lvbmtleTEyMzQ1Ng=="}, nil
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc    *authcore.Service
	store  *countingStore
	signer *authcore.Signer
	clock  *clock
	wx     *fakeWeChat
	n      int
	tokens map[string]string // user id → access token of their last phone login
}

var desktopIP = netip.MustParseAddr("127.0.0.1")

func newFixture(t *testing.T, binding authcore.IPBinding) *fixture {
	t.Helper()
	clk := &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	st := &countingStore{Store: memstore.New(nil, clk.Now)}
	signer, err := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	if err != nil {
		t.Fatal(err)
	}
	wx := &fakeWeChat{codes: map[string]string{}}
	vault, err := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := authcore.NewService(authcore.Config{
		Store: st, Signer: signer, Vault: vault, WeChat: wx, IPBinding: binding,
		PublicURL: "https://login.example.com", Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, store: st, signer: signer, clock: clk, wx: wx, tokens: map[string]string{}}
}

func (f *fixture) phone(t *testing.T, openid, nickname string) authcore.Principal {
	t.Helper()
	f.n++
	code := "code" + strings.Repeat("x", f.n)
	f.wx.mu.Lock()
	f.wx.codes[code] = openid
	f.wx.mu.Unlock()
	sess, err := f.svc.WxLogin(context.Background(), authcore.WxLoginRequest{Code: code, Nickname: nickname})
	if err != nil {
		t.Fatalf("WxLogin: %v", err)
	}
	p, err := f.svc.Authenticate(context.Background(), sess.AccessToken)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	f.tokens[p.User.ID] = sess.AccessToken
	return p
}

// token returns the access token of p's last phone login.
func (f *fixture) token(p authcore.Principal) string { return f.tokens[p.User.ID] }

func wantKind(t *testing.T, what string, err error, want authcore.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got success, want %s", what, want.Code())
	}
	if got := authcore.KindOf(err); got != want {
		t.Fatalf("%s: got %s (%v), want %s", what, got.Code(), err, want.Code())
	}
}

func TestForgedTicketsNeverReachTheStore(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice := f.phone(t, "o-alice", "Alice")
	nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	forged, _ := other.Sign(nt.ID, nt.ExpiresAt)
	expired, _ := f.signer.Sign(nt.ID, f.clock.Now().Add(-time.Second))
	tampered := []byte(nt.Ticket)
	tampered[len(tampered)-5] ^= 1
	cases := []struct {
		name   string
		ticket string
		want   authcore.Kind
	}{
		{"forged (other key)", forged, authcore.KindUnauthorized},
		{"tampered", string(tampered), authcore.KindUnauthorized},
		{"expired", expired, authcore.KindExpired},
		{"garbage", "not-a-ticket", authcore.KindUnauthorized},
		{"too long", strings.Repeat("A", 500), authcore.KindUnauthorized},
		{"unknown key id", "k9" + nt.Ticket[2:], authcore.KindUnauthorized},
	}
	for _, c := range cases {
		before := f.store.calls.Load()
		_, err := f.svc.Scan(ctx, f.token(alice), c.ticket)
		wantKind(t, c.name, err, c.want)
		if got := f.store.calls.Load() - before; got != 0 {
			t.Errorf("%s: %d store calls, want 0", c.name, got)
		}
	}
}

func TestTicketLength(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	nt, err := f.svc.CreateTicket(context.Background(), authcore.NewTicketRequest{ClientIP: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	if len(nt.Ticket) > 64 {
		t.Fatalf("signed ticket is %d characters, want <= 64", len(nt.Ticket))
	}
	long, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey(strings.Repeat("k", 16))})
	s, _ := long.Sign(nt.ID, nt.ExpiresAt)
	if len(s) > 64 {
		t.Fatalf("with a 16-character key id the ticket is %d characters, want <= 64", len(s))
	}
}

func TestKeyRotation(t *testing.T) {
	old, fresh := authcore.RandomKey("old"), authcore.RandomKey("new")
	before, _ := authcore.NewSigner([]authcore.Key{old})
	after, _ := authcore.NewSigner([]authcore.Key{fresh, old})
	exp := time.Now().Add(time.Minute)
	id := authcore.NewTicketID()
	s, _ := before.Sign(id, exp)
	if got, err := after.Verify(s, time.Now()); err != nil || got.ID != id {
		t.Fatalf("ticket signed by the old key after rotation: %+v, %v", got, err)
	}
	s2, _ := after.Sign(id, exp)
	if !strings.HasPrefix(s2, "new.") {
		t.Fatalf("the first key must sign: %q", s2)
	}
	if _, err := before.Verify(s2, time.Now()); err == nil {
		t.Fatal("a signer without the new key accepted its ticket")
	}
}

func TestQRFlowRules(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice, bob := f.phone(t, "o-alice", "Alice"), f.phone(t, "o-bob", "Bob")
	nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP, UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
	wantKind(t, "redeem before scan", err, authcore.KindConflict)
	_, err = f.svc.Confirm(ctx, f.token(alice), nt.ID)
	wantKind(t, "confirm before scan", err, authcore.KindConflict)

	res, err := f.svc.Scan(ctx, f.token(alice), nt.Ticket)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if res.State != authcore.StateScanned || res.Version != 2 || res.Requester.Device != "Chrome on Linux" || res.Requester.IP != "127.0.0.1" {
		t.Fatalf("scan result: %+v", res)
	}
	again, err := f.svc.Scan(ctx, f.token(alice), nt.Ticket)
	if err != nil || again.Version != 2 {
		t.Fatalf("second scan by the same account: %+v, %v; want the same result", again, err)
	}
	_, err = f.svc.Scan(ctx, f.token(bob), nt.Ticket)
	wantKind(t, "scan by a second account", err, authcore.KindConflict)
	_, err = f.svc.Confirm(ctx, f.token(bob), nt.ID)
	wantKind(t, "confirm by another account", err, authcore.KindForbidden)

	c1, err := f.svc.Confirm(ctx, f.token(alice), nt.ID)
	if err != nil || c1.State != authcore.StateConfirmed || c1.Version != 3 {
		t.Fatalf("confirm: %+v, %v", c1, err)
	}
	c2, err := f.svc.Confirm(ctx, f.token(alice), nt.ID)
	if err != nil || c2 != c1 {
		t.Fatalf("repeated confirm: %+v, %v; want %+v", c2, err, c1)
	}
	_, err = f.svc.Cancel(ctx, f.token(alice), nt.ID)
	wantKind(t, "cancel after confirm", err, authcore.KindConflict)

	_, err = f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: "wrong", Client: desktopIP})
	wantKind(t, "redeem with a wrong secret", err, authcore.KindUnauthorized)
	_, err = f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: netip.MustParseAddr("127.0.0.2")})
	wantKind(t, "redeem from another address", err, authcore.KindForbidden)

	sess, err := f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	if sess.User.Nickname != "Alice" || sess.ExpiresIn != 1800 || sess.TokenType != "Bearer" {
		t.Fatalf("session: %+v", sess)
	}
	_, err = f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
	wantKind(t, "second redeem", err, authcore.KindExpired)
	c3, err := f.svc.Confirm(ctx, f.token(alice), nt.ID)
	if err != nil || c3 != c1 {
		t.Fatalf("confirm after redeem: %+v, %v; want %+v", c3, err, c1)
	}
}

// TestRedeemAfterScannerErased: a redeem issues a session to the user who
// confirmed, and none once that user has erased their account.
func TestRedeemAfterScannerErased(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice := f.phone(t, "o-alice", "Alice")
	confirmed := func() authcore.NewTicket {
		nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Scan(ctx, f.token(alice), nt.Ticket); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Confirm(ctx, f.token(alice), nt.ID); err != nil {
			t.Fatal(err)
		}
		return nt
	}
	nt := confirmed()
	sess, err := f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
	if err != nil {
		t.Fatalf("redeem: %v", err)
	}
	if p, err := f.svc.Authenticate(ctx, sess.AccessToken); err != nil || p.User.ID != alice.User.ID || sess.User.Nickname != "Alice" {
		t.Fatalf("the redeemed session: %+v, %+v, %v; want Alice's", sess.User, p.User, err)
	}

	nt = confirmed()
	if err := f.svc.EraseMyData(ctx, alice, "req-1"); err != nil {
		t.Fatal(err)
	}
	// The ticket named the scanner, so it went with their account.
	if sess, err := f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP}); authcore.KindOf(err) != authcore.KindNotFound {
		t.Fatalf("redeem after the scanner erased their account: %+v, %v; want not found", sess, err)
	}
}

func TestRedeemRace(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice := f.phone(t, "o-alice", "Alice")
	for range 20 {
		nt, _ := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
		if _, err := f.svc.Scan(ctx, f.token(alice), nt.Ticket); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Confirm(ctx, f.token(alice), nt.ID); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
				if err == nil {
					wins.Add(1)
				} else if k := authcore.KindOf(err); k != authcore.KindExpired {
					t.Errorf("losing redeem: got %s, want expired", k.Code())
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d redeems succeeded, want exactly 1", wins.Load())
		}
	}
}

func TestRedeemWithDPoP(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice := f.phone(t, "o-alice", "Alice")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, _ := authcore.DPoPThumbprint(&key.PublicKey)
	nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP, DPoPJKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	f.svc.Scan(ctx, f.token(alice), nt.Ticket)
	f.svc.Confirm(ctx, f.token(alice), nt.ID)
	path := "/v1/qr/tickets/" + nt.ID + "/redeem"
	req := authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP, Method: "POST", Path: path}
	_, err = f.svc.Redeem(ctx, req)
	wantKind(t, "redeem without a proof", err, authcore.KindUnauthorized)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req.DPoPProof, _ = authcore.NewDPoPProof(otherKey, "POST", "https://login.example.com"+path, f.clock.Now())
	_, err = f.svc.Redeem(ctx, req)
	wantKind(t, "redeem with another key's proof", err, authcore.KindUnauthorized)
	req.DPoPProof, _ = authcore.NewDPoPProof(key, "POST", "https://login.example.com"+path, f.clock.Now())
	if _, err := f.svc.Redeem(ctx, req); err != nil {
		t.Fatalf("redeem with a valid proof: %v", err)
	}
}

// TestIPBinding: watch and redeem from an address the binding does not
// allow are refused, and nothing else is, whether the store redeems in one
// call (checking the address itself) or the core reads the ticket first.
func TestIPBinding(t *testing.T) {
	cases := []struct {
		binding       authcore.IPBinding
		bound, client string
		want          bool
	}{
		{authcore.IPStrict, "127.0.0.1", "127.0.0.1", true},
		{authcore.IPStrict, "127.0.0.1", "::ffff:127.0.0.1", true},
		{authcore.IPStrict, "::ffff:127.0.0.1", "127.0.0.1", true},
		{authcore.IPStrict, "127.0.0.1", "127.0.0.2", false},
		{authcore.IPStrict, "2001:db8::1", "2001:db8::1", true},
		{authcore.IPStrict, "2001:db8::1", "2001:db8::2", false},
		{authcore.IPStrict, "fe80::1%eth0", "fe80::1%eth0", true},
		{authcore.IPStrict, "fe80::1%eth0", "fe80::1", false},
		{authcore.IPStrict, "fe80::1%eth0", "fe80::1%eth1", false},
		{authcore.IPSubnet, "127.0.0.1", "127.0.0.200", true},
		{authcore.IPSubnet, "::ffff:127.0.0.1", "127.0.0.200", true},
		{authcore.IPSubnet, "127.0.0.1", "::ffff:127.0.0.200", true},
		{authcore.IPSubnet, "127.0.0.1", "127.0.1.1", false},
		{authcore.IPSubnet, "127.0.0.1", "::1", false},
		{authcore.IPSubnet, "::1", "127.0.0.1", false},
		{authcore.IPSubnet, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true},
		{authcore.IPSubnet, "2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{authcore.IPSubnet, "fe80::1%eth0", "fe80::2", true},
		{authcore.IPOff, "127.0.0.1", "10.1.2.3", true},
		{authcore.IPOff, "127.0.0.1", "2001:db8::1", true},
	}
	for _, c := range cases {
		bound, client := netip.MustParseAddr(c.bound), netip.MustParseAddr(c.client)
		if got := c.binding.Allows(bound, client); got != c.want {
			t.Errorf("%s binding, %s from %s: Allows %v, want %v", c.binding, c.client, c.bound, got, c.want)
		}
		f := newFixture(t, c.binding)
		ctx := context.Background()
		alice := f.phone(t, "o-alice", "Alice")
		nt, _ := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: bound})
		_, err := f.svc.AuthorizeWatch(ctx, nt.ID, nt.WatchSecret, client)
		if got := err == nil; got != c.want {
			t.Errorf("%s binding, watch from %s of a ticket of %s: allowed=%v (%v), want %v", c.binding, c.client, c.bound, got, err, c.want)
		}
		scanned(t, f, alice, nt)
		must(t, "confirm", func() error { _, err := f.svc.Confirm(ctx, f.token(alice), nt.ID); return err })
		_, err = f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: client})
		if got := err == nil; got != c.want {
			t.Errorf("%s binding, redeem from %s of a ticket of %s: allowed=%v (%v), want %v", c.binding, c.client, c.bound, got, err, c.want)
		} else if !got && authcore.KindOf(err) != authcore.KindForbidden {
			t.Errorf("%s binding, redeem from %s of a ticket of %s: %v, want forbidden", c.binding, c.client, c.bound, err)
		}
	}
}

func TestExpiryAndCancel(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	alice := f.phone(t, "o-alice", "Alice")
	nt, _ := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	f.clock.Advance(authcore.DefaultTicketTTL)
	v, err := f.svc.View(ctx, nt.ID)
	if err != nil || v.State != authcore.StateExpired || v.Version != 2 {
		t.Fatalf("view after expiry: %+v, %v; want expired v2", v, err)
	}
	_, err = f.svc.Scan(ctx, f.token(alice), nt.Ticket)
	wantKind(t, "scan after expiry", err, authcore.KindExpired)

	nt2, _ := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	f.svc.Scan(ctx, f.token(alice), nt2.Ticket)
	res, err := f.svc.Cancel(ctx, f.token(alice), nt2.ID)
	if err != nil || res.State != authcore.StateCancelled || res.Version != 3 {
		t.Fatalf("cancel: %+v, %v", res, err)
	}
	_, err = f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt2.ID, Secret: nt2.WatchSecret, Client: desktopIP})
	wantKind(t, "redeem after cancel", err, authcore.KindExpired)
}

func TestSessions(t *testing.T) {
	f := newFixture(t, authcore.IPStrict)
	ctx := context.Background()
	f.wx.codes["c1"] = "o-alice"
	sess, err := f.svc.WxLogin(ctx, authcore.WxLoginRequest{Code: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if sess.User.OpenID != "o-alice" || sess.User.IsNew == nil || !*sess.User.IsNew || sess.User.Nickname != authcore.DefaultWeChatNickname {
		t.Fatalf("first login: %+v", sess.User)
	}
	_, err = f.svc.WxLogin(ctx, authcore.WxLoginRequest{Code: "c1"})
	wantKind(t, "used code", err, authcore.KindUnauthorized)
	f.wx.codes["c2"] = "o-alice"
	sess2, _ := f.svc.WxLogin(ctx, authcore.WxLoginRequest{Code: "c2"})
	if *sess2.User.IsNew || sess2.User.ID != sess.User.ID {
		t.Fatalf("second login must find the same user: %+v vs %+v", sess2.User, sess.User)
	}

	// Sliding: used at 20 minutes, alive at 45.
	f.clock.Advance(20 * time.Minute)
	if _, err := f.svc.Authenticate(ctx, sess.AccessToken); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(25 * time.Minute)
	if _, err := f.svc.Authenticate(ctx, sess.AccessToken); err != nil {
		t.Fatalf("sliding session expired 25 minutes after last use: %v", err)
	}
	f.clock.Advance(31 * time.Minute)
	_, err = f.svc.Authenticate(ctx, sess.AccessToken)
	wantKind(t, "idle access token", err, authcore.KindUnauthorized)

	next, err := f.svc.Refresh(ctx, sess.RefreshToken)
	if err != nil || next.User.ID != sess.User.ID {
		t.Fatalf("refresh: %+v, %v", next, err)
	}
	_, err = f.svc.Refresh(ctx, sess.RefreshToken)
	wantKind(t, "reused refresh token", err, authcore.KindUnauthorized)
	_, err = f.svc.Authenticate(ctx, next.AccessToken)
	wantKind(t, "family after reuse", err, authcore.KindUnauthorized)

	if err := f.svc.Logout(ctx, sess2.AccessToken); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Authenticate(ctx, sess2.AccessToken)
	wantKind(t, "after logout", err, authcore.KindUnauthorized)
}
