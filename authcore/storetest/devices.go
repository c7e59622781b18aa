package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// testUserSessions: a user's sessions are listed with their device fields,
// a slide sets LastUsedAt, a refresh keeps the device fields, one is
// revoked by its family (only the user's), and then all of them.
func testUserSessions(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Millisecond)
	u := newUser(t, s, "devices", "", now)
	other := newUser(t, s, "devices-other", "", now)
	mk := func(device, method string) (authcore.SessionRecord, authcore.TokenRef, authcore.TokenRef) {
		rec, a, r := newSession(now, u.ID)
		rec.DeviceID, rec.Method, rec.IPMasked, rec.Region, rec.UserAgent = device, method, "203.0.113.*", "203.0.0.0/16", "UA "+method
		if err := s.CreateSession(ctx, rec); err != nil {
			t.Fatal(err)
		}
		return rec, a, r
	}
	one, oneAccess, oneRefresh := mk("device-one-0123456789", authcore.MethodPwd)
	two, twoAccess, _ := mk("device-two-0123456789", authcore.MethodQR)
	theirs := login(t, s, other.ID, now)

	used := now.Add(time.Minute)
	if _, err := s.PrincipalByAccess(ctx, twoAccess, used, 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	// A refresh of one keeps its device fields.
	next, nextAccess, _ := sessionIn(one.FamilyID, now, u.ID)
	next.DeviceID, next.Method = "", ""
	if _, err := s.RotateRefresh(ctx, oneRefresh, next, now); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserSessions(ctx, u.ID, now)
	if err != nil || len(got) != 2 {
		t.Fatalf("UserSessions: %d sessions, %v; want 2", len(got), err)
	}
	byFamily := map[string]authcore.SessionRecord{}
	for _, r := range got {
		byFamily[r.FamilyID] = r
	}
	for _, want := range []authcore.SessionRecord{one, two} {
		r := byFamily[want.FamilyID]
		if r.DeviceID != want.DeviceID || r.Method != want.Method || r.IPMasked != want.IPMasked || r.Region != want.Region || r.UserAgent != want.UserAgent {
			t.Errorf("session %s: %+v, want the fields of %+v", want.FamilyID, r, want)
		}
	}
	if lu := byFamily[two.FamilyID].LastUsedAt; !lu.Equal(used) {
		t.Errorf("LastUsedAt after a slide: %v, want %v", lu, used)
	}
	if l, err := s.UserSessions(ctx, u.ID, now.Add(8*24*time.Hour)); err != nil || len(l) != 0 {
		t.Errorf("UserSessions past every refresh expiry: %d, %v; want 0", len(l), err)
	}

	if err := s.DeleteUserSession(ctx, other.ID, two.FamilyID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("DeleteUserSession of another user's session: %v, want ErrNotFound", err)
	}
	if err := s.DeleteUserSession(ctx, u.ID, two.FamilyID); err != nil {
		t.Fatalf("DeleteUserSession: %v", err)
	}
	if err := s.DeleteUserSession(ctx, u.ID, two.FamilyID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("DeleteUserSession again: %v, want ErrNotFound", err)
	}
	if _, err := s.PrincipalByAccess(ctx, twoAccess, now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a revoked session: %v, want ErrNotFound", err)
	}
	if _, err := s.PrincipalByAccess(ctx, nextAccess, now, 0); err != nil {
		t.Errorf("the session left: %v", err)
	}
	if _, err := s.PrincipalByAccess(ctx, oneAccess, now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a rotated access token: %v, want ErrNotFound", err)
	}

	mk("device-three-0123456789", authcore.MethodSMS)
	if err := s.DeleteUserSessions(ctx, u.ID); err != nil {
		t.Fatalf("DeleteUserSessions: %v", err)
	}
	if l, err := s.UserSessions(ctx, u.ID, now); err != nil || len(l) != 0 {
		t.Errorf("UserSessions after DeleteUserSessions: %d, %v; want none", len(l), err)
	}
	if _, err := s.PrincipalByAccess(ctx, nextAccess, now, 0); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("a session after DeleteUserSessions: %v, want ErrNotFound", err)
	}
	if _, err := s.PrincipalByAccess(ctx, theirs, now, 0); err != nil {
		t.Errorf("another user's session after DeleteUserSessions: %v", err)
	}
	if err := s.DeleteUserSessions(ctx, u.ID); err != nil {
		t.Errorf("DeleteUserSessions with none: %v", err)
	}
}

// testLogins: attempts come back newest first, at most LoginsKept.
func testLogins(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().UTC().Truncate(time.Millisecond)
	u := newUser(t, s, "logins", "", now)
	if l, err := s.Logins(ctx, u.ID, authcore.LoginsKept); err != nil || len(l) != 0 {
		t.Fatalf("Logins of a user without any: %v, %v", l, err)
	}
	total := authcore.LoginsKept + 7
	for i := range total {
		a := authcore.LoginAttempt{UserID: u.ID, At: now.Add(time.Duration(i) * time.Second), Method: authcore.MethodPwd,
			Outcome: authcore.OutcomeOK, IPMasked: "203.0.113.*", Region: "203.0.0.0/16", DeviceID: fmt.Sprintf("device-%016d", i)}
		if err := s.AppendLogin(ctx, a); err != nil {
			t.Fatalf("AppendLogin %d: %v", i, err)
		}
	}
	l, err := s.Logins(ctx, u.ID, 100)
	if err != nil || len(l) != authcore.LoginsKept {
		t.Fatalf("Logins: %d, %v; want %d", len(l), err, authcore.LoginsKept)
	}
	for i, a := range l {
		want := fmt.Sprintf("device-%016d", total-1-i)
		if a.DeviceID != want || !a.At.Equal(now.Add(time.Duration(total-1-i)*time.Second)) || a.Method != authcore.MethodPwd ||
			a.Outcome != authcore.OutcomeOK || a.IPMasked != "203.0.113.*" || a.Region != "203.0.0.0/16" {
			t.Fatalf("Logins[%d] = %+v, want device %s", i, a, want)
		}
	}
	if l, _ := s.Logins(ctx, u.ID, 3); len(l) != 3 || l[0].DeviceID != fmt.Sprintf("device-%016d", total-1) {
		t.Errorf("Logins limit 3: %+v", l)
	}
	if err := s.AppendLogin(ctx, authcore.LoginAttempt{UserID: "u-never-" + authcore.NewTicketID(), At: now}); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("AppendLogin of an unknown user: %v, want ErrNotFound", err)
	}
}
