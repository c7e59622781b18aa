// Package memstore is loginhub's embedded store: every authcore store port
// kept in this process's memory, for a single node with zero setup. It is
// safe for concurrent use; each operation holds one mutex, which makes every
// transition and consume-once operation atomic. Data is lost on restart.
package memstore

import (
	"context"
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
	idents    map[identKey]string   // → user id
	linked    map[identKey]linkInfo // each identity's unionid and link time
	unions    map[string]string     // unionid → user id
	keys      map[string]sessionKey // openid → sealed session_key
	once      map[string]time.Time
	counters  map[string]*window
	pruneAt   int                    // len(counters) at which Allow next drops ended windows
	atokens   map[string]accessToken // WeChat access_token by appid
	leases    map[string]lease       // TryLock leases by name
	leaseSeq  uint64
	pdata     map[string]map[string]string // user id → field → sealed value
	audits    map[string][]authcore.AuditEntry
	faces     map[string]authcore.FaceVerification // by verify_id
	codes     map[codeKey]authcore.OneTimeCode     // live SMS codes
	mailboxes map[string]mailbox                   // the sandbox's SMS messages, by number
	passwords map[string]string                    // user id → password hash (PHC string)
	logins    map[string]*loginRing                // user id → login history
	oauth     map[string]authcore.OAuthState       // third-party logins in progress, by state
	provider  providerState                        // the OpenID Connect provider's records (provider.go)
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

// sessionKey is a WeChat session_key, sealed by the core's Vault, and
// when it expires.
type sessionKey struct {
	sealed string
	until  time.Time
}

type consumedRefresh struct {
	familyID string
	userID   string // for erasure
	until    time.Time
}

type identKey struct{ provider, subject string }

// linkInfo is what Identities says of an identity besides its name.
type linkInfo struct {
	unionID string
	at      time.Time
}

type window struct {
	end   time.Time // the window's first instant past its end
	count int
}

// minPruneAt is the smallest counter map that Allow prunes. Above it the
// map is pruned whenever it has doubled since the last prune, so a client
// that spreads its requests over many keys (addresses) costs amortised
// O(1) per call and the map holds at most about twice the windows that
// are live, however many keys passed through since the last sweep.
const minPruneAt = 1024

var _ authcore.Store = (*Store)(nil)

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
		logins:    map[string]*loginRing{},
		refreshes: map[[32]byte][32]byte{},
		consumed:  map[[32]byte]consumedRefresh{},
		users:     map[string]authcore.User{},
		idents:    map[identKey]string{},
		linked:    map[identKey]linkInfo{},
		unions:    map[string]string{},
		keys:      map[string]sessionKey{},
		once:      map[string]time.Time{},
		counters:  map[string]*window{},
		atokens:   map[string]accessToken{},
		leases:    map[string]lease{},
		pdata:     map[string]map[string]string{},
		audits:    map[string][]authcore.AuditEntry{},
		faces:     map[string]authcore.FaceVerification{},
		codes:     map[codeKey]authcore.OneTimeCode{},
		mailboxes: map[string]mailbox{},
		passwords: map[string]string{},
		oauth:     map[string]authcore.OAuthState{},
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
	for k, sk := range s.keys {
		if !now.Before(sk.until) {
			delete(s.keys, k)
		}
	}
	for k, until := range s.once {
		if now.After(until) {
			delete(s.once, k)
		}
	}
	s.pruneCountersLocked(now)
	s.sweepProviderLocked(now)
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
	for k, st := range s.oauth {
		if !now.Before(st.ExpiresAt) {
			delete(s.oauth, k)
		}
	}
	for k, f := range s.faces {
		if !now.Before(f.ExpiresAt) {
			delete(s.faces, k)
		}
	}
	for k, c := range s.codes {
		if !now.Before(c.ExpiresAt) {
			delete(s.codes, k)
		}
	}
	for k, b := range s.mailboxes {
		if !now.Before(b.until) {
			delete(s.mailboxes, k)
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

// TransitionAs implements authcore.TicketStore: the session, its user and
// the move under one lock.
func (s *Store) TransitionAs(_ context.Context, ref authcore.TokenRef, slide time.Duration, m authcore.PhoneMove) (authcore.PhoneMoveResult, error) {
	s.mu.Lock()
	p, err := s.principalLocked(ref, m.Now, slide)
	if errors.Is(err, authcore.ErrNotFound) {
		s.mu.Unlock()
		return authcore.PhoneMoveResult{}, authcore.ErrNoSession
	}
	st, ok := s.ticketLocked(m.ID)
	if !ok {
		s.mu.Unlock()
		return authcore.PhoneMoveResult{}, authcore.ErrNotFound
	}
	owner := p.User.ID
	if m.To == authcore.StateScanned {
		owner = ""
	}
	if from := st.state(); from != m.From || from.Terminal() || st.scannerID() != owner || st.expired(m.Now) {
		s.mu.Unlock()
		return authcore.PhoneMoveResult{Principal: p, Ticket: st.record(m.ID)}, nil
	}
	rec := st.record(m.ID)
	if m.To == authcore.StateScanned {
		rec.ScannerID, rec.Scanner = p.User.ID, authcore.Profile{Nickname: p.User.Nickname, AvatarURL: p.User.AvatarURL}
		rec.Via = m.Via
	}
	out := s.advanceLocked(rec, st, m.To)
	s.mu.Unlock()
	s.announce(out)
	return authcore.PhoneMoveResult{Principal: p, Ticket: out, Moved: true}, nil
}

// RedeemTicket implements authcore.TicketStore: the user, the move and the
// new session under one lock.
func (s *Store) RedeemTicket(_ context.Context, r authcore.Redemption) (authcore.User, error) {
	s.mu.Lock()
	now := s.now()
	s.sweepLocked(now)
	u, ok := s.users[r.Session.UserID]
	st, found := s.ticketLocked(r.TicketID)
	switch {
	case !ok || !found:
		s.mu.Unlock()
		return authcore.User{}, authcore.ErrNotFound
	case st.version != r.FromVersion || st.state().Terminal():
		s.mu.Unlock()
		return authcore.User{}, authcore.ErrConflict
	case st.expired(r.Now):
		s.mu.Unlock()
		return authcore.User{}, authcore.ErrExpired
	}
	s.putSessionLocked(r.Session)
	out := s.advanceLocked(st.record(r.TicketID), st, authcore.StateRedeemed)
	s.mu.Unlock()
	s.announce(out)
	return u, nil
}

// advanceLocked moves rec, as read from st (with any new scanner written
// in), to state to, stores it and returns it. The caller holds s.mu.
func (s *Store) advanceLocked(rec authcore.TicketRecord, st storedTicket, to authcore.State) authcore.TicketRecord {
	rec.State = to
	rec.Version++
	rec.Trail = append(rec.Trail, to)
	s.tickets[rec.ID] = storeTicket(rec, timeOf(st.deleteAt))
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
	if _, ok := s.users[rec.UserID]; !ok {
		return authcore.ErrNotFound
	}
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

// PrincipalByAccess implements authcore.SessionStore: the session and its
// user under one lock.
func (s *Store) PrincipalByAccess(_ context.Context, ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.Principal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.principalLocked(ref, now, slide)
}

// principalLocked finds the live session of access token ref and its user,
// sliding the access expiry, or returns ErrNotFound.
func (s *Store) principalLocked(ref authcore.TokenRef, now time.Time, slide time.Duration) (authcore.Principal, error) {
	r, ok := s.sessions[ref.Hash]
	if !ok || !r.belongsTo(ref) || !now.Before(timeOf(r.accessExpiresAt)) {
		return authcore.Principal{}, authcore.ErrNotFound
	}
	u, ok := s.users[r.userID()]
	if !ok {
		return authcore.Principal{}, authcore.ErrNotFound
	}
	exp := now.Add(slide)
	if refresh := timeOf(r.refreshExpiresAt); exp.After(refresh) {
		exp = refresh
	}
	if exp.After(timeOf(r.accessExpiresAt)) {
		r.accessExpiresAt = nanos(exp)
		r.lastUsedAt = nanos(now)
		s.sessions[ref.Hash] = r
	}
	return authcore.Principal{User: u, Session: r.record(ref.Hash)}, nil
}

// RotateRefresh implements authcore.SessionStore.
func (s *Store) RotateRefresh(_ context.Context, ref authcore.TokenRef, next authcore.SessionRecord, now time.Time) (authcore.Principal, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := ref.Hash
	if c, ok := s.consumed[h]; ok && c.familyID == ref.Family && now.Before(c.until) {
		s.revokeFamilyLocked(c.familyID)
		return authcore.Principal{}, authcore.ErrConflict
	}
	ah := s.refreshes[h]
	stored, ok := s.sessions[ah]
	if !ok || stored.refreshHash != h || !stored.belongsTo(ref) || !now.Before(timeOf(stored.refreshExpiresAt)) {
		return authcore.Principal{}, authcore.ErrNotFound
	}
	u, ok := s.users[stored.userID()]
	if !ok {
		return authcore.Principal{}, authcore.ErrNotFound
	}
	old := stored.record(ah)
	s.deleteSessionLocked(ah, stored)
	s.consumed[h] = consumedRefresh{familyID: old.FamilyID, userID: old.UserID, until: old.RefreshExpiresAt}
	next.FamilyID, next.UserID = old.FamilyID, old.UserID
	next.AMR, next.StepUps, next.AuthTime = old.AMR, old.StepUps, old.AuthTime
	next.Provider, next.Subject, next.UnionID = old.Provider, old.Subject, old.UnionID
	next.DeviceID, next.Method, next.IPMasked, next.Region, next.UserAgent = old.DeviceID, old.Method, old.IPMasked, old.Region, old.UserAgent
	s.putSessionLocked(next)
	return authcore.Principal{User: u, Session: next}, nil
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
	if !ok || !r.belongsTo(ref) {
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
	if _, ok := s.linked[k]; !ok || s.idents[k] != uid {
		s.linked[k] = linkInfo{unionID: id.UnionID, at: s.now()}
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

// LinkIdentity implements authcore.UserStore.
func (s *Store) LinkIdentity(_ context.Context, id authcore.Identity, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return authcore.ErrNotFound
	}
	k := identKey{id.Provider, id.Subject}
	if uid, ok := s.idents[k]; ok && uid != userID {
		return authcore.ErrConflict
	}
	if uid, ok := s.unions[id.UnionID]; ok && id.UnionID != "" && uid != userID {
		return authcore.ErrConflict
	}
	if _, ok := s.idents[k]; !ok {
		s.idents[k] = userID
		s.linked[k] = linkInfo{unionID: id.UnionID, at: s.now()}
	}
	if id.UnionID != "" {
		s.unions[id.UnionID] = userID
	}
	return nil
}

// Identities implements authcore.UserStore.
func (s *Store) Identities(_ context.Context, userID string) ([]authcore.LinkedIdentity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return nil, authcore.ErrNotFound
	}
	var out []authcore.LinkedIdentity
	for k, uid := range s.idents {
		if uid != userID {
			continue
		}
		l := s.linked[k]
		out = append(out, authcore.LinkedIdentity{
			Identity: authcore.Identity{Provider: k.provider, Subject: k.subject, UnionID: l.unionID},
			LinkedAt: l.at,
		})
	}
	authcore.SortIdentities(out)
	return out, nil
}

// UnlinkIdentity implements authcore.UserStore.
func (s *Store) UnlinkIdentity(_ context.Context, id authcore.Identity, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := identKey{id.Provider, id.Subject}
	if uid, ok := s.idents[k]; !ok || uid != userID {
		return authcore.ErrNotFound
	}
	n := 0
	for _, uid := range s.idents {
		if uid == userID {
			n++
		}
	}
	if n <= 1 {
		return authcore.ErrConflict
	}
	union := s.linked[k].unionID
	delete(s.idents, k)
	delete(s.linked, k)
	if k.provider == wechatProvider {
		delete(s.keys, k.subject)
	}
	if union == "" || s.unions[union] != userID {
		return nil
	}
	for other, uid := range s.idents {
		if uid == userID && s.linked[other].unionID == union {
			return nil
		}
	}
	delete(s.unions, union)
	return nil
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
func (s *Store) PutSessionKey(_ context.Context, openid, sealed string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.sweepLocked(now)
	if !now.Before(expiresAt) {
		delete(s.keys, openid)
		return nil
	}
	s.keys[openid] = sessionKey{sealed: sealed, until: expiresAt}
	return nil
}

// SessionKey implements authcore.UserStore.
func (s *Store) SessionKey(_ context.Context, openid string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[openid]
	if !ok || !s.now().Before(k.until) {
		return "", authcore.ErrNotFound
	}
	return k.sealed, nil
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
	if w == nil || !now.Before(w.end) {
		if w == nil && len(s.counters) >= max(s.pruneAt, minPruneAt) {
			s.pruneCountersLocked(now)
		}
		if w == nil {
			w = &window{}
			s.counters[key] = w
		}
		*w = window{end: now.Add(per)}
	}
	if w.count >= limit {
		return false, w.end.Sub(now), nil
	}
	w.count++
	return true, 0, nil
}

// Limited reports, without counting an event, whether key's window (as
// Allow counts it) already holds limit events or more: then the time left
// in the window, else 0.
func (s *Store) Limited(_ context.Context, key string, limit int) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	w := s.counters[key]
	if w == nil || !now.Before(w.end) || w.count < limit {
		return 0, nil
	}
	return w.end.Sub(now), nil
}

// Forget drops key's window, as if no event had been counted in it.
func (s *Store) Forget(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.counters, key)
	s.mu.Unlock()
	return nil
}

// pruneCountersLocked drops the windows that have ended: their keys count
// from zero again anyway.
func (s *Store) pruneCountersLocked(now time.Time) {
	for k, w := range s.counters {
		if !now.Before(w.end) {
			delete(s.counters, k)
		}
	}
	s.pruneAt = 2 * len(s.counters)
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
