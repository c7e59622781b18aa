package authcore

import (
	"context"
	"time"
)

// The store ports authcore needs. Implementations: authcore/memstore (one
// process) and authcore/redisstore (Redis or Redis Cluster); both pass
// authcore/storetest, which runs every method. Every method is required and
// safe for concurrent use: a store that cannot do an operation in one step
// in some deployment does it in several, inside the store, with the same
// outcome.

// TicketStore keeps QR tickets and moves them through their states.
type TicketStore interface {
	// CreateTicket stores a new ticket (version 1, pending). It is kept until
	// rec.ExpiresAt plus retention, so that late watchers still learn that it
	// expired. It returns ErrConflict if the id exists.
	CreateTicket(ctx context.Context, rec TicketRecord, retention time.Duration) error
	// Ticket returns the stored ticket, or ErrNotFound.
	Ticket(ctx context.Context, id string) (TicketRecord, error)
	// TransitionAs is a phone's move of a ticket (scan, confirm, cancel) as
	// the user of its session: it resolves ref as PrincipalByAccess does at
	// m.Now, sliding the access expiry to m.Now + slide, and then moves the
	// ticket if it is in state m.From, has not expired at m.Now, and (see
	// PhoneMove.To) has no scanner or has the user as its scanner. Every
	// move increments the version, appends to the trail and is announced
	// to watchers (the memory store calls its Notifier; Redis publishes the
	// new ticket in the same step). It returns ErrNoSession, with the ticket
	// unchanged, if the token is not live or its user is gone, and
	// ErrNotFound if there is no ticket; otherwise the principal and the
	// ticket: the new one if it moved, else the ticket as stored, so that
	// the caller can tell why without reading it again. Two callers racing
	// for one move cannot both move the ticket.
	TransitionAs(ctx context.Context, ref TokenRef, slide time.Duration, m PhoneMove) (PhoneMoveResult, error)
	// RedeemTicket consumes a confirmed ticket that the caller has read and
	// checked: in one atomic step it moves the ticket from r.FromVersion to
	// redeemed (announced as TransitionAs announces) and stores r.Session,
	// whose user it returns. Otherwise nothing changes: ErrNotFound if the
	// ticket or the session's user is gone, ErrConflict if the version has
	// moved on or the state is terminal, ErrExpired if r.Now is at or past
	// the expiry. A ticket is redeemed at most once, under any interleaving.
	RedeemTicket(ctx context.Context, r Redemption) (User, error)
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
	// Via, with To StateScanned: the identity provider whose login in the
	// desktop's browser makes this move (TicketRecord.Via); "" for a phone.
	Via string
}

// PhoneMoveResult is what TransitionAs returns.
type PhoneMoveResult struct {
	Principal Principal    // the session's user and the session, slid
	Ticket    TicketRecord // the new ticket if Moved, else the ticket as stored
	Moved     bool
}

// Redemption is a desktop's redeem of a ticket the core has read and
// checked (RedeemTicket).
type Redemption struct {
	TicketID    string
	FromVersion uint64        // the version the core checked; any other fails with ErrConflict
	Session     SessionRecord // the new session; its UserID is the ticket's scanner
	Now         time.Time
}

// Notifier announces the record a transition wrote, at its new version.
// The memory store calls it after each transition, outside its lock, with a
// record of the callee's own; the hub's memory broker implements it and
// hands the record to watchers as it is, so that no watcher reads the
// ticket again.
type Notifier func(rec TicketRecord)

// TokenRef locates a session token in a store without the token itself:
// the user and the login family that the token names in clear (so that a
// store can keep a user's sessions beside the user, in one Redis Cluster
// slot, and find both in one step) and the SHA-256 of the whole token.
type TokenRef struct {
	UserID string
	Family string
	Hash   [32]byte
}

// SessionStore keeps login sessions, keyed by token hashes. A family has
// one live session at a time: refreshing replaces it.
type SessionStore interface {
	// CreateSession stores a new session, of a new family. It returns
	// ErrNotFound, storing nothing, if the session's user does not exist.
	CreateSession(ctx context.Context, s SessionRecord) error
	// PrincipalByAccess finds the live session of access token ref and its
	// user, and slides the session's access expiry to now+slide (never past
	// the refresh expiry). It returns ErrNotFound for unknown, revoked or
	// expired tokens, and for sessions whose user is gone.
	PrincipalByAccess(ctx context.Context, ref TokenRef, now time.Time, slide time.Duration) (Principal, error)
	// RotateRefresh consumes refresh token ref and stores next in its
	// place, in the same family. next carries new hashes, id and expiries;
	// the store copies the AMR, the face time, the auth time and the
	// identity from the old session and returns the completed record with
	// its user. A refresh token can be consumed once: presenting a consumed
	// one revokes the family and returns ErrConflict. Unknown or expired
	// tokens, and tokens whose user is gone, return ErrNotFound with
	// nothing changed.
	RotateRefresh(ctx context.Context, ref TokenRef, next SessionRecord, now time.Time) (Principal, error)
	// DeleteSession revokes the session of access token ref (and its
	// refresh token). Unknown tokens return ErrNotFound.
	DeleteSession(ctx context.Context, ref TokenRef) error
	// UserSessions returns the live sessions of user userID at now (those
	// whose refresh token has not expired), in no particular order; none
	// for an unknown user.
	UserSessions(ctx context.Context, userID string, now time.Time) ([]SessionRecord, error)
	// DeleteUserSession revokes the session of login family family if it
	// is user userID's (and the family's consumed-refresh marks). It
	// returns ErrNotFound when the user has no such session.
	DeleteUserSession(ctx context.Context, userID, family string) error
	// DeleteUserSessions revokes every session of user userID, with the
	// consumed-refresh marks, as SetPassword does with no kept family.
	DeleteUserSessions(ctx context.Context, userID string) error
}

// LoginStore keeps each user's login history beside the user: the last
// LoginsKept attempts, erased with the user.
type LoginStore interface {
	// AppendLogin records a, dropping the oldest of a.UserID's attempts
	// beyond LoginsKept. It records nothing, and returns ErrNotFound, when
	// the user does not exist.
	AppendLogin(ctx context.Context, a LoginAttempt) error
	// Logins returns user userID's most recent attempts, newest first, at
	// most limit.
	Logins(ctx context.Context, userID string, limit int) ([]LoginAttempt, error)
}

// UserStore keeps users and their identities.
type UserStore interface {
	// UpsertIdentity returns the user owning identity id, creating one with
	// the given id, profile and time if there is none. When id.UnionID is set
	// and another identity with the same unionid exists, the identity is
	// linked to that user instead. created reports whether a user was made.
	// A non-empty profile field updates the user's profile.
	UpsertIdentity(ctx context.Context, id Identity, profile Profile, newUser User) (u User, created bool, err error)
	// LinkIdentity links identity id (and its unionid, if any) to user
	// userID, recording it for the user's erasure. It returns ErrConflict,
	// changing nothing, when the identity or its unionid belongs to another
	// user; nil, changing nothing, when it is already the user's; and
	// ErrNotFound when the user does not exist. Two users linking one
	// identity at once: exactly one succeeds.
	LinkIdentity(ctx context.Context, id Identity, userID string) error
	// Identities lists the identities of user userID, oldest link first, or
	// returns ErrNotFound if there is no such user.
	Identities(ctx context.Context, userID string) ([]LinkedIdentity, error)
	// UnlinkIdentity removes identity id (provider and subject) from user
	// userID, and its unionid mapping when no other identity of the user
	// has the same unionid. It returns ErrNotFound when the identity is not
	// the user's, and ErrConflict, changing nothing, when it is the user's
	// last identity (the last way to log in).
	UnlinkIdentity(ctx context.Context, id Identity, userID string) error
	// User returns a user by id, or ErrNotFound.
	User(ctx context.Context, id string) (User, error)
	// UserByIdentity returns the user owning identity id, or ErrNotFound;
	// unlike UpsertIdentity it never makes one.
	UserByIdentity(ctx context.Context, id Identity) (User, error)
	// PutSessionKey keeps the WeChat session_key of an openid server-side,
	// sealed by the Vault (the store never sees it in clear), until
	// expiresAt; it replaces the last one of openid.
	PutSessionKey(ctx context.Context, openid, sealed string, expiresAt time.Time) error
	// SessionKey returns the last sealed session_key stored for openid, or
	// ErrNotFound when there is none or it has expired.
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
	CodeStore
	PasswordStore
	LoginStore
	OAuthStateStore
	ProviderStore
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
	// AppendAudit records one use of personal data, keeping the user's
	// last AuditKept entries. Entries carry no personal data themselves and
	// outlive the user's erasure.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// Audit returns a user's most recent entries, oldest first, at most limit.
	Audit(ctx context.Context, userID string, limit int) ([]AuditEntry, error)
	// EraseUser deletes a user and every record that names it: the user
	// record, its password hash, its identities (so the same WeChat account logs in as a new
	// user afterwards), its WeChat session keys, its personal data, every
	// session of every login family with its consumed-refresh marks, every
	// ticket it scanned (tickets carry the scanner's id and profile) and
	// its face verifications in progress, and its login history. Audit entries, which hold no
	// personal data, stay. Erasing an unknown user returns ErrNotFound.
	EraseUser(ctx context.Context, userID string) error
}

// AuditKept is how many audit entries a store keeps per user; older ones
// are dropped as new ones come.
const AuditKept = 1000

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
	Verifier  string // its name in Config.Verifiers; empty: VerifierWeChatFace
	OutSeqNo  string
	CertHash  string
	OpenID    string
	UserID    string
	Family    string    // the session family that asked (gets the verifier's amr on success)
	StartedAt time.Time // when the hub asked WeChat for the verify_id
	ExpiresAt time.Time
}

// FaceStore keeps the step-up checks in progress (FaceVerification, of
// any verifier) and marks sessions that passed one.
type FaceStore interface {
	// PutFaceVerification stores f until f.ExpiresAt.
	PutFaceVerification(ctx context.Context, f FaceVerification) error
	// TakeFaceVerification returns and deletes the verification with this
	// verify_id if it is userID's (consume once). It returns ErrNotFound
	// for an unknown or expired one, and ErrForbidden, leaving it in place,
	// for another user's: a stranger who learns a verify_id cannot void
	// its owner's check.
	TakeFaceVerification(ctx context.Context, verifyID, userID string) (FaceVerification, error)
	// MarkSessionStepUp records on the session of access token ref that
	// the user passed a step-up check of method (an amr: "face", "vbm") at
	// at: it adds method to the session's AMR once and sets
	// StepUps[method] to at, replacing an earlier time. ErrNotFound for a
	// session unknown or expired at at.
	MarkSessionStepUp(ctx context.Context, ref TokenRef, method string, at time.Time) error
}

// CodeStore keeps the one-time codes sent by SMS: at most one live code
// per phone number and purpose, so that a code sent through one node is
// checked on any other.
type CodeStore interface {
	// PutCode stores c as the live code of c.Phone and c.Purpose until
	// c.ExpiresAt, replacing an earlier one (which stops working).
	PutCode(ctx context.Context, c OneTimeCode) error
	// CheckCode tries hash against the live code of phone and purpose at
	// now, in one atomic step: a match consumes the code and reports true;
	// a mismatch spends one of its tries and voids the code when none are
	// left. It reports false, changing nothing, when there is no live code
	// (none, used, voided or expired). Of concurrent callers presenting the
	// right code, exactly one gets true.
	CheckCode(ctx context.Context, phone, purpose string, hash [32]byte, now time.Time) (bool, error)
}

// OneTimeCode is a code as a CodeStore keeps it: only its hash.
type OneTimeCode struct {
	Phone     string // E.164
	Purpose   string // "login", ...
	Hash      [32]byte
	ExpiresAt time.Time
	Tries     int // wrong tries allowed; the last one voids the code
}

// PasswordStore keeps users' password hashes (PHC strings; the store never
// sees a password), one per user, beside the user.
type PasswordStore interface {
	// PasswordHash returns the password hash of user userID, or ErrNotFound
	// when it has none (or there is no such user).
	PasswordHash(ctx context.Context, userID string) (string, error)
	// SetPassword replaces the password hash of c.UserID with c.New if the
	// stored one is c.Old ("": the user must have none), and in the same
	// atomic step revokes every session of the user (with its
	// consumed-refresh marks) except those of login family c.KeepFamily.
	// It returns ErrConflict, changing nothing, when the stored hash is not
	// c.Old, and ErrNotFound when the user does not exist.
	SetPassword(ctx context.Context, c PasswordChange) error
}

// PasswordChange is a compare-and-set of a user's password hash.
type PasswordChange struct {
	UserID     string
	Old, New   string // PHC strings; Old "" when none is set
	KeepFamily string // the login family whose sessions survive (the caller's)
}
