// Package storetest is the conformance suite every authcore.Store must pass:
// the embedded memory store and the Redis store run the same tests, so a
// user who moves from one node to many sees the same behaviour.
package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// NewStore makes an empty store for one test. notify must be called (or,
// for a store that publishes elsewhere, forwarded) after each transition.
type NewStore func(t *testing.T, notify authcore.Notifier) authcore.Store

// Run runs the whole suite against stores from newStore.
func Run(t *testing.T, newStore NewStore) {
	t.Run("TicketLifecycle", func(t *testing.T) { testTicketLifecycle(t, newStore) })
	t.Run("ScanRace", func(t *testing.T) { testScanRace(t, newStore) })
	t.Run("RedeemRace", func(t *testing.T) { testRedeemRace(t, newStore) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore) })
	t.Run("RefreshReuseRevokesFamily", func(t *testing.T) { testRefreshReuse(t, newStore) })
	t.Run("RefreshRace", func(t *testing.T) { testRefreshRace(t, newStore) })
	t.Run("Identities", func(t *testing.T) { testIdentities(t, newStore) })
	t.Run("SessionKeyExpiry", func(t *testing.T) { testSessionKeyExpiry(t, newStore) })
	t.Run("FirstUse", func(t *testing.T) { testFirstUse(t, newStore) })
	t.Run("TicketRoundTrip", func(t *testing.T) { testTicketRoundTrip(t, newStore) })
	t.Run("TicketRetention", func(t *testing.T) { testTicketRetention(t, newStore) })
	t.Run("TicketVia", func(t *testing.T) { testTicketVia(t, newStore) })
	t.Run("SessionRoundTrip", func(t *testing.T) { testSessionRoundTrip(t, newStore) })
	t.Run("IdentityRace", func(t *testing.T) { testIdentityRace(t, newStore) })
	t.Run("LinkIdentity", func(t *testing.T) { testLinkIdentity(t, newStore) })
	t.Run("LinkRace", func(t *testing.T) { testLinkRace(t, newStore) })
	t.Run("PersonalData", func(t *testing.T) { testPersonalData(t, newStore) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, newStore) })
	t.Run("AuditTrim", func(t *testing.T) { testAuditTrim(t, newStore) })
	t.Run("EraseUser", func(t *testing.T) { testEraseUser(t, newStore) })
	t.Run("EraseEverywhere", func(t *testing.T) { EraseEverywhere(t, newStore(t, nil)) })
	t.Run("PrincipalByAccess", func(t *testing.T) { testPrincipalByAccess(t, newStore) })
	t.Run("RedeemTicket", func(t *testing.T) { testRedeemTicket(t, newStore) })
	t.Run("TransitionAs", func(t *testing.T) { testTransitionAs(t, newStore) })
	t.Run("FaceVerification", func(t *testing.T) { testFaceVerification(t, newStore) })
	t.Run("FaceVerificationRace", func(t *testing.T) { testFaceVerificationRace(t, newStore) })
	t.Run("FaceVerificationExpiry", func(t *testing.T) { testFaceVerificationExpiry(t, newStore) })
	t.Run("MarkSessionStepUp", func(t *testing.T) { testMarkSessionStepUp(t, newStore) })
	t.Run("Codes", func(t *testing.T) { testCodes(t, newStore) })
	t.Run("CodeRace", func(t *testing.T) { testCodeRace(t, newStore) })
	t.Run("LinkUsername", func(t *testing.T) { testLinkUsername(t, newStore) })
	t.Run("LinkIdentityRace", func(t *testing.T) { testLinkIdentityRace(t, newStore) })
	t.Run("Passwords", func(t *testing.T) { testPasswords(t, newStore) })
	t.Run("UserSessions", func(t *testing.T) { testUserSessions(t, newStore) })
	t.Run("Logins", func(t *testing.T) { testLogins(t, newStore) })
	t.Run("OAuthState", func(t *testing.T) { testOAuthState(t, newStore) })
	t.Run("ProviderRequests", func(t *testing.T) { testProviderRequests(t, newStore) })
	t.Run("Grants", func(t *testing.T) { testGrants(t, newStore) })
}

type nudge struct {
	id      string
	version uint64
}

// recorder collects nudges; waitFor blocks on a signal channel, not a timer.
type recorder struct {
	mu      sync.Mutex
	nudges  []nudge
	records map[nudge]authcore.TicketRecord // what each announcement carried
	changed chan struct{}                   // closed and replaced on every nudge
}

func (r *recorder) notify(rec authcore.TicketRecord) {
	r.mu.Lock()
	r.nudges = append(r.nudges, nudge{rec.ID, rec.Version})
	if r.records == nil {
		r.records = make(map[nudge]authcore.TicketRecord)
	}
	r.records[nudge{rec.ID, rec.Version}] = rec
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	r.mu.Unlock()
}

// announced returns the record announced for id at version v.
func (r *recorder) announced(id string, v uint64) authcore.TicketRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.records[nudge{id, v}]
}

// sameTicket compares what watchers are shown and what redeem checks.
func sameTicket(a, b authcore.TicketRecord) bool {
	return a.ID == b.ID && a.Version == b.Version && a.State == b.State && slices.Equal(a.Trail, b.Trail) &&
		a.ExpiresAt.Equal(b.ExpiresAt) && a.ScannerID == b.ScannerID && a.Scanner == b.Scanner &&
		a.WatchSecretHash == b.WatchSecretHash && a.ClientIP == b.ClientIP && a.Requester.Device == b.Requester.Device
}

func (r *recorder) waitFor(t *testing.T, id string, v uint64) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		r.mu.Lock()
		for _, n := range r.nudges {
			if n == (nudge{id, v}) {
				r.mu.Unlock()
				return
			}
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed := r.changed
		r.mu.Unlock()
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no nudge for %s v%d within 5s", id, v)
		}
	}
}

func newTicket(now time.Time) authcore.TicketRecord {
	return authcore.TicketRecord{
		ID: authcore.NewTicketID(), State: authcore.StatePending, Version: 1,
		Trail: []authcore.State{authcore.StatePending}, ExpiresAt: now.Add(2 * time.Minute).Truncate(time.Second),
		CreatedAt: now, WatchSecretHash: sha256.Sum256([]byte("secret")), DPoPJKT: "jkt",
		ClientIP:  netip.MustParseAddr("127.0.0.1"),
		Requester: authcore.Requester{IP: "127.0.0.1", Location: "loopback", Device: "Chrome on Linux", UserAgent: "ua", CreatedAt: now.UTC().Truncate(time.Second)},
	}
}

// testTicketLifecycle: a ticket is created once, read back whole, and goes
// pending → scanned → confirmed (TransitionAs) → redeemed (RedeemTicket),
// each move announced with the ticket it wrote; nothing moves it after.
func testTicketLifecycle(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var rec recorder
	s := newStore(t, rec.notify)
	now := time.Now().Truncate(time.Second)
	tk := newTicket(now)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatalf("CreateTicket: %v", err)
	}
	if err := s.CreateTicket(ctx, tk, time.Minute); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("CreateTicket twice: got %v, want ErrConflict", err)
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil {
		t.Fatalf("Ticket: %v", err)
	}
	if got.ID != tk.ID || got.State != authcore.StatePending || got.Version != 1 || !got.ExpiresAt.Equal(tk.ExpiresAt) ||
		got.WatchSecretHash != tk.WatchSecretHash || got.DPoPJKT != "jkt" || got.ClientIP != tk.ClientIP ||
		got.Requester.Device != "Chrome on Linux" || !got.Requester.CreatedAt.Equal(tk.Requester.CreatedAt) {
		t.Fatalf("Ticket round trip: got %+v, want %+v", got, tk)
	}
	if _, err := s.Ticket(ctx, "nope"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("Ticket(unknown): got %v, want ErrNotFound", err)
	}

	u := newUser(t, s, "lifecycle", "Alice", now)
	ref := login(t, s, u.ID, now)
	scanner := authcore.Profile{Nickname: u.Nickname, AvatarURL: u.AvatarURL}
	check := func(step string, next authcore.TicketRecord, to authcore.State, version uint64) {
		t.Helper()
		if next.State != to || next.Version != version || len(next.Trail) != int(version) || next.Trail[version-1] != to {
			t.Fatalf("%s: got state %s v%d trail %v, want %s v%d", step, next.State, next.Version, next.Trail, to, version)
		}
		if next.ScannerID != u.ID || next.Scanner != scanner {
			t.Fatalf("%s: scanner %q %+v, want %q %+v", step, next.ScannerID, next.Scanner, u.ID, scanner)
		}
		rec.waitFor(t, tk.ID, version)
		if got := rec.announced(tk.ID, version); !sameTicket(got, next) {
			t.Fatalf("%s: announced %+v, but the move wrote %+v", step, got, next)
		}
		if stored, err := s.Ticket(ctx, tk.ID); err != nil || !reflect.DeepEqual(stored, next) {
			t.Fatalf("%s: stored %+v (%v), but the move returned %+v", step, stored, err, next)
		}
	}
	for i, m := range []authcore.PhoneMove{
		{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now},
		{ID: tk.ID, From: authcore.StateScanned, To: authcore.StateConfirmed, Now: now},
	} {
		res, err := s.TransitionAs(ctx, ref, 0, m)
		if err != nil || !res.Moved {
			t.Fatalf("%s: moved %v, %v", m.To, res.Moved, err)
		}
		check(string(m.To), res.Ticket, m.To, uint64(i+2))
	}
	sess, _, _ := newSession(now, u.ID)
	if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: tk.ID, FromVersion: 3, Session: sess, Now: now}); err != nil {
		t.Fatalf("RedeemTicket: %v", err)
	}
	redeemed, err := s.Ticket(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	check("redeem", redeemed, authcore.StateRedeemed, 4)

	cancel := authcore.PhoneMove{ID: tk.ID, From: authcore.StateRedeemed, To: authcore.StateCancelled, Now: now}
	if res, err := s.TransitionAs(ctx, ref, 0, cancel); err != nil || res.Moved {
		t.Fatalf("a move out of redeemed: moved %v, %v; want refused", res.Moved, err)
	}
	again, _, _ := newSession(now, u.ID)
	if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: tk.ID, FromVersion: 4, Session: again, Now: now}); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("redeem of a redeemed ticket: got %v, want ErrConflict", err)
	}
	if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: "missing", FromVersion: 3, Session: again, Now: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("redeem of an unknown ticket: got %v, want ErrNotFound", err)
	}
	if after, err := s.Ticket(ctx, tk.ID); err != nil || !reflect.DeepEqual(after, redeemed) {
		t.Fatalf("refused moves changed the redeemed ticket: %+v (%v)", after, err)
	}
}

// testScanRace: accounts racing to scan one ticket: exactly one claims it,
// and every other one is handed the winner's ticket.
func testScanRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	var refs [racers]authcore.TokenRef
	for i := range racers {
		refs[i] = login(t, s, newUser(t, s, fmt.Sprint("racer", i), "", now).ID, now)
	}
	var got [racers]authcore.PhoneMoveResult
	raceRounds(t, s, now, func(tk authcore.TicketRecord, i int) {
		var err error
		got[i], err = s.TransitionAs(ctx, refs[i], 0, authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now})
		if err != nil {
			t.Errorf("racing scan: %v", err)
		}
	}, func(round int) {
		winner := -1
		for i := range racers {
			if got[i].Moved {
				if winner >= 0 {
					t.Fatalf("round %d: racers %d and %d both claimed the ticket", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody claimed the ticket", round)
		}
		for i := range racers {
			if g := got[i].Ticket; g.Version != 2 || g.ScannerID != refs[winner].UserID {
				t.Fatalf("round %d: racer %d got v%d owned by %q; want v2 owned by %s", round, i, g.Version, g.ScannerID, refs[winner].UserID)
			}
		}
	})
}

// testRedeemRace: desktops racing to redeem one confirmed ticket: exactly
// one redeems it, the others get ErrConflict, and only the winner's
// session is stored.
func testRedeemRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	u := newUser(t, s, "redeemrace", "", now)
	var sessions [racers]authcore.SessionRecord
	var errs [racers]error
	for round := range 20 {
		tk := confirm(t, s, u, newTicket(now), now)
		for i := range sessions {
			sessions[i], _, _ = newSession(now, u.ID)
		}
		won := wins(racers, func(i int) bool {
			_, errs[i] = s.RedeemTicket(ctx, authcore.Redemption{TicketID: tk.ID, FromVersion: tk.Version, Session: sessions[i], Now: now})
			return errs[i] == nil
		})
		if won != 1 {
			t.Fatalf("round %d: %d redeems won, want exactly 1 (%v)", round, won, errs)
		}
		for i, err := range errs {
			if err != nil && !errors.Is(err, authcore.ErrConflict) {
				t.Fatalf("round %d: a losing redeem: %v, want ErrConflict", round, err)
			}
			_, lookErr := s.PrincipalByAccess(ctx, sessions[i].AccessRef(), now, 0)
			if stored := lookErr == nil; stored != (err == nil) {
				t.Fatalf("round %d: redeem %d returned %v, and its session is stored: %v", round, i, err, stored)
			}
		}
	}
}

// wins runs try(i) for every i in [0,n), all released at once, and counts
// the calls that report true.
func wins(n int, try func(i int) bool) int {
	var won atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			if try(i) {
				won.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	return int(won.Load())
}

// racers is how many goroutines race in each round of raceRounds.
const racers = 8

// raceRounds runs 20 rounds: each creates a fresh ticket, runs race(tk, i)
// for every racer i at once, waits for them all, then calls check(round).
func raceRounds(t *testing.T, s authcore.Store, now time.Time, race func(tk authcore.TicketRecord, i int), check func(round int)) {
	t.Helper()
	for round := range 20 {
		tk := newTicket(now)
		if err := s.CreateTicket(context.Background(), tk, time.Minute); err != nil {
			t.Fatal(err)
		}
		wins(racers, func(i int) bool { race(tk, i); return false })
		check(round)
	}
}

// newSession makes a session of a new family; see sessionIn.
func newSession(now time.Time, user string) (authcore.SessionRecord, authcore.TokenRef, authcore.TokenRef) {
	return sessionIn(authcore.NewTicketID(), now, user)
}

// sessionIn makes a session of user's family with fresh token hashes, and
// the references of its access and refresh tokens.
func sessionIn(family string, now time.Time, user string) (authcore.SessionRecord, authcore.TokenRef, authcore.TokenRef) {
	a, r := sha256.Sum256([]byte("a"+authcore.NewTicketID())), sha256.Sum256([]byte("r"+authcore.NewTicketID()))
	rec := authcore.SessionRecord{
		ID: authcore.NewTicketID(), FamilyID: family, UserID: user,
		AccessHash: a, RefreshHash: r, AccessExpiresAt: now.Add(30 * time.Minute), RefreshExpiresAt: now.Add(7 * 24 * time.Hour),
		CreatedAt: now, AMR: []string{"wx"}, Provider: "wechat", Subject: "openid-1", UnionID: "union-1",
		AuthTime: now.Add(-time.Minute).Truncate(time.Millisecond),
	}
	return rec, rec.AccessRef(), rec.RefreshRef()
}

// login stores a new session of user userID and returns its access token's
// reference.
func login(tb testing.TB, s authcore.Store, userID string, now time.Time) authcore.TokenRef {
	tb.Helper()
	sess, access, _ := newSession(now, userID)
	if err := s.CreateSession(context.Background(), sess); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return access
}

func testSessions(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	u := newUser(t, s, "sessions", "", now)
	sess, access, _ := newSession(now, u.ID)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.PrincipalByAccess(ctx, access, now.Add(20*time.Minute), 30*time.Minute)
	if err != nil {
		t.Fatalf("PrincipalByAccess: %v", err)
	}
	if got.Session.UserID != u.ID || got.User.ID != u.ID || got.Session.Subject != "openid-1" || len(got.Session.AMR) != 1 {
		t.Fatalf("session round trip: got %+v", got)
	}
	// The access token slid to 50 minutes after creation, so it is alive at 45.
	if _, err := s.PrincipalByAccess(ctx, access, now.Add(45*time.Minute), 30*time.Minute); err != nil {
		t.Fatalf("sliding expiry: session gone at 45 min after use at 20 min: %v", err)
	}
	wrongFamily := access
	wrongFamily.Family = "AAAAAAAAAAAAAAAA"
	if _, err := s.PrincipalByAccess(ctx, wrongFamily, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("right hash, wrong family: got %v, want ErrNotFound", err)
	}
	wrongUser := access
	wrongUser.UserID = newUser(t, s, "sessions2", "", now).ID
	if _, err := s.PrincipalByAccess(ctx, wrongUser, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("right hash and family, another user: got %v, want ErrNotFound", err)
	}
	if _, err := s.PrincipalByAccess(ctx, access, now.Add(2*time.Hour), 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("idle access token: got %v, want ErrNotFound", err)
	}
	sess2, access2, _ := newSession(now, u.ID)
	if err := s.CreateSession(ctx, sess2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, access2); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.PrincipalByAccess(ctx, access2, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("after logout: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, access2); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("second logout: got %v, want ErrNotFound", err)
	}
	orphan, orphanRef, _ := newSession(now, "u-never-existed")
	if err := s.CreateSession(ctx, orphan); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("session of an unknown user: got %v, want ErrNotFound", err)
	}
	if _, err := s.PrincipalByAccess(ctx, orphanRef, now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("the refused session of an unknown user authenticates: %v", err)
	}
}

func testRefreshReuse(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	u := newUser(t, s, "reuse", "", now)
	sess, _, refresh := newSession(now, u.ID)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	next, nextAccess, _ := sessionIn(sess.FamilyID, now, u.ID)
	got, err := s.RotateRefresh(ctx, refresh, next, now)
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	if got.Session.UserID != u.ID || got.User.ID != u.ID || got.Session.FamilyID != sess.FamilyID || got.Session.Subject != "openid-1" {
		t.Fatalf("rotated session did not inherit: got %+v", got)
	}
	if _, err := s.PrincipalByAccess(ctx, nextAccess, now, 30*time.Minute); err != nil {
		t.Fatalf("new access token: %v", err)
	}
	other, _, _ := sessionIn(sess.FamilyID, now, u.ID)
	if _, err := s.RotateRefresh(ctx, refresh, other, now); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("reused refresh token: got %v, want ErrConflict", err)
	}
	if _, err := s.PrincipalByAccess(ctx, nextAccess, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("after reuse the family must be revoked, got %v", err)
	}
	unknown := refresh
	unknown.Hash = sha256.Sum256([]byte("unknown"))
	if _, err := s.RotateRefresh(ctx, unknown, other, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("unknown refresh token: got %v, want ErrNotFound", err)
	}

	// A user erased after logging in: the refresh token is refused, and
	// nothing is rotated (a later try finds it unknown, not reused).
	erased := newUser(t, s, "reuse-erased", "", now)
	esess, _, erefresh := newSession(now, erased.ID)
	if err := s.CreateSession(ctx, esess); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUser(ctx, erased.ID); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		enext, _, _ := sessionIn(esess.FamilyID, now, erased.ID)
		if _, err := s.RotateRefresh(ctx, erefresh, enext, now); !errors.Is(err, authcore.ErrNotFound) {
			t.Fatalf("refresh #%d of an erased user's session: got %v, want ErrNotFound", i+1, err)
		}
	}
}

func testRefreshRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	u := newUser(t, s, "refreshrace", "", now)
	sess, _, refresh := newSession(now, u.ID)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got := wins(8, func(int) bool {
		next, _, _ := sessionIn(sess.FamilyID, now, u.ID)
		_, err := s.RotateRefresh(ctx, refresh, next, now)
		return err == nil
	})
	if got != 1 {
		t.Fatalf("%d concurrent rotations of one refresh token succeeded, want 1", got)
	}
}

// testPrincipalByAccess: PrincipalByAccess returns the session as stored
// and its user as User does, slides the access expiry, and refuses a
// session whose user was erased.
func testPrincipalByAccess(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "principal", "Alice", now)
	sess, access, _ := newSession(now, u.ID)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.PrincipalByAccess(ctx, access, now.Add(10*time.Minute), 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := sess
	want.AccessExpiresAt = now.Add(40 * time.Minute) // slid
	want.LastUsedAt = now.Add(10 * time.Minute)      // and noted as used
	checkSession(t, "PrincipalByAccess", got.Session, want)
	wantUser, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, "PrincipalByAccess", got.User, wantUser)
	if got, err := s.PrincipalByAccess(ctx, access, now.Add(10*time.Minute), 0); err != nil || !got.Session.AccessExpiresAt.Equal(want.AccessExpiresAt) {
		t.Errorf("after PrincipalByAccess the stored access expiry is %v (%v), want %v", got.Session.AccessExpiresAt, err, want.AccessExpiresAt)
	}
	if _, err := s.PrincipalByAccess(ctx, access, now.Add(41*time.Minute), 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("past its access expiry: %v, want ErrNotFound", err)
	}
	_, unknownRef, _ := newSession(now, u.ID)
	if _, err := s.PrincipalByAccess(ctx, unknownRef, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("unknown token: %v, want ErrNotFound", err)
	}
	live, liveRef, _ := newSession(now, u.ID)
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrincipalByAccess(ctx, liveRef, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("session of an erased user: %v, want ErrNotFound", err)
	}
}

// testTransitionAs: a phone's move resolves the token as PrincipalByAccess
// does (sliding the session), then moves the ticket as the session's user:
// a scan needs a ticket with no scanner and writes the user and their
// profile as the scanner; any other move needs the user to be the scanner;
// nothing moves an expired ticket or one in a terminal state. A refused
// move changes nothing and hands back the ticket as stored. A token that
// is not live, or whose user is gone, gets ErrNoSession with the ticket
// unchanged.
func testTransitionAs(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var nudges recorder
	s := newStore(t, nudges.notify)
	now := time.Now().Truncate(time.Second)
	alice, bob := newUser(t, s, "alice", "Alice", now), newUser(t, s, "bob", "Bob", now)
	aliceSess, aliceRef, _ := newSession(now, alice.ID)
	bobSess, bobRef, _ := newSession(now, bob.ID)
	for _, sess := range []authcore.SessionRecord{aliceSess, bobSess} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(10 * time.Minute) // the moves' time: the session slides
	tk := newTicket(later)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}

	// Refusals hand back the ticket as it is, and change nothing.
	check := func(what string, ref authcore.TokenRef, m authcore.PhoneMove, wantErr error) {
		t.Helper()
		before, err := s.Ticket(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.TransitionAs(ctx, ref, 30*time.Minute, m)
		switch {
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Errorf("%s: %v, want %v", what, err, wantErr)
		case wantErr == nil && (err != nil || res.Moved || !reflect.DeepEqual(res.Ticket, before)):
			t.Errorf("%s: moved %v, %v, ticket %+v; want it refused with the ticket %+v", what, res.Moved, err, res.Ticket, before)
		}
		if after, err := s.Ticket(ctx, tk.ID); err != nil || !reflect.DeepEqual(after, before) {
			t.Errorf("%s changed the ticket: %+v (%v), was %+v", what, after, err, before)
		}
	}
	scan := authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: later}
	scanLate := scan
	scanLate.Now = tk.ExpiresAt
	check("scan at expiry", bobRef, scanLate, nil)
	confirmPending := authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateConfirmed, Now: later}
	check("confirm of a pending ticket, which has no scanner", bobRef, confirmPending, nil)

	res, err := s.TransitionAs(ctx, aliceRef, 30*time.Minute, scan)
	if err != nil || !res.Moved {
		t.Fatalf("scan: moved %v, %v", res.Moved, err)
	}
	want := aliceSess
	want.AccessExpiresAt = now.Add(40 * time.Minute) // slid
	want.LastUsedAt = later
	checkSession(t, "TransitionAs", res.Principal.Session, want)
	checkUser(t, "TransitionAs", res.Principal.User, alice)
	if got, err := s.PrincipalByAccess(ctx, aliceRef, now, 0); err != nil || !got.Session.AccessExpiresAt.Equal(want.AccessExpiresAt) {
		t.Errorf("after TransitionAs the stored access expiry is %v (%v), want %v", got.Session.AccessExpiresAt, err, want.AccessExpiresAt)
	}
	scanner := authcore.Profile{Nickname: "Alice", AvatarURL: alice.AvatarURL}
	if rec := res.Ticket; rec.Version != 2 || rec.State != authcore.StateScanned || rec.ScannerID != alice.ID || rec.Scanner != scanner ||
		!slices.Equal(rec.Trail, []authcore.State{authcore.StatePending, authcore.StateScanned}) {
		t.Fatalf("after the scan: v%d %s %v by %q %+v, want v2 scanned by %q %+v", rec.Version, rec.State, rec.Trail, rec.ScannerID, rec.Scanner, alice.ID, scanner)
	}
	if stored, err := s.Ticket(ctx, tk.ID); err != nil || !reflect.DeepEqual(stored, res.Ticket) {
		t.Errorf("scan: stored %+v (%v), returned %+v", stored, err, res.Ticket)
	}
	nudges.waitFor(t, tk.ID, 2)
	if got := nudges.announced(tk.ID, 2); !sameTicket(got, res.Ticket) {
		t.Errorf("announced %+v, want %+v", got, res.Ticket)
	}

	confirm := authcore.PhoneMove{ID: tk.ID, From: authcore.StateScanned, To: authcore.StateConfirmed, Now: later}
	check("scan again", aliceRef, scan, nil)
	check("scan by another user", bobRef, scan, nil)
	check("confirm by another user", bobRef, confirm, nil)
	_, unknownRef, _ := newSession(now, alice.ID)
	check("confirm with an unknown token", unknownRef, confirm, authcore.ErrNoSession)
	late := confirm
	late.Now = now.Add(41 * time.Minute)
	check("confirm past the access expiry", aliceRef, late, authcore.ErrNoSession)
	gone := confirm
	gone.ID = authcore.NewTicketID()
	check("confirm of an unknown ticket", aliceRef, gone, authcore.ErrNotFound)
	expired := confirm
	expired.Now = tk.ExpiresAt
	check("confirm at expiry", aliceRef, expired, nil)

	if res, err = s.TransitionAs(ctx, aliceRef, 30*time.Minute, confirm); err != nil || !res.Moved || res.Ticket.Version != 3 || res.Ticket.State != authcore.StateConfirmed {
		t.Fatalf("confirm: moved %v, %v, v%d %s; want v3 confirmed", res.Moved, err, res.Ticket.Version, res.Ticket.State)
	}
	nudges.waitFor(t, tk.ID, 3)
	check("second confirm", aliceRef, confirm, nil)
	cancel := confirm
	cancel.To = authcore.StateCancelled
	check("cancel after confirm", aliceRef, cancel, nil)
	cancelConfirmed := cancel
	cancelConfirmed.From = authcore.StateConfirmed
	if res, err = s.TransitionAs(ctx, aliceRef, 30*time.Minute, cancelConfirmed); err != nil || !res.Moved || res.Ticket.State != authcore.StateCancelled {
		t.Fatalf("cancel of a confirmed ticket by its scanner: moved %v, %v, %s", res.Moved, err, res.Ticket.State)
	}
	terminal := cancelConfirmed
	terminal.From, terminal.To = authcore.StateCancelled, authcore.StateConfirmed
	check("a move out of a terminal state", aliceRef, terminal, nil)

	// A user erased after logging in: their token no longer moves tickets.
	other := newTicket(now)
	if err := s.CreateTicket(ctx, other, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	erased := authcore.PhoneMove{ID: other.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now}
	if res, err := s.TransitionAs(ctx, bobRef, 30*time.Minute, erased); !errors.Is(err, authcore.ErrNoSession) || res.Moved {
		t.Errorf("scan by an erased user: moved %v, %v; want ErrNoSession", res.Moved, err)
	}
	if after, err := s.Ticket(ctx, other.ID); err != nil || after.Version != 1 || after.ScannerID != "" {
		t.Errorf("the erased user's scan changed the ticket: %+v (%v)", after, err)
	}
}

// newUser stores user "u-"+name with the WeChat identity "o-"+name.
func newUser(tb testing.TB, s authcore.Store, name, nickname string, now time.Time) authcore.User {
	tb.Helper()
	avatar := "https://a/" + name + ".png"
	u, _, err := s.UpsertIdentity(context.Background(), authcore.Identity{Provider: "wechat", Subject: "o-" + name},
		authcore.Profile{Nickname: nickname, AvatarURL: avatar},
		authcore.User{ID: "u-" + name, Nickname: nickname, AvatarURL: avatar, CreatedAt: now})
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// confirm stores tk and has u scan and confirm it from a new session, as
// a phone does. It returns the ticket as stored then, at version 3.
func confirm(tb testing.TB, s authcore.Store, u authcore.User, tk authcore.TicketRecord, now time.Time) authcore.TicketRecord {
	tb.Helper()
	ctx := context.Background()
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		tb.Fatal(err)
	}
	ref := login(tb, s, u.ID, now)
	var rec authcore.TicketRecord
	for _, m := range []authcore.PhoneMove{
		{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now},
		{ID: tk.ID, From: authcore.StateScanned, To: authcore.StateConfirmed, Now: now},
	} {
		res, err := s.TransitionAs(ctx, ref, 0, m)
		if err != nil || !res.Moved {
			tb.Fatalf("%s: moved %v, %v", m.To, res.Moved, err)
		}
		rec = res.Ticket
	}
	return rec
}

// unredeemed fails t unless the ticket is stored as before and the
// session sess, refused with it, is nowhere (neither its access nor its
// refresh token).
func unredeemed(t *testing.T, s authcore.Store, what string, before authcore.TicketRecord, sess authcore.SessionRecord, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if got, err := s.Ticket(ctx, before.ID); err != nil || !reflect.DeepEqual(got, before) {
		t.Errorf("%s: the ticket is %s v%d (%v), want it %s at v%d as before", what, got.State, got.Version, err, before.State, before.Version)
	}
	if _, err := s.PrincipalByAccess(ctx, sess.AccessRef(), now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("%s: the session was stored (%v)", what, err)
	}
	next, _, _ := sessionIn(sess.FamilyID, now, sess.UserID)
	if _, err := s.RotateRefresh(ctx, sess.RefreshRef(), next, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("%s: the session's refresh token rotates (%v)", what, err)
	}
}

// checkUser fails t unless got, the user a combined call returned, is what
// User returned (want).
func checkUser(t *testing.T, what string, got, want authcore.User) {
	t.Helper()
	if got.ID != want.ID || got.Nickname != want.Nickname || got.AvatarURL != want.AvatarURL || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s user %+v, User() %+v", what, got, want)
	}
}

// testRedeemTicket: a redeem moves the ticket to redeemed (announced like
// every move), stores the session as CreateSession does and returns the
// user as User does; or it changes nothing: a stale version, an expired
// ticket, an unknown ticket or an unknown or erased user leave the ticket
// as it was and store no session (neither its access nor its refresh
// token).
func testRedeemTicket(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var nudges recorder
	s := newStore(t, nudges.notify)
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "redeem", "Cai", now)
	tk := confirm(t, s, u, newTicket(now), now)
	redeem := func(sess authcore.SessionRecord) authcore.Redemption {
		return authcore.Redemption{TicketID: tk.ID, FromVersion: 3, Session: sess, Now: now}
	}

	stale, _, _ := newSession(now, u.ID)
	r := redeem(stale)
	r.FromVersion = 2
	if _, err := s.RedeemTicket(ctx, r); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("stale version: %v, want ErrConflict", err)
	}
	unredeemed(t, s, "stale version", tk, stale, now)
	r = redeem(stale)
	r.Now = tk.ExpiresAt
	if _, err := s.RedeemTicket(ctx, r); !errors.Is(err, authcore.ErrExpired) {
		t.Errorf("expired ticket: %v, want ErrExpired", err)
	}
	unredeemed(t, s, "expired ticket", tk, stale, now)
	r = redeem(stale)
	r.TicketID = authcore.NewTicketID()
	if _, err := s.RedeemTicket(ctx, r); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("unknown ticket: %v, want ErrNotFound", err)
	}
	unredeemed(t, s, "unknown ticket", tk, stale, now)
	orphan, _, _ := newSession(now, "u-never-existed")
	if _, err := s.RedeemTicket(ctx, redeem(orphan)); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	unredeemed(t, s, "unknown user", tk, orphan, now)

	sess, access, _ := newSession(now, u.ID)
	gotUser, err := s.RedeemTicket(ctx, redeem(sess))
	if err != nil {
		t.Fatalf("RedeemTicket: %v", err)
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil || got.State != authcore.StateRedeemed || got.Version != 4 || got.ScannerID != u.ID {
		t.Errorf("RedeemTicket ticket: %s v%d scanner %q (%v), want redeemed at v4 by %s", got.State, got.Version, got.ScannerID, err, u.ID)
	}
	nudges.waitFor(t, tk.ID, 4)
	if a := nudges.announced(tk.ID, 4); !sameTicket(a, got) {
		t.Errorf("announced %+v, want %+v", a, got)
	}
	wantUser, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, "RedeemTicket", gotUser, wantUser)
	stored, err := s.PrincipalByAccess(ctx, access, now, 0)
	if err != nil {
		t.Fatalf("the session RedeemTicket stored: %v", err)
	}
	checkSession(t, "RedeemTicket", stored.Session, sess)
	again, _, _ := newSession(now, u.ID)
	if _, err := s.RedeemTicket(ctx, redeem(again)); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("second redeem: %v, want ErrConflict", err)
	}
	unredeemed(t, s, "second redeem", got, again, now)

	// The user who confirmed erases their account before the desktop
	// redeems: the ticket, which names them, is gone with them, and no
	// session is stored.
	erased := confirm(t, s, u, newTicket(now), now)
	if err := s.EraseUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	late, _, _ := newSession(now, u.ID)
	if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: erased.ID, FromVersion: 3, Session: late, Now: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("erased user: %v, want ErrNotFound", err)
	}
	if got, err := s.Ticket(ctx, erased.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the erased scanner's ticket: %s v%d, %v; want ErrNotFound", got.State, got.Version, err)
	}
	if _, err := s.PrincipalByAccess(ctx, late.AccessRef(), now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("erased user: the session was stored (%v)", err)
	}
}

func testIdentities(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	id := authcore.Identity{Provider: "wechat", Subject: "o1", UnionID: "un1"}
	u, created, err := s.UpsertIdentity(ctx, id, authcore.Profile{Nickname: "Alice"}, authcore.User{ID: "u1", Nickname: "Alice", CreatedAt: now})
	if err != nil || !created || u.ID != "u1" {
		t.Fatalf("first UpsertIdentity: %+v created=%v err=%v", u, created, err)
	}
	u, created, err = s.UpsertIdentity(ctx, id, authcore.Profile{Nickname: "Alice2"}, authcore.User{ID: "u2"})
	if err != nil || created || u.ID != "u1" || u.Nickname != "Alice2" {
		t.Fatalf("second UpsertIdentity: %+v created=%v err=%v; want u1 renamed Alice2", u, created, err)
	}
	// Another app of the same Open Platform account: same unionid, same user.
	u, created, err = s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat-web", Subject: "o9", UnionID: "un1"}, authcore.Profile{}, authcore.User{ID: "u3"})
	if err != nil || created || u.ID != "u1" {
		t.Fatalf("unionid mapping: %+v created=%v err=%v; want u1", u, created, err)
	}
	if got, err := s.User(ctx, "u1"); err != nil || got.Nickname != "Alice2" {
		t.Fatalf("User: %+v %v", got, err)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("User(unknown): %v", err)
	}
	if err := s.PutSessionKey(ctx, "o1", "k1", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSessionKey(ctx, "o1", "k2", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k, err := s.SessionKey(ctx, "o1"); err != nil || k != "k2" {
		t.Fatalf("SessionKey: %q %v, want k2", k, err)
	}
	if _, err := s.SessionKey(ctx, "o2"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("SessionKey(unknown): %v", err)
	}
}

// testSessionKeyExpiry: a session key is gone at its expiry, whether that
// had passed when it was stored (which also drops the one before) or
// passes while it is stored.
func testSessionKeyExpiry(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	if err := s.PutSessionKey(ctx, "sk-o1", "old", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSessionKey(ctx, "sk-o1", "late", time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if k, err := s.SessionKey(ctx, "sk-o1"); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("SessionKey after a put already expired: %q, %v; want ErrNotFound", k, err)
	}
	exp := time.Now().Add(100 * time.Millisecond)
	if err := s.PutSessionKey(ctx, "sk-o2", "short", exp); err != nil {
		t.Fatal(err)
	}
	if k, err := s.SessionKey(ctx, "sk-o2"); err != nil || k != "short" {
		t.Fatalf("SessionKey before its expiry: %q, %v; want short", k, err)
	}
	time.Sleep(time.Until(exp) + 50*time.Millisecond)
	if k, err := s.SessionKey(ctx, "sk-o2"); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("SessionKey after its expiry: %q, %v; want ErrNotFound", k, err)
	}
}

func testFirstUse(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	got := wins(8, func(int) bool {
		ok, err := s.FirstUse(ctx, "jti-1", time.Minute)
		if err != nil {
			t.Errorf("FirstUse: %v", err)
		}
		return ok
	})
	if got != 1 {
		t.Fatalf("%d first uses of one key, want 1", got)
	}
	if ok, _ := s.FirstUse(ctx, "jti-2", time.Minute); !ok {
		t.Fatal("a different key must be a first use")
	}
}

// testTicketRoundTrip: every field of a ticket survives the store, times to
// the second (the wire format's precision).
func testTicketRoundTrip(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Second)
	tk := newTicket(now)
	tk.CreatedAt = now
	tk.ClientIP = netip.MustParseAddr("2001:db8::7")
	tk.Requester.UserAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	tk.Requester.Location = "上海"
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}
	scanner := authcore.Profile{Nickname: "小明", AvatarURL: "https://thirdwx.qlogo.cn/mmopen/vi_32/" + strings.Repeat("x", 90) + "/132"}
	u, _, err := s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "o-roundtrip"}, scanner,
		authcore.User{ID: "u-roundtrip", Nickname: scanner.Nickname, AvatarURL: scanner.AvatarURL, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	scan := authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now}
	if res, err := s.TransitionAs(ctx, login(t, s, u.ID, now), 0, scan); err != nil || !res.Moved {
		t.Fatalf("scan: moved %v, %v", res.Moved, err)
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := tk
	want.State, want.Version, want.Trail = authcore.StateScanned, 2, []authcore.State{authcore.StatePending, authcore.StateScanned}
	want.ScannerID, want.Scanner = u.ID, scanner
	if !got.ExpiresAt.Equal(want.ExpiresAt) || !got.CreatedAt.Equal(want.CreatedAt) || !got.Requester.CreatedAt.Equal(want.Requester.CreatedAt) {
		t.Errorf("times: got %v %v %v, want %v %v %v", got.ExpiresAt, got.CreatedAt, got.Requester.CreatedAt,
			want.ExpiresAt, want.CreatedAt, want.Requester.CreatedAt)
	}
	got.ExpiresAt, got.CreatedAt, got.Requester.CreatedAt = want.ExpiresAt, want.CreatedAt, want.Requester.CreatedAt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
	}
}

// testTicketVia: a ticket scanned with a Via (a provider login in the
// desktop's browser) keeps it through the confirm and the redeem; one a
// phone scanned has none.
func testTicketVia(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "via", "", now)
	for _, via := range []string{"oidc:corp", ""} {
		tk := newTicket(now)
		if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
			t.Fatal(err)
		}
		ref := login(t, s, u.ID, now)
		for _, m := range []authcore.PhoneMove{
			{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now, Via: via},
			{ID: tk.ID, From: authcore.StateScanned, To: authcore.StateConfirmed, Now: now},
		} {
			res, err := s.TransitionAs(ctx, ref, 0, m)
			if err != nil || !res.Moved || res.Ticket.Via != via {
				t.Fatalf("via %q: %s: moved %v, via %q, %v", via, m.To, res.Moved, res.Ticket.Via, err)
			}
		}
		got, err := s.Ticket(ctx, tk.ID)
		if err != nil || got.Via != via || got.ScannerID != u.ID || got.State != authcore.StateConfirmed {
			t.Fatalf("via %q: the stored ticket %+v, %v", via, got, err)
		}
		sess, _, _ := newSession(now, u.ID)
		if _, err := s.RedeemTicket(ctx, authcore.Redemption{TicketID: tk.ID, FromVersion: got.Version, Session: sess, Now: now}); err != nil {
			t.Fatalf("via %q: redeem: %v", via, err)
		}
		if got, err := s.Ticket(ctx, tk.ID); err != nil || got.Via != via || got.State != authcore.StateRedeemed {
			t.Fatalf("via %q: after the redeem %+v, %v", via, got, err)
		}
	}
}

// testTicketRetention: an expired ticket stays readable for the retention
// given at creation, so late watchers learn that it expired.
func testTicketRetention(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	tk := newTicket(now)
	tk.ExpiresAt = now.Add(-time.Second).Truncate(time.Second)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Ticket(ctx, tk.ID); err != nil || got.ViewAt(now).State != authcore.StateExpired {
		t.Fatalf("expired ticket within retention: got %+v, %v; want it, reading as expired", got, err)
	}
	ref := login(t, s, newUser(t, s, "retention", "", now).ID, now)
	scan := authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now}
	if res, err := s.TransitionAs(ctx, ref, 0, scan); err != nil || res.Moved || res.Ticket.Version != 1 {
		t.Fatalf("scan of an expired ticket: moved %v, %v, v%d; want refused at v1", res.Moved, err, res.Ticket.Version)
	}
}

// testSessionRoundTrip: every field of a session survives the store; the
// slide stops at the refresh expiry; rotation returns the completed record
// and retires the old tokens; logout retires the refresh token too.
func testSessionRoundTrip(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "roundtrip", "", now)
	sess, access, refresh := newSession(now, u.ID)
	sess.AMR = []string{"wx", "qr"}
	sess.StepUps = map[string]time.Time{authcore.MethodFace: now.Add(-time.Minute), "vbm": now.Add(-2 * time.Minute)}
	sess.RefreshExpiresAt = now.Add(40 * time.Minute)
	sess.DeviceID, sess.Method, sess.UserAgent = "dev-roundtrip-0123456789", authcore.MethodQR, "Mozilla/5.0 (round trip)"
	sess.IPMasked, sess.Region = "2001:db8:1:2::/64", "2001:db8::/32"
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.PrincipalByAccess(ctx, access, now.Add(20*time.Minute), 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := sess
	want.AccessExpiresAt = sess.RefreshExpiresAt // the slide never passes the refresh expiry
	want.LastUsedAt = now.Add(20 * time.Minute)
	checkSession(t, "PrincipalByAccess", got.Session, want)

	next, nextAccess, nextRefresh := sessionIn(sess.FamilyID, now.Add(time.Minute), u.ID)
	next.AMR, next.Provider, next.Subject, next.UnionID, next.AuthTime = nil, "", "", "", now.Add(time.Minute)
	rotated, err := s.RotateRefresh(ctx, refresh, next, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want = next
	want.AMR, want.StepUps, want.AuthTime = sess.AMR, sess.StepUps, sess.AuthTime // the login's, not the refresh's
	want.Provider, want.Subject, want.UnionID = sess.Provider, sess.Subject, sess.UnionID
	want.DeviceID, want.Method, want.IPMasked, want.Region, want.UserAgent = sess.DeviceID, sess.Method, sess.IPMasked, sess.Region, sess.UserAgent
	checkSession(t, "RotateRefresh", rotated.Session, want)
	checkUser(t, "RotateRefresh", rotated.User, u)
	if got, err := s.PrincipalByAccess(ctx, nextAccess, now.Add(time.Minute), 0); err != nil {
		t.Fatalf("rotated session: %v", err)
	} else {
		checkSession(t, "rotated session", got.Session, want)
	}
	if _, err := s.PrincipalByAccess(ctx, access, now.Add(time.Minute), 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("access token of a rotated session: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, nextAccess); err != nil {
		t.Fatal(err)
	}
	other, _, _ := sessionIn(sess.FamilyID, now, u.ID)
	if _, err := s.RotateRefresh(ctx, nextRefresh, other, now.Add(time.Minute)); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("refresh token of a deleted session: got %v, want ErrNotFound", err)
	}

	late, _, lateRefresh := newSession(now, u.ID)
	if err := s.CreateSession(ctx, late); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefresh(ctx, lateRefresh, other, late.RefreshExpiresAt); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("refresh token at its expiry: got %v, want ErrNotFound", err)
	}
}

func checkSession(t *testing.T, what string, got, want authcore.SessionRecord) {
	t.Helper()
	if !got.AccessExpiresAt.Equal(want.AccessExpiresAt) || !got.RefreshExpiresAt.Equal(want.RefreshExpiresAt) || !got.CreatedAt.Equal(want.CreatedAt) ||
		!sameStepUps(got.StepUps, want.StepUps) || !got.AuthTime.Equal(want.AuthTime) || !got.LastUsedAt.Equal(want.LastUsedAt) {
		t.Errorf("%s times: got %v %v %v step-ups %v auth %v used %v, want %v %v %v step-ups %v auth %v used %v", what,
			got.AccessExpiresAt, got.RefreshExpiresAt, got.CreatedAt, got.StepUps, got.AuthTime, got.LastUsedAt,
			want.AccessExpiresAt, want.RefreshExpiresAt, want.CreatedAt, want.StepUps, want.AuthTime, want.LastUsedAt)
	}
	got.AccessExpiresAt, got.RefreshExpiresAt, got.CreatedAt, got.StepUps, got.AuthTime = want.AccessExpiresAt, want.RefreshExpiresAt, want.CreatedAt, want.StepUps, want.AuthTime
	got.LastUsedAt = want.LastUsedAt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\ngot  %+v\nwant %+v", what, got, want)
	}
}

// testIdentityRace: concurrent first logins converge on one user, both for
// one identity and for several identities sharing a unionid.
func testIdentityRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	for round := range 10 {
		union := fmt.Sprint("race-union-", round)
		ids := make([]string, 8)
		created := wins(len(ids), func(i int) bool {
			// Two logins per identity, four identities of one person.
			id := authcore.Identity{Provider: "wechat", Subject: fmt.Sprint("race-", round, "-", i/2), UnionID: union}
			u, c, err := s.UpsertIdentity(ctx, id, authcore.Profile{}, authcore.User{ID: fmt.Sprint("u-", round, "-", i), CreatedAt: time.Now()})
			if err != nil {
				t.Errorf("UpsertIdentity: %v", err)
			}
			ids[i] = u.ID
			return c
		})
		if got := created; got != 1 {
			t.Errorf("round %d: %d users created, want 1", round, got)
		}
		for i, id := range ids {
			if id != ids[0] {
				t.Fatalf("round %d: login %d got user %q, login 0 got %q; want one user", round, i, id, ids[0])
			}
		}
		if _, err := s.User(ctx, ids[0]); err != nil {
			t.Fatalf("round %d: User(%s): %v", round, ids[0], err)
		}
	}
}

// sameStepUps reports whether two sessions' step-up times name the same
// methods at the same instants (nil and empty are the same: none).
func sameStepUps(got, want map[string]time.Time) bool {
	if len(got) != len(want) {
		return false
	}
	for m, at := range want {
		if g, ok := got[m]; !ok || !g.Equal(at) {
			return false
		}
	}
	return true
}
