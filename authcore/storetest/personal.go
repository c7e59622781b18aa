package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// upsert logs identity id in, creating user newID if it is new, and fails
// the test unless created is wantCreated; it returns the user's id.
func upsert(t *testing.T, s authcore.Store, id authcore.Identity, newID string, wantCreated bool) string {
	t.Helper()
	u, created, err := s.UpsertIdentity(context.Background(), id, authcore.Profile{}, authcore.User{ID: newID, Nickname: "n-" + newID, CreatedAt: time.Now()})
	if err != nil {
		t.Fatalf("UpsertIdentity(%+v): %v", id, err)
	}
	if created != wantCreated {
		t.Fatalf("UpsertIdentity(%+v): got created=%v (user %s), want %v", id, created, u.ID, wantCreated)
	}
	return u.ID
}

func testPersonalData(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	u1 := upsert(t, s, authcore.Identity{Provider: "wechat", Subject: "pd-o1"}, "pd-u1", true)
	u2 := upsert(t, s, authcore.Identity{Provider: "wechat", Subject: "pd-o2"}, "pd-u2", true)
	if err := s.PutPersonalData(ctx, u2, "phone", "sealed-u2-phone"); err != nil {
		t.Fatalf("PutPersonalData(%s): %v", u2, err)
	}
	if got, err := s.PersonalData(ctx, u1); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("PersonalData before any put: got %#v, %v; want an empty, non-nil map", got, err)
	}
	for _, step := range []struct {
		name, field, sealed string
		want                map[string]string
	}{
		{"set phone", "phone", "sealed-phone-1", map[string]string{"phone": "sealed-phone-1"}},
		{"set id_number", "id_number", "sealed-id", map[string]string{"phone": "sealed-phone-1", "id_number": "sealed-id"}},
		{"replace phone", "phone", "sealed-phone-2", map[string]string{"phone": "sealed-phone-2", "id_number": "sealed-id"}},
		{"delete phone", "phone", "", map[string]string{"id_number": "sealed-id"}},
		{"delete an absent field", "email", "", map[string]string{"id_number": "sealed-id"}},
		{"delete id_number", "id_number", "", map[string]string{}},
	} {
		if err := s.PutPersonalData(ctx, u1, step.field, step.sealed); err != nil {
			t.Fatalf("%s: PutPersonalData: %v", step.name, err)
		}
		got, err := s.PersonalData(ctx, u1)
		if err != nil || got == nil || !reflect.DeepEqual(got, step.want) {
			t.Fatalf("%s: PersonalData = %#v, %v; want %#v", step.name, got, err, step.want)
		}
	}
	if got, err := s.PersonalData(ctx, u2); err != nil || !reflect.DeepEqual(got, map[string]string{"phone": "sealed-u2-phone"}) {
		t.Fatalf("other user's PersonalData = %#v, %v; want only its own phone", got, err)
	}
	if got, err := s.PersonalData(ctx, "pd-nobody"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("PersonalData(unknown user) = %#v, %v; want an empty, non-nil map", got, err)
	}
	if err := s.PutPersonalData(ctx, "pd-nobody", "phone", "sealed"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("PutPersonalData(unknown user): got %v, want ErrNotFound", err)
	}
	if err := s.PutPersonalData(ctx, "pd-nobody", "phone", ""); err != nil {
		t.Fatalf("deleting a field of an unknown user: got %v, want nil", err)
	}
}

func auditEntry(user string, i int, at time.Time) authcore.AuditEntry {
	e := authcore.AuditEntry{Time: at.Add(time.Duration(i) * time.Second), UserID: user, Actor: "user", Action: "decrypt",
		Field: "phone", Purpose: fmt.Sprint("entry ", i)}
	if i%2 == 0 {
		e.RequestID = fmt.Sprint("req-", i)
	}
	return e
}

// checkAudit compares entries, times with Equal.
func checkAudit(t *testing.T, what string, got, want []authcore.AuditEntry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d entries %+v, want %d %+v", what, len(got), got, len(want), want)
	}
	for i := range got {
		g := got[i]
		if !g.Time.Equal(want[i].Time) {
			t.Errorf("%s: entry %d time: got %v, want %v", what, i, g.Time, want[i].Time)
		}
		g.Time = want[i].Time
		if g != want[i] {
			t.Errorf("%s: entry %d: got %+v, want %+v", what, i, g, want[i])
		}
	}
}

func testAudit(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	var entries []authcore.AuditEntry
	for i := range 5 {
		e := auditEntry("au-u1", i, now)
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
		entries = append(entries, e)
	}
	other := auditEntry("au-u2", 99, now)
	other.Action, other.Actor = "export", "op-7"
	if err := s.AppendAudit(ctx, other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user  string
		limit int
		want  []authcore.AuditEntry
	}{
		{"au-u1", 1, entries[4:]},
		{"au-u1", 3, entries[2:]},
		{"au-u1", 5, entries},
		{"au-u1", 100, entries},
		{"au-u1", 0, nil},
		{"au-u1", -1, nil},
		{"au-u2", 10, []authcore.AuditEntry{other}},
		{"au-nobody", 10, nil},
	} {
		got, err := s.Audit(ctx, tc.user, tc.limit)
		if err != nil {
			t.Fatalf("Audit(%s, %d): %v", tc.user, tc.limit, err)
		}
		checkAudit(t, fmt.Sprintf("Audit(%s, %d)", tc.user, tc.limit), got, tc.want)
	}
	if err := s.AppendAudit(ctx, authcore.AuditEntry{Time: now, Action: "collect"}); err == nil {
		t.Fatal("AppendAudit without a user: got nil, want an error")
	}
}

// testAuditTrim: a user's trail keeps the most recent authcore.AuditKept entries.
func testAuditTrim(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	const n = authcore.AuditKept + 5
	entries := make([]authcore.AuditEntry, n)
	for i := range entries {
		entries[i] = auditEntry("trim-u1", i, now)
		if err := s.AppendAudit(ctx, entries[i]); err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
	}
	for _, tc := range []struct {
		limit int
		want  []authcore.AuditEntry
	}{
		{2 * authcore.AuditKept, entries[n-authcore.AuditKept:]},
		{authcore.AuditKept, entries[n-authcore.AuditKept:]},
		{10, entries[n-10:]},
	} {
		got, err := s.Audit(ctx, "trim-u1", tc.limit)
		if err != nil {
			t.Fatalf("Audit(%d): %v", tc.limit, err)
		}
		checkAudit(t, fmt.Sprintf("after %d appends, Audit(%d)", n, tc.limit), got, tc.want)
	}
}

// testEraseUser: erasure removes the user, its identities, session keys and
// personal data, keeps its audit trail and leaves other users alone; the
// same WeChat account then logs in as a new user.
func testEraseUser(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now()
	// Two apps of one Open Platform account: one user.
	idA := authcore.Identity{Provider: "wechat", Subject: "erase-o1", UnionID: "erase-un1"}
	idB := authcore.Identity{Provider: "wechat-web", Subject: "erase-o2", UnionID: "erase-un1"}
	victim := upsert(t, s, idA, "erase-u1", true)
	if got := upsert(t, s, idB, "erase-unused", false); got != victim {
		t.Fatalf("second identity: got user %s, want %s", got, victim)
	}
	bystanderID := authcore.Identity{Provider: "wechat", Subject: "erase-o3"}
	bystander := upsert(t, s, bystanderID, "erase-u2", true)
	audit := auditEntry(victim, 1, now)
	for _, err := range []error{
		s.PutSessionKey(ctx, "erase-o1", "sk-victim", now.Add(time.Hour)),
		s.PutSessionKey(ctx, "erase-o3", "sk-bystander", now.Add(time.Hour)),
		s.PutPersonalData(ctx, victim, "phone", "sealed-victim"),
		s.PutPersonalData(ctx, victim, "id_number", "sealed-victim-id"),
		s.PutPersonalData(ctx, bystander, "phone", "sealed-bystander"),
		s.AppendAudit(ctx, audit),
	} {
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
	}

	if err := s.EraseUser(ctx, victim); err != nil {
		t.Fatalf("EraseUser: %v", err)
	}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"User(erased)", second(s.User(ctx, victim)), authcore.ErrNotFound},
		{"SessionKey(erased user's openid)", second(s.SessionKey(ctx, "erase-o1")), authcore.ErrNotFound},
		{"EraseUser(erased)", s.EraseUser(ctx, victim), authcore.ErrNotFound},
		{"EraseUser(unknown)", s.EraseUser(ctx, "erase-nobody"), authcore.ErrNotFound},
		{"PutPersonalData(erased)", s.PutPersonalData(ctx, victim, "phone", "again"), authcore.ErrNotFound},
		{"User(bystander)", second(s.User(ctx, bystander)), nil},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	if got, err := s.PersonalData(ctx, victim); err != nil || len(got) != 0 {
		t.Errorf("PersonalData(erased) = %v, %v; want none", got, err)
	}
	if got, err := s.Audit(ctx, victim, 10); err != nil {
		t.Errorf("Audit(erased): %v", err)
	} else {
		checkAudit(t, "Audit(erased)", got, []authcore.AuditEntry{audit})
	}
	if k, err := s.SessionKey(ctx, "erase-o3"); err != nil || k != "sk-bystander" {
		t.Errorf("bystander's SessionKey = %q, %v; want sk-bystander", k, err)
	}
	if got, err := s.PersonalData(ctx, bystander); err != nil || !reflect.DeepEqual(got, map[string]string{"phone": "sealed-bystander"}) {
		t.Errorf("bystander's PersonalData = %v, %v; want its phone", got, err)
	}
	if got := upsert(t, s, bystanderID, "erase-unused", false); got != bystander {
		t.Errorf("bystander logs in as %s, want %s", got, bystander)
	}

	// The same account logs in again: a new user, which both apps share.
	reborn := upsert(t, s, idA, "erase-u3", true)
	if reborn != "erase-u3" {
		t.Fatalf("re-login after erasure: got user %s, want the new erase-u3", reborn)
	}
	if got := upsert(t, s, idB, "erase-unused", false); got != reborn {
		t.Fatalf("other app after erasure: got user %s, want %s (by unionid)", got, reborn)
	}
	if _, err := s.User(ctx, reborn); err != nil {
		t.Fatalf("User(new user): %v", err)
	}
	// And the new user can be erased in turn.
	if err := s.EraseUser(ctx, reborn); err != nil {
		t.Fatalf("EraseUser(new user): %v", err)
	}
	if got := upsert(t, s, idB, "erase-u4", true); got != "erase-u4" {
		t.Fatalf("re-login after the second erasure: got user %s, want erase-u4", got)
	}
}

func second[T any](_ T, err error) error { return err }

func newFace(exp time.Time) authcore.FaceVerification {
	return authcore.FaceVerification{VerifyID: "fv-" + authcore.NewTicketID(), Verifier: "wechat_face", OutSeqNo: "seq-" + authcore.NewTicketID(),
		CertHash: fmt.Sprintf("%x", sha256.Sum256([]byte("110101199003077777"))), OpenID: "o1", UserID: "u1",
		Family: authcore.NewTicketID(), StartedAt: exp.Add(-time.Hour), ExpiresAt: exp}
}

func checkFace(t *testing.T, what string, got, want authcore.FaceVerification) {
	t.Helper()
	if !got.ExpiresAt.Equal(want.ExpiresAt) || !got.StartedAt.Equal(want.StartedAt) {
		t.Errorf("%s times: got %v to %v, want %v to %v", what, got.StartedAt, got.ExpiresAt, want.StartedAt, want.ExpiresAt)
	}
	got.ExpiresAt, got.StartedAt = want.ExpiresAt, want.StartedAt
	if got != want {
		t.Errorf("%s:\ngot  %+v\nwant %+v", what, got, want)
	}
}

func testFaceVerification(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	exp := time.Now().Add(5 * time.Minute).Truncate(time.Millisecond)
	f := newFace(exp)
	if err := s.PutFaceVerification(ctx, f); err != nil {
		t.Fatalf("PutFaceVerification: %v", err)
	}
	// Another user's take is refused and leaves it to its owner.
	if _, err := s.TakeFaceVerification(ctx, f.VerifyID, "u-stranger"); !errors.Is(err, authcore.ErrForbidden) {
		t.Fatalf("TakeFaceVerification by another user: got %v, want ErrForbidden", err)
	}
	got, err := s.TakeFaceVerification(ctx, f.VerifyID, f.UserID)
	if err != nil {
		t.Fatalf("TakeFaceVerification by its owner after a stranger's try: %v", err)
	}
	checkFace(t, "TakeFaceVerification", got, f)
	if _, err := s.TakeFaceVerification(ctx, f.VerifyID, f.UserID); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("second TakeFaceVerification: got %v, want ErrNotFound", err)
	}
	if _, err := s.TakeFaceVerification(ctx, "fv-unknown", "u1"); !errors.Is(err, authcore.ErrNotFound) {
		t.Fatalf("TakeFaceVerification(unknown): got %v, want ErrNotFound", err)
	}
	// Putting the same verify_id again replaces it.
	f2 := f
	f2.OutSeqNo = "seq-replaced"
	for _, v := range []authcore.FaceVerification{f, f2} {
		if err := s.PutFaceVerification(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.TakeFaceVerification(ctx, f.VerifyID, f.UserID); err != nil {
		t.Fatalf("TakeFaceVerification after replace: %v", err)
	} else {
		checkFace(t, "after replace", got, f2)
	}
}

// testFaceVerificationRace: of concurrent takers, exactly one gets it.
func testFaceVerificationRace(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	for round := range 10 {
		f := newFace(time.Now().Add(time.Minute))
		if err := s.PutFaceVerification(ctx, f); err != nil {
			t.Fatal(err)
		}
		got := wins(8, func(int) bool {
			got, err := s.TakeFaceVerification(ctx, f.VerifyID, f.UserID)
			switch {
			case err == nil && got.OutSeqNo == f.OutSeqNo:
				return true
			case err == nil:
				t.Errorf("racing take: got %+v, want %+v", got, f)
			case !errors.Is(err, authcore.ErrNotFound):
				t.Errorf("racing take: %v", err)
			}
			return false
		})
		if got != 1 {
			t.Fatalf("round %d: %d takers got the verification, want exactly 1", round, got)
		}
	}
}

// testFaceVerificationExpiry: a verification past its expiry is not
// returned, whether it expired before it was stored or while stored.
func testFaceVerificationExpiry(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	for _, tc := range []struct {
		name  string
		ttl   time.Duration
		sleep bool
	}{
		{"expired before put", -time.Second, false},
		{"expires while stored", 100 * time.Millisecond, true},
	} {
		f := newFace(time.Now().Add(tc.ttl))
		if err := s.PutFaceVerification(ctx, f); err != nil {
			t.Fatalf("%s: PutFaceVerification: %v", tc.name, err)
		}
		if tc.sleep {
			time.Sleep(time.Until(f.ExpiresAt) + 50*time.Millisecond)
		}
		if got, err := s.TakeFaceVerification(ctx, f.VerifyID, f.UserID); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("%s: TakeFaceVerification = %+v, %v; want ErrNotFound", tc.name, got, err)
		}
	}
}

// testMarkSessionStepUp: a mark adds its method to the AMR once and sets
// that method's time, leaving the other methods' times as they are;
// PrincipalByAccess shows it and RotateRefresh carries every method's
// time over; a session that is unknown or expired at the time of the
// check is not found, and a method that is no amr is refused.
func testMarkSessionStepUp(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	s := newStore(t, nil)
	now := time.Now().Truncate(time.Second)
	u := newUser(t, s, "face", "", now)
	type mark struct {
		method string
		at     time.Time
	}
	face1, face2 := mark{authcore.MethodFace, now.Add(time.Minute)}, mark{authcore.MethodFace, now.Add(2 * time.Minute)}
	vbm := mark{"vbm", now.Add(90 * time.Second)}
	for _, tc := range []struct {
		name      string
		amr       []string
		marks     []mark
		want      []string
		wantTimes map[string]time.Time
	}{
		{"no amr", nil, []mark{face1, face2}, []string{"face"}, map[string]time.Time{"face": face2.at}},
		{"wx", []string{"wx"}, []mark{face1, face2}, []string{"wx", "face"}, map[string]time.Time{"face": face2.at}},
		{"wx qr", []string{"wx", "qr"}, []mark{face1, face2}, []string{"wx", "qr", "face"}, map[string]time.Time{"face": face2.at}},
		{"face already", []string{"wx", "face"}, []mark{face1, face2}, []string{"wx", "face"}, map[string]time.Time{"face": face2.at}},
		{"face and vbm", []string{"wx"}, []mark{face1, vbm, face2}, []string{"wx", "face", "vbm"},
			map[string]time.Time{"face": face2.at, "vbm": vbm.at}},
		{"vbm only", []string{"sms"}, []mark{vbm}, []string{"sms", "vbm"}, map[string]time.Time{"vbm": vbm.at}},
	} {
		sess, access, refresh := newSession(now, u.ID)
		sess.AMR = tc.amr
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		times := map[string]time.Time{}
		for i, m := range tc.marks {
			if err := s.MarkSessionStepUp(ctx, access, m.method, m.at); err != nil {
				t.Fatalf("%s: MarkSessionStepUp #%d (%s): %v", tc.name, i+1, m.method, err)
			}
			times[m.method] = m.at
			got, err := s.PrincipalByAccess(ctx, access, m.at, 30*time.Minute)
			if err != nil {
				t.Fatalf("%s: PrincipalByAccess after mark #%d: %v", tc.name, i+1, err)
			}
			if !sameStepUps(got.Session.StepUps, times) {
				t.Errorf("%s: after mark #%d (%s): got step-ups %v, want %v", tc.name, i+1, m.method, got.Session.StepUps, times)
			}
		}
		got, err := s.PrincipalByAccess(ctx, access, now.Add(2*time.Minute), 30*time.Minute)
		if err != nil {
			t.Fatalf("%s: PrincipalByAccess after the marks: %v", tc.name, err)
		}
		if !reflect.DeepEqual(got.Session.AMR, tc.want) || !sameStepUps(got.Session.StepUps, tc.wantTimes) {
			t.Errorf("%s: after the marks: got AMR %q step-ups %v, want %q %v", tc.name, got.Session.AMR, got.Session.StepUps, tc.want, tc.wantTimes)
		}
		next, nextAccess, _ := sessionIn(sess.FamilyID, now.Add(3*time.Minute), u.ID)
		next.AMR, next.StepUps = []string{"ignored"}, nil
		rotated, err := s.RotateRefresh(ctx, refresh, next, now.Add(3*time.Minute))
		if err != nil {
			t.Fatalf("%s: RotateRefresh: %v", tc.name, err)
		}
		if !reflect.DeepEqual(rotated.Session.AMR, tc.want) || !sameStepUps(rotated.Session.StepUps, tc.wantTimes) {
			t.Errorf("%s: RotateRefresh: got AMR %q step-ups %v, want %q %v", tc.name, rotated.Session.AMR, rotated.Session.StepUps, tc.want, tc.wantTimes)
		}
		if got, err := s.PrincipalByAccess(ctx, nextAccess, now.Add(3*time.Minute), 30*time.Minute); err != nil {
			t.Fatalf("%s: rotated session: %v", tc.name, err)
		} else if !reflect.DeepEqual(got.Session.AMR, tc.want) || !sameStepUps(got.Session.StepUps, tc.wantTimes) {
			t.Errorf("%s: rotated session: got AMR %q step-ups %v, want %q %v", tc.name, got.Session.AMR, got.Session.StepUps, tc.want, tc.wantTimes)
		}
	}

	live, liveAccess, _ := newSession(now, u.ID)
	gone, goneAccess, _ := newSession(now, u.ID)
	rotated, rotatedAccess, rotatedRefresh := newSession(now, u.ID)
	for _, sess := range []authcore.SessionRecord{live, gone, rotated} {
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSession(ctx, goneAccess); err != nil {
		t.Fatal(err)
	}
	next, _, _ := sessionIn(rotated.FamilyID, now, u.ID)
	if _, err := s.RotateRefresh(ctx, rotatedRefresh, next, now); err != nil {
		t.Fatal(err)
	}
	unknown, wrongFamily := liveAccess, liveAccess
	unknown.Hash = sha256.Sum256([]byte("unknown"))
	wrongFamily.Family = "AAAAAAAAAAAAAAAA"
	for _, tc := range []struct {
		name string
		ref  authcore.TokenRef
		at   time.Time
	}{
		{"unknown session", unknown, now},
		{"wrong family", wrongFamily, now},
		{"at the access expiry", liveAccess, live.AccessExpiresAt},
		{"logged out", goneAccess, now},
		{"rotated away", rotatedAccess, now},
	} {
		for _, method := range []string{authcore.MethodFace, "vbm"} {
			if err := s.MarkSessionStepUp(ctx, tc.ref, method, tc.at); !errors.Is(err, authcore.ErrNotFound) {
				t.Errorf("MarkSessionStepUp(%s, %s): got %v, want ErrNotFound", tc.name, method, err)
			}
		}
	}
	for _, method := range []string{"", "Face", "face@1", "su:vbm", "a b", `x","y`} {
		if err := s.MarkSessionStepUp(ctx, liveAccess, method, now); authcore.KindOf(err) != authcore.KindInvalid {
			t.Errorf("MarkSessionStepUp(method %q): got %v, want KindInvalid", method, err)
		}
	}
	if got, err := s.PrincipalByAccess(ctx, liveAccess, now, 30*time.Minute); err != nil || len(got.Session.AMR) != 1 || len(got.Session.StepUps) != 0 {
		t.Errorf("refused marks changed the session: AMR %q step-ups %v, %v", got.Session.AMR, got.Session.StepUps, err)
	}
}
