package memstore

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// wechatProvider is the provider whose subjects are openids with a WeChat
// session_key (PutSessionKey).
const wechatProvider = "wechat"

var (
	_ authcore.PersonalDataStore = (*Store)(nil)
	_ authcore.FaceStore         = (*Store)(nil)
)

// ---- personal data (authcore.PersonalDataStore) ----

// PutPersonalData implements authcore.PersonalDataStore. Setting a field
// of an unknown (or erased) user returns authcore.ErrNotFound, so that
// personal data never outlives its user; deleting one never fails.
func (s *Store) PutPersonalData(_ context.Context, userID, field, sealed string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sealed == "" {
		if m := s.pdata[userID]; m != nil {
			delete(m, field)
			if len(m) == 0 {
				delete(s.pdata, userID)
			}
		}
		return nil
	}
	if _, ok := s.users[userID]; !ok {
		return authcore.ErrNotFound
	}
	m := s.pdata[userID]
	if m == nil {
		m = map[string]string{}
		s.pdata[userID] = m
	}
	m[field] = sealed
	return nil
}

// PersonalData implements authcore.PersonalDataStore.
func (s *Store) PersonalData(_ context.Context, userID string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := maps.Clone(s.pdata[userID])
	if out == nil {
		out = map[string]string{}
	}
	return out, nil
}

// AppendAudit implements authcore.PersonalDataStore. The store keeps the
// last authcore.AuditKept entries of each user.
func (s *Store) AppendAudit(_ context.Context, e authcore.AuditEntry) error {
	if e.UserID == "" {
		return authcore.Errorf(authcore.KindInvalid, "memstore: audit entry without a user")
	}
	e.Time = e.Time.Round(0) // no monotonic reading: a record, not a stopwatch
	s.mu.Lock()
	defer s.mu.Unlock()
	list := append(s.audits[e.UserID], e)
	if n := len(list); n > authcore.AuditKept {
		list = slices.Clone(list[n-authcore.AuditKept:]) // let the dropped ones go
	}
	s.audits[e.UserID] = list
	return nil
}

// Audit implements authcore.PersonalDataStore. A limit of zero or less
// returns no entries.
func (s *Store) Audit(_ context.Context, userID string, limit int) ([]authcore.AuditEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.audits[userID]
	if limit < 0 {
		limit = 0
	}
	if len(list) > limit {
		list = list[len(list)-limit:]
	}
	return append([]authcore.AuditEntry{}, list...), nil
}

// EraseUser implements authcore.PersonalDataStore, atomically. It walks
// every session, ticket and face verification: erasure is rare, and an
// index per user would cost every login.
func (s *Store) EraseUser(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return authcore.ErrNotFound
	}
	delete(s.users, userID)
	for k, uid := range s.idents {
		if uid == userID {
			delete(s.idents, k)
			delete(s.linked, k)
			if k.provider == wechatProvider {
				delete(s.keys, k.subject)
			}
		}
	}
	for union, uid := range s.unions {
		if uid == userID {
			delete(s.unions, union)
		}
	}
	delete(s.pdata, userID)
	delete(s.passwords, userID)
	delete(s.logins, userID)
	s.eraseGrantsLocked(userID)
	// Every record that names the user goes too, not just what makes it
	// authenticate: its sessions (each holds its openid and unionid),
	// consumed-refresh marks, the tickets it scanned (they carry its id and
	// profile) and its face verifications in progress.
	for h, r := range s.sessions {
		if r.userID() == userID {
			s.deleteSessionLocked(h, r)
		}
	}
	for h, c := range s.consumed {
		if c.userID == userID {
			delete(s.consumed, h)
		}
	}
	for id, t := range s.tickets {
		if t.scannerID() == userID {
			delete(s.tickets, id)
		}
	}
	for id, f := range s.faces {
		if f.UserID == userID {
			delete(s.faces, id)
		}
	}
	return nil
}

// ---- face verification (authcore.FaceStore) ----

// PutFaceVerification implements authcore.FaceStore. A verification whose
// expiry has passed is not stored (it could never be taken).
func (s *Store) PutFaceVerification(_ context.Context, f authcore.FaceVerification) error {
	if f.VerifyID == "" || f.ExpiresAt.IsZero() {
		return authcore.Errorf(authcore.KindInvalid, "memstore: face verification without an id or expiry")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if !now.Before(f.ExpiresAt) {
		delete(s.faces, f.VerifyID)
		return nil
	}
	s.faces[f.VerifyID] = f
	return nil
}

// TakeFaceVerification implements authcore.FaceStore.
func (s *Store) TakeFaceVerification(_ context.Context, verifyID, userID string) (authcore.FaceVerification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faces[verifyID]
	switch {
	case !ok:
		return authcore.FaceVerification{}, authcore.ErrNotFound
	case !s.now().Before(f.ExpiresAt):
		delete(s.faces, verifyID)
		return authcore.FaceVerification{}, authcore.ErrNotFound
	case f.UserID != userID:
		return authcore.FaceVerification{}, authcore.ErrForbidden
	}
	delete(s.faces, verifyID)
	return f, nil
}

// MarkSessionStepUp implements authcore.FaceStore. The session must be
// live at at (its access token not yet expired).
func (s *Store) MarkSessionStepUp(_ context.Context, ref authcore.TokenRef, method string, at time.Time) error {
	if at.IsZero() || !authcore.ValidStepUpMethod(method) {
		return authcore.Errorf(authcore.KindInvalid, "memstore: mark session step-up: no time, or a bad method %q", method)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, ok := s.sessions[ref.Hash]
	if !ok || !stored.belongsTo(ref) || !at.Before(timeOf(stored.accessExpiresAt)) {
		return authcore.ErrNotFound
	}
	r := stored.record(ref.Hash)
	if !slices.Contains(r.AMR, method) {
		r.AMR = append(r.AMR, method)
	}
	if r.StepUps == nil {
		r.StepUps = map[string]time.Time{}
	}
	r.StepUps[method] = at
	s.sessions[ref.Hash] = storeSession(r)
	return nil
}
