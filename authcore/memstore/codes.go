package memstore

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// codeKey names the live SMS code of a number for a purpose.
type codeKey struct{ phone, purpose string }

// PutCode implements authcore.CodeStore.
func (s *Store) PutCode(_ context.Context, c authcore.OneTimeCode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	s.codes[codeKey{c.Phone, c.Purpose}] = c
	return nil
}

// CheckCode implements authcore.CodeStore under the store's lock.
func (s *Store) CheckCode(_ context.Context, phone, purpose string, hash [32]byte, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := codeKey{phone, purpose}
	c, ok := s.codes[k]
	switch {
	case !ok:
		return false, nil
	case !now.Before(c.ExpiresAt):
		delete(s.codes, k)
		return false, nil
	case subtle.ConstantTimeCompare(c.Hash[:], hash[:]) == 1:
		delete(s.codes, k)
		return true, nil
	}
	c.Tries--
	if c.Tries <= 0 {
		delete(s.codes, k)
	} else {
		s.codes[k] = c
	}
	return false, nil
}
