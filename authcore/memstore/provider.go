package memstore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// providerState is the OpenID Connect provider's records
// (authcore.ProviderStore), under the store's lock.
type providerState struct {
	requests map[string]authcore.ProviderRequest // by id
	codes    map[[32]byte]providerCode           // by code hash
	grants   map[string]storedGrant              // by user id + "/" + grant id
	barred   map[string]time.Time                // revoked grant keys → until when CreateGrant refuses them
}

// providerCode is a code, kept until its expiry, used or not.
type providerCode struct {
	requestID, userID string
	until             time.Time
	used              bool
}

type storedGrant struct {
	g        authcore.Grant
	consumed map[[32]byte]time.Time // rotated-away refresh hashes → their expiry
}

func (p *providerState) init() {
	if p.requests == nil {
		p.requests = make(map[string]authcore.ProviderRequest)
		p.codes = make(map[[32]byte]providerCode)
		p.grants = make(map[string]storedGrant)
		p.barred = make(map[string]time.Time)
	}
}

func grantKey(userID, id string) string { return userID + "/" + id }

func cloneRequest(r authcore.ProviderRequest) authcore.ProviderRequest {
	r.Scopes, r.Prompt = slices.Clone(r.Scopes), slices.Clone(r.Prompt)
	if r.Login != nil {
		l := *r.Login
		l.AMR = slices.Clone(l.AMR)
		r.Login = &l
	}
	return r
}

func cloneGrant(g authcore.Grant) authcore.Grant {
	g.Scopes, g.AMR = slices.Clone(g.Scopes), slices.Clone(g.AMR)
	return g
}

// sweepProviderLocked drops expired records (from sweepLocked).
func (s *Store) sweepProviderLocked(now time.Time) {
	p := &s.provider
	for id, r := range p.requests {
		if !now.Before(r.ExpiresAt) {
			delete(p.requests, id)
		}
	}
	for h, c := range p.codes {
		if !now.Before(c.until) {
			delete(p.codes, h)
		}
	}
	for k, g := range p.grants {
		if !now.Before(g.g.ExpiresAt) {
			delete(p.grants, k)
		}
	}
	for k, until := range p.barred {
		if !now.Before(until) {
			delete(p.barred, k)
		}
	}
}

// eraseGrantsLocked drops user userID's grants (from EraseUser).
func (s *Store) eraseGrantsLocked(userID string) {
	for k, g := range s.provider.grants {
		if g.g.UserID == userID {
			delete(s.provider.grants, k)
		}
	}
	for k := range s.provider.barred {
		if strings.HasPrefix(k, userID+"/") {
			delete(s.provider.barred, k)
		}
	}
}

// PutProviderRequest implements authcore.ProviderStore.
func (s *Store) PutProviderRequest(_ context.Context, r authcore.ProviderRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	s.provider.init()
	if _, ok := s.provider.requests[r.ID]; ok {
		return authcore.ErrConflict
	}
	s.provider.requests[r.ID] = cloneRequest(r)
	return nil
}

// ProviderRequest implements authcore.ProviderStore.
func (s *Store) ProviderRequest(_ context.Context, id string, now time.Time) (authcore.ProviderRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.provider.requests[id]
	if !ok || !now.Before(r.ExpiresAt) {
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	}
	return cloneRequest(r), nil
}

// CompleteProviderRequest implements authcore.ProviderStore.
func (s *Store) CompleteProviderRequest(_ context.Context, id string, l authcore.ProviderLogin, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.provider.requests[id]
	if !ok || !now.Before(r.ExpiresAt) {
		return authcore.ErrNotFound
	}
	if r.Login != nil {
		return authcore.ErrConflict
	}
	l.AMR = slices.Clone(l.AMR)
	r.Login = &l
	s.provider.requests[id] = r
	return nil
}

// PutProviderCode implements authcore.ProviderStore.
func (s *Store) PutProviderCode(_ context.Context, hash [32]byte, requestID string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.provider.init()
	r, ok := s.provider.requests[requestID]
	if !ok || !s.now().Before(r.ExpiresAt) || r.Login == nil {
		return authcore.ErrNotFound
	}
	s.provider.codes[hash] = providerCode{requestID: requestID, userID: r.Login.UserID, until: expiresAt}
	return nil
}

// TakeProviderCode implements authcore.ProviderStore under the store's
// lock.
func (s *Store) TakeProviderCode(_ context.Context, hash [32]byte, now time.Time) (authcore.ProviderRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.provider.codes[hash]
	if !ok || !now.Before(c.until) {
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	}
	if c.used {
		return authcore.ProviderRequest{ID: c.requestID, Login: &authcore.ProviderLogin{UserID: c.userID}}, authcore.ErrConflict
	}
	c.used = true
	s.provider.codes[hash] = c
	r, ok := s.provider.requests[c.requestID]
	if !ok || !now.Before(r.ExpiresAt) {
		return authcore.ProviderRequest{}, authcore.ErrNotFound
	}
	return cloneRequest(r), nil
}

// DeleteProviderRequest implements authcore.ProviderStore.
func (s *Store) DeleteProviderRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.provider.requests, id)
	return nil
}

// CreateGrant implements authcore.ProviderStore.
func (s *Store) CreateGrant(_ context.Context, g authcore.Grant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	s.provider.init()
	if _, ok := s.users[g.UserID]; !ok {
		return authcore.ErrNotFound
	}
	k := grantKey(g.UserID, g.ID)
	if _, ok := s.provider.grants[k]; ok {
		return authcore.ErrConflict
	}
	if _, ok := s.provider.barred[k]; ok {
		return authcore.ErrConflict
	}
	s.provider.grants[k] = storedGrant{g: cloneGrant(g)}
	return nil
}

// Grant implements authcore.ProviderStore.
func (s *Store) Grant(_ context.Context, userID, id string, now time.Time) (authcore.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg, ok := s.provider.grants[grantKey(userID, id)]
	if !ok || !now.Before(sg.g.ExpiresAt) {
		return authcore.Grant{}, authcore.ErrNotFound
	}
	return cloneGrant(sg.g), nil
}

// RotateGrant implements authcore.ProviderStore under the store's lock.
func (s *Store) RotateGrant(_ context.Context, r authcore.GrantRotation) (authcore.Grant, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := grantKey(r.UserID, r.ID)
	sg, ok := s.provider.grants[k]
	if !ok || !r.Now.Before(sg.g.ExpiresAt) {
		return authcore.Grant{}, authcore.ErrNotFound
	}
	if until, used := sg.consumed[r.Old]; used && r.Now.Before(until) {
		delete(s.provider.grants, k)
		return authcore.Grant{}, authcore.ErrConflict
	}
	var zero [32]byte
	if r.Old == zero || sg.g.RefreshHash != r.Old {
		return authcore.Grant{}, authcore.ErrNotFound
	}
	if sg.consumed == nil {
		sg.consumed = make(map[[32]byte]time.Time)
	}
	for h, until := range sg.consumed {
		if !r.Now.Before(until) {
			delete(sg.consumed, h)
		}
	}
	sg.consumed[r.Old] = sg.g.ExpiresAt
	sg.g.RefreshHash, sg.g.ExpiresAt = r.New, r.ExpiresAt
	if sg.g.DPoPJKT == "" {
		sg.g.DPoPJKT = r.DPoPJKT
	}
	s.provider.grants[k] = sg
	return cloneGrant(sg.g), nil
}

// RevokeGrant implements authcore.ProviderStore.
func (s *Store) RevokeGrant(_ context.Context, userID, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.provider.init()
	k := grantKey(userID, id)
	s.provider.barred[k] = s.now().Add(authcore.ProviderRequestTTL)
	if _, ok := s.provider.grants[k]; !ok {
		return authcore.ErrNotFound
	}
	delete(s.provider.grants, k)
	return nil
}

// RevokeSessionGrants implements authcore.ProviderStore.
func (s *Store) RevokeSessionGrants(_ context.Context, userID, sid string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, sg := range s.provider.grants {
		if sg.g.UserID == userID && sg.g.SID == sid {
			delete(s.provider.grants, k)
			n++
		}
	}
	return n, nil
}
