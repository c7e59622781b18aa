package authcore

import (
	"context"
	"net/netip"
	"time"
)

// The store ports authcore needs. Implementations: authcore/memstore (one
// process) and, later, a Redis store; both must pass authcore/storetest.
// Every method is safe for concurrent use.

// TicketStore keeps QR tickets.
type TicketStore interface {
	// CreateTicket stores a new ticket (version 1, pending). It is kept until
	// rec.ExpiresAt plus retention, so that late watchers still learn that it
	// expired. It returns a KindConflict error if the id exists.
	CreateTicket(ctx context.Context, rec TicketRecord, retention time.Duration) error
	// Ticket returns the stored ticket, or ErrNotFound.
	Ticket(ctx context.Context, id string) (TicketRecord, error)
	// Transition atomically moves a ticket from t.FromVersion to t.To,
	// increments its version, appends to its trail and announces the change
	// to watchers (the memory store calls its notify function with the new
	// version; Redis publishes the new record in the same script). It
	// returns the new record, or ErrNotFound, ErrConflict (version moved
	// on) or ErrExpired (t.Now is at or past the expiry). A transition
	// either fully happens or not at all; two callers with the same
	// FromVersion cannot both win.
	Transition(ctx context.Context, t Transition) (TicketRecord, error)
	// TransitionFrom is Transition conditioned on what the ticket is rather
	// than on a version the caller read: it atomically moves a ticket that
	// is in state t.From, whose scanner is t.Owner ("" for none) and that
	// has not expired at t.Now, to t.To, announcing it like Transition;
	// moved is true and rec is the new record. Otherwise nothing changes,
	// moved is false and rec is the ticket as stored, so that the caller can
	// tell why without reading it again: one round trip for a phone's scan,
	// confirm or cancel however other callers race it. It returns ErrNotFound
	// if there is no ticket.
	TransitionFrom(ctx context.Context, t StateTransition) (rec TicketRecord, moved bool, err error)
}

// Transition is one compare-and-set on a ticket.
type Transition struct {
	ID          string
	FromVersion uint64 // the version the caller read; any other fails with ErrConflict
	To          State
	ScannerID   string  // written when To is StateScanned
	Scanner     Profile // written when To is StateScanned
	Now         time.Time
}

// StateTransition is one transition that requires a state and an owner.
type StateTransition struct {
	ID        string
	From      State  // the state the ticket must be in (never a terminal one)
	Owner     string // the ScannerID the ticket must have; "" for none
	To        State
	ScannerID string  // written when To is StateScanned
	Scanner   Profile // written when To is StateScanned
	Now       time.Time
}

// Notifier announces the record a transition wrote, at its new version.
// The memory store calls it after each transition, outside its lock, with a
// record of the callee's own; the hub's memory broker implements it and
// hands the record to watchers as it is, so that no watcher reads the
// ticket again.
type Notifier func(rec TicketRecord)

// TokenRef locates a session token in a store without the token itself:
// the family id the token carries in clear (so that every session of one
// login family can live together, in one Redis Cluster slot) and the
// SHA-256 of the whole token.
type TokenRef struct {
	Family string
	Hash   [32]byte
}

// SessionStore keeps login sessions, keyed by token hashes.
type SessionStore interface {
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s SessionRecord) error
	// SessionByAccess finds the live session of access token ref, and
	// slides its access expiry to now+slide (never past the refresh
	// expiry). It returns ErrNotFound for unknown, revoked or expired tokens.
	SessionByAccess(ctx context.Context, ref TokenRef, now time.Time, slide time.Duration) (SessionRecord, error)
	// RotateRefresh consumes refresh token ref and stores next in its
	// place, in the same family. next carries new hashes, id and expiries;
	// the store copies UserID, AMR and identity from the old session and
	// returns the completed record. A refresh token can be consumed once:
	// presenting a consumed one revokes every session of its family and
	// returns ErrConflict. Unknown or expired tokens return ErrNotFound.
	RotateRefresh(ctx context.Context, ref TokenRef, next SessionRecord, now time.Time) (SessionRecord, error)
	// DeleteSession revokes the session of access token ref (and its
	// refresh token). Unknown tokens return ErrNotFound.
	DeleteSession(ctx context.Context, ref TokenRef) error
}

// PrincipalStore is what a store may add to SessionStore and UserStore:
// SessionByAccess and the read of the session's user in one call, which
// Authenticate, run on every authenticated request, prefers. A store that
// cannot do it in some deployment (Redis Cluster, where the two live in
// different slots) returns errors.ErrUnsupported, and the core makes the
// two calls.
type PrincipalStore interface {
	// PrincipalByAccess is SessionByAccess followed by User of the
	// session's user: ErrNotFound if the token is not live or its user is
	// gone.
	PrincipalByAccess(ctx context.Context, ref TokenRef, now time.Time, slide time.Duration) (SessionRecord, User, error)
}

// RedeemStore is what a store may add to TicketStore, SessionStore and
// UserStore: a redeem's writes in one atomic call, which Redeem prefers
// (one round trip instead of two, and no session to revoke when the
// ticket has moved on). A store that cannot do it in some deployment
// (Redis Cluster, where the ticket, the session and the user live in
// different slots) returns errors.ErrUnsupported, and the core makes the
// calls one by one.
type RedeemStore interface {
	// RedeemTicket applies t as Transition does and, in the same step,
	// stores rec, whose user it returns. With nothing changed: ErrNotFound
	// if rec.UserID's user or the ticket is gone, and Transition's
	// ErrConflict and ErrExpired.
	RedeemTicket(ctx context.Context, t Transition, rec SessionRecord) (TicketRecord, User, error)
}

// RedeemCheck is what a desktop's redeem presents: a CheckedRedeemStore
// applies the core's checks to the ticket it reads with it.
type RedeemCheck struct {
	ID         string
	SecretHash [32]byte // SHA-256 of the watch secret presented
	Client     netip.Addr
	Binding    IPBinding
	Now        time.Time
}

// CheckedRedeemStore is what a store may add to RedeemStore: a redeem
// that reads the ticket, checks it and moves it in one call, which Redeem
// prefers when the request carries no DPoP proof (one round trip instead
// of two). A store that cannot do it in some deployment returns
// errors.ErrUnsupported, and the core reads the ticket first.
type CheckedRedeemStore interface {
	// RedeemIfAllowed redeems ticket c.ID if it is confirmed, has not
	// expired, is not bound to a DPoP key, has c.SecretHash as its watch
	// secret's hash, and c.Binding allows c.Client for it. Then, in the
	// same step, it stores rec with the ticket's scanner as its user, and
	// returns the new ticket, that user and true. Otherwise, with nothing
	// changed, it returns the ticket as it is and false, and the core
	// decides from that record what to answer; it may refuse a ticket that
	// the core would accept, never the reverse. ErrNotFound, with nothing
	// changed, if the ticket or its scanner's user is gone.
	RedeemIfAllowed(ctx context.Context, c RedeemCheck, rec SessionRecord) (TicketRecord, User, bool, error)
}

// PhoneMove is a move a phone makes on a ticket as the user of its
// session (scan, confirm, cancel).
type PhoneMove struct {
	ID   string
	From State // the state the ticket must be in (never a terminal one)
	// To is the new state. StateScanned: the ticket must have no scanner,
	// and the user and their profile become it. Any other: the ticket's
	// scanner must be the user.
	To  State
	Now time.Time
}

// As returns m as a StateTransition made by u.
func (m PhoneMove) As(u User) StateTransition {
	t := StateTransition{ID: m.ID, From: m.From, To: m.To, Now: m.Now}
	if m.To == StateScanned {
		t.ScannerID, t.Scanner = u.ID, Profile{Nickname: u.Nickname, AvatarURL: u.AvatarURL}
	} else {
		t.Owner = u.ID
	}
	return t
}

// PhoneTransitionStore is what a store may add to TicketStore,
// SessionStore and UserStore: a phone's authentication and its move of a
// ticket in one call, which Scan, Confirm and Cancel prefer (one round trip
// instead of two on Redis, for every scan and every confirmation). A store
// that cannot do it in some deployment (Redis Cluster, where the session,
// the user and the ticket live in different slots) returns
// errors.ErrUnsupported, and the core authenticates first and calls
// TransitionFrom second.
type PhoneTransitionStore interface {
	// TransitionAs resolves ref as PrincipalByAccess does at m.Now,
	// sliding the session's access expiry to m.Now + slide, and then makes
	// m as TransitionFrom makes a StateTransition, as the session's user.
	// It returns ErrNoSession, with the ticket unchanged, if the token is
	// not live or its user is gone; otherwise the principal, and what
	// TransitionFrom returns.
	TransitionAs(ctx context.Context, ref TokenRef, slide time.Duration, m PhoneMove) (Principal, TicketRecord, bool, error)
}

// UserStore keeps users and their identities.
type UserStore interface {
	// UpsertIdentity returns the user owning identity id, creating one with
	// the given id, profile and time if there is none. When id.UnionID is set
	// and another identity with the same unionid exists, the identity is
	// linked to that user instead. created reports whether a user was made.
	// A non-empty profile field updates the user's profile.
	UpsertIdentity(ctx context.Context, id Identity, profile Profile, newUser User) (u User, created bool, err error)
	// User returns a user by id, or ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// PutSessionKey keeps the WeChat session_key of an openid server-side.
	PutSessionKey(ctx context.Context, openid, sessionKey string) error
	// SessionKey returns the last session_key stored for openid, or ErrNotFound.
	SessionKey(ctx context.Context, openid string) (string, error)
}

// ReplayCache remembers one-time values (DPoP jti) for a while.
type ReplayCache interface {
	// FirstUse records key for ttl and reports whether it was not already
	// recorded. Concurrent callers with the same key: exactly one gets true.
	FirstUse(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Store is everything authcore keeps, plus a health check.
type Store interface {
	TicketStore
	SessionStore
	UserStore
	ReplayCache
	PersonalDataStore
	FaceStore
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
}

// PersonalDataStore keeps users' personal data, sealed by the Vault (the
// store never sees clear values), and the audit trail of its use.
type PersonalDataStore interface {
	// PutPersonalData sets a user's field to a sealed value; "" deletes it.
	PutPersonalData(ctx context.Context, userID, field, sealed string) error
	// PersonalData returns every field of a user (an empty map if none).
	PersonalData(ctx context.Context, userID string) (map[string]string, error)
	// AppendAudit records one use of personal data. Entries carry no
	// personal data themselves and outlive the user's erasure.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// Audit returns a user's most recent entries, oldest first, at most limit.
	Audit(ctx context.Context, userID string, limit int) ([]AuditEntry, error)
	// EraseUser deletes a user: the user record, its identities (so the
	// same WeChat account logs in as a new user afterwards), its WeChat
	// session keys and its personal data. Sessions of an erased user no
	// longer authenticate (the core finds no user). Audit entries stay.
	// Erasing an unknown user returns ErrNotFound.
	EraseUser(ctx context.Context, userID string) error
}

// AuditEntry says who used which personal data of a user, when and why.
type AuditEntry struct {
	Time      time.Time `json:"time"`
	UserID    string    `json:"user_id"`
	Actor     string    `json:"actor"`   // who: "user", "system", or an operator id
	Action    string    `json:"action"`  // "collect", "decrypt", "disclose", "export", "erase"
	Field     string    `json:"field"`   // "phone", "id_number", ...
	Purpose   string    `json:"purpose"` // why, in words
	RequestID string    `json:"request_id,omitempty"`
}

// FaceVerification is a face check in progress: created when the phone
// asks for a verify_id, read when it reports the result. The ID number is
// not in it; only the hash WeChat needs to tie the result to it.
type FaceVerification struct {
	VerifyID  string
	OutSeqNo  string
	CertHash  string
	OpenID    string
	UserID    string
	Family    string // the session family that asked (gets amr "face" on success)
	ExpiresAt time.Time
}

// FaceStore keeps face verifications in progress and marks sessions
// that passed one.
type FaceStore interface {
	// PutFaceVerification stores f until f.ExpiresAt.
	PutFaceVerification(ctx context.Context, f FaceVerification) error
	// TakeFaceVerification returns and deletes the verification with this
	// verify_id (consume once), or ErrNotFound.
	TakeFaceVerification(ctx context.Context, verifyID string) (FaceVerification, error)
	// MarkSessionFace records on the session of access token ref that the
	// user passed a face check at at (adds "face" to its AMR, sets FaceAt).
	// ErrNotFound for an unknown or expired session.
	MarkSessionFace(ctx context.Context, ref TokenRef, at time.Time) error
}
