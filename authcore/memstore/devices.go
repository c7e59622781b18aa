package memstore

import (
	"context"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

var _ authcore.LoginStore = (*Store)(nil)

// loginRing is a user's last authcore.LoginsKept login attempts.
type loginRing struct {
	buf  [authcore.LoginsKept]authcore.LoginAttempt
	next int // where the next attempt goes
	n    int // how many are kept
}

// UserSessions implements authcore.SessionStore. It walks every session,
// as SetPassword does: listing is rare, and an index per user would cost
// every login.
func (s *Store) UserSessions(_ context.Context, userID string, now time.Time) ([]authcore.SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []authcore.SessionRecord
	for h, r := range s.sessions {
		if r.userID() == userID && now.Before(timeOf(r.refreshExpiresAt)) {
			out = append(out, r.record(h))
		}
	}
	return out, nil
}

// DeleteUserSession implements authcore.SessionStore.
func (s *Store) DeleteUserSession(_ context.Context, userID, family string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for h, r := range s.sessions {
		if r.userID() == userID && r.familyID() == family {
			s.deleteSessionLocked(h, r)
			found = true
		}
	}
	if !found {
		return authcore.ErrNotFound
	}
	for h, cr := range s.consumed {
		if cr.userID == userID && cr.familyID == family {
			delete(s.consumed, h)
		}
	}
	return nil
}

// DeleteUserSessions implements authcore.SessionStore.
func (s *Store) DeleteUserSessions(_ context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, r := range s.sessions {
		if r.userID() == userID {
			s.deleteSessionLocked(h, r)
		}
	}
	for h, cr := range s.consumed {
		if cr.userID == userID {
			delete(s.consumed, h)
		}
	}
	return nil
}

// AppendLogin implements authcore.LoginStore.
func (s *Store) AppendLogin(_ context.Context, a authcore.LoginAttempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[a.UserID]; !ok {
		return authcore.ErrNotFound
	}
	r := s.logins[a.UserID]
	if r == nil {
		r = &loginRing{}
		s.logins[a.UserID] = r
	}
	r.buf[r.next] = a
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
	return nil
}

// Logins implements authcore.LoginStore.
func (s *Store) Logins(_ context.Context, userID string, limit int) ([]authcore.LoginAttempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.logins[userID]
	if r == nil {
		return nil, nil
	}
	n := min(limit, r.n)
	out := make([]authcore.LoginAttempt, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.buf[(r.next-i+len(r.buf))%len(r.buf)])
	}
	return out, nil
}
