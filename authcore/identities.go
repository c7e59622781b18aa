package authcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// IdentityView is one of the caller's identities as the API shows it: a
// phone's subject masked.
type IdentityView struct {
	Provider string    `json:"provider"`
	Subject  string    `json:"subject"`
	UnionID  string    `json:"unionid,omitempty"`
	LinkedAt time.Time `json:"linked_at"`
}

// IdentityList is the answer of GET /v1/me/identities and of every link
// and unlink: the caller's identities afterwards, oldest link first.
type IdentityList struct {
	Identities []IdentityView `json:"identities"`
}

// MyIdentities lists the caller's identities.
func (s *Service) MyIdentities(ctx context.Context, p Principal) (IdentityList, error) {
	ids, err := s.store.Identities(ctx, p.User.ID)
	if errors.Is(err, ErrNotFound) {
		return IdentityList{}, ErrNoSession
	}
	if err != nil {
		return IdentityList{}, fmt.Errorf("identities: %w", err)
	}
	out := IdentityList{Identities: make([]IdentityView, 0, len(ids))}
	for _, id := range ids {
		subject := id.Subject
		if id.Provider == ProviderPhone {
			subject = MaskE164(subject)
		}
		out.Identities = append(out.Identities, IdentityView{
			Provider: id.Provider, Subject: subject, UnionID: id.UnionID, LinkedAt: id.LinkedAt.UTC(),
		})
	}
	return out, nil
}

// LinkWeChat links the WeChat identity of a fresh wx.login code (and its
// unionid) to the caller, who must have logged in recently. Errors:
// KindStepUpRequired, KindInvalid, KindUnauthorized (bad or used code),
// KindConflict (the WeChat account is another user's), KindRateLimited,
// KindUpstreamUnavailable.
func (s *Service) LinkWeChat(ctx context.Context, p Principal, code string) (IdentityList, error) {
	if err := s.RequireRecentLogin(p); err != nil {
		return IdentityList{}, err
	}
	if code == "" {
		return IdentityList{}, Errorf(KindInvalid, "code is required")
	}
	if s.wechat == nil {
		return IdentityList{}, Errorf(KindUpstreamUnavailable, "WeChat login is not configured")
	}
	ws, err := s.wechat.Code2Session(ctx, code)
	if err != nil {
		return IdentityList{}, err
	}
	id := Identity{Provider: "wechat", Subject: ws.OpenID, UnionID: ws.UnionID}
	if err := s.link(ctx, p, id, "this WeChat account belongs to another account; log in with it and unlink it there first"); err != nil {
		return IdentityList{}, err
	}
	return s.MyIdentities(ctx, p)
}

// LinkPhone links a number to the caller, proven by an SMS code sent for
// purpose "bind"; the caller must have logged in recently. Errors:
// KindStepUpRequired, KindNotFound (SMS disabled), KindInvalid,
// KindUnauthorized (wrong, used, void or expired code), KindConflict (the
// number is another user's).
func (s *Service) LinkPhone(ctx context.Context, p Principal, phone, code string) (IdentityList, error) {
	if err := s.RequireRecentLogin(p); err != nil {
		return IdentityList{}, err
	}
	if s.sms == nil {
		return IdentityList{}, errSMSDisabled
	}
	phone, err := NormalizePhone(phone)
	if err != nil {
		return IdentityList{}, err
	}
	if len(code) != smsCodeDigits || !isDigits(code) {
		return IdentityList{}, Errorf(KindInvalid, "code must be %d digits", smsCodeDigits)
	}
	ok, err := s.store.CheckCode(ctx, phone, PurposeBind, codeHash(phone, PurposeBind, code), s.now())
	if err != nil {
		return IdentityList{}, fmt.Errorf("link phone: %w", err)
	}
	if !ok {
		s.log.InfoContext(ctx, "phone link refused: code", slog.String("phone", MaskE164(phone)))
		return IdentityList{}, Errorf(KindUnauthorized, "wrong or expired code")
	}
	if err := s.link(ctx, p, Identity{Provider: ProviderPhone, Subject: phone}, phoneTaken(phone)); err != nil {
		return IdentityList{}, err
	}
	return s.MyIdentities(ctx, p)
}

// phoneTaken is the conflict message of a number that is another user's.
func phoneTaken(phone string) string {
	return "the number " + MaskE164(phone) + " belongs to another account; log in with it and unlink it there first"
}

// link links id to the caller; conflict is the message when it is another
// user's.
func (s *Service) link(ctx context.Context, p Principal, id Identity, conflict string) error {
	err := s.store.LinkIdentity(ctx, id, p.User.ID)
	switch {
	case errors.Is(err, ErrConflict):
		s.log.InfoContext(ctx, "identity link refused: another user's", "user", p.User.ID, "provider", id.Provider)
		return Errorf(KindConflict, "%s", conflict)
	case errors.Is(err, ErrNotFound):
		return ErrNoSession
	case err != nil:
		return fmt.Errorf("link %s identity: %w", id.Provider, err)
	}
	s.log.InfoContext(ctx, "identity linked", "user", p.User.ID, "provider", id.Provider)
	return nil
}

// validProvider reports whether name may be an identity provider's name:
// a-z, 0-9, '_' and, for "oidc:<name>", one ':'.
func validProvider(name string) bool {
	if name == "" || len(name) > 64 || strings.Count(name, ":") > 1 {
		return false
	}
	if rest, ok := strings.CutPrefix(name, "oidc:"); ok {
		name = rest
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return name != ""
}

// UnlinkIdentities removes the caller's identities of provider (for
// "wechat", the openid of this hub's mini-program; a user has one
// identity per provider in practice), who must have logged in recently.
// Errors: KindStepUpRequired, KindInvalid, KindNotFound (no identity of
// that provider), KindConflict (they are the user's last way to log in).
func (s *Service) UnlinkIdentities(ctx context.Context, p Principal, provider string) (IdentityList, error) {
	if err := s.RequireRecentLogin(p); err != nil {
		return IdentityList{}, err
	}
	if !validProvider(provider) {
		return IdentityList{}, Errorf(KindInvalid, "unknown provider")
	}
	ids, err := s.store.Identities(ctx, p.User.ID)
	if errors.Is(err, ErrNotFound) {
		return IdentityList{}, ErrNoSession
	}
	if err != nil {
		return IdentityList{}, fmt.Errorf("unlink: %w", err)
	}
	var gone []Identity
	for _, id := range ids {
		if id.Provider == provider {
			gone = append(gone, id.Identity)
		}
	}
	switch {
	case len(gone) == 0:
		return IdentityList{}, Errorf(KindNotFound, "no %s identity is linked to this account", provider)
	case len(gone) == len(ids):
		return IdentityList{}, errLastIdentity
	}
	for _, id := range gone {
		err := s.store.UnlinkIdentity(ctx, id, p.User.ID)
		switch {
		case errors.Is(err, ErrConflict):
			return IdentityList{}, errLastIdentity
		case errors.Is(err, ErrNotFound):
			// Unlinked meanwhile.
		case err != nil:
			return IdentityList{}, fmt.Errorf("unlink %s identity: %w", provider, err)
		}
	}
	s.log.InfoContext(ctx, "identity unlinked", "user", p.User.ID, "provider", provider)
	return s.MyIdentities(ctx, p)
}

var errLastIdentity = Errorf(KindConflict, "this is the account's last way to log in; link another first")
