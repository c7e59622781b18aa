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
	t.Run("TransitionRace", func(t *testing.T) { testTransitionRace(t, newStore) })
	t.Run("TransitionExpired", func(t *testing.T) { testTransitionExpired(t, newStore) })
	t.Run("TransitionFrom", func(t *testing.T) { testTransitionFrom(t, newStore) })
	t.Run("TransitionFromRace", func(t *testing.T) { testTransitionFromRace(t, newStore) })
	t.Run("Sessions", func(t *testing.T) { testSessions(t, newStore) })
	t.Run("RefreshReuseRevokesFamily", func(t *testing.T) { testRefreshReuse(t, newStore) })
	t.Run("RefreshRace", func(t *testing.T) { testRefreshRace(t, newStore) })
	t.Run("Identities", func(t *testing.T) { testIdentities(t, newStore) })
	t.Run("FirstUse", func(t *testing.T) { testFirstUse(t, newStore) })
	t.Run("TicketRoundTrip", func(t *testing.T) { testTicketRoundTrip(t, newStore) })
	t.Run("TicketRetention", func(t *testing.T) { testTicketRetention(t, newStore) })
	t.Run("SessionRoundTrip", func(t *testing.T) { testSessionRoundTrip(t, newStore) })
	t.Run("IdentityRace", func(t *testing.T) { testIdentityRace(t, newStore) })
	t.Run("PersonalData", func(t *testing.T) { testPersonalData(t, newStore) })
	t.Run("Audit", func(t *testing.T) { testAudit(t, newStore) })
	t.Run("AuditTrim", func(t *testing.T) { testAuditTrim(t, newStore) })
	t.Run("EraseUser", func(t *testing.T) { testEraseUser(t, newStore) })
	t.Run("PrincipalByAccess", func(t *testing.T) { testPrincipalByAccess(t, newStore) })
	t.Run("RedeemTicket", func(t *testing.T) { testRedeemTicket(t, newStore) })
	t.Run("TransitionAs", func(t *testing.T) { testTransitionAs(t, newStore) })
	t.Run("RedeemIfAllowed", func(t *testing.T) { testRedeemIfAllowed(t, newStore) })
	t.Run("FaceVerification", func(t *testing.T) { testFaceVerification(t, newStore) })
	t.Run("FaceVerificationRace", func(t *testing.T) { testFaceVerificationRace(t, newStore) })
	t.Run("FaceVerificationExpiry", func(t *testing.T) { testFaceVerificationExpiry(t, newStore) })
	t.Run("MarkSessionFace", func(t *testing.T) { testMarkSessionFace(t, newStore) })
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

func testTicketLifecycle(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var rec recorder
	s := newStore(t, rec.notify)
	now := time.Now()
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
	scanner := authcore.Profile{Nickname: "Alice", AvatarURL: "https://a/x.png"}
	steps := []authcore.Transition{
		{ID: tk.ID, FromVersion: 1, To: authcore.StateScanned, ScannerID: "u1", Scanner: scanner, Now: now},
		{ID: tk.ID, FromVersion: 2, To: authcore.StateConfirmed, Now: now},
		{ID: tk.ID, FromVersion: 3, To: authcore.StateRedeemed, Now: now},
	}
	for i, st := range steps {
		next, err := s.Transition(ctx, st)
		if err != nil {
			t.Fatalf("step %d %s: %v", i, st.To, err)
		}
		if next.State != st.To || next.Version != st.FromVersion+1 || len(next.Trail) != int(next.Version) || next.Trail[next.Version-1] != st.To {
			t.Fatalf("step %d: got state %s v%d trail %v", i, next.State, next.Version, next.Trail)
		}
		if next.ScannerID != "u1" || next.Scanner != scanner {
			t.Fatalf("step %d: scanner not kept: %q %+v", i, next.ScannerID, next.Scanner)
		}
		rec.waitFor(t, tk.ID, next.Version)
		if got := rec.announced(tk.ID, next.Version); !sameTicket(got, next) {
			t.Fatalf("step %d: announced %+v, but the transition returned %+v", i, got, next)
		}
	}
	if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 4, To: authcore.StateCancelled, Now: now}); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("transition out of redeemed: got %v, want ErrConflict", err)
	}
	if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 1, To: authcore.StateScanned, Now: now}); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("stale version: got %v, want ErrConflict", err)
	}
	if _, err := s.Transition(ctx, authcore.Transition{ID: "missing", FromVersion: 1, To: authcore.StateScanned, Now: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("unknown ticket: got %v, want ErrNotFound", err)
	}
}

// testTransitionRace: many goroutines race the same compare-and-set; exactly
// one wins, every time.
func testTransitionRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	var wins atomic.Int32
	raceRounds(t, s, now, func(tk authcore.TicketRecord, i int) {
		_, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 1, To: authcore.StateScanned, ScannerID: fmt.Sprint("u", i), Now: now})
		if err == nil {
			wins.Add(1)
		} else if !errors.Is(err, authcore.ErrConflict) {
			t.Errorf("racing transition: %v", err)
		}
	}, func(round int) {
		if got := wins.Swap(0); got != 1 {
			t.Fatalf("round %d: %d transitions won, want exactly 1", round, got)
		}
	})
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
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { race(tk, i) })
		}
		wg.Wait()
		check(round)
	}
}

func testTransitionExpired(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	tk := newTicket(now)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 1, To: authcore.StateScanned, Now: tk.ExpiresAt})
	if !errors.Is(err, authcore.ErrExpired) {
		t.Fatalf("transition at expiry: got %v, want ErrExpired", err)
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil || got.Version != 1 {
		t.Fatalf("failed transition changed the ticket: %+v, %v", got, err)
	}
}

// testTransitionFrom: a transition that requires a state and an owner
// moves the ticket and announces it when both hold and it has not expired;
// otherwise it changes nothing and hands back the ticket as stored.
func testTransitionFrom(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var rec recorder
	s := newStore(t, rec.notify)
	now := time.Now()
	tk := newTicket(now)
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		t.Fatal(err)
	}
	scanner := authcore.Profile{Nickname: "Alice", AvatarURL: "https://a/x.png"}
	// refused checks that a refusal changed nothing and replied the
	// ticket exactly as Ticket reads it.
	refused := func(what string, st authcore.StateTransition, wantVersion uint64) {
		t.Helper()
		got, moved, err := s.TransitionFrom(ctx, st)
		if err != nil || moved {
			t.Fatalf("%s: moved %v, err %v; want refused", what, moved, err)
		}
		stored, err := s.Ticket(ctx, st.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.Version != wantVersion || !reflect.DeepEqual(got, stored) {
			t.Fatalf("%s: replied %+v, stored %+v; want the stored ticket, unchanged at v%d", what, got, stored, wantVersion)
		}
	}
	moves := func(what string, st authcore.StateTransition, wantVersion uint64) authcore.TicketRecord {
		t.Helper()
		got, moved, err := s.TransitionFrom(ctx, st)
		if err != nil || !moved {
			t.Fatalf("%s: moved %v, err %v; want moved", what, moved, err)
		}
		if got.State != st.To || got.Version != wantVersion || len(got.Trail) != int(wantVersion) || got.Trail[wantVersion-1] != st.To {
			t.Fatalf("%s: got state %s v%d trail %v; want %s v%d", what, got.State, got.Version, got.Trail, st.To, wantVersion)
		}
		if got.ScannerID != "u1" || got.Scanner != scanner {
			t.Fatalf("%s: scanner %q %+v, want u1 %+v", what, got.ScannerID, got.Scanner, scanner)
		}
		stored, err := s.Ticket(ctx, st.ID)
		if err != nil || !reflect.DeepEqual(got, stored) {
			t.Fatalf("%s: replied %+v, stored %+v (%v); want the same", what, got, stored, err)
		}
		rec.waitFor(t, st.ID, wantVersion)
		return got
	}

	scan := authcore.StateTransition{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, ScannerID: "u1", Scanner: scanner, Now: now}
	atExpiry := scan
	atExpiry.Now = tk.ExpiresAt
	refused("scan at expiry", atExpiry, 1)
	wrongOwner := scan
	wrongOwner.Owner = "u1"
	refused("scan of a pending ticket that u1 would own", wrongOwner, 1)
	moves("scan", scan, 2)
	refused("second scan", scan, 2)
	other := scan
	other.ScannerID = "u2"
	refused("scan by another account", other, 2)

	confirm := authcore.StateTransition{ID: tk.ID, From: authcore.StateScanned, Owner: "u2", To: authcore.StateConfirmed, Now: now}
	refused("confirm by another account", confirm, 2)
	confirm.Owner = "u1"
	confirm.Now = tk.ExpiresAt
	refused("confirm at expiry", confirm, 2)
	confirm.Now = now
	moves("confirm", confirm, 3)
	refused("second confirm", confirm, 3)
	cancel := confirm
	cancel.To = authcore.StateCancelled
	refused("cancel after confirm", cancel, 3)

	if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 3, To: authcore.StateRedeemed, Now: now}); err != nil {
		t.Fatal(err)
	}
	redeemed := authcore.StateTransition{ID: tk.ID, From: authcore.StateRedeemed, Owner: "u1", To: authcore.StateCancelled, Now: now}
	refused("a move out of a terminal state", redeemed, 4)

	if _, _, err := s.TransitionFrom(ctx, authcore.StateTransition{ID: "missing", From: authcore.StatePending, To: authcore.StateScanned, Now: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("unknown ticket: got %v, want ErrNotFound", err)
	}
}

// testTransitionFromRace: accounts racing to scan one ticket: exactly one
// claims it, and every other one is handed the winner's ticket.
func testTransitionFromRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	var got [racers]authcore.TicketRecord
	var moved [racers]bool
	raceRounds(t, s, now, func(tk authcore.TicketRecord, i int) {
		var err error
		got[i], moved[i], err = s.TransitionFrom(ctx, authcore.StateTransition{
			ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, ScannerID: fmt.Sprint("u", i), Now: now,
		})
		if err != nil {
			t.Errorf("racing scan: %v", err)
		}
	}, func(round int) {
		winner := -1
		for i := range racers {
			if moved[i] {
				if winner >= 0 {
					t.Fatalf("round %d: u%d and u%d both claimed the ticket", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody claimed the ticket", round)
		}
		for i := range racers {
			if g := got[i]; g.Version != 2 || g.ScannerID != fmt.Sprint("u", winner) {
				t.Fatalf("round %d: u%d got v%d owned by %q; want v2 owned by u%d", round, i, g.Version, g.ScannerID, winner)
			}
		}
	})
}

// newSession makes a session of a new family; see sessionIn.
func newSession(now time.Time, user string) (authcore.SessionRecord, authcore.TokenRef, authcore.TokenRef) {
	return sessionIn(authcore.NewTicketID(), now, user)
}

// sessionIn makes a session of family with fresh token hashes, and the
// references of its access and refresh tokens.
func sessionIn(family string, now time.Time, user string) (authcore.SessionRecord, authcore.TokenRef, authcore.TokenRef) {
	a, r := sha256.Sum256([]byte("a"+authcore.NewTicketID())), sha256.Sum256([]byte("r"+authcore.NewTicketID()))
	return authcore.SessionRecord{
		ID: authcore.NewTicketID(), FamilyID: family, UserID: user,
		AccessHash: a, RefreshHash: r, AccessExpiresAt: now.Add(30 * time.Minute), RefreshExpiresAt: now.Add(7 * 24 * time.Hour),
		CreatedAt: now, AMR: []string{"wx"}, Provider: "wechat", Subject: "openid-1", UnionID: "union-1",
	}, authcore.TokenRef{Family: family, Hash: a}, authcore.TokenRef{Family: family, Hash: r}
}

func testSessions(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	sess, access, _ := newSession(now, "u1")
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByAccess(ctx, access, now.Add(20*time.Minute), 30*time.Minute)
	if err != nil {
		t.Fatalf("SessionByAccess: %v", err)
	}
	if got.UserID != "u1" || got.Subject != "openid-1" || len(got.AMR) != 1 {
		t.Fatalf("session round trip: got %+v", got)
	}
	// The access token slid to 50 minutes after creation, so it is alive at 45.
	if _, err := s.SessionByAccess(ctx, access, now.Add(45*time.Minute), 30*time.Minute); err != nil {
		t.Fatalf("sliding expiry: session gone at 45 min after use at 20 min: %v", err)
	}
	if _, err := s.SessionByAccess(ctx, authcore.TokenRef{Family: "AAAAAAAAAAAAAAAA", Hash: access.Hash}, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("right hash, wrong family: got %v, want ErrNotFound", err)
	}
	if _, err := s.SessionByAccess(ctx, access, now.Add(2*time.Hour), 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("idle access token: got %v, want ErrNotFound", err)
	}
	sess2, access2, _ := newSession(now, "u1")
	if err := s.CreateSession(ctx, sess2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, access2); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, err := s.SessionByAccess(ctx, access2, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("after logout: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, access2); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("second logout: got %v, want ErrNotFound", err)
	}
}

func testRefreshReuse(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	sess, _, refresh := newSession(now, "u1")
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	next, nextAccess, _ := sessionIn(sess.FamilyID, now, "ignored")
	got, err := s.RotateRefresh(ctx, refresh, next, now)
	if err != nil {
		t.Fatalf("RotateRefresh: %v", err)
	}
	if got.UserID != "u1" || got.FamilyID != sess.FamilyID || got.Subject != "openid-1" {
		t.Fatalf("rotated session did not inherit: got %+v", got)
	}
	if _, err := s.SessionByAccess(ctx, nextAccess, now, 30*time.Minute); err != nil {
		t.Fatalf("new access token: %v", err)
	}
	other, _, _ := sessionIn(sess.FamilyID, now, "x")
	if _, err := s.RotateRefresh(ctx, refresh, other, now); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("reused refresh token: got %v, want ErrConflict", err)
	}
	if _, err := s.SessionByAccess(ctx, nextAccess, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("after reuse the family must be revoked, got %v", err)
	}
	if _, err := s.RotateRefresh(ctx, authcore.TokenRef{Family: sess.FamilyID, Hash: sha256.Sum256([]byte("unknown"))}, other, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("unknown refresh token: got %v, want ErrNotFound", err)
	}
}

func testRefreshRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	sess, _, refresh := newSession(now, "u1")
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got := wins(8, func(int) bool {
		next, _, _ := sessionIn(sess.FamilyID, now, "")
		_, err := s.RotateRefresh(ctx, refresh, next, now)
		return err == nil
	})
	if got != 1 {
		t.Fatalf("%d concurrent rotations of one refresh token succeeded, want 1", got)
	}
}

// testPrincipalByAccess: a store that finds a session and its user in one
// call answers exactly what SessionByAccess and User answer, slides the
// access expiry the same way, and refuses a session whose user was erased.
func testPrincipalByAccess(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	ps, ok := s.(authcore.PrincipalStore)
	if !ok {
		t.Skip("this store has no PrincipalByAccess; the core makes two calls")
	}
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "principal", "Alice", now)
	sess, access, _ := newSession(now, u.ID)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	gotSess, gotUser, err := ps.PrincipalByAccess(ctx, access, now.Add(10*time.Minute), 30*time.Minute)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("PrincipalByAccess is not supported by this deployment (Redis Cluster); the core makes two calls")
	}
	if err != nil {
		t.Fatal(err)
	}
	want := sess
	want.AccessExpiresAt = now.Add(40 * time.Minute) // slid
	checkSession(t, "PrincipalByAccess", gotSess, want)
	wantUser, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, "PrincipalByAccess", gotUser, wantUser)
	if got, err := s.SessionByAccess(ctx, access, now.Add(10*time.Minute), 0); err != nil || !got.AccessExpiresAt.Equal(want.AccessExpiresAt) {
		t.Errorf("after PrincipalByAccess the stored access expiry is %v (%v), want %v", got.AccessExpiresAt, err, want.AccessExpiresAt)
	}
	if _, _, err := ps.PrincipalByAccess(ctx, access, now.Add(41*time.Minute), 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("past its access expiry: %v, want ErrNotFound", err)
	}
	_, unknownRef, _ := newSession(now, u.ID)
	if _, _, err := ps.PrincipalByAccess(ctx, unknownRef, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("unknown token: %v, want ErrNotFound", err)
	}
	live, liveRef, _ := newSession(now, u.ID)
	if err := s.CreateSession(ctx, live); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ps.PrincipalByAccess(ctx, liveRef, now, 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("session of an erased user: %v, want ErrNotFound", err)
	}
}

// testRedeemIfAllowed: a store that redeems with the core's checks in one
// call redeems a confirmed, unexpired ticket without a DPoP key, presented
// with its watch secret from an address its binding allows, stores the
// session as the ticket's scanner's and returns that user; it refuses
// anything else with nothing changed, handing back the ticket as it is.
// The address check agrees with authcore.IPBinding.Allows.
func testRedeemIfAllowed(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var nudges recorder
	s := newStore(t, nudges.notify)
	cs, ok := s.(authcore.CheckedRedeemStore)
	if !ok {
		t.Skip("this store has no RedeemIfAllowed; the core reads the ticket first")
	}
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "checked", "Dai", now)
	loopback := netip.MustParseAddr("127.0.0.1")
	confirmedFrom := func(bound netip.Addr) authcore.TicketRecord {
		tk := newTicket(now)
		tk.DPoPJKT, tk.ClientIP = "", bound
		return confirm(t, s, tk, u.ID, now)
	}
	checkOf := func(tk authcore.TicketRecord) authcore.RedeemCheck {
		return authcore.RedeemCheck{ID: tk.ID, SecretHash: sha256.Sum256([]byte("secret")), Client: loopback, Binding: authcore.IPStrict, Now: now}
	}
	newSess := func() authcore.SessionRecord {
		sess, _, _ := newSession(now, "")
		return sess
	}

	tk := confirmedFrom(loopback)
	if _, _, _, err := cs.RedeemIfAllowed(ctx, checkOf(authcore.TicketRecord{ID: authcore.NewTicketID()}), newSess()); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("RedeemIfAllowed is not supported by this deployment (Redis Cluster); the core reads the ticket first")
	} else if !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("unknown ticket: %v, want ErrNotFound", err)
	}
	bound := newTicket(now) // DPoP-bound
	bound = confirm(t, s, bound, u.ID, now)
	scanned := newTicket(now)
	scanned.DPoPJKT = ""
	if err := s.CreateTicket(ctx, scanned, time.Minute); err != nil {
		t.Fatal(err)
	}
	scanned, _, _ = s.TransitionFrom(ctx, authcore.StateTransition{ID: scanned.ID, From: authcore.StatePending, To: authcore.StateScanned, ScannerID: u.ID, Now: now})
	for _, c := range []struct {
		what   string
		ticket authcore.TicketRecord
		change func(*authcore.RedeemCheck)
	}{
		{"wrong secret", tk, func(c *authcore.RedeemCheck) { c.SecretHash = sha256.Sum256([]byte("guess")) }},
		{"another address", tk, func(c *authcore.RedeemCheck) { c.Client = netip.MustParseAddr("127.0.0.2") }},
		{"expired ticket", tk, func(c *authcore.RedeemCheck) { c.Now = tk.ExpiresAt }},
		{"DPoP-bound ticket", bound, func(*authcore.RedeemCheck) {}},
		{"ticket not confirmed", scanned, func(*authcore.RedeemCheck) {}},
	} {
		check, sess := checkOf(c.ticket), newSess()
		c.change(&check)
		got, _, redeemed, err := cs.RedeemIfAllowed(ctx, check, sess)
		if err != nil || redeemed || !sameTicket(got, c.ticket) {
			t.Errorf("%s: redeemed %v, %v, ticket %s v%d; want it refused with the ticket as it is", c.what, redeemed, err, got.State, got.Version)
		}
		unredeemed(t, s, c.what, c.ticket, sess, now)
	}

	sess := newSess()
	got, gotUser, redeemed, err := cs.RedeemIfAllowed(ctx, checkOf(tk), sess)
	if err != nil || !redeemed {
		t.Fatalf("RedeemIfAllowed: redeemed %v, %v", redeemed, err)
	}
	if got.ID != tk.ID || got.State != authcore.StateRedeemed || got.Version != 4 || got.ScannerID != u.ID {
		t.Errorf("RedeemIfAllowed ticket: %s v%d scanner %q, want redeemed at v4 by %s", got.State, got.Version, got.ScannerID, u.ID)
	}
	nudges.waitFor(t, tk.ID, 4)
	if a := nudges.announced(tk.ID, 4); !sameTicket(a, got) {
		t.Errorf("announced %+v, want %+v", a, got)
	}
	checkUser(t, "RedeemIfAllowed", gotUser, u)
	stored, err := s.SessionByAccess(ctx, authcore.TokenRef{Family: sess.FamilyID, Hash: sess.AccessHash}, now, 0)
	if err != nil {
		t.Fatalf("the session RedeemIfAllowed stored: %v", err)
	}
	want := sess
	want.UserID = u.ID // the ticket's scanner
	checkSession(t, "RedeemIfAllowed", stored, want)
	again := newSess()
	if got2, _, redeemed, err := cs.RedeemIfAllowed(ctx, checkOf(tk), again); err != nil || redeemed || !sameTicket(got2, got) {
		t.Errorf("second redeem: redeemed %v, %v, ticket %s v%d; want it refused with the redeemed ticket", redeemed, err, got2.State, got2.Version)
	}
	unredeemed(t, s, "second redeem", got, again, now)

	// The address check, against IPBinding.Allows.
	for _, c := range []struct {
		binding       authcore.IPBinding
		bound, client string
	}{
		{authcore.IPStrict, "127.0.0.1", "127.0.0.1"},
		{authcore.IPStrict, "::ffff:127.0.0.1", "127.0.0.1"},
		{authcore.IPStrict, "127.0.0.1", "::ffff:127.0.0.1"},
		{authcore.IPStrict, "127.0.0.1", "127.0.0.2"},
		{authcore.IPStrict, "2001:db8::1", "2001:db8::1"},
		{authcore.IPStrict, "2001:db8::1", "2001:db8::2"},
		{authcore.IPStrict, "fe80::1%eth0", "fe80::1%eth0"},
		{authcore.IPStrict, "fe80::1%eth0", "fe80::1"},
		{authcore.IPStrict, "fe80::1%eth0", "fe80::1%eth1"},
		{authcore.IPStrict, "127.0.0.1", "::1"},
		{authcore.IPSubnet, "127.0.0.1", "127.0.0.200"},
		{authcore.IPSubnet, "::ffff:127.0.0.1", "127.0.0.200"},
		{authcore.IPSubnet, "127.0.0.1", "::ffff:127.0.0.9"},
		{authcore.IPSubnet, "127.0.0.1", "127.0.1.1"},
		{authcore.IPSubnet, "127.0.0.1", "::1"},
		{authcore.IPSubnet, "::1", "127.0.0.1"},
		{authcore.IPSubnet, "2001:db8:1:2::1", "2001:db8:1:2:ffff::9"},
		{authcore.IPSubnet, "2001:db8:1:2::1", "2001:db8:1:3::1"},
		{authcore.IPSubnet, "fe80::1%eth0", "fe80::2"},
		{authcore.IPSubnet, "fe80::1", "fe80::2%eth1"},
		{authcore.IPOff, "127.0.0.1", "10.1.2.3"},
		{authcore.IPOff, "127.0.0.1", "2001:db8::1"},
	} {
		boundIP, client := netip.MustParseAddr(c.bound), netip.MustParseAddr(c.client)
		tk := confirmedFrom(boundIP)
		check := checkOf(tk)
		check.Client, check.Binding = client, c.binding
		_, _, redeemed, err := cs.RedeemIfAllowed(ctx, check, newSess())
		if want := c.binding.Allows(boundIP, client); err != nil || redeemed != want {
			t.Errorf("%s binding, %s redeeming a ticket of %s: redeemed %v (%v), want %v as Allows", c.binding, c.client, c.bound, redeemed, err, want)
		}
	}

	// The user who confirmed erases their account before the desktop
	// redeems: nothing changes.
	erased := confirmedFrom(loopback)
	if err := s.EraseUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	late := newSess()
	if _, _, _, err := cs.RedeemIfAllowed(ctx, checkOf(erased), late); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("erased user: %v, want ErrNotFound", err)
	}
	unredeemed(t, s, "erased user", erased, late, now)
}

// testTransitionAs: a store that makes a phone's move in one call resolves
// the token as PrincipalByAccess does (sliding the session), and then
// moves the ticket as TransitionFrom does, as the session's user: a scan
// writes the user and their profile as the scanner, a confirm requires the
// user to be the scanner. A token that is not live, or whose user is gone,
// leaves the ticket as it was.
func testTransitionAs(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var nudges recorder
	s := newStore(t, nudges.notify)
	ps, ok := s.(authcore.PhoneTransitionStore)
	if !ok {
		t.Skip("this store has no TransitionAs; the core authenticates first")
	}
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
	scan := authcore.PhoneMove{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: later}
	p, rec, moved, err := ps.TransitionAs(ctx, aliceRef, 30*time.Minute, scan)
	if errors.Is(err, errors.ErrUnsupported) {
		t.Skip("TransitionAs is not supported by this deployment (Redis Cluster); the core authenticates first")
	}
	if err != nil || !moved {
		t.Fatalf("scan: moved %v, %v", moved, err)
	}
	want := aliceSess
	want.AccessExpiresAt = now.Add(40 * time.Minute) // slid
	checkSession(t, "TransitionAs", p.Session, want)
	checkUser(t, "TransitionAs", p.User, alice)
	if got, err := s.SessionByAccess(ctx, aliceRef, now, 0); err != nil || !got.AccessExpiresAt.Equal(want.AccessExpiresAt) {
		t.Errorf("after TransitionAs the stored access expiry is %v (%v), want %v", got.AccessExpiresAt, err, want.AccessExpiresAt)
	}
	scanner := authcore.Profile{Nickname: "Alice", AvatarURL: alice.AvatarURL}
	if rec.Version != 2 || rec.State != authcore.StateScanned || rec.ScannerID != alice.ID || rec.Scanner != scanner {
		t.Fatalf("after the scan: v%d %s by %q %+v, want v2 scanned by %q %+v", rec.Version, rec.State, rec.ScannerID, rec.Scanner, alice.ID, scanner)
	}
	nudges.waitFor(t, tk.ID, 2)
	if got := nudges.announced(tk.ID, 2); !sameTicket(got, rec) {
		t.Errorf("announced %+v, want %+v", got, rec)
	}

	// Refusals hand back the ticket as it is, and change nothing.
	check := func(what string, ref authcore.TokenRef, m authcore.PhoneMove, wantErr error) {
		t.Helper()
		before, err := s.Ticket(ctx, tk.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, got, moved, err := ps.TransitionAs(ctx, ref, 30*time.Minute, m)
		switch {
		case wantErr != nil && !errors.Is(err, wantErr):
			t.Errorf("%s: %v, want %v", what, err, wantErr)
		case wantErr == nil && (err != nil || moved || !sameTicket(got, before)):
			t.Errorf("%s: moved %v, %v, ticket %+v; want it refused with the ticket %+v", what, moved, err, got, before)
		}
		if after, err := s.Ticket(ctx, tk.ID); err != nil || !sameTicket(after, before) {
			t.Errorf("%s changed the ticket: %+v (%v), was %+v", what, after, err, before)
		}
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
	check("confirm of an expired ticket", aliceRef, expired, nil)

	if _, rec, moved, err = ps.TransitionAs(ctx, aliceRef, 30*time.Minute, confirm); err != nil || !moved || rec.Version != 3 || rec.State != authcore.StateConfirmed {
		t.Fatalf("confirm: moved %v, %v, v%d %s; want v3 confirmed", moved, err, rec.Version, rec.State)
	}
	nudges.waitFor(t, tk.ID, 3)

	// A user erased after logging in: their token no longer moves tickets.
	other := newTicket(now)
	if err := s.CreateTicket(ctx, other, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUser(ctx, bob.ID); err != nil {
		t.Fatal(err)
	}
	erased := authcore.PhoneMove{ID: other.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now}
	if _, _, moved, err := ps.TransitionAs(ctx, bobRef, 30*time.Minute, erased); !errors.Is(err, authcore.ErrNoSession) || moved {
		t.Errorf("scan by an erased user: moved %v, %v; want ErrNoSession", moved, err)
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

// confirmedTicket stores a new ticket (newTicket) and has userID scan and
// confirm it, as the core does: it is then at version 3.
func confirmedTicket(tb testing.TB, s authcore.Store, userID string, now time.Time) authcore.TicketRecord {
	tb.Helper()
	return confirm(tb, s, newTicket(now), userID, now)
}

// confirm stores tk and has userID scan and confirm it, as the core does.
// It returns the ticket as stored then, at version 3.
func confirm(tb testing.TB, s authcore.Store, tk authcore.TicketRecord, userID string, now time.Time) authcore.TicketRecord {
	tb.Helper()
	ctx := context.Background()
	if err := s.CreateTicket(ctx, tk, time.Minute); err != nil {
		tb.Fatal(err)
	}
	var rec authcore.TicketRecord
	for _, st := range []authcore.StateTransition{
		{ID: tk.ID, From: authcore.StatePending, To: authcore.StateScanned, ScannerID: userID, Now: now},
		{ID: tk.ID, From: authcore.StateScanned, Owner: userID, To: authcore.StateConfirmed, Now: now},
	} {
		var moved bool
		var err error
		if rec, moved, err = s.TransitionFrom(ctx, st); !moved || err != nil {
			tb.Fatalf("%s: moved %v, %v", st.To, moved, err)
		}
	}
	return rec
}

// unredeemed fails t unless the ticket is stored as before and the
// session sess, refused with it, is nowhere (neither its access nor its
// refresh token).
func unredeemed(t *testing.T, s authcore.Store, what string, before authcore.TicketRecord, sess authcore.SessionRecord, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if got, err := s.Ticket(ctx, before.ID); err != nil || !sameTicket(got, before) {
		t.Errorf("%s: the ticket is %s v%d (%v), want it %s at v%d as before", what, got.State, got.Version, err, before.State, before.Version)
	}
	access := authcore.TokenRef{Family: sess.FamilyID, Hash: sess.AccessHash}
	if _, err := s.SessionByAccess(ctx, access, now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("%s: the session was stored (%v)", what, err)
	}
	refresh := authcore.TokenRef{Family: sess.FamilyID, Hash: sess.RefreshHash}
	next, _, _ := sessionIn(sess.FamilyID, now, sess.UserID)
	if _, err := s.RotateRefresh(ctx, refresh, next, now); !errors.Is(err, authcore.ErrNotFound) {
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

// testRedeemTicket: a store that redeems in one call moves the ticket as
// Transition does (and announces it), stores the session as CreateSession
// does and returns the user as User does, or changes nothing: a stale
// version, an expired ticket or an unknown or erased user leave the ticket
// as it was and store no session (neither its access nor its refresh
// token).
func testRedeemTicket(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	var nudges recorder
	s := newStore(t, nudges.notify)
	rs, ok := s.(authcore.RedeemStore)
	if !ok {
		t.Skip("this store has no RedeemTicket; the core makes the calls one by one")
	}
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "redeem", "Cai", now)
	tk := confirmedTicket(t, s, u.ID, now)
	redeem := authcore.Transition{ID: tk.ID, FromVersion: 3, To: authcore.StateRedeemed, Now: now}

	unchanged := func(what string, before authcore.TicketRecord, sess authcore.SessionRecord) {
		t.Helper()
		unredeemed(t, s, what, before, sess, now)
	}
	stale, _, _ := newSession(now, u.ID)
	stale2 := redeem
	stale2.FromVersion = 2
	if _, _, err := rs.RedeemTicket(ctx, stale2, stale); errors.Is(err, errors.ErrUnsupported) {
		t.Skip("RedeemTicket is not supported by this deployment (Redis Cluster); the core makes the calls one by one")
	} else if !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("stale version: %v, want ErrConflict", err)
	}
	unchanged("stale version", tk, stale)
	late := redeem
	late.Now = tk.ExpiresAt
	if _, _, err := rs.RedeemTicket(ctx, late, stale); !errors.Is(err, authcore.ErrExpired) {
		t.Errorf("expired ticket: %v, want ErrExpired", err)
	}
	unchanged("expired ticket", tk, stale)
	orphan, _, _ := newSession(now, "u-never-existed")
	if _, _, err := rs.RedeemTicket(ctx, redeem, orphan); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("unknown user: %v, want ErrNotFound", err)
	}
	unchanged("unknown user", tk, orphan)

	sess, access, _ := newSession(now, u.ID)
	got, gotUser, err := rs.RedeemTicket(ctx, redeem, sess)
	if err != nil {
		t.Fatalf("RedeemTicket: %v", err)
	}
	if got.ID != tk.ID || got.State != authcore.StateRedeemed || got.Version != 4 || got.ScannerID != u.ID {
		t.Errorf("RedeemTicket ticket: %s v%d scanner %q, want redeemed at v4 by %s", got.State, got.Version, got.ScannerID, u.ID)
	}
	nudges.waitFor(t, tk.ID, 4)
	wantUser, err := s.User(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, "RedeemTicket", gotUser, wantUser)
	stored, err := s.SessionByAccess(ctx, access, now, 0)
	if err != nil {
		t.Fatalf("the session RedeemTicket stored: %v", err)
	}
	checkSession(t, "RedeemTicket", stored, sess)
	again, againRef, _ := newSession(now, u.ID)
	if _, _, err := rs.RedeemTicket(ctx, redeem, again); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("second redeem: %v, want ErrConflict", err)
	}
	if _, err := s.SessionByAccess(ctx, againRef, now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("second redeem: its session was stored (%v)", err)
	}

	// The user who confirmed erases their account before the desktop
	// redeems: nothing changes.
	erased := confirmedTicket(t, s, u.ID, now)
	if err := s.EraseUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	late2, _, _ := newSession(now, u.ID)
	if _, _, err := rs.RedeemTicket(ctx, authcore.Transition{ID: erased.ID, FromVersion: 3, To: authcore.StateRedeemed, Now: now}, late2); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("erased user: %v, want ErrNotFound", err)
	}
	unchanged("erased user", erased, late2)
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
	if err := s.PutSessionKey(ctx, "o1", "k1"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSessionKey(ctx, "o1", "k2"); err != nil {
		t.Fatal(err)
	}
	if k, err := s.SessionKey(ctx, "o1"); err != nil || k != "k2" {
		t.Fatalf("SessionKey: %q %v, want k2", k, err)
	}
	if _, err := s.SessionKey(ctx, "o2"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("SessionKey(unknown): %v", err)
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
	if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 1, To: authcore.StateScanned, ScannerID: "u1", Scanner: scanner, Now: now}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Ticket(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := tk
	want.State, want.Version, want.Trail = authcore.StateScanned, 2, []authcore.State{authcore.StatePending, authcore.StateScanned}
	want.ScannerID, want.Scanner = "u1", scanner
	if !got.ExpiresAt.Equal(want.ExpiresAt) || !got.CreatedAt.Equal(want.CreatedAt) || !got.Requester.CreatedAt.Equal(want.Requester.CreatedAt) {
		t.Errorf("times: got %v %v %v, want %v %v %v", got.ExpiresAt, got.CreatedAt, got.Requester.CreatedAt,
			want.ExpiresAt, want.CreatedAt, want.Requester.CreatedAt)
	}
	got.ExpiresAt, got.CreatedAt, got.Requester.CreatedAt = want.ExpiresAt, want.CreatedAt, want.Requester.CreatedAt
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\ngot  %+v\nwant %+v", got, want)
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
	if _, err := s.Transition(ctx, authcore.Transition{ID: tk.ID, FromVersion: 1, To: authcore.StateScanned, Now: now}); !errors.Is(err, authcore.ErrExpired) {
		t.Fatalf("transition of an expired ticket: got %v, want ErrExpired", err)
	}
}

// testSessionRoundTrip: every field of a session survives the store; the
// slide stops at the refresh expiry; rotation returns the completed record
// and retires the old tokens; logout retires the refresh token too.
func testSessionRoundTrip(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Second)
	sess, access, refresh := newSession(now, "u1")
	sess.AMR = []string{"wx", "qr"}
	sess.FaceAt = now.Add(-time.Minute)
	sess.RefreshExpiresAt = now.Add(40 * time.Minute)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	got, err := s.SessionByAccess(ctx, access, now.Add(20*time.Minute), 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	want := sess
	want.AccessExpiresAt = sess.RefreshExpiresAt // the slide never passes the refresh expiry
	checkSession(t, "SessionByAccess", got, want)

	next, nextAccess, nextRefresh := sessionIn(sess.FamilyID, now.Add(time.Minute), "ignored")
	next.AMR, next.Provider, next.Subject, next.UnionID = nil, "", "", ""
	got, err = s.RotateRefresh(ctx, refresh, next, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	want = next
	want.UserID, want.AMR, want.FaceAt = "u1", sess.AMR, sess.FaceAt
	want.Provider, want.Subject, want.UnionID = sess.Provider, sess.Subject, sess.UnionID
	checkSession(t, "RotateRefresh", got, want)
	if got, err := s.SessionByAccess(ctx, nextAccess, now.Add(time.Minute), 30*time.Minute); err != nil {
		t.Fatalf("rotated session: %v", err)
	} else {
		checkSession(t, "rotated session", got, want)
	}
	if _, err := s.SessionByAccess(ctx, access, now.Add(time.Minute), 30*time.Minute); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("access token of a rotated session: got %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, nextAccess); err != nil {
		t.Fatal(err)
	}
	other, _, _ := sessionIn(sess.FamilyID, now, "x")
	if _, err := s.RotateRefresh(ctx, nextRefresh, other, now.Add(time.Minute)); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("refresh token of a deleted session: got %v, want ErrNotFound", err)
	}

	late, _, lateRefresh := newSession(now, "u2")
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
		!got.FaceAt.Equal(want.FaceAt) {
		t.Errorf("%s times: got %v %v %v face %v, want %v %v %v face %v", what, got.AccessExpiresAt, got.RefreshExpiresAt, got.CreatedAt, got.FaceAt,
			want.AccessExpiresAt, want.RefreshExpiresAt, want.CreatedAt, want.FaceAt)
	}
	got.AccessExpiresAt, got.RefreshExpiresAt, got.CreatedAt, got.FaceAt = want.AccessExpiresAt, want.RefreshExpiresAt, want.CreatedAt, want.FaceAt
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
