package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// testLinkUsername: a username (a password identity) links to an existing
// user, is found by UserByIdentity and by a login, and is freed by erasure.
func testLinkUsername(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	a := newUser(t, s, "link-a", "A", now)
	b := newUser(t, s, "link-b", "B", now)
	name := authcore.Identity{Provider: "password", Subject: "name-" + authcore.NewTicketID()}

	if _, err := s.UserByIdentity(ctx, name); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("UserByIdentity before linking: %v, want ErrNotFound", err)
	}
	if err := s.LinkIdentity(ctx, name, a.ID); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	if err := s.LinkIdentity(ctx, name, a.ID); err != nil {
		t.Errorf("LinkIdentity again to the same user: %v, want nil", err)
	}
	if err := s.LinkIdentity(ctx, name, b.ID); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("LinkIdentity to another user: %v, want ErrConflict", err)
	}
	if got, err := s.UserByIdentity(ctx, name); err != nil || got.ID != a.ID {
		t.Errorf("UserByIdentity: %q, %v; want %q", got.ID, err, a.ID)
	}
	// A login with the identity finds the linked user, makes none.
	got, created, err := s.UpsertIdentity(ctx, name, authcore.Profile{}, authcore.User{ID: "u-never-" + authcore.NewTicketID()})
	if err != nil || created || got.ID != a.ID {
		t.Errorf("UpsertIdentity of a linked identity: %q created %v, %v; want %q", got.ID, created, err, a.ID)
	}
	// An identity owned through UpsertIdentity is another user's too.
	if err := s.LinkIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "o-link-b"}, a.ID); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("LinkIdentity of b's wechat identity to a: %v, want ErrConflict", err)
	}
	ghost := authcore.Identity{Provider: "password", Subject: "ghost-" + authcore.NewTicketID()}
	if err := s.LinkIdentity(ctx, ghost, "u-missing-"+authcore.NewTicketID()); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("LinkIdentity to a missing user: %v, want ErrNotFound", err)
	}
	if err := s.LinkIdentity(ctx, ghost, b.ID); err != nil {
		t.Errorf("LinkIdentity after a failed link to a missing user: %v, want nil (nothing left claimed)", err)
	}

	// Erasure unlinks it: the name is free again.
	if err := s.EraseUser(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByIdentity(ctx, name); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("UserByIdentity after erasing its user: %v, want ErrNotFound", err)
	}
	if err := s.LinkIdentity(ctx, name, b.ID); err != nil {
		t.Errorf("LinkIdentity of an erased user's name: %v, want nil", err)
	}
}

func testLinkIdentityRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	const n = 8
	users := make([]authcore.User, n)
	for i := range users {
		users[i] = newUser(t, s, "race-"+authcore.NewTicketID(), "", now)
	}
	for round := range 5 {
		id := authcore.Identity{Provider: "password", Subject: "race-" + authcore.NewTicketID()}
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { errs[i] = s.LinkIdentity(ctx, id, users[i].ID) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: users %d and %d both linked %s", round, winner, i, id.Subject)
				}
				winner = i
			case !errors.Is(err, authcore.ErrConflict):
				t.Fatalf("round %d: LinkIdentity: %v", round, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody linked", round)
		}
		if got, err := s.UserByIdentity(ctx, id); err != nil || got.ID != users[winner].ID {
			t.Fatalf("round %d: owner %q, %v; want the winner %q", round, got.ID, err, users[winner].ID)
		}
	}
}

func testPasswords(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	u := newUser(t, s, "pwd-"+authcore.NewTicketID(), "", now)
	other := newUser(t, s, "pwd-other-"+authcore.NewTicketID(), "", now)

	if _, err := s.PasswordHash(ctx, u.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("PasswordHash before any: %v, want ErrNotFound", err)
	}
	// Sessions: the caller's family (rotated once, so it has a consumed
	// mark), two others, and another user's.
	mine, _, mineRefresh := newSession(now, u.ID)
	if err := s.CreateSession(ctx, mine); err != nil {
		t.Fatal(err)
	}
	next, nextAccess, _ := sessionIn(mine.FamilyID, now, u.ID)
	if _, err := s.RotateRefresh(ctx, mineRefresh, next, now); err != nil {
		t.Fatal(err)
	}
	second, third := login(t, s, u.ID, now), login(t, s, u.ID, now)
	bystander := login(t, s, other.ID, now)

	if err := s.SetPassword(ctx, authcore.PasswordChange{UserID: u.ID, Old: "x", New: "h1", KeepFamily: mine.FamilyID}); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("SetPassword expecting a hash when none is set: %v, want ErrConflict", err)
	}
	if _, err := s.PrincipalByAccess(ctx, second, now, 0); err != nil {
		t.Errorf("a refused SetPassword revoked a session: %v", err)
	}
	if err := s.SetPassword(ctx, authcore.PasswordChange{UserID: u.ID, New: "h1", KeepFamily: mine.FamilyID}); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if got, err := s.PasswordHash(ctx, u.ID); err != nil || got != "h1" {
		t.Errorf("PasswordHash: %q, %v; want h1", got, err)
	}
	if _, err := s.PrincipalByAccess(ctx, nextAccess, now, 0); err != nil {
		t.Errorf("the caller's session after SetPassword: %v, want it kept", err)
	}
	// The kept family still knows its consumed refresh token.
	n2, _, _ := sessionIn(mine.FamilyID, now, u.ID)
	if _, err := s.RotateRefresh(ctx, mineRefresh, n2, now); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("reusing the kept family's consumed refresh token: %v, want ErrConflict", err)
	}
	for _, ref := range []authcore.TokenRef{second, third} {
		if _, err := s.PrincipalByAccess(ctx, ref, now, 0); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("another session after SetPassword: %v, want ErrNotFound (revoked)", err)
		}
	}
	if _, err := s.PrincipalByAccess(ctx, bystander, now, 0); err != nil {
		t.Errorf("another user's session after SetPassword: %v, want it kept", err)
	}

	// Compare and set.
	if err := s.SetPassword(ctx, authcore.PasswordChange{UserID: u.ID, New: "h2"}); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("SetPassword expecting none when one is set: %v, want ErrConflict", err)
	}
	if err := s.SetPassword(ctx, authcore.PasswordChange{UserID: u.ID, Old: "h1", New: "h2"}); err != nil {
		t.Errorf("SetPassword from h1: %v", err)
	}
	if got, _ := s.PasswordHash(ctx, u.ID); got != "h2" {
		t.Errorf("PasswordHash: %q, want h2", got)
	}
	if _, err := s.PasswordHash(ctx, other.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("another user's PasswordHash: %v, want ErrNotFound", err)
	}
	if err := s.SetPassword(ctx, authcore.PasswordChange{UserID: "u-missing-" + authcore.NewTicketID(), New: "h"}); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("SetPassword of a missing user: %v, want ErrNotFound", err)
	}

	// Erased with the user.
	if err := s.EraseUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PasswordHash(ctx, u.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("PasswordHash after EraseUser: %v, want ErrNotFound", err)
	}
}
