package wechattest

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// The kinds of single-use codes a State keeps apart: a wx.login code is
// not a getPhoneNumber code, even with the same characters.
const (
	CodeKindLogin = "login" // wx.login codes, for jscode2session
	CodeKindPhone = "phone" // getPhoneNumber codes, for getuserphonenumber
)

// The kinds of access tokens a State keeps a current one of: WeChat's two
// token APIs issue independent tokens.
const (
	TokenKindPlain  = "plain"  // /cgi-bin/token
	TokenKindStable = "stable" // /cgi-bin/stable_token
)

// tokenRetention is how long a token is remembered past its expiry, so
// that it answers 42001 (expired) rather than 40001 (unknown) meanwhile.
const tokenRetention = time.Hour

// State is what a Server remembers between requests that a client can
// see again on a later request: its users' session_keys, the codes it
// issued and the access tokens it gave out. It is a port so that every
// node of a sandbox cluster can share one (authcore/redisstore's Sandbox),
// and the nodes behind a load balancer answer as one WeChat. Everything
// else about a user (openid, unionid, phone number) is derived from the
// appid and the user's name, so it needs no state.
//
// Times are the Server's clock (SetClock), passed in: a State compares
// against them, never against a clock of its own, and uses it only to
// reclaim memory. Implementations must be safe for concurrent use; the
// Server answers WeChat's "system error" (-1) when a method fails.
type State interface {
	// SessionKey returns the session_key of user name and marks the user
	// as just used. A user it does not know (new, or forgotten to stay
	// within its bounds) gets fresh as their session_key, and openid as
	// their openid for UserByOpenID.
	SessionKey(ctx context.Context, name, openid, fresh string) (string, error)
	// SetSessionKey replaces the session_key of user name (created as in
	// SessionKey if unknown) and marks the user as just used.
	SetSessionKey(ctx context.Context, name, openid, key string) error
	// UserByOpenID returns the name of the user with openid, or "" when
	// it knows no such user.
	UserByOpenID(ctx context.Context, openid string) (string, error)

	// IssueCode records code, of kind (CodeKindLogin, CodeKindPhone), for
	// user name until expires.
	IssueCode(ctx context.Context, kind, code, name string, expires time.Time) error
	// UseCode marks code of kind used and returns its user's name, if it is
	// known, unexpired at now and unused: of concurrent calls for one code
	// at most one gets the name. Otherwise name is "", and used reports
	// whether the code was used before (rather than unknown or expired).
	UseCode(ctx context.Context, kind, code string, now time.Time) (name string, used bool, err error)

	// NewToken makes token the current access_token of kind (TokenKindPlain,
	// TokenKindStable), valid until expires, and cuts the life of the
	// token it replaces to cut if that is sooner.
	NewToken(ctx context.Context, kind, token string, expires, cut time.Time) error
	// CurrentToken returns the current access_token of kind and its
	// expiry, or "" when there is none.
	CurrentToken(ctx context.Context, kind string) (token string, expires time.Time, err error)
	// TokenExpiry returns when token expires (or expired), or the zero time
	// when it knows no such token.
	TokenExpiry(ctx context.Context, token string) (time.Time, error)

	// PutFace stores a face verification's record (opaque bytes) under
	// key, replacing any, and may forget it after until.
	PutFace(ctx context.Context, key string, record []byte, until time.Time) error
	// Face returns the record under key, or nil when there is none.
	Face(ctx context.Context, key string) ([]byte, error)
	// ClaimFace reports whether this is the first claim on verifyID: of
	// all calls for one verify_id, until, only one gets true.
	ClaimFace(ctx context.Context, verifyID string, until time.Time) (bool, error)
}

// DefaultApp returns the sandbox mini-program's appid, the same in every
// Server ("wx" and 16 hex characters), and a new random secret: what a
// Server with empty AppID and Secret uses. A cluster of sandboxes agrees
// on one secret and gives it to each Server as Secret.
func DefaultApp() (appid, secret string) {
	sum := sha256.Sum256([]byte(defaultAppIDPhrase))
	return "wx" + hex.EncodeToString(sum[:8]), hex.EncodeToString(randomBytes(16))
}

// memState is the State a Server keeps in memory when it is given none:
// at most maxUsers users, the least recently used forgotten first.
type memState struct {
	mu       sync.Mutex
	maxUsers int
	users    map[string]*list.Element // name → element of recent, whose Value is a *memUser
	recent   *list.List               // users, most recently used first
	byOpenID map[string]string        // openid → name
	codes    map[codeKey]*issuedCode
	sweepAt  int                  // sweep expired codes when len(codes) reaches this
	tokens   map[string]time.Time // access_token → expiry, both kinds
	current  map[string]string    // kind → current access_token
	faces    map[string]kept      // face records and claims ("claim:<verify_id>")
	faceAt   int                  // sweep faces when len(faces) reaches this
}

// kept is a face record or claim and when it may be forgotten.
type kept struct {
	value []byte
	until time.Time
}

type memUser struct {
	name, openid, sessionKey string
}

type codeKey struct{ kind, code string }

type issuedCode struct {
	user    string
	expires time.Time
	used    bool
}

var _ State = (*memState)(nil)

func newMemState(maxUsers int) *memState {
	if maxUsers <= 0 {
		maxUsers = DefaultMaxUsers
	}
	return &memState{
		maxUsers: maxUsers,
		users:    make(map[string]*list.Element),
		recent:   list.New(),
		byOpenID: make(map[string]string),
		codes:    make(map[codeKey]*issuedCode),
		sweepAt:  1024,
		tokens:   make(map[string]time.Time),
		current:  make(map[string]string),
		faces:    make(map[string]kept),
		faceAt:   1024,
	}
}

func (m *memState) SessionKey(_ context.Context, name, openid, fresh string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.userLocked(name, openid, fresh).sessionKey, nil
}

func (m *memState) SetSessionKey(_ context.Context, name, openid, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.userLocked(name, openid, key).sessionKey = key
	return nil
}

// userLocked returns user name, creating them (and forgetting the least
// recently used user beyond maxUsers).
func (m *memState) userLocked(name, openid, fresh string) *memUser {
	if e, ok := m.users[name]; ok {
		m.recent.MoveToFront(e)
		return e.Value.(*memUser)
	}
	u := &memUser{name: name, openid: openid, sessionKey: fresh}
	m.users[name] = m.recent.PushFront(u)
	m.byOpenID[openid] = name
	for m.recent.Len() > m.maxUsers {
		old := m.recent.Remove(m.recent.Back()).(*memUser)
		delete(m.users, old.name)
		delete(m.byOpenID, old.openid)
	}
	return u
}

func (m *memState) UserByOpenID(_ context.Context, openid string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byOpenID[openid], nil
}

// IssueCode records code and, now and then, forgets expired ones: an
// expired code answers like an unknown one, so dropping it changes nothing
// a client can see. Sweeping when the map doubles keeps it O(1) amortized.
func (m *memState) IssueCode(_ context.Context, kind, code, name string, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[codeKey{kind, code}] = &issuedCode{user: name, expires: expires}
	if len(m.codes) < m.sweepAt {
		return nil
	}
	// Codes live CodeLifetime, so one that expires sooner than that from
	// the newest is past.
	now := expires.Add(-CodeLifetime)
	for k, c := range m.codes {
		if !now.Before(c.expires) {
			delete(m.codes, k)
		}
	}
	m.sweepAt = max(1024, 2*len(m.codes))
	return nil
}

func (m *memState) UseCode(_ context.Context, kind, code string, now time.Time) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.codes[codeKey{kind, code}]
	switch {
	case !ok || !now.Before(c.expires):
		return "", false, nil
	case c.used:
		return "", true, nil
	}
	c.used = true
	return c.user, false, nil
}

func (m *memState) NewToken(_ context.Context, kind, token string, expires, cut time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Forget long-dead tokens; a fresh token's expiry is the newest clock
	// reading at hand.
	now := expires.Add(-TokenLifetime)
	for t, exp := range m.tokens {
		if now.Sub(exp) > tokenRetention {
			delete(m.tokens, t)
		}
	}
	if old := m.current[kind]; old != "" {
		if exp, ok := m.tokens[old]; ok && exp.After(cut) {
			m.tokens[old] = cut
		}
	}
	m.tokens[token] = expires
	m.current[kind] = token
	return nil
}

func (m *memState) CurrentToken(_ context.Context, kind string) (string, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := m.current[kind]
	return t, m.tokens[t], nil
}

func (m *memState) TokenExpiry(_ context.Context, token string) (time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tokens[token], nil
}

// NewMemoryState returns the State a Server keeps when given none: in
// memory, at most maxUsers users (0 means DefaultMaxUsers), the least
// recently used forgotten first.
func NewMemoryState(maxUsers int) State { return newMemState(maxUsers) }

// PutFace stores record and, when the records have doubled since the last
// sweep, forgets those past their until. Every record is kept for the same
// time from when it is put, so the newest until tells the time.
func (m *memState) PutFace(_ context.Context, key string, record []byte, until time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putFaceLocked("r:"+key, record, until)
	return nil
}

func (m *memState) putFaceLocked(key string, value []byte, until time.Time) {
	m.faces[key] = kept{value, until}
	if len(m.faces) < m.faceAt {
		return
	}
	now := until.Add(-(FaceLifetime + faceRetention))
	for k, v := range m.faces {
		if v.until.Before(now) {
			delete(m.faces, k)
		}
	}
	m.faceAt = max(1024, 2*len(m.faces))
}

func (m *memState) Face(_ context.Context, key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.faces["r:"+key].value, nil
}

func (m *memState) ClaimFace(_ context.Context, verifyID string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.faces["c:"+verifyID]; ok {
		return false, nil
	}
	m.putFaceLocked("c:"+verifyID, nil, until)
	return true, nil
}
