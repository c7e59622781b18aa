package memstore

import (
	"context"

	"github.com/loginhub/loginhub/authcore"
)

var _ authcore.PasswordStore = (*Store)(nil)

// UserByIdentity implements authcore.UserStore.
func (s *Store) UserByIdentity(_ context.Context, id authcore.Identity) (authcore.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[s.idents[identKey{id.Provider, id.Subject}]]
	if !ok {
		return authcore.User{}, authcore.ErrNotFound
	}
	return u, nil
}

// PasswordHash implements authcore.PasswordStore.
func (s *Store) PasswordHash(_ context.Context, userID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.passwords[userID]
	if !ok {
		return "", authcore.ErrNotFound
	}
	return h, nil
}

// SetPassword implements authcore.PasswordStore. It walks every session,
// as EraseUser does: password changes are rare, and an index per user
// would cost every login.
func (s *Store) SetPassword(_ context.Context, c authcore.PasswordChange) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[c.UserID]; !ok {
		return authcore.ErrNotFound
	}
	if s.passwords[c.UserID] != c.Old {
		return authcore.ErrConflict
	}
	s.passwords[c.UserID] = c.New
	for h, r := range s.sessions {
		if r.userID() == c.UserID && r.familyID() != c.KeepFamily {
			s.deleteSessionLocked(h, r)
		}
	}
	for h, cr := range s.consumed {
		if cr.userID == c.UserID && cr.familyID != c.KeepFamily {
			delete(s.consumed, h)
		}
	}
	return nil
}
