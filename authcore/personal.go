package authcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DataExport is everything loginhub keeps about a user, in clear, for the
// user's own eyes (GET /v1/me/data): the right of access (PIPL art. 45,
// GDPR art. 15).
type DataExport struct {
	User       SessionUser       `json:"user"`
	Personal   map[string]any    `json:"personal_data"`
	Audit      []AuditEntry      `json:"audit"`
	ExportedAt time.Time         `json:"exported_at"`
	Session    SessionFacts      `json:"session"`
	Notes      map[string]string `json:"notes,omitempty"`
}

// SessionFacts says how the current session was authenticated.
type SessionFacts struct {
	AMR []string `json:"amr"`
	// FaceAt is when the session last passed a face check (StepUps["face"]).
	FaceAt *time.Time `json:"face_at,omitempty"`
	// StepUps is when the session last passed a step-up check of each
	// method (amr: "face", "vbm", ...), in UTC; absent if never.
	StepUps map[string]time.Time `json:"step_ups,omitempty"`
	// AuthTime is when the user last authenticated on this device (a
	// wx.login, or a face check after it); absent for a desktop's session
	// from a QR scan, whose user authenticated on the phone.
	AuthTime *time.Time `json:"auth_time,omitempty"`
}

// Facts returns how p's session was authenticated.
func (p Principal) Facts() SessionFacts {
	f := SessionFacts{AMR: p.Session.AMR}
	if f.AMR == nil {
		f.AMR = []string{}
	}
	for method, at := range p.Session.StepUps {
		if at.IsZero() {
			continue
		}
		if f.StepUps == nil {
			f.StepUps = make(map[string]time.Time, len(p.Session.StepUps))
		}
		f.StepUps[method] = at.UTC()
		if method == MethodFace {
			t := at.UTC()
			f.FaceAt = &t
		}
	}
	if at := p.Session.LastAuth(); !at.IsZero() {
		t := at.UTC()
		f.AuthTime = &t
	}
	return f
}

// RecentLoginMaxAge is how long after authenticating a session may do
// sensitive operations (the API contract's recent-login rule).
const RecentLoginMaxAge = 5 * time.Minute

// RequireRecentLogin allows a sensitive operation (reading personal data
// in clear, erasing the account) only to a session whose user
// authenticated on this device within RecentLoginMaxAge: a stolen or
// long-lived token alone does not do it. A desktop's session from a QR
// scan never passes, however fresh: its user authenticated on the phone,
// and the desktop can prove nothing itself. Errors: KindStepUpRequired,
// with the ways this session can renew its authentication.
func (s *Service) RequireRecentLogin(p Principal) error {
	if at := p.Session.LastAuth(); !at.IsZero() && s.now().Sub(at) <= RecentLoginMaxAge {
		return nil
	}
	if p.Session.Provider == ProviderPhone && p.Session.Subject != "" && s.sms != nil {
		return &Error{Kind: KindStepUpRequired, StepUp: &StepUp{Methods: []string{"sms"}},
			Message: "this needs a login within the last 5 minutes: log in again with an SMS code"}
	}
	if p.Session.Provider == ProviderPassword && p.Session.Subject != "" {
		return &Error{Kind: KindStepUpRequired, StepUp: &StepUp{Methods: []string{"pwd"}},
			Message: "this needs a login within the last 5 minutes: log in again with your password"}
	}
	if p.Session.Provider != "wechat" || p.Session.Subject == "" {
		return &Error{Kind: KindStepUpRequired, StepUp: &StepUp{Methods: []string{}},
			Message: "a session from a QR scan cannot do this; do it in the mini-program, on the phone"}
	}
	methods := append([]string{"wx"}, s.stepUpMethodsFor(p)...)
	return &Error{Kind: KindStepUpRequired, StepUp: &StepUp{Methods: methods},
		Message: "this needs a login within the last 5 minutes: log in again with wx.login, or pass a step-up check"}
}

// ExportMyData returns the caller's data, opening the sealed fields; the
// disclosure itself is audited. It needs a recent login
// (RequireRecentLogin). Errors: KindStepUpRequired.
func (s *Service) ExportMyData(ctx context.Context, p Principal, requestID string) (DataExport, error) {
	if err := s.RequireRecentLogin(p); err != nil {
		return DataExport{}, err
	}
	sealed, err := s.store.PersonalData(ctx, p.User.ID)
	if err != nil {
		return DataExport{}, fmt.Errorf("export: %w", err)
	}
	out := DataExport{User: p.SessionUser(), Personal: map[string]any{}, ExportedAt: s.now().UTC(), Session: p.Facts()}
	for field, v := range sealed {
		plain, err := s.vault.Open(p.User.ID, field, v)
		if err != nil {
			// A key rotated out too early: say so rather than fail the export.
			s.log.ErrorContext(ctx, "export: sealed field does not open", "field", field, "err", err)
			out.Personal[field] = "(unreadable: encrypted under a retired data key)"
			continue
		}
		var structured any
		if json.Unmarshal([]byte(plain), &structured) == nil {
			out.Personal[field] = structured
		} else {
			out.Personal[field] = plain
		}
		s.audit(ctx, AuditEntry{UserID: p.User.ID, Actor: "user", Action: "export", Field: field, Purpose: "the user's own data export", RequestID: requestID})
	}
	if out.Audit, err = s.store.Audit(ctx, p.User.ID, AuditKept); err != nil {
		return DataExport{}, fmt.Errorf("export: audit: %w", err)
	}
	return out, nil
}

// EraseMyData deletes the caller's account and personal data (the right
// to erasure) and revokes the calling session. Audit entries, which hold
// no personal data, stay as the record that it happened. It needs a
// recent login (RequireRecentLogin). Errors: KindStepUpRequired.
func (s *Service) EraseMyData(ctx context.Context, p Principal, requestID string) error {
	if err := s.RequireRecentLogin(p); err != nil {
		return err
	}
	s.audit(ctx, AuditEntry{UserID: p.User.ID, Actor: "user", Action: "erase", Field: "*", Purpose: "the user asked to delete their data", RequestID: requestID})
	if err := s.store.EraseUser(ctx, p.User.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("erase: %w", err)
	}
	if err := s.store.DeleteSession(ctx, p.Session.AccessRef()); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("erase: revoke session: %w", err)
	}
	return nil
}
