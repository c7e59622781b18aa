package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Traces are the strings that name a user: after EraseUser none of them
// may remain anywhere in a store but in the user's audit entries.
type Traces struct {
	UserID, OpenID, UnionID, Nickname, Username string
	DeviceID                                    string // on its sessions and in its login history
}

// All returns the traces as a list.
func (tr Traces) All() []string {
	return []string{tr.UserID, tr.OpenID, tr.UnionID, tr.Nickname, tr.Username, tr.DeviceID}
}

// EraseEverywhere puts a user into every record a store keeps about users
// (identities, a username, a password hash, a session key, personal data, an audit entry, a login history, sessions of
// several login families, a rotated refresh token and a reused one, a
// desktop session from a redeem, tickets it scanned, confirmed and
// redeemed, a face verification in progress) beside a bystander, erases
// the user, checks that the store's methods find none of it any more and
// that the bystander's records stay, and returns the user's traces, for a
// store's own tests to look for in its storage: the methods cannot show a
// record they no longer reach.
func EraseEverywhere(t *testing.T, s authcore.Store) Traces {
	t.Helper()
	ctx := context.Background()
	now := time.Now().Truncate(time.Millisecond)
	tr := Traces{UserID: "u-trace-Q7xw", OpenID: "o-trace-Z9kp", UnionID: "un-trace-V3bm", Nickname: "Nick-trace-W5mr", Username: "name-trace-K4ps",
		DeviceID: "dev-trace-J8nd2Lq0Xa"}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	id := authcore.Identity{Provider: "wechat", Subject: tr.OpenID, UnionID: tr.UnionID}
	u, _, err := s.UpsertIdentity(ctx, id, authcore.Profile{Nickname: tr.Nickname},
		authcore.User{ID: tr.UserID, Nickname: tr.Nickname, AvatarURL: "https://a/trace.png", CreatedAt: now})
	must("victim", err)
	_, _, err = s.UpsertIdentity(ctx, authcore.Identity{Provider: "wechat-web", Subject: "o-web-trace", UnionID: tr.UnionID}, authcore.Profile{}, authcore.User{ID: "unused"})
	must("victim's second identity", err)
	by := newUser(t, s, "bystander-trace", "Bystander", now)
	username := authcore.Identity{Provider: "password", Subject: tr.Username}
	must("username", s.LinkIdentity(ctx, username, u.ID))
	must("password", s.SetPassword(ctx, authcore.PasswordChange{UserID: u.ID, New: "$argon2id$v=19$m=19456,t=2,p=1$" + tr.Username}))
	must("session key", s.PutSessionKey(ctx, tr.OpenID, "sealed-sk", now.Add(time.Hour)))
	must("personal data", s.PutPersonalData(ctx, u.ID, "phone", "sealed-phone"))
	must("login history", s.AppendLogin(ctx, authcore.LoginAttempt{UserID: u.ID, At: now, Method: authcore.MethodPwd,
		Outcome: authcore.OutcomeFailed, IPMasked: "203.0.113.*", Region: "203.0.0.0/16", DeviceID: tr.DeviceID}))
	must("audit", s.AppendAudit(ctx, authcore.AuditEntry{Time: now, UserID: u.ID, Actor: "user", Action: "collect", Field: "phone"}))

	// Sessions: one rotated (a consumed mark), one whose family was revoked
	// by a reuse (a mark, no session), one plain.
	session := func() (authcore.SessionRecord, authcore.TokenRef, authcore.TokenRef) {
		rec, a, r := newSession(now, u.ID)
		rec.Subject, rec.UnionID = tr.OpenID, tr.UnionID
		rec.DeviceID, rec.Method, rec.IPMasked, rec.Region = tr.DeviceID, authcore.MethodWx, "203.0.113.*", "203.0.0.0/16"
		must("CreateSession", s.CreateSession(ctx, rec))
		return rec, a, r
	}
	rotated, rotatedAccess, rotatedRefresh := session()
	next, nextAccess, nextRefresh := sessionIn(rotated.FamilyID, now, u.ID)
	_, err = s.RotateRefresh(ctx, rotatedRefresh, next, now)
	must("rotate", err)
	reused, _, reusedRefresh := session()
	reusedNext, _, _ := sessionIn(reused.FamilyID, now, u.ID)
	_, err = s.RotateRefresh(ctx, reusedRefresh, reusedNext, now)
	must("rotate before reuse", err)
	if _, err := s.RotateRefresh(ctx, reusedRefresh, reusedNext, now); !errors.Is(err, authcore.ErrConflict) {
		t.Fatalf("reuse: %v, want ErrConflict", err)
	}
	_, plainAccess, plainRefresh := session()

	// Tickets: scanned, confirmed, redeemed (a desktop session), and the
	// bystander's.
	phone := plainAccess
	scanned := newTicket(now)
	must("create ticket", s.CreateTicket(ctx, scanned, time.Minute))
	res, err := s.TransitionAs(ctx, phone, 0, authcore.PhoneMove{ID: scanned.ID, From: authcore.StatePending, To: authcore.StateScanned, Now: now})
	if err != nil || !res.Moved {
		t.Fatalf("scan: moved %v, %v", res.Moved, err)
	}
	confirmed := confirm(t, s, u, newTicket(now), now)
	redeemed := confirm(t, s, u, newTicket(now), now)
	desktop, desktopAccess, desktopRefresh := newSession(now, u.ID)
	desktop.AMR, desktop.Provider, desktop.Subject, desktop.UnionID = []string{"wx", "qr"}, "", "", ""
	_, err = s.RedeemTicket(ctx, authcore.Redemption{TicketID: redeemed.ID, FromVersion: redeemed.Version, Session: desktop, Now: now})
	must("redeem", err)
	bystanders := confirm(t, s, by, newTicket(now), now)
	face := authcore.FaceVerification{VerifyID: "fv-trace-" + authcore.NewTicketID(), OutSeqNo: "seq", CertHash: "h",
		OpenID: tr.OpenID, UserID: u.ID, Family: rotated.FamilyID, StartedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	must("face verification", s.PutFaceVerification(ctx, face))

	must("EraseUser", s.EraseUser(ctx, u.ID))

	for _, ref := range []authcore.TokenRef{rotatedAccess, nextAccess, plainAccess, desktopAccess} {
		if _, err := s.PrincipalByAccess(ctx, ref, now, 0); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("an erased user's access token (family %s): %v, want ErrNotFound", ref.Family, err)
		}
	}
	for _, ref := range []authcore.TokenRef{rotatedRefresh, nextRefresh, reusedRefresh, plainRefresh, desktopRefresh} {
		n, _, _ := sessionIn(ref.Family, now, u.ID)
		if _, err := s.RotateRefresh(ctx, ref, n, now); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("an erased user's refresh token (family %s): %v, want ErrNotFound", ref.Family, err)
		}
	}
	for _, tk := range []authcore.TicketRecord{scanned, confirmed, redeemed} {
		if got, err := s.Ticket(ctx, tk.ID); !errors.Is(err, authcore.ErrNotFound) {
			t.Errorf("a ticket the erased user scanned: %s v%d, %v; want ErrNotFound", got.State, got.Version, err)
		}
	}
	if got, err := s.Ticket(ctx, bystanders.ID); err != nil || got.ScannerID != by.ID {
		t.Errorf("the bystander's ticket: %+v, %v; want it kept", got, err)
	}
	if _, err := s.TakeFaceVerification(ctx, face.VerifyID, u.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the erased user's face verification: %v, want ErrNotFound", err)
	}
	if _, err := s.SessionKey(ctx, tr.OpenID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the erased user's session key: %v, want ErrNotFound", err)
	}
	if _, err := s.PasswordHash(ctx, u.ID); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the erased user's password hash: %v, want ErrNotFound", err)
	}
	if got, err := s.UserByIdentity(ctx, username); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("the erased user's username: user %q, %v; want ErrNotFound", got.ID, err)
	}
	if got, err := s.Logins(ctx, u.ID, 10); err != nil || len(got) != 0 {
		t.Errorf("the erased user's login history: %d entries, %v; want none", len(got), err)
	}
	if got, err := s.UserSessions(ctx, u.ID, now); err != nil || len(got) != 0 {
		t.Errorf("the erased user's sessions list: %d sessions, %v; want none", len(got), err)
	}
	if err := s.AppendLogin(ctx, authcore.LoginAttempt{UserID: u.ID, At: now, Method: authcore.MethodPwd, Outcome: authcore.OutcomeFailed}); !errors.Is(err, authcore.ErrNotFound) {
		t.Errorf("AppendLogin for an erased user: %v, want ErrNotFound", err)
	}
	if got, err := s.Audit(ctx, u.ID, 10); err != nil || len(got) != 1 {
		t.Errorf("the erased user's audit: %d entries, %v; want the one kept", len(got), err)
	}
	return tr
}
