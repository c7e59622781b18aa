package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

// identitiesOf returns the user's identities as "provider:subject/unionid".
func identitiesOf(t *testing.T, s authcore.Store, userID string) []string {
	t.Helper()
	ids, err := s.Identities(context.Background(), userID)
	if err != nil {
		t.Fatalf("Identities(%s): %v", userID, err)
	}
	var out []string
	for _, id := range ids {
		if id.LinkedAt.IsZero() {
			t.Errorf("Identities(%s): %+v has no linked_at", userID, id)
		}
		out = append(out, id.Provider+":"+id.Subject+"/"+id.UnionID)
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		if seen[x]--; seen[x] < 0 {
			return false
		}
	}
	return true
}

// testLinkIdentity: linking, conflicts that change nothing, idempotence,
// unlinking (the last identity refused), and what a login finds after.
func testLinkIdentity(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	ctx := context.Background()
	phone := authcore.Identity{Provider: "phone", Subject: "+8613800138000"}
	wx := authcore.Identity{Provider: "wechat", Subject: "link-o1", UnionID: "link-un1"}
	a := upsert(t, s, phone, "link-a", true)
	b := upsert(t, s, authcore.Identity{Provider: "wechat", Subject: "link-o2", UnionID: "link-un2"}, "link-b", true)

	if got := identitiesOf(t, s, a); !sameSet(got, []string{"phone:+8613800138000/"}) {
		t.Fatalf("identities of a new SMS user: %q", got)
	}
	if err := s.LinkIdentity(ctx, wx, a); err != nil {
		t.Fatalf("LinkIdentity: %v", err)
	}
	if err := s.LinkIdentity(ctx, wx, a); err != nil {
		t.Fatalf("LinkIdentity again (idempotent): %v", err)
	}
	wantA := []string{"phone:+8613800138000/", "wechat:link-o1/link-un1"}
	if got := identitiesOf(t, s, a); !sameSet(got, wantA) {
		t.Fatalf("identities after linking: %q, want %q", got, wantA)
	}
	// A login of the linked identity, and of another app of the same
	// person (unionid), is a.
	if id := upsert(t, s, wx, "link-x", false); id != a {
		t.Errorf("login of the linked identity: user %s, want %s", id, a)
	}
	if id := upsert(t, s, authcore.Identity{Provider: "wechat_web", Subject: "link-o9", UnionID: "link-un1"}, "link-y", false); id != a {
		t.Errorf("login of the linked unionid: user %s, want %s", id, a)
	}
	wantA = append(wantA, "wechat_web:link-o9/link-un1")

	// Conflicts: the identity, or only its unionid, is another user's.
	wantB := identitiesOf(t, s, b)
	for _, id := range []authcore.Identity{
		wx,
		phone,
		{Provider: "wechat", Subject: "link-o3", UnionID: "link-un1"},
		{Provider: "wechat", Subject: "link-o1", UnionID: "link-un3"},
	} {
		if err := s.LinkIdentity(ctx, id, b); !errors.Is(err, authcore.ErrConflict) {
			t.Errorf("LinkIdentity(%+v) to b: %v, want ErrConflict", id, err)
		}
	}
	if got := identitiesOf(t, s, a); !sameSet(got, wantA) {
		t.Errorf("a after conflicts: %q, want %q", got, wantA)
	}
	if got := identitiesOf(t, s, b); !sameSet(got, wantB) {
		t.Errorf("b after conflicts: %q, want %q", got, wantB)
	}
	if id := upsert(t, s, authcore.Identity{Provider: "wechat", Subject: "link-o3", UnionID: "link-un3"}, "link-c", true); id != "link-c" {
		t.Errorf("a conflicting link left its unionid claimed: %s", id)
	}
	if err := s.LinkIdentity(ctx, wx, "link-nobody"); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("LinkIdentity to a missing user: %v, want ErrNotFound", err)
	}
	if _, err := s.Identities(ctx, "link-nobody"); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("Identities of a missing user: %v, want ErrNotFound", err)
	}

	// Unlinking.
	if err := s.UnlinkIdentity(ctx, wx, b); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("UnlinkIdentity of another user's identity: %v, want ErrNotFound", err)
	}
	if err := s.UnlinkIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "link-o2"}, b); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("UnlinkIdentity of the last identity: %v, want ErrConflict", err)
	}
	if got := identitiesOf(t, s, b); !sameSet(got, wantB) {
		t.Errorf("b after refused unlink: %q, want %q", got, wantB)
	}
	if err := s.UnlinkIdentity(ctx, wx, a); err != nil {
		t.Fatalf("UnlinkIdentity: %v", err)
	}
	if err := s.UnlinkIdentity(ctx, wx, a); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("UnlinkIdentity again: %v, want ErrNotFound", err)
	}
	wantA = []string{"phone:+8613800138000/", "wechat_web:link-o9/link-un1"}
	if got := identitiesOf(t, s, a); !sameSet(got, wantA) {
		t.Errorf("a after unlink: %q, want %q", got, wantA)
	}
	// The unionid stays with a (wechat_web has it): the unlinked openid
	// logs in to a again through it.
	if id := upsert(t, s, wx, "link-z", false); id != a {
		t.Errorf("login of an unlinked identity whose unionid a keeps: user %s, want %s", id, a)
	}
	if err := s.UnlinkIdentity(ctx, wx, a); err != nil {
		t.Fatalf("UnlinkIdentity: %v", err)
	}
	web := authcore.Identity{Provider: "wechat_web", Subject: "link-o9"}
	if err := s.UnlinkIdentity(ctx, web, a); err != nil {
		t.Fatalf("UnlinkIdentity of the unionid's last identity: %v", err)
	}
	// Now the unionid is free: the openid logs in as a new user.
	if id := upsert(t, s, wx, "link-w", true); id != "link-w" {
		t.Errorf("login after unlinking every identity of the unionid: user %s, want a new one", id)
	}
	if err := s.UnlinkIdentity(ctx, phone, a); !errors.Is(err, authcore.ErrConflict) {
		t.Errorf("UnlinkIdentity of a's last identity: %v, want ErrConflict", err)
	}
	// An erased user's links go with it.
	if err := s.LinkIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "link-o7"}, a); err != nil {
		t.Fatal(err)
	}
	if err := s.EraseUser(ctx, a); err != nil {
		t.Fatal(err)
	}
	if id := upsert(t, s, authcore.Identity{Provider: "wechat", Subject: "link-o7"}, "link-v", true); id != "link-v" {
		t.Errorf("login of an erased user's linked identity: user %s, want a new one", id)
	}
}

// testLinkRace: two users linking one identity at once: exactly one wins,
// and the identity is that user's alone.
func testLinkRace(t *testing.T, newStore NewStore) {
	s := newStore(t, nil)
	ctx := context.Background()
	for round := range 20 {
		a := upsert(t, s, authcore.Identity{Provider: "phone", Subject: fmt.Sprint("+86138000", round, "01")}, fmt.Sprint("lr-a-", round), true)
		b := upsert(t, s, authcore.Identity{Provider: "phone", Subject: fmt.Sprint("+86138000", round, "02")}, fmt.Sprint("lr-b-", round), true)
		id := authcore.Identity{Provider: "wechat", Subject: fmt.Sprint("lr-o-", round)}
		if round%2 == 1 {
			id.UnionID = fmt.Sprint("lr-un-", round)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, uid := range []string{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.LinkIdentity(ctx, id, uid)
			}()
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if won >= 0 {
					t.Fatalf("round %d: both users linked %+v", round, id)
				}
				won = i
			case !errors.Is(err, authcore.ErrConflict):
				t.Fatalf("round %d: LinkIdentity: %v", round, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: neither user linked %+v: %v", round, id, errs)
		}
		winner, loser := []string{a, b}[won], []string{a, b}[1-won]
		if got := identitiesOf(t, s, loser); len(got) != 1 {
			t.Errorf("round %d: the loser has %q", round, got)
		}
		if got := identitiesOf(t, s, winner); len(got) != 2 {
			t.Errorf("round %d: the winner has %q", round, got)
		}
		if uid := upsert(t, s, id, "lr-none", false); uid != winner {
			t.Errorf("round %d: login of the raced identity: %s, want %s", round, uid, winner)
		}
	}
}
