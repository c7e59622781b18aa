package memstore

import (
	"context"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// PutOAuthState implements authcore.OAuthStateStore.
func (s *Store) PutOAuthState(_ context.Context, st authcore.OAuthState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	if _, ok := s.oauth[st.State]; ok {
		return authcore.ErrConflict
	}
	s.oauth[st.State] = st
	return nil
}

// TakeOAuthState implements authcore.OAuthStateStore under the store's
// lock.
func (s *Store) TakeOAuthState(_ context.Context, state string, now time.Time) (authcore.OAuthState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.oauth[state]
	delete(s.oauth, state)
	if !ok || !now.Before(st.ExpiresAt) {
		return authcore.OAuthState{}, authcore.ErrNotFound
	}
	return st, nil
}
