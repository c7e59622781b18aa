package memstore

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/storetest"
)

// dump prints every map of s but the audit trails, which outlive erasure
// by design; reflection keeps a map added later from escaping the check.
func dump(s *Store) string {
	var b strings.Builder
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		f, name := v.Field(i), v.Type().Field(i).Name
		if f.Kind() != reflect.Map || name == "audits" {
			continue
		}
		fmt.Fprintf(&b, "%s: %+v\n", name, f)
	}
	return b.String()
}

// TestEraseLeavesNoTrace: after EraseUser, no map of the store holds the
// user's id, openid, unionid or nickname (audit trails aside).
func TestEraseLeavesNoTrace(t *testing.T) {
	s := New(nil, nil)
	tr := storetest.EraseEverywhere(t, s)
	d := dump(s)
	if !strings.Contains(d, "Bystander") {
		t.Fatalf("the dump misses the bystander, so it shows nothing: %s", d)
	}
	for _, trace := range tr.All() {
		if i := strings.Index(d, trace); i >= 0 {
			t.Errorf("after erasure the store still holds %q: …%s…", trace, d[max(0, i-200):min(len(d), i+100)])
		}
	}
}

// TestRotateRefreshOfGoneUser: a refresh whose user is gone (but whose
// session record is still there) is refused and changes nothing.
func TestRotateRefreshOfGoneUser(t *testing.T) {
	ctx := context.Background()
	s := New(nil, nil)
	now := time.Now()
	if _, _, err := s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "o1"}, authcore.Profile{}, authcore.User{ID: "u1"}); err != nil {
		t.Fatal(err)
	}
	rec := authcore.SessionRecord{ID: "s1", FamilyID: "AAAAAAAAAAAAAAAA", UserID: "u1", AccessHash: [32]byte{1}, RefreshHash: [32]byte{2},
		AccessExpiresAt: now.Add(time.Minute), RefreshExpiresAt: now.Add(time.Hour), CreatedAt: now}
	if err := s.CreateSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	delete(s.users, "u1")
	s.mu.Unlock()
	next := rec
	next.AccessHash, next.RefreshHash = [32]byte{3}, [32]byte{4}
	if _, err := s.RotateRefresh(ctx, rec.RefreshRef(), next, now); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("RotateRefresh of a gone user: %v, want ErrNotFound", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[rec.AccessHash]; !ok || len(s.consumed) != 0 {
		t.Errorf("the refused rotation changed the store: session kept %v, %d consumed marks", ok, len(s.consumed))
	}
}
