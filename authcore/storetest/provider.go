package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// testProviderRequests: an authorization request is kept with every
// field, gets one login, its code is taken once and not after its expiry
// (taken again, it names the request and user for a revocation), and a
// deleted or expired request is gone.
func testProviderRequests(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	r := authcore.ProviderRequest{ID: "ar-" + authcore.NewTicketID(), ClientID: "app", RedirectURI: "https://app.example/cb",
		Scopes: []string{"openid", "offline_access"}, ResponseType: "code", State: "st", Nonce: "n-1",
		CodeChallenge: "abc", CodeChallengeMethod: "S256", Prompt: []string{"login"}, MaxAge: 60,
		CreatedAt: now, ExpiresAt: now.Add(authcore.ProviderRequestTTL)}
	if err := s.PutProviderRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProviderRequest(ctx, r); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("a second put of one request: %v, want ErrConflict", err)
	}
	got, err := s.ProviderRequest(ctx, r.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	if !sameRequest(got, r) {
		t.Errorf("ProviderRequest = %+v, want %+v", got, r)
	}
	if _, err := s.ProviderRequest(ctx, r.ID, r.ExpiresAt); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a request at its expiry: %v, want ErrNotFound", err)
	}
	if _, err := s.ProviderRequest(ctx, "ar-never", now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("an unknown request: %v, want ErrNotFound", err)
	}

	code := sha256.Sum256([]byte("code-" + authcore.NewTicketID()))
	if err := s.PutProviderCode(ctx, code, r.ID, now.Add(authcore.ProviderCodeTTL)); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a code of a request without a login: %v, want ErrNotFound", err)
	}
	if err := s.PutProviderCode(ctx, code, "ar-never", now.Add(authcore.ProviderCodeTTL)); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a code of an unknown request: %v, want ErrNotFound", err)
	}

	login := authcore.ProviderLogin{UserID: "u-1", AMR: []string{"wx", "qr"}, AuthTime: now, SID: "fam-1"}
	if err := s.CompleteProviderRequest(ctx, r.ID, login, now); err != nil {
		t.Fatal(err)
	}
	other := login
	other.UserID = "u-2"
	if err := s.CompleteProviderRequest(ctx, r.ID, other, now); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("a second login: %v, want ErrConflict", err)
	}
	if err := s.CompleteProviderRequest(ctx, "ar-never", login, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a login of an unknown request: %v, want ErrNotFound", err)
	}
	got, err = s.ProviderRequest(ctx, r.ID, now)
	if err != nil || got.Login == nil || got.Login.UserID != "u-1" || !got.Login.AuthTime.Equal(now) ||
		!reflect.DeepEqual(got.Login.AMR, login.AMR) || got.Login.SID != "fam-1" {
		t.Fatalf("after the login: %+v (login %+v), %v", got, got.Login, err)
	}

	if err := s.PutProviderCode(ctx, code, r.ID, now.Add(authcore.ProviderCodeTTL)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeProviderCode(ctx, sha256.Sum256([]byte("nope")), now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("an unknown code: %v, want ErrNotFound", err)
	}
	taken, err := s.TakeProviderCode(ctx, code, now)
	if err != nil || taken.ID != r.ID || taken.Login == nil || taken.Login.UserID != "u-1" {
		t.Fatalf("TakeProviderCode = %+v, %v", taken, err)
	}
	// Taken again before its expiry, the code names its request and user.
	again, err := s.TakeProviderCode(ctx, code, now.Add(time.Second))
	if !errors.Is(err, authcore.ErrConflict) || again.ID != r.ID || again.Login == nil || again.Login.UserID != "u-1" {
		t.Errorf("a code taken twice: %+v (login %+v), %v; want ErrConflict naming %s and u-1", again, again.Login, err, r.ID)
	}
	if _, err := s.TakeProviderCode(ctx, code, now.Add(authcore.ProviderCodeTTL)); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a taken code at its expiry: %v, want ErrNotFound", err)
	}
	late := sha256.Sum256([]byte("late-" + authcore.NewTicketID()))
	if err := s.PutProviderCode(ctx, late, r.ID, now.Add(authcore.ProviderCodeTTL)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakeProviderCode(ctx, late, now.Add(authcore.ProviderCodeTTL)); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a code at its expiry: %v, want ErrNotFound", err)
	}

	// Of callers racing for one code, one gets it.
	race := sha256.Sum256([]byte("race-" + authcore.NewTicketID()))
	if err := s.PutProviderCode(ctx, race, r.ID, now.Add(authcore.ProviderCodeTTL)); err != nil {
		t.Fatal(err)
	}
	var won, replays atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			switch _, err := s.TakeProviderCode(ctx, race, now); {
			case err == nil:
				won.Add(1)
			case errors.Is(err, authcore.ErrConflict):
				replays.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 || replays.Load() != 7 {
		t.Errorf("%d callers took one code and %d saw it used, want 1 and 7", won.Load(), replays.Load())
	}

	orphan := sha256.Sum256([]byte("orphan-" + authcore.NewTicketID()))
	if err := s.PutProviderCode(ctx, orphan, r.ID, now.Add(authcore.ProviderCodeTTL)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProviderRequest(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProviderRequest(ctx, r.ID, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a deleted request: %v, want ErrNotFound", err)
	}
	if _, err := s.TakeProviderCode(ctx, orphan, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the code of a deleted request: %v, want ErrNotFound", err)
	}
	if err := s.DeleteProviderRequest(ctx, r.ID); err != nil {
		t.Errorf("deleting a deleted request: %v, want nil", err)
	}
}

func sameRequest(a, b authcore.ProviderRequest) bool {
	a.CreatedAt, a.ExpiresAt = a.CreatedAt.UTC(), a.ExpiresAt.UTC()
	b.CreatedAt, b.ExpiresAt = b.CreatedAt.UTC(), b.ExpiresAt.UTC()
	return reflect.DeepEqual(a, b)
}

// testGrants: a grant is kept beside its user with its DPoP key, rotates
// its refresh token once per token (a consumed one revokes it), is bound
// to a DPoP key by a rotation once and for all, is revoked alone or with
// the grants of its hub session, and goes with its user.
func testGrants(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	alice := newUser(t, s, "o-grant-alice", "Alice", now)
	bob := newUser(t, s, "o-grant-bob", "Bob", now)
	h := func(s string) [32]byte { return sha256.Sum256([]byte(s)) }
	g := authcore.Grant{ID: "g-" + authcore.NewTicketID(), UserID: alice.ID, ClientID: "app", Scopes: []string{"openid"},
		AMR: []string{"wx", "qr"}, AuthTime: now, SID: "fam-a", RefreshHash: h("r1"), DPoPJKT: "jkt-a", CreatedAt: now,
		ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateGrant(ctx, g); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("a second create: %v, want ErrConflict", err)
	}
	ghost := g
	ghost.ID, ghost.UserID = "g-ghost", "u-nobody"
	if err := s.CreateGrant(ctx, ghost); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a grant of an unknown user: %v, want ErrNotFound", err)
	}
	got, err := s.Grant(ctx, alice.ID, g.ID, now)
	if err != nil || !sameGrant(got, g) {
		t.Fatalf("Grant = %+v, %v; want %+v", got, err, g)
	}
	if _, err := s.Grant(ctx, bob.ID, g.ID, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("another user's grant: %v, want ErrNotFound", err)
	}
	if _, err := s.Grant(ctx, alice.ID, g.ID, g.ExpiresAt); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a grant at its expiry: %v, want ErrNotFound", err)
	}

	rot := authcore.GrantRotation{UserID: alice.ID, ID: g.ID, Old: h("r1"), New: h("r2"), ExpiresAt: now.Add(2 * time.Hour), Now: now}
	if _, err := s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: g.ID, Old: h("forged"), New: h("x"),
		ExpiresAt: rot.ExpiresAt, Now: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("rotating an unknown token: %v, want ErrNotFound", err)
	}
	// A bound grant keeps its key, whatever a rotation names.
	got, err = s.RotateGrant(ctx, authcore.GrantRotation{UserID: rot.UserID, ID: rot.ID, Old: rot.Old, New: rot.New,
		ExpiresAt: rot.ExpiresAt, Now: rot.Now, DPoPJKT: "jkt-other"})
	want := g
	want.RefreshHash, want.ExpiresAt = h("r2"), rot.ExpiresAt
	if err != nil || !sameGrant(got, want) {
		t.Fatalf("RotateGrant = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.Grant(ctx, alice.ID, g.ID, now); err != nil || !sameGrant(got, want) {
		t.Errorf("Grant after a rotation = %+v, %v; want %+v", got, err, want)
	}
	// Reusing r1 revokes the grant: r2 dies too.
	if _, err := s.RotateGrant(ctx, rot); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("reusing a rotated token: %v, want ErrConflict", err)
	}
	if _, err := s.Grant(ctx, alice.ID, g.ID, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the grant after a reuse: %v, want ErrNotFound", err)
	}
	if _, err := s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: g.ID, Old: h("r2"), New: h("r3"),
		ExpiresAt: rot.ExpiresAt, Now: now}); err == nil {
		t.Error("the live token of a revoked grant rotated")
	}

	// Of callers racing with one token, one wins.
	race := g
	race.ID, race.RefreshHash = "g-"+authcore.NewTicketID(), h("race")
	if err := s.CreateGrant(ctx, race); err != nil {
		t.Fatal(err)
	}
	var won atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: race.ID, Old: h("race"),
				New: h("next" + string(rune('a'+i))), ExpiresAt: rot.ExpiresAt, Now: now}); err == nil {
				won.Add(1)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Errorf("%d callers rotated one token, want 1", won.Load())
	}

	// An unbound grant is bound by the rotation that names a key, and
	// keeps that key.
	loose := g
	loose.ID, loose.RefreshHash, loose.DPoPJKT = "g-"+authcore.NewTicketID(), h("l1"), ""
	if err := s.CreateGrant(ctx, loose); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Grant(ctx, alice.ID, loose.ID, now); err != nil || !sameGrant(got, loose) {
		t.Fatalf("an unbound grant = %+v, %v; want %+v", got, err, loose)
	}
	got, err = s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: loose.ID, Old: h("l1"), New: h("l2"),
		ExpiresAt: rot.ExpiresAt, Now: now})
	if err != nil || got.DPoPJKT != "" {
		t.Fatalf("rotating an unbound grant without a key = %+v, %v; want it unbound", got, err)
	}
	got, err = s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: loose.ID, Old: h("l2"), New: h("l3"),
		ExpiresAt: rot.ExpiresAt, Now: now, DPoPJKT: "jkt-l"})
	want = loose
	want.RefreshHash, want.ExpiresAt, want.DPoPJKT = h("l3"), rot.ExpiresAt, "jkt-l"
	if err != nil || !sameGrant(got, want) {
		t.Fatalf("binding a grant by a rotation = %+v, %v; want %+v", got, err, want)
	}
	if got, err := s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: loose.ID, Old: h("l3"), New: h("l4"),
		ExpiresAt: rot.ExpiresAt, Now: now}); err != nil || got.DPoPJKT != "jkt-l" {
		t.Errorf("rotating a bound grant without a key = %+v, %v; want it still bound to jkt-l", got, err)
	}
	if got, err := s.Grant(ctx, alice.ID, loose.ID, now); err != nil || got.DPoPJKT != "jkt-l" {
		t.Errorf("a grant bound by a rotation = %+v, %v; want DPoPJKT jkt-l", got, err)
	}

	// A grant without a refresh token never rotates.
	bare := g
	bare.ID, bare.RefreshHash = "g-"+authcore.NewTicketID(), [32]byte{}
	if err := s.CreateGrant(ctx, bare); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateGrant(ctx, authcore.GrantRotation{UserID: alice.ID, ID: bare.ID, New: h("y"),
		ExpiresAt: rot.ExpiresAt, Now: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("rotating a grant without a refresh token: %v, want ErrNotFound", err)
	}
	if got, err := s.Grant(ctx, alice.ID, bare.ID, now); err != nil || got.RefreshHash != ([32]byte{}) {
		t.Errorf("a bare grant: %+v, %v", got, err)
	}
	if err := s.RevokeGrant(ctx, alice.ID, bare.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, alice.ID, bare.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("revoking a revoked grant: %v, want ErrNotFound", err)
	}
	if err := s.CreateGrant(ctx, bare); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("creating a revoked grant again: %v, want ErrConflict", err)
	}
	// A grant revoked before it is made (a replayed code racing its first
	// exchange) is not made after.
	early := g
	early.ID = "g-" + authcore.NewTicketID()
	if err := s.RevokeGrant(ctx, alice.ID, early.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("revoking a grant not made yet: %v, want ErrNotFound", err)
	}
	if err := s.CreateGrant(ctx, early); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("making a grant revoked before: %v, want ErrConflict", err)
	}
	if _, err := s.Grant(ctx, alice.ID, early.ID, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a grant revoked before it was made: %v, want ErrNotFound", err)
	}
	if _, err := s.Grant(ctx, bob.ID, early.ID, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("another user's grant of a revoked id: %v, want ErrNotFound", err)
	}
	other := early
	other.UserID = bob.ID
	if err := s.CreateGrant(ctx, other); err != nil {
		t.Errorf("another user's grant of an id revoked for alice: %v", err)
	}

	// RevokeSessionGrants takes the grants of one hub session only.
	mk := func(user, sid string) authcore.Grant {
		x := g
		x.ID, x.UserID, x.SID, x.RefreshHash = "g-"+authcore.NewTicketID(), user, sid, h("rs-"+authcore.NewTicketID())
		if err := s.CreateGrant(ctx, x); err != nil {
			t.Fatal(err)
		}
		return x
	}
	a1, a2, keep, bobs := mk(alice.ID, "fam-s"), mk(alice.ID, "fam-s"), mk(alice.ID, "fam-other"), mk(bob.ID, "fam-s")
	n, err := s.RevokeSessionGrants(ctx, alice.ID, "fam-s")
	if err != nil || n != 2 {
		t.Errorf("RevokeSessionGrants = %d, %v; want 2", n, err)
	}
	for _, x := range []authcore.Grant{a1, a2} {
		if _, err := s.Grant(ctx, x.UserID, x.ID, now); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("a grant of the ended session: %v, want ErrNotFound", err)
		}
	}
	for _, x := range []authcore.Grant{keep, bobs} {
		if _, err := s.Grant(ctx, x.UserID, x.ID, now); err != nil {
			t.Errorf("a grant of another session: %v", err)
		}
	}

	// Erasing the user erases its grants.
	if err := s.EraseUser(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Grant(ctx, alice.ID, keep.ID, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a grant of an erased user: %v, want ErrNotFound", err)
	}
}

func sameGrant(a, b authcore.Grant) bool {
	a.CreatedAt, a.ExpiresAt, a.AuthTime = a.CreatedAt.UTC(), a.ExpiresAt.UTC(), a.AuthTime.UTC()
	b.CreatedAt, b.ExpiresAt, b.AuthTime = b.CreatedAt.UTC(), b.ExpiresAt.UTC(), b.AuthTime.UTC()
	return reflect.DeepEqual(a, b)
}
