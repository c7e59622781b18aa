package authcore

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// MaxUserAgent is the most bytes of a User-Agent a session keeps.
const MaxUserAgent = 256

// LoginsKept is how many login attempts a store keeps per user; older
// ones are dropped as new ones come.
const LoginsKept = 50

// Login methods, as sessions and the login history name them.
const (
	MethodWx  = "wx"
	MethodSMS = "sms"
	MethodPwd = "pwd"
	MethodQR  = "qr"
)

// Login outcomes, as the login history names them.
const (
	OutcomeOK     = "ok"
	OutcomeStepUp = "step_up"
	OutcomeFailed = "failed"
)

// LoginAttempt is one login of a user, as the login history keeps it: no
// full address, only its masked form and region.
type LoginAttempt struct {
	UserID   string    `json:"-"`
	At       time.Time `json:"at"`
	Method   string    `json:"method"`
	Outcome  string    `json:"outcome"`
	IPMasked string    `json:"ip_masked"`
	Region   string    `json:"region"`
	DeviceID string    `json:"device_id"`
}

// Client is what a login knows of the client that made it.
type Client struct {
	IP        netip.Addr
	UserAgent string
	DeviceID  string // optional; 16-64 URL-safe characters
}

// checkClient returns KindInvalid for a malformed device id.
func checkClient(c Client) error {
	if c.DeviceID != "" && !ValidDeviceID(c.DeviceID) {
		return Errorf(KindInvalid, "device_id must be 16-64 URL-safe characters")
	}
	return nil
}

// MaskIP is an address as the sessions list and the login history show
// it: an IPv4 address with its last byte hidden ("203.0.113.*"), an IPv6
// address as its /64 ("2001:db8:1:2::/64"); "" for no address.
func MaskIP(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.*", b[0], b[1], b[2])
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}

// attempt is a login attempt of user userID by client c.
func (s *Service) attempt(userID, method, outcome string, c Client) LoginAttempt {
	return LoginAttempt{UserID: userID, At: s.now().UTC(), Method: method, Outcome: outcome,
		IPMasked: MaskIP(c.IP), Region: s.regions.Region(c.IP), DeviceID: c.DeviceID}
}

// recordLogin appends a to its user's login history. A failure to record
// is logged, not the login's failure: the history is for the user to read,
// not a gate.
func (s *Service) recordLogin(ctx context.Context, a LoginAttempt) {
	if err := s.store.AppendLogin(ctx, a); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.WarnContext(ctx, "login history not recorded", "user", a.UserID, "err", err)
	}
}

// SessionInfo is a session as GET /v1/me/sessions shows it; ID is its
// public id (its login family's id, which refreshing keeps).
type SessionInfo struct {
	ID         string    `json:"id"`
	Method     string    `json:"method"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	IPMasked   string    `json:"ip_masked"`
	Region     string    `json:"region"`
	DeviceID   string    `json:"device_id"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

// MySessions lists the live sessions of p's user, the newest login first,
// marking p's own.
func (s *Service) MySessions(ctx context.Context, p Principal) ([]SessionInfo, error) {
	recs, err := s.store.UserSessions(ctx, p.User.ID, s.now())
	if err != nil {
		return nil, fmt.Errorf("my sessions: %w", err)
	}
	out := make([]SessionInfo, 0, len(recs))
	for _, r := range recs {
		last := r.LastUsedAt
		if last.IsZero() {
			last = r.CreatedAt
		}
		out = append(out, SessionInfo{ID: r.FamilyID, Method: r.Method, CreatedAt: r.CreatedAt.UTC(), LastUsedAt: last.UTC(),
			IPMasked: r.IPMasked, Region: r.Region, DeviceID: r.DeviceID, UserAgent: r.UserAgent,
			Current: r.FamilyID == p.Session.FamilyID})
	}
	slices.SortStableFunc(out, func(a, b SessionInfo) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// RevokeMySession revokes the session whose public id is id, if it is p's
// user's. Errors: KindNotFound.
func (s *Service) RevokeMySession(ctx context.Context, p Principal, id string) error {
	if !plausibleTicketID(id) {
		return Errorf(KindNotFound, "no such session")
	}
	err := s.store.DeleteUserSession(ctx, p.User.ID, id)
	if errors.Is(err, ErrNotFound) {
		return Errorf(KindNotFound, "no such session")
	}
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	s.revokeGrants(ctx, p.User.ID, id)
	return nil
}

// LogoutAll revokes every session of p's user, p's own too.
func (s *Service) LogoutAll(ctx context.Context, p Principal) error {
	families := s.sessionFamilies(ctx, p.User.ID, "")
	if err := s.store.DeleteUserSessions(ctx, p.User.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("logout all: %w", err)
	}
	s.revokeGrants(ctx, p.User.ID, families...)
	return nil
}

// MyLogins returns the last LoginsKept login attempts of p's user, newest
// first.
func (s *Service) MyLogins(ctx context.Context, p Principal) ([]LoginAttempt, error) {
	l, err := s.store.Logins(ctx, p.User.ID, LoginsKept)
	if err != nil {
		return nil, fmt.Errorf("my logins: %w", err)
	}
	if l == nil {
		l = []LoginAttempt{}
	}
	return l, nil
}
