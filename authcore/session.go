package authcore

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// A token is "<prefix><user id>.<family id>.<32 random bytes, base64url>".
// The prefix makes leaked tokens easy to recognise (secret scanners, log
// reviews) and tells access from refresh tokens; the user and family ids
// let a store keep a user's sessions beside the user (one Redis Cluster
// slot) and find the session and its user in one step. Only the token's
// SHA-256 is stored.
const (
	accessPrefix  = "lha_"
	refreshPrefix = "lhr_"
	maxTokenLen   = 160
)

// newToken returns a fresh token of user's family and its store reference.
func newToken(prefix, userID, family string) (string, TokenRef) {
	tok := randomToken(prefix + userID + "." + family + ".")
	return tok, TokenRef{UserID: userID, Family: family, Hash: sha256.Sum256([]byte(tok))}
}

// parseToken checks a token's shape and returns its store reference.
func parseToken(tok, prefix string) (TokenRef, bool) {
	rest, ok := strings.CutPrefix(tok, prefix)
	if !ok || len(tok) > maxTokenLen {
		return TokenRef{}, false
	}
	user, rest, ok1 := strings.Cut(rest, ".")
	family, _, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !plausibleUserID(user) || !plausibleTicketID(family) {
		return TokenRef{}, false
	}
	return TokenRef{UserID: user, Family: family, Hash: sha256.Sum256([]byte(tok))}, true
}

// TokenSession returns the user id and the session family that a
// well-formed access or refresh token names, without verifying it (for
// rate limits; Authenticate and Refresh verify tokens).
func TokenSession(token string) (userID, family string, ok bool) {
	ref, ok := parseToken(token, accessPrefix)
	if !ok {
		ref, ok = parseToken(token, refreshPrefix)
	}
	return ref.UserID, ref.Family, ok
}

// SessionUser is the user part of a session or of /v1/me: the profile plus
// what the login method knows.
type SessionUser struct {
	ID        string `json:"id"`
	Nickname  string `json:"nickname"`
	AvatarURL string `json:"avatar_url"`
	OpenID    string `json:"openid,omitempty"`
	UnionID   string `json:"unionid,omitempty"`
	// PhoneMasked is the number of a session from an SMS login, masked
	// ("+86 138****5678").
	PhoneMasked string `json:"phone_masked,omitempty"`
	IsNew       *bool  `json:"is_new,omitempty"`
}

// Session is an issued session, as the API returns it.
type Session struct {
	AccessToken  string      `json:"access_token"`
	RefreshToken string      `json:"refresh_token"`
	TokenType    string      `json:"token_type"`
	ExpiresIn    int         `json:"expires_in"`
	User         SessionUser `json:"user"`
}

// Principal is an authenticated caller.
type Principal struct {
	User    User
	Session SessionRecord
}

// SessionUser returns what /v1/me shows of p.
func (p Principal) SessionUser() SessionUser {
	return sessionUser(p.User, p.Session, nil)
}

func sessionUser(u User, rec SessionRecord, isNew *bool) SessionUser {
	su := SessionUser{ID: u.ID, Nickname: u.Nickname, AvatarURL: u.AvatarURL, IsNew: isNew}
	switch rec.Provider {
	case "wechat":
		su.OpenID, su.UnionID = rec.Subject, rec.UnionID
	case ProviderPhone:
		su.PhoneMasked = MaskE164(rec.Subject)
	}
	return su
}

// sessionFacts is what a login method knows about how the user logged in.
type sessionFacts struct {
	AMR      []string
	Identity Identity
	IsNew    *bool
	AuthTime time.Time // when the user authenticated on this device; zero: not here (QR redeem)
	Method   string    // MethodWx, MethodSMS, MethodPwd, MethodQR
	Client   Client
}

func (s *Service) newSession(ctx context.Context, u User, f sessionFacts) (Session, SessionRecord, error) {
	rec, access, refresh := s.sessionRecord(u.ID, f)
	if err := s.store.CreateSession(ctx, rec); err != nil {
		return Session{}, SessionRecord{}, fmt.Errorf("create session: %w", err)
	}
	s.recordLogin(ctx, s.attempt(u.ID, f.Method, OutcomeOK, f.Client))
	return issued(access, refresh, sessionUser(u, rec, f.IsNew)), rec, nil
}

// sessionRecord makes a new session of user id: its record, and the access
// and refresh tokens whose hashes the record holds.
func (s *Service) sessionRecord(userID string, f sessionFacts) (rec SessionRecord, access, refresh string) {
	now := s.now()
	family := NewTicketID()
	access, aref := newToken(accessPrefix, userID, family)
	refresh, rref := newToken(refreshPrefix, userID, family)
	rec = SessionRecord{
		ID: NewTicketID(), FamilyID: family, UserID: userID,
		AccessHash: aref.Hash, RefreshHash: rref.Hash,
		AccessExpiresAt: now.Add(AccessTokenTTL), RefreshExpiresAt: now.Add(RefreshTokenTTL),
		CreatedAt: now, AMR: f.AMR, AuthTime: f.AuthTime,
		Provider: f.Identity.Provider, Subject: f.Identity.Subject, UnionID: f.Identity.UnionID,
		DeviceID: f.Client.DeviceID, Method: f.Method, IPMasked: MaskIP(f.Client.IP),
		Region: s.regions.Region(f.Client.IP), UserAgent: truncate(f.Client.UserAgent, MaxUserAgent),
	}
	return rec, access, refresh
}

func issued(access, refresh string, u SessionUser) Session {
	return Session{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer",
		ExpiresIn: int(AccessTokenTTL / time.Second), User: u}
}

// Authenticate resolves an access token and slides its expiry.
// Errors: KindUnauthorized for unknown, revoked or expired tokens, and for
// tokens of users who erased their account (their sessions die with it).
func (s *Service) Authenticate(ctx context.Context, accessToken string) (Principal, error) {
	ref, ok := parseToken(accessToken, accessPrefix)
	if !ok {
		return Principal{}, ErrNoSession
	}
	p, err := s.store.PrincipalByAccess(ctx, ref, s.now(), AccessTokenTTL)
	if errors.Is(err, ErrNotFound) {
		return Principal{}, ErrNoSession
	}
	if err != nil {
		return Principal{}, fmt.Errorf("authenticate: %w", err)
	}
	return p, nil
}

// Refresh rotates a refresh token into a new session. Reusing a refresh
// token that was already rotated revokes every session of its family.
// Errors: KindUnauthorized.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (Session, error) {
	old, ok := parseToken(refreshToken, refreshPrefix)
	if !ok {
		return Session{}, Errorf(KindUnauthorized, "invalid refresh token")
	}
	now := s.now()
	access, aref := newToken(accessPrefix, old.UserID, old.Family)
	refresh, rref := newToken(refreshPrefix, old.UserID, old.Family)
	next := SessionRecord{
		ID: NewTicketID(), FamilyID: old.Family, UserID: old.UserID,
		AccessHash: aref.Hash, RefreshHash: rref.Hash,
		AccessExpiresAt: now.Add(AccessTokenTTL), RefreshExpiresAt: now.Add(RefreshTokenTTL),
		CreatedAt: now, LastUsedAt: now,
	}
	p, err := s.store.RotateRefresh(ctx, old, next, now)
	switch {
	case errors.Is(err, ErrConflict):
		// The token's hash matched a rotated one, so its user and family
		// are genuine: name them, for whoever follows the theft up.
		s.log.WarnContext(ctx, "refresh token reused; session family revoked",
			slog.String("family", old.Family), slog.String("user", old.UserID))
		s.revokeGrants(ctx, old.UserID, old.Family)
		return Session{}, Errorf(KindUnauthorized, "refresh token already used; please log in again")
	case errors.Is(err, ErrNotFound):
		// Unknown, expired, or of a user who erased their account.
		return Session{}, Errorf(KindUnauthorized, "invalid or expired refresh token")
	case err != nil:
		return Session{}, fmt.Errorf("refresh: %w", err)
	}
	return issued(access, refresh, sessionUser(p.User, p.Session, nil)), nil
}

// Logout revokes the session of an access token. Errors: KindUnauthorized.
func (s *Service) Logout(ctx context.Context, accessToken string) error {
	ref, ok := parseToken(accessToken, accessPrefix)
	if !ok {
		return ErrNoSession
	}
	err := s.store.DeleteSession(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		return ErrNoSession
	}
	if err != nil {
		return fmt.Errorf("logout: %w", err)
	}
	s.revokeGrants(ctx, ref.UserID, ref.Family)
	return nil
}

// revokeGrants revokes what apps got through the OpenID Connect provider
// from the hub sessions of login families families: a session that ends
// takes its apps' tokens with it. A failure is logged, not the caller's
// failure: the session itself is gone, and the grants expire anyway.
func (s *Service) revokeGrants(ctx context.Context, userID string, families ...string) {
	ctx = context.WithoutCancel(ctx)
	for _, f := range families {
		if _, err := s.store.RevokeSessionGrants(ctx, userID, f); err != nil && !errors.Is(err, ErrNotFound) {
			s.log.WarnContext(ctx, "the apps' grants of an ended session not revoked", slog.String("user", userID), slog.Any("err", err))
		}
	}
}

// sessionFamilies lists the login families of user userID's live
// sessions but keep's, for revokeGrants after they end.
func (s *Service) sessionFamilies(ctx context.Context, userID, keep string) []string {
	recs, err := s.store.UserSessions(ctx, userID, s.now())
	if err != nil {
		s.log.WarnContext(ctx, "sessions not listed; their apps' grants stay until they expire", slog.String("user", userID), slog.Any("err", err))
		return nil
	}
	var out []string
	for _, r := range recs {
		if r.FamilyID != keep {
			out = append(out, r.FamilyID)
		}
	}
	return out
}

// WxLoginRequest is a mini-program's login.
type WxLoginRequest struct {
	Code string
	// Nickname and AvatarURL are what the user entered in the mini-program
	// (WeChat no longer hands profiles to servers); empty keeps the stored
	// profile, or a default for new users.
	Nickname, AvatarURL string
	Client              Client
}

// smsFallback marks WeChat being unavailable with Fallback "sms" when this
// hub logs people in by SMS: the mini-program can offer that at once.
func (s *Service) smsFallback(err error) error {
	var e *Error
	if s.sms == nil || !errors.As(err, &e) || e.Kind != KindUpstreamUnavailable || e.Fallback != "" {
		return err
	}
	marked := *e // a copy: the error may be a shared value
	marked.Fallback = FallbackSMS
	return &marked
}

// DefaultWeChatNickname is the name of a WeChat user who gave none, as
// WeChat itself shows it.
const DefaultWeChatNickname = "微信用户"

// WxLogin exchanges a wx.login code for a session of the user keyed by
// (wechat, openid), creating the user on first login. The session_key stays
// on the server. Risk control may step the login up (judgeLogin). Errors:
// KindInvalid, KindUnauthorized (bad or used code), KindStepUpRequired,
// KindRateLimited, KindForbidden, KindUpstreamUnavailable.
func (s *Service) WxLogin(ctx context.Context, req WxLoginRequest) (Session, error) {
	if req.Code == "" {
		return Session{}, Errorf(KindInvalid, "code is required")
	}
	if utf8.RuneCountInString(req.Nickname) > MaxNicknameRunes {
		return Session{}, Errorf(KindInvalid, "nickname longer than %d characters", MaxNicknameRunes)
	}
	if !ValidAvatarURL(req.AvatarURL) {
		return Session{}, Errorf(KindInvalid, "avatar_url must be an https URL of at most %d bytes", maxAvatarURLLen)
	}
	if err := checkClient(req.Client); err != nil {
		return Session{}, err
	}
	// What a desktop shows of its scanner must not carry control or bidi
	// characters.
	req.Nickname = CleanNickname(req.Nickname)
	if s.wechat == nil {
		return Session{}, Errorf(KindUpstreamUnavailable, "WeChat login is not configured")
	}
	ws, err := s.wechat.Code2Session(ctx, req.Code)
	if err != nil {
		return Session{}, s.smsFallback(err)
	}
	id := Identity{Provider: "wechat", Subject: ws.OpenID, UnionID: ws.UnionID}
	now := s.now()
	newUser := User{ID: "u_" + NewTicketID(), Nickname: req.Nickname, AvatarURL: req.AvatarURL, CreatedAt: now}
	if newUser.Nickname == "" {
		newUser.Nickname = DefaultWeChatNickname
	}
	u, created, err := s.store.UpsertIdentity(ctx, id, Profile{Nickname: req.Nickname, AvatarURL: req.AvatarURL}, newUser)
	if err != nil {
		return Session{}, fmt.Errorf("wx login: %w", err)
	}
	// Sealed, like personal data: whoever reads the store (a backup, a
	// replica) must not be able to open the user's encrypted WeChat data.
	// It lives as long as a session of this login can (the refresh
	// token's lifetime); a later wx.login replaces it.
	sealed := s.vault.Seal(ws.OpenID, FieldSessionKey, ws.SessionKey)
	if err := s.store.PutSessionKey(ctx, ws.OpenID, sealed, now.Add(RefreshTokenTTL)); err != nil {
		return Session{}, fmt.Errorf("wx login: keep session key: %w", err)
	}
	f := sessionFacts{AMR: []string{"wx"}, Identity: id, IsNew: &created, AuthTime: now, Method: MethodWx, Client: req.Client}
	if err := s.judgeLogin(ctx, u, created, f); err != nil {
		return Session{}, err
	}
	sess, _, err := s.newSession(ctx, u, f)
	return sess, err
}
