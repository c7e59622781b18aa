// Package memstore is loginhub's embedded store: every authcore store port
// kept in this process's memory, for a single node with zero setup. It is
// safe for concurrent use; each operation holds one mutex, which makes every
// transition and consume-once operation atomic. Data is lost on restart.
package memstore

import (
	"context"
	"crypto/subtle"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// sweepEvery bounds how often expired entries are purged. Purging is
// amortised over writes, so the store needs no goroutine of its own.
const sweepEvery = 30 * time.Second

// Store implements authcore.Store in memory.
type Store struct {
	notify authcore.Notifier
	now    func() time.Time

	mu        sync.Mutex
	tickets   map[string]storedTicket      // by id
	sessions  map[[32]byte]storedSession   // by access hash
	refreshes map[[32]byte][32]byte        // refresh hash → access hash
	consumed  map[[32]byte]consumedRefresh // rotated refresh hashes, for reuse detection
	users     map[string]authcore.User
	idents    map[identKey]string // → user id
	unions    map[string]string   // unionid → user id
	keys      map[string]string   // openid → session_key
	once      map[string]time.Time
	counters  map[string]*window
	atokens   map[string]accessToken // WeChat access_token by appid
	leases    map[string]lease       // TryLock leases by name
	leaseSeq  uint64
	pdata     map[string]map[string]string // user id → field → sealed value
	audits    map[string][]authcore.AuditEntry
	faces     map[string]authcore.FaceVerification // by verify_id
	lastSweep time.Time
}

type accessToken struct {
	token     string
	expiresAt time.Time
}

type lease struct {
	id    uint64
	until time.Time
}

type consumedRefresh struct {
	familyID string
	until    time.Time
}

type identKey struct{ provider, subject string }

type window struct {
	start time.Time
	count int
}

var (
	_ authcore.Store          = (*Store)(nil)
	_ authcore.PrincipalStore = (*Store)(nil)
	_ authcore.RedeemStore    = (*Store)(nil)
)

// New returns an empty store. notify (may be nil) is called after every
// ticket transition, outside the store's lock; now (nil: time.Now) is the
// clock used for expiry.
func New(notify authcore.Notifier, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{
		notify: notify, now: now,
		tickets:   map[string]storedTicket{},
		sessions:  map[[32]byte]storedSession{},
		refreshes: map[[32]byte][32]byte{},
		consumed:  map[[32]byte]consumedRefresh{},
		users:     map[string]authcore.User{},
		idents:    map[identKey]string{},
		unions:    map[string]string{},
		keys:      map[string]string{},
		once:      map[string]time.Time{},
		counters:  map[string]*window{},
		atokens:   map[string]accessToken{},
		leases:    map[string]lease{},
		pdata:     map[string]map[string]string{},
		audits:    map[string][]authcore.AuditEntry{},
		faces:     map[string]authcore.FaceVerification{},
	}
}

// Ping always succeeds: memory is always reachable.
func (s *Store) Ping(context.Context) error { return nil }

// sweepLocked purges expired entries at most every sweepEvery.
func (s *Store) sweepLocked(now time.Time) {
	if now.Sub(s.lastSweep) < sweepEvery {
		return
	}
	s.lastSweep = now
	for id, t := range s.tickets {
		if t.gone(now) {
			delete(s.tickets, id)
		}
	}
	for h, r := range s.sessions {
		if now.After(timeOf(r.refreshExpiresAt)) {
			s.deleteSessionLocked(h, r)
		}
	}
	for h, c := range s.consumed {
		if now.After(c.until) {
			delete(s.consumed, h)
		}
	}
	for k, until := range s.once {
		if now.After(until) {
			delete(s.once, k)
		}
	}
	for k, w := range s.counters {
		if now.Sub(w.start) > time.Hour {
			delete(s.counters, k)
		}
	}
	for k, t := range s.atokens {
		if !now.Before(t.expiresAt) {
			delete(s.atokens, k)
		}
	}
	for k, l := range s.leases {
		if !now.Before(l.until) {
			delete(s.leases, k)
		}
	}
	for k, f := range s.faces {
		if !now.Before(f.ExpiresAt) {
			delete(s.faces, k)
		}
	}
}

// CreateTicket implements authcore.TicketStore.
func (s *Store) CreateTicket(_ context.Context, rec authcore.TicketRecord, retention time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if _, ok := s.tickets[rec.ID]; ok {
		return authcore.ErrConflict
	}
	s.tickets[rec.ID] = storeTicket(rec, rec.ExpiresAt.Add(retention))
	return nil
}

// Ticket implements authcore.TicketStore.
func (s *Store) Ticket(_ context.Context, id string) (authcore.TicketRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.ticketLocked(id)
	if !ok {
		return authcore.TicketRecord{}, authcore.ErrNotFound
	}
	return t.record(id), nil
}

// ticketLocked returns ticket id unless it is unknown or past retention.
func (s *Store) ticketLocked(id string) (storedTicket, bool) {
	t, ok := s.tickets[id]
	if !ok || t.gone(s.now()) {
		return storedTicket{}, false
	}
	return t, true
}

// Transition implements authcore.TicketStore.
func (s *Store) Transition(_ context.Context, t authcore.Transition) (authcore.TicketRecord, error) {
	s.mu.Lock()
	st, err := s.transitionLocked(t)
	if err != nil {
		s.mu.Unlock()
		return authcore.TicketRecord{}, err
	}
	out := s.advanceLocked(t.ID, st, t.To, t.ScannerID, t.Scanner)
	s.mu.Unlock()
	s.announce(out)
	return out, nil
}

// transitionLocked returns the ticket t moves, or why it cannot move it.
func (s *Store) transitionLocked(t authcore.Transition) (storedTicket, error) {
	st, ok := s.ticketLocked(t.ID)
	switch {
	case !ok:
		return st, authcore.ErrNotFound
	case st.version != t.FromVersion || st.state().Terminal():
		return st, authcore.ErrConflict
	case st.expired(t.Now):
		return st, authcore.ErrExpired
	}
	return st, nil
}

// RedeemTicket implements authcore.RedeemStore: the user, the transition
// and the new session under one lock.
func (s *Store) RedeemTicket(_ context.Context, t authcore.Transition, rec authcore.SessionRecord) (authcore.TicketRecord, authcore.User, error) {
	s.mu.Lock()
	u, ok := s.users[rec.UserID]
	if !ok {
		s.mu.Unlock()
		return authcore.TicketRecord{}, authcore.User{}, authcore.ErrNotFound
	}
	s.sweepLocked(s.now())
	st, err := s.transitionLocked(t)
	if err != nil {
		s.mu.Unlock()
		return authcore.TicketRecord{}, authcore.User{}, err
	}
	s.putSessionLocked(rec)
	out := s.advanceLocked(t.ID, st, t.To, t.ScannerID, t.Scanner)
	s.mu.Unlock()
	s.announce(out)
	return out, u, nil
}

// RedeemIfAllowed implements authcore.CheckedRedeemStore: the ticket's
// checks, its scanner's user, the transition and the new session under one
// lock.
func (s *Store) RedeemIfAllowed(_ context.Context, c authcore.RedeemCheck, rec authcore.SessionRecord) (authcore.TicketRecord, authcore.User, bool, error) {
	s.mu.Lock()
	st, ok := s.ticketLocked(c.ID)
	if !ok {
		s.mu.Unlock()
		return authcore.TicketRecord{}, authcore.User{}, false, authcore.ErrNotFound
	}
	tk := st.record(c.ID)
	if tk.State != authcore.StateConfirmed || st.expired(c.Now) || tk.DPoPJKT != "" || tk.ScannerID == "" ||
		subtle.ConstantTimeCompare(tk.WatchSecretHash[:], c.SecretHash[:]) != 1 || !c.Binding.Allows(tk.ClientIP, c.Client) {
		s.mu.Unlock()
		return tk, authcore.User{}, false, nil
	}
	u, ok := s.users[tk.ScannerID]
	if !ok {
		s.mu.Unlock()
		return authcore.TicketRecord{}, authcore.User{}, false, authcore.ErrNotFound
	}
	s.sweepLocked(s.now())
	rec.UserID = u.ID
	s.putSessionLocked(rec)
	out := s.advanceLocked(c.ID, st, authcore.StateRedeemed, "", authcore.Profile{})
	s.mu.Unlock()
	s.announce(out)
	return out, u, true, nil
}

// TransitionFrom implements authcore.TicketStore.
func (s *Store) TransitionFrom(_ context.Context, t authcore.StateTransition) (authcore.TicketRecord, bool, error) {
	s.mu.Lock()
	st, ok := s.ticketLocked(t.ID)
	if !ok {
		s.mu.Unlock()
		return authcore.TicketRecord{}, false, authcore.ErrNotFound
	}
	if from := st.state(); from != t.From || from.Terminal() || st.scannerID() != t.Owner || st.expired(t.Now) {
		s.mu.Unlock()
		return st.record(t.ID), false, nil
	}
	out := s.advanceLocked(t.ID, st, t.To, t.ScannerID, t.Scanner)
	s.mu.Unlock()
	s.announce(out)
	return out, true, nil
}

// advanceLocked applies a transition to to, writing the scanner when to is
// scanned, stores the new record and returns it. The caller holds s.mu.
func (s *Store) advanceLocked(id string, st storedTicket, to authcore.State, scannerID string, scanner authcore.Profile) authcore.TicketRecord {
	rec := st.record(id)
	rec.State = to
	rec.Version++
	rec.Trail = append(rec.Trail, to)
	if to == authcore.StateScanned {
		rec.ScannerID, rec.Scanner = scannerID, scanner
	}
	s.tickets[id] = storeTicket(rec, timeOf(st.deleteAt))
	return rec
}

// announce calls notify, outside the lock, after a transition.
func (s *Store) announce(rec authcore.TicketRecord) {
	if s.notify != nil {
		r := rec
		r.Trail = slices.Clone(rec.Trail) // the caller keeps rec
		s.notify(r)
	}
}

// CreateSession implements authcore.SessionStore.
func (s *Store) CreateSession(_ context.Context, rec authcore.SessionRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(s.now())
	s.putSessionLocked(rec)
	return nil
}

func (s *Store) putSessionLocked(r authcore.SessionRecord) {
	s.sessions[r.AccessHash] = storeSession(r)
	s.refreshes[r.RefreshHash] = r.AccessHash
}

func (s *Store) deleteSessionLocked(accessHash [32]byte, r storedSession) {
	delete(s.sessions, accessHash)
	delete(s.refreshes, r.refreshHash)
}

// SessionByAccess implements authcore.SessionStore.
func (s *Store) SessionByAccess(_ context.Context, ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessionByAccessLocked(ref, now, slide)
}

// PrincipalByAccess implements authcore.PrincipalStore: the session and
// its user under one lock.
func (s *Store) PrincipalByAccess(_ context.Context, ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.SessionRecord, authcore.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.sessionByAccessLocked(ref, now, slide)
	if err != nil {
		return authcore.SessionRecord{}, authcore.User{}, err
	}
	u, ok := s.users[rec.UserID]
	if !ok {
		return authcore.SessionRecord{}, authcore.User{}, authcore.ErrNotFound
	}
	return rec, u, nil
}

// TransitionAs implements authcore.PhoneTransitionStore as
// PrincipalByAccess followed by TransitionFrom. A memory store has no
// round trip to save; it implements it so that the core's one-call path
// runs against both stores.
func (s *Store) TransitionAs(ctx context.Context, ref authcore.TokenRef, slide time.Duration, m authcore.PhoneMove) (authcore.Principal, authcore.TicketRecord, bool, error) {
	rec, u, err := s.PrincipalByAccess(ctx, ref, m.Now, slide)
	if errors.Is(err, authcore.ErrNotFound) {
		return authcore.Principal{}, authcore.TicketRecord{}, false, authcore.ErrNoSession
	}
	if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, false, err
	}
	tk, moved, err := s.TransitionFrom(ctx, m.As(u))
	if err != nil {
		return authcore.Principal{}, authcore.TicketRecord{}, false, err
	}
	return authcore.Principal{User: u, Session: rec}, tk, moved, nil
}

func (s *Store) sessionByAccessLocked(ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.SessionRecord, error) {
	r, ok := s.sessions[ref.Hash]
	if !ok || r.familyID() != ref.Family || !now.Before(timeOf(r.accessExpiresAt)) {
		return authcore.SessionRecord{}, authcore.ErrNotFound
	}
	exp := now.Add(slide)
	if refresh := timeOf(r.refreshExpiresAt); exp.After(refresh) {
		exp = refresh
	}
	if exp.After(timeOf(r.accessExpiresAt)) {
		r.accessExpiresAt = nanos(exp)
		s.sessions[ref.Hash] = r
	}
	return r.record(ref.Hash), nil
}

// RotateRefresh implements authcore.SessionStore.
func (s *Store) RotateRefresh(_ context.Context, ref authcore.TokenRef, next authcore.SessionRecord, now time.Time) (authcore.SessionRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := ref.Hash
	if c, ok := s.consumed[h]; ok && c.familyID == ref.Family && now.Before(c.until) {
		s.revokeFamilyLocked(c.familyID)
		return authcore.SessionRecord{}, authcore.ErrConflict
	}
	ah := s.refreshes[h]
	stored, ok := s.sessions[ah]
	if !ok || stored.refreshHash != h || stored.familyID() != ref.Family || !now.Before(timeOf(stored.refreshExpiresAt)) {
		return authcore.SessionRecord{}, authcore.ErrNotFound
	}
	old := stored.record(ah)
	s.deleteSessionLocked(ah, stored)
	s.consumed[h] = consumedRefresh{familyID: old.FamilyID, until: old.RefreshExpiresAt}
	next.FamilyID, next.UserID = old.FamilyID, old.UserID
	next.AMR, next.FaceAt = old.AMR, old.FaceAt
	next.Provider, next.Subject, next.UnionID = old.Provider, old.Subject, old.UnionID
	s.putSessionLocked(next)
	return next, nil
}

func (s *Store) revokeFamilyLocked(family string) {
	for h, r := range s.sessions {
		if r.familyID() == family {
			s.deleteSessionLocked(h, r)
		}
	}
}

// DeleteSession implements authcore.SessionStore.
func (s *Store) DeleteSession(_ context.Context, ref authcore.TokenRef) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.sessions[ref.Hash]
	if !ok || r.familyID() != ref.Family {
		return authcore.ErrNotFound
	}
	s.deleteSessionLocked(ref.Hash, r)
	return nil
}

// UpsertIdentity implements authcore.UserStore.
func (s *Store) UpsertIdentity(_ context.Context, id authcore.Identity, p authcore.Profile, newUser authcore.User) (authcore.User, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := identKey{id.Provider, id.Subject}
	uid, ok := s.idents[k]
	if !ok && id.UnionID != "" {
		uid, ok = s.unions[id.UnionID]
	}
	created := false
	if !ok {
		uid, created = newUser.ID, true
		s.users[uid] = newUser
	}
	s.idents[k] = uid
	if id.UnionID != "" {
		s.unions[id.UnionID] = uid
	}
	u := s.users[uid]
	if !created {
		if p.Nickname != "" {
			u.Nickname = p.Nickname
		}
		if p.AvatarURL != "" {
			u.AvatarURL = p.AvatarURL
		}
		s.users[uid] = u
	}
	return u, created, nil
}

// User implements authcore.UserStore.
func (s *Store) User(_ context.Context, id string) (authcore.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return authcore.User{}, authcore.ErrNotFound
	}
	return u, nil
}

// PutSessionKey implements authcore.UserStore.
func (s *Store) PutSessionKey(_ context.Context, openid, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[openid] = key
	return nil
}

// SessionKey implements authcore.UserStore.
func (s *Store) SessionKey(_ context.Context, openid string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[openid]
	if !ok {
		return "", authcore.ErrNotFound
	}
	return k, nil
}

// FirstUse implements authcore.ReplayCache.
func (s *Store) FirstUse(_ context.Context, key string, ttl time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if until, ok := s.once[key]; ok && now.Before(until) {
		return false, nil
	}
	s.once[key] = now.Add(ttl)
	return true, nil
}

// Allow counts one event for key in a fixed window and reports whether it
// is within limit; when it is not, retryAfter says when the window resets.
func (s *Store) Allow(_ context.Context, key string, limit int, per time.Duration) (ok bool, retryAfter time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	w := s.counters[key]
	if w == nil || now.Sub(w.start) >= per {
		w = &window{start: now}
		s.counters[key] = w
	}
	if w.count >= limit {
		return false, w.start.Add(per).Sub(now), nil
	}
	w.count++
	return true, 0, nil
}

// ---- WeChat access tokens (wechat.TokenCache) ----

// AccessToken returns the access token stored for appID and its expiry,
// or authcore.ErrNotFound when there is none or it has expired. It
// implements wechat.TokenCache.
func (s *Store) AccessToken(_ context.Context, appID string) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.atokens[appID]
	if !ok || !s.now().Before(t.expiresAt) {
		return "", time.Time{}, authcore.ErrNotFound
	}
	return t.token, t.expiresAt, nil
}

// PutAccessToken stores appID's access token until expiresAt, replacing
// the previous one. It implements wechat.TokenCache.
func (s *Store) PutAccessToken(_ context.Context, appID, token string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if !now.Before(expiresAt) {
		delete(s.atokens, appID)
		return nil
	}
	s.atokens[appID] = accessToken{token, expiresAt}
	return nil
}

// TryLock takes the lease name for ttl unless someone else holds it. The
// returned release ends the lease if it is still this caller's (not after
// it expired and another caller took it); calling it again does nothing.
// It implements wechat.TokenCache.
func (s *Store) TryLock(_ context.Context, name string, ttl time.Duration) (release func(), ok bool, err error) {
	if ttl <= 0 {
		return nil, false, authcore.Errorf(authcore.KindInvalid, "memstore: lock %q: ttl must be positive", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if l, held := s.leases[name]; held && now.Before(l.until) {
		return func() {}, false, nil
	}
	s.leaseSeq++
	id := s.leaseSeq
	s.leases[name] = lease{id: id, until: now.Add(ttl)}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.leases[name].id == id {
				delete(s.leases, name)
			}
		})
	}, true, nil
}
