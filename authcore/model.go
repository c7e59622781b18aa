package authcore

import (
	"net/netip"
	"slices"
	"strings"
	"time"
)

// State is a QR ticket's state. The lifecycle is
// pending → scanned → confirmed → redeemed, with pending|scanned → cancelled
// and any state before redeemed → expired at the ticket's expiry.
type State string

// Ticket states, as they appear on the wire.
const (
	StatePending   State = "pending"
	StateScanned   State = "scanned"
	StateConfirmed State = "confirmed"
	StateRedeemed  State = "redeemed"
	StateCancelled State = "cancelled"
	StateExpired   State = "expired"
)

// Terminal reports whether no transition can leave s.
func (s State) Terminal() bool {
	return s == StateRedeemed || s == StateCancelled || s == StateExpired
}

// Requester is what the phone is shown about the desktop that asked for a
// login, before its user confirms (anti-QRLjacking).
type Requester struct {
	IP        string    `json:"ip"`
	Location  string    `json:"location"`
	Device    string    `json:"device"`
	UserAgent string    `json:"user_agent"`
	CreatedAt time.Time `json:"created_at"`
}

// Profile is the public face of a user: what a desktop may see of the
// account that scanned its QR code.
type Profile struct {
	Nickname  string `json:"nickname"`
	AvatarURL string `json:"avatar_url"`
}

// TicketRecord is a QR ticket as the store keeps it. Stores treat it as a
// value: they never hand out a pointer into their own state.
type TicketRecord struct {
	ID      string
	State   State // stored state; see View for the state as of a moment
	Version uint64
	// Trail lists the stored states in version order: Trail[v-1] is the state
	// at version v. It lets a watcher that missed versions receive each of
	// them exactly once and in order.
	Trail     []State
	ExpiresAt time.Time
	CreatedAt time.Time

	WatchSecretHash [32]byte   // SHA-256 of the watch secret; the secret itself is never stored
	DPoPJKT         string     // RFC 7638 thumbprint the redeemer must prove, if set
	ClientIP        netip.Addr // address of the creating desktop (IP binding)
	Requester       Requester

	ScannerID string  // user who scanned; owns the ticket from then on
	Scanner   Profile // that user's profile, shown to the desktop
	// Via is "" when a phone scanned the ticket; else the identity
	// provider ("qq", "oidc:corp") whose login, in the desktop's own
	// browser, confirmed it: then the desktop's session is that login's.
	Via string
}

// View is a ticket as seen at a moment: a stored state that has outlived its
// expiry reads as expired, one version later.
type View struct {
	ID        string
	State     State
	Version   uint64
	Trail     []State // Trail[v-1] is the state at version v, up to Version
	ExpiresAt time.Time
	Scanner   *Profile // set from the scanned state on
}

// ViewAt returns the record as seen at now.
func (r TicketRecord) ViewAt(now time.Time) View {
	v := View{ID: r.ID, State: r.State, Version: r.Version, ExpiresAt: r.ExpiresAt}
	v.Trail = append([]State(nil), r.Trail...)
	if r.ScannerID != "" {
		p := r.Scanner
		v.Scanner = &p
	}
	if !r.State.Terminal() && !now.Before(r.ExpiresAt) {
		v.State = StateExpired
		v.Version++
		v.Trail = append(v.Trail, StateExpired)
	}
	return v
}

// StateAt returns the state the ticket had at version n (1-based), or ""
// when n is out of range.
func (v View) StateAt(n uint64) State {
	if n == 0 || n > uint64(len(v.Trail)) {
		return ""
	}
	return v.Trail[n-1]
}

// User is an account. Users are keyed by identities (provider, subject); one
// user may have several identities.
type User struct {
	ID        string    `json:"id"`
	Nickname  string    `json:"nickname"`
	AvatarURL string    `json:"avatar_url"`
	CreatedAt time.Time `json:"-"`
}

// Identity ties a user to an account at a login provider.
type Identity struct {
	Provider string // "wechat", ...
	Subject  string // the provider's stable id (WeChat openid)
	UnionID  string // WeChat unionid, when the app is bound to an Open Platform account
}

// ProviderPhone is the provider of phone number identities (E.164
// subjects), proved by an SMS code or by WeChat's phone number API.
const ProviderPhone = "phone"

// LinkedIdentity is one of a user's identities and when it was linked.
type LinkedIdentity struct {
	Identity
	LinkedAt time.Time
}

// SessionRecord is a login session as the store keeps it. Tokens are stored
// only as SHA-256 hashes.
type SessionRecord struct {
	ID               string
	FamilyID         string // all sessions produced by refreshing one login
	UserID           string
	AccessHash       [32]byte
	RefreshHash      [32]byte
	AccessExpiresAt  time.Time
	RefreshExpiresAt time.Time
	CreatedAt        time.Time
	AMR              []string // authentication methods ("wx", "qr", "face")
	// StepUps is when the user last passed a step-up check of each method
	// (an amr: "face", "vbm") in this session; nil if never. A method in
	// it is in AMR too (MarkSessionStepUp adds both). Refreshing keeps it.
	StepUps map[string]time.Time
	// AuthTime is when the user authenticated on this device to start the
	// login family (a wx.login); zero for a desktop's session from a QR
	// redeem, where the user authenticated on their phone, not here.
	// Refreshing keeps it.
	AuthTime          time.Time
	Provider, Subject string // identity used for this login
	UnionID           string
	// What the sessions list shows of the login: the client's device id
	// (may be empty), the method (wx, sms, pwd, qr), the client address
	// masked (MaskIP; never the full address), its region, the
	// User-Agent (capped at MaxUserAgent) and when the session was last
	// used (set when its access expiry slides). Refreshing keeps all but
	// LastUsedAt.
	DeviceID, Method string
	IPMasked, Region string
	UserAgent        string
	LastUsedAt       time.Time
}

// LastAuth is when the user last proved themselves in this session: the
// latest of AuthTime and the step-up times (a passed face or voiceprint
// check renews it); zero if never on this device.
func (r SessionRecord) LastAuth() time.Time {
	last := r.AuthTime
	for _, at := range r.StepUps {
		if at.After(last) {
			last = at
		}
	}
	return last
}

// AccessRef is the store reference of the session's access token.
func (r SessionRecord) AccessRef() TokenRef {
	return TokenRef{UserID: r.UserID, Family: r.FamilyID, Hash: r.AccessHash}
}

// RefreshRef is the store reference of the session's refresh token.
func (r SessionRecord) RefreshRef() TokenRef {
	return TokenRef{UserID: r.UserID, Family: r.FamilyID, Hash: r.RefreshHash}
}

// StateMessage is a ticket's state at one version as clients see it: the
// long-poll response body, and the WebSocket event without its "ev" field.
type StateMessage struct {
	ID        string    `json:"id"`
	Version   uint64    `json:"version"`
	State     State     `json:"state"`
	ExpiresAt time.Time `json:"expires_at"`
	Scanner   *Profile  `json:"scanner,omitempty"` // from the scanned state on
}

// Message returns the message for version n of v (n <= v.Version). The
// scanner is shown only at versions whose state is past pending.
func (v View) Message(n uint64) StateMessage {
	st := v.StateAt(n)
	if st == "" && n == v.Version {
		st = v.State // a view without a trail still knows its current state
	}
	m := StateMessage{ID: v.ID, Version: n, State: st, ExpiresAt: v.ExpiresAt.UTC()}
	if v.Scanner != nil && st != StatePending {
		m.Scanner = v.Scanner
	}
	return m
}

// SortIdentities orders a user's identities as stores list them: oldest
// link first, then by provider and subject.
func SortIdentities(ids []LinkedIdentity) {
	slices.SortFunc(ids, func(a, b LinkedIdentity) int {
		if c := a.LinkedAt.Compare(b.LinkedAt); c != 0 {
			return c
		}
		if c := strings.Compare(a.Provider, b.Provider); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
}
