package oidcprovider

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/loginhub/loginhub/authcore"
)

// A refresh token is "lho_<user id>.<grant id>.<32 random bytes,
// base64url>": the user and grant locate it in the store (the grant lives
// in its user's slot), and only its SHA-256 is stored. An access token is
// a JWT whose jti is "<grant id>.<expiry, unix seconds>.<random>": every
// check of one (userinfo, introspection) finds its grant alive, so that
// revoking the grant revokes it. A grant's id derives from the hash of
// the code it was made from (grantIDFromCode), so that the code, replayed,
// names the grant to revoke (RFC 6749 section 4.1.2).
const refreshPrefix = "lho_"

// grantIDFromCode is the id of the grant made from the code whose SHA-256
// is hash: one code, one exchange, one grant. It reveals nothing of the
// code.
func grantIDFromCode(hash [32]byte) string {
	id := sha256.Sum256(append([]byte("loginhub oidc grant\x00"), hash[:]...))
	return base64.RawURLEncoding.EncodeToString(id[:16])
}

func randomPart() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newRefreshToken(userID, grantID string) (string, [32]byte) {
	tok := refreshPrefix + userID + "." + grantID + "." + randomPart()
	return tok, sha256.Sum256([]byte(tok))
}

func parseRefreshToken(tok string) (userID, grantID string, hash [32]byte, ok bool) {
	rest, ok := strings.CutPrefix(tok, refreshPrefix)
	if !ok || len(tok) > 200 {
		return "", "", hash, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", hash, false
	}
	return parts[0], parts[1], sha256.Sum256([]byte(tok)), true
}

func accessTokenID(grantID string, exp time.Time) string {
	return grantID + "." + strconv.FormatInt(exp.Unix(), 10) + "." + randomPart()[:16]
}

func parseAccessTokenID(id string) (grantID string, exp time.Time, ok bool) {
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return "", time.Time{}, false
	}
	sec, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return parts[0], time.Unix(sec, 0), true
}

// Store is what the provider keeps its records in and reads users from.
type Store interface {
	authcore.ProviderStore
	authcore.ReplayCache // one code per authorization request
	User(ctx context.Context, id string) (authcore.User, error)
	DeleteUserSession(ctx context.Context, userID, family string) error
	Ping(ctx context.Context) error
}

// storage implements op.Storage on the hub's store.
type storage struct {
	store   Store
	sess    Sessions
	clients map[string]Client
	keys    []SigningKey
	now     func() time.Time
	log     *slog.Logger
	// loginURL is the page that shows request id's login.
	loginURL func(id string) string
}

var (
	_ op.Storage                        = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*storage)(nil)
	_ op.CanGetPrivateClaimsFromRequest = (*storage)(nil)
	_ op.CanTerminateSessionFromRequest = (*storage)(nil)
)

// authRequest implements op.AuthRequest. grantID is set when the request
// comes from its code (AuthRequestByCode): the id of the grant its
// exchange makes.
type authRequest struct {
	r       authcore.ProviderRequest
	grantID string
}

func (a authRequest) GetID() string  { return a.r.ID }
func (a authRequest) GetACR() string { return "" }
func (a authRequest) GetAMR() []string {
	if a.r.Login == nil {
		return nil
	}
	return a.r.Login.AMR
}
func (a authRequest) GetAudience() []string { return []string{a.r.ClientID} }
func (a authRequest) GetAuthTime() time.Time {
	if a.r.Login == nil {
		return time.Time{}
	}
	return a.r.Login.AuthTime
}
func (a authRequest) GetClientID() string { return a.r.ClientID }
func (a authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.r.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.r.CodeChallenge, Method: oidc.CodeChallengeMethod(a.r.CodeChallengeMethod)}
}
func (a authRequest) GetNonce() string                   { return a.r.Nonce }
func (a authRequest) GetRedirectURI() string             { return a.r.RedirectURI }
func (a authRequest) GetResponseType() oidc.ResponseType { return oidc.ResponseType(a.r.ResponseType) }
func (a authRequest) GetResponseMode() oidc.ResponseMode { return oidc.ResponseMode(a.r.ResponseMode) }
func (a authRequest) GetScopes() []string                { return a.r.Scopes }
func (a authRequest) GetState() string                   { return a.r.State }
func (a authRequest) GetSubject() string {
	if a.r.Login == nil {
		return ""
	}
	return a.r.Login.UserID
}
func (a authRequest) Done() bool  { return a.r.Login != nil }
func (a authRequest) sid() string { return a.r.Login.SID }

// refreshRequest implements op.RefreshTokenRequest: a grant and the
// refresh token presented for it.
type refreshRequest struct {
	g      authcore.Grant
	hash   [32]byte
	scopes []string
}

func (r *refreshRequest) GetAMR() []string            { return r.g.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.g.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.g.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.g.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.g.UserID }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }
func (r *refreshRequest) sid() string                 { return r.g.SID }

// CreateAuthRequest implements op.AuthStorage. PKCE is S256 only, and
// required of public clients.
func (s *storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	c, ok := s.clients[req.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidClient()
	}
	switch {
	case req.CodeChallenge == "" && c.Public:
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge, S256) is required of public clients")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	now := s.now()
	r := authcore.ProviderRequest{
		ID: authcore.NewTicketID(), ClientID: req.ClientID, RedirectURI: req.RedirectURI, Scopes: req.Scopes,
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode), State: req.State, Nonce: req.Nonce,
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod), Prompt: req.Prompt,
		MaxAge: -1, CreatedAt: now, ExpiresAt: now.Add(authcore.ProviderRequestTTL),
	}
	if req.MaxAge != nil {
		r.MaxAge = int64(*req.MaxAge)
	}
	if err := s.store.PutProviderRequest(ctx, r); err != nil {
		return nil, fmt.Errorf("create auth request: %w", err)
	}
	return authRequest{r: r}, nil
}

// AuthRequestByID implements op.AuthStorage.
func (s *storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.store.ProviderRequest(ctx, id, s.now())
	if err != nil {
		return nil, err
	}
	return authRequest{r: r}, nil
}

// AuthRequestByCode implements op.AuthStorage: it consumes the code, so
// that a code is redeemed once even when two token requests race. A code
// used before is refused, and the grant its first use made is revoked
// with every token of it (RFC 6749 sections 4.1.2 and 10.5): the code
// leaked, and whoever got the tokens may not be the app.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	hash := sha256.Sum256([]byte(code))
	r, err := s.store.TakeProviderCode(ctx, hash, s.now())
	if errors.Is(err, authcore.ErrConflict) && r.Login != nil {
		s.revokeReplayed(ctx, r, grantIDFromCode(hash))
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if r.Login == nil {
		return nil, errors.New("code of a request without a login")
	}
	return authRequest{r: r, grantID: grantIDFromCode(hash)}, nil
}

// revokeReplayed revokes grant grantID of the user of request r, whose
// code was presented again. The grant may not exist: its exchange failed
// (a wrong PKCE verifier), or is still running, in which case the store
// keeps it from being made.
func (s *storage) revokeReplayed(ctx context.Context, r authcore.ProviderRequest, grantID string) {
	err := s.store.RevokeGrant(ctx, r.Login.UserID, grantID)
	if err != nil && !errors.Is(err, authcore.ErrNotFound) {
		s.log.ErrorContext(ctx, "oidc authorization code replayed; revoking its grant failed",
			slog.String("request", r.ID), slog.String("user", r.Login.UserID), slog.String("grant", grantID), "err", err)
		return
	}
	s.log.WarnContext(ctx, "oidc authorization code replayed; its grant is revoked",
		slog.String("request", r.ID), slog.String("user", r.Login.UserID), slog.String("grant", grantID),
		slog.Bool("grant_existed", err == nil))
}

// SaveAuthCode implements op.AuthStorage. An authorization request gets
// one code: the callback that issues it may be hit again (a reload, a
// replay), and a second code would be a second grant of one consent.
func (s *storage) SaveAuthCode(ctx context.Context, id, code string) error {
	first, err := s.store.FirstUse(ctx, "oidc-code:"+id, authcore.ProviderRequestTTL)
	if err != nil {
		return fmt.Errorf("save auth code: %w", err)
	}
	if !first {
		return oidc.ErrInvalidRequest().WithDescription("this authorization already issued its code")
	}
	return s.store.PutProviderCode(ctx, sha256.Sum256([]byte(code)), id, s.now().Add(authcore.ProviderCodeTTL))
}

// DeleteAuthRequest implements op.AuthStorage.
func (s *storage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.store.DeleteProviderRequest(ctx, id)
}

// CreateAccessToken implements op.AuthStorage: a code exchanged without
// offline_access makes a grant without a refresh token.
func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	ar, ok := req.(authRequest)
	if !ok {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	now := s.now()
	exp := now.Add(authcore.ProviderAccessTTL)
	if ar.grantID == "" {
		return "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	g := s.grant(ctx, ar, now, exp)
	if err := s.store.CreateGrant(ctx, g); err != nil {
		return "", time.Time{}, s.grantError(ctx, err)
	}
	return accessTokenID(g.ID, exp), exp, nil
}

func (s *storage) grant(ctx context.Context, ar authRequest, now, exp time.Time) authcore.Grant {
	l := ar.r.Login
	return authcore.Grant{ID: ar.grantID, UserID: l.UserID, ClientID: ar.r.ClientID, Scopes: ar.r.Scopes,
		AMR: l.AMR, AuthTime: l.AuthTime, SID: l.SID, DPoPJKT: s.refreshKey(ctx, ar.r.ClientID), CreatedAt: now, ExpiresAt: exp}
}

// refreshKey is the DPoP key that a refresh token issued now to client
// clientID is bound to (RFC 9449 section 5): for a public client, the key
// of the token request's proof ("" without one: DPoP is optional); for a
// confidential client none, as its refresh tokens are bound to its
// authentication already, and it may change keys.
func (s *storage) refreshKey(ctx context.Context, clientID string) string {
	if c, ok := s.clients[clientID]; ok && c.Public {
		return dpopKeyFrom(ctx)
	}
	return ""
}

// checkRefreshKey holds a refresh of grant g to its DPoP key: a bound
// grant is refreshed only with a valid proof of that key (checked by
// Provider.intercept), else invalid_grant, changing nothing: the refresh
// token stays usable by the key's holder.
func (s *storage) checkRefreshKey(ctx context.Context, g authcore.Grant) error {
	jkt := dpopKeyFrom(ctx)
	if g.DPoPJKT == "" || jkt == g.DPoPJKT {
		return nil
	}
	s.log.WarnContext(ctx, "oidc refresh token of a DPoP-bound grant without a proof of its key; refused",
		slog.String("grant", g.ID), slog.String("user", g.UserID), slog.String("client", g.ClientID), slog.Bool("proof", jkt != ""))
	if jkt == "" {
		return oidc.ErrInvalidGrant().WithDescription("this refresh token is bound to a DPoP key: send a DPoP proof of that key")
	}
	return oidc.ErrInvalidGrant().WithDescription("this refresh token is bound to another DPoP key")
}

// grantError: a user erased meanwhile is an invalid grant, and so is a
// grant revoked before it was made (its code replayed meanwhile); the
// rest is the server's.
func (s *storage) grantError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, authcore.ErrNotFound):
		return oidc.ErrInvalidGrant()
	case errors.Is(err, authcore.ErrConflict):
		return oidc.ErrInvalidGrant().WithDescription("the code was used twice; its grant is revoked")
	}
	s.log.ErrorContext(ctx, "oidc provider: store", "err", err)
	return oidc.ErrServerError()
}

// CreateAccessAndRefreshTokens implements op.AuthStorage: a code
// exchanged with offline_access makes a grant with a refresh token; a
// refresh token rotates within its grant, and one presented again
// revokes the grant. A public client's refresh token is bound to the DPoP
// key of the request that got it (refreshKey), and a bound one rotates
// only with a proof of that key (checkRefreshKey).
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, _ string) (string, string, time.Time, error) {
	now := s.now()
	exp := now.Add(authcore.ProviderAccessTTL)
	switch r := req.(type) {
	case authRequest:
		if r.grantID == "" {
			break
		}
		g := s.grant(ctx, r, now, now.Add(authcore.ProviderRefreshTTL))
		refresh, hash := newRefreshToken(g.UserID, g.ID)
		g.RefreshHash = hash
		if err := s.store.CreateGrant(ctx, g); err != nil {
			return "", "", time.Time{}, s.grantError(ctx, err)
		}
		return accessTokenID(g.ID, exp), refresh, exp, nil
	case *refreshRequest:
		if err := s.checkRefreshKey(ctx, r.g); err != nil {
			return "", "", time.Time{}, err
		}
		refresh, hash := newRefreshToken(r.g.UserID, r.g.ID)
		_, err := s.store.RotateGrant(ctx, authcore.GrantRotation{UserID: r.g.UserID, ID: r.g.ID, Old: r.hash, New: hash,
			ExpiresAt: now.Add(authcore.ProviderRefreshTTL), Now: now, DPoPJKT: s.refreshKey(ctx, r.g.ClientID)})
		switch {
		case errors.Is(err, authcore.ErrConflict):
			s.log.WarnContext(ctx, "oidc refresh token reused; grant revoked",
				slog.String("grant", r.g.ID), slog.String("user", r.g.UserID), slog.String("client", r.g.ClientID))
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used; the grant is revoked")
		case errors.Is(err, authcore.ErrNotFound):
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("invalid or expired refresh token")
		case err != nil:
			return "", "", time.Time{}, s.grantError(ctx, err)
		}
		return accessTokenID(r.g.ID, exp), refresh, exp, nil
	}
	return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
}

// TokenRequestByRefreshToken implements op.AuthStorage. The token itself
// is checked when it rotates (CreateAccessAndRefreshTokens), in one store
// step with its reuse detection.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	userID, grantID, hash, ok := parseRefreshToken(token)
	if !ok {
		return nil, op.ErrInvalidRefreshToken
	}
	g, err := s.store.Grant(ctx, userID, grantID, s.now())
	if err != nil {
		return nil, err
	}
	return &refreshRequest{g: g, hash: hash, scopes: g.Scopes}, nil
}

// TerminateSession implements op.AuthStorage; the provider ends sessions
// in TerminateSessionFromRequest.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// TerminateSessionFromRequest implements op.CanTerminateSessionFromRequest:
// RP-initiated logout ends the hub session the id_token_hint names (its
// sid), or the browser's own (the provider's cookie), and every grant made
// from it.
func (s *storage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	if req.IDTokenHintClaims != nil && req.IDTokenHintClaims.SessionID != "" {
		if err := s.endSession(ctx, req.IDTokenHintClaims.Subject, req.IDTokenHintClaims.SessionID); err != nil {
			return "", err
		}
	}
	if tok := sessionTokenFrom(ctx); tok != "" {
		if p, err := s.sess.Authenticate(ctx, tok); err == nil {
			if err := s.endSession(ctx, p.User.ID, p.Session.FamilyID); err != nil {
				return "", err
			}
		}
	}
	return req.RedirectURI, nil
}

func (s *storage) endSession(ctx context.Context, userID, sid string) error {
	if err := s.store.DeleteUserSession(ctx, userID, sid); err != nil && !errors.Is(err, authcore.ErrNotFound) {
		return fmt.Errorf("end session: %w", err)
	}
	n, err := s.store.RevokeSessionGrants(ctx, userID, sid)
	if err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	s.log.InfoContext(ctx, "oidc logout ended a hub session", slog.String("user", userID), slog.String("sid", sid), slog.Int("grants", n))
	return nil
}

// RevokeToken implements op.AuthStorage (RFC 7009): revoking an access or
// a refresh token revokes its grant, with every token of it. Unknown
// tokens are not an error.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if userID == "" {
		return nil
	}
	grantID, _, _ := strings.Cut(tokenOrID, ".")
	g, err := s.store.Grant(ctx, userID, grantID, s.now())
	if errors.Is(err, authcore.ErrNotFound) {
		return nil
	}
	if err != nil {
		s.log.ErrorContext(ctx, "oidc revoke", "err", err)
		return oidc.ErrServerError()
	}
	if g.ClientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("the token was not issued to this client")
	}
	if err := s.store.RevokeGrant(ctx, userID, grantID); err != nil && !errors.Is(err, authcore.ErrNotFound) {
		s.log.ErrorContext(ctx, "oidc revoke", "err", err)
		return oidc.ErrServerError()
	}
	return nil
}

// GetRefreshTokenInfo implements op.AuthStorage.
func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	userID, grantID, _, ok := parseRefreshToken(token)
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return userID, grantID, nil
}

// SigningKey implements op.AuthStorage: the first key signs.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return signingKey{s.keys[0]}, nil
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.ES256}, nil
}

// KeySet implements op.AuthStorage: every configured key is published.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	out := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = publicKey{k}
	}
	return out, nil
}

// GetClientByClientID implements op.OPStorage.
func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	c, ok := s.clients[id]
	if !ok {
		return nil, errors.New("unknown client")
	}
	return opClient{c: c, loginURL: s.loginURL}, nil
}

// AuthorizeClientIDSecret implements op.OPStorage.
func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	c, ok := s.clients[id]
	if !ok || !c.checkSecret(secret) {
		return errors.New("unknown client or wrong secret")
	}
	return nil
}

// SetUserinfoFromScopes implements op.OPStorage (deprecated there; the
// work is in SetUserinfoFromRequest).
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the
// id_token's sid, and the profile when asked.
func (s *storage) SetUserinfoFromRequest(ctx context.Context, ui *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if r, ok := req.(interface{ sid() string }); ok {
		ui.AppendClaims("sid", r.sid())
	}
	return s.userinfo(ctx, ui, req.GetSubject(), scopes)
}

func (s *storage) userinfo(ctx context.Context, ui *oidc.UserInfo, userID string, scopes []string) error {
	ui.Subject = userID
	if !slices.Contains(scopes, oidc.ScopeProfile) {
		return nil
	}
	u, err := s.store.User(ctx, userID)
	if err != nil {
		return err
	}
	ui.Name, ui.Nickname, ui.Picture = u.Nickname, u.Nickname, u.AvatarURL
	return nil
}

// SetUserinfoFromToken implements op.OPStorage: the token's grant must be
// alive.
func (s *storage) SetUserinfoFromToken(ctx context.Context, ui *oidc.UserInfo, tokenID, subject, _ string) error {
	grantID, _, ok := parseAccessTokenID(tokenID)
	if !ok {
		return errors.New("malformed token id")
	}
	g, err := s.store.Grant(ctx, subject, grantID, s.now())
	if err != nil {
		return err
	}
	return s.userinfo(ctx, ui, subject, g.Scopes)
}

// SetIntrospectionFromToken implements op.OPStorage (RFC 7662).
func (s *storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	grantID, exp, ok := parseAccessTokenID(tokenID)
	if !ok {
		return errors.New("malformed token id")
	}
	g, err := s.store.Grant(ctx, subject, grantID, s.now())
	if err != nil {
		return err
	}
	ui := new(oidc.UserInfo)
	if err := s.userinfo(ctx, ui, subject, g.Scopes); err != nil {
		return err
	}
	resp.SetUserInfo(ui)
	resp.Scope, resp.ClientID, resp.Subject, resp.Audience = g.Scopes, g.ClientID, subject, []string{g.ClientID}
	resp.TokenType, resp.JWTID = "Bearer", tokenID
	if jkt := dpopKeyFrom(ctx); jkt != "" { // the intercept read it off the token
		resp.TokenType = "DPoP"
		if resp.Claims == nil {
			resp.Claims = map[string]any{}
		}
		resp.Claims["cnf"] = map[string]string{"jkt": jkt}
	}
	resp.Expiration, resp.AuthTime = oidc.FromTime(exp), oidc.FromTime(g.AuthTime)
	resp.AuthenticationMethodsReferences = g.AMR
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage; the work is in
// GetPrivateClaimsFromRequest.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetPrivateClaimsFromRequest implements op.CanGetPrivateClaimsFromRequest:
// an access token from a token request with a DPoP proof is bound to the
// proof's key (cnf.jkt, RFC 9449).
func (s *storage) GetPrivateClaimsFromRequest(ctx context.Context, _ op.TokenRequest, _ []string) (map[string]any, error) {
	if jkt := dpopKeyFrom(ctx); jkt != "" {
		return map[string]any{"cnf": map[string]string{"jkt": jkt}}, nil
	}
	return nil, nil
}

// GetKeyByIDAndClientID implements op.OPStorage: no JWT profile grants.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

// ValidateJWTProfileScopes implements op.OPStorage: no JWT profile grants.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("JWT profile grants are not supported")
}

// Health implements op.Storage.
func (s *storage) Health(ctx context.Context) error { return s.store.Ping(ctx) }
