package authcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OAuthStateTTL is how long a third-party login may take, from the
// authorize URL to the callback.
const OAuthStateTTL = 10 * time.Minute

// OAuthProvider is a third-party login: QQ, Weibo, WeChat website login or
// an OpenID Connect provider (packages authcore/qq, authcore/weibo,
// authcore/wechatweb, authcore/oidc). The core runs the dance (state,
// PKCE, nonce, the ticket or the link); a provider knows its URLs, how to
// exchange a code and how to read who logged in.
type OAuthProvider interface {
	// AuthorizeURL is the provider's consent page for a login that comes
	// back to a.RedirectURI with a.State. A provider that supports PKCE
	// sends a.CodeChallenge (S256); an OIDC provider sends a.Nonce; others
	// leave them out. A provider that must call out first (OIDC discovery,
	// OAuth 1.0a's temporary credentials) may fail:
	// KindUpstreamUnavailable. Carry is kept with the login, sealed, and
	// handed back to Identity.
	AuthorizeURL(ctx context.Context, a OAuthAuthorize) (OAuthStart, error)
	// Identity exchanges a code for the provider's tokens and reads who
	// logged in. Errors: KindUnauthorized (a bad, used or expired code; an
	// ID token that fails its checks), KindUpstreamUnavailable (the
	// provider failed or refused the hub's configuration: logged with the
	// provider's text, never shown).
	Identity(ctx context.Context, e OAuthExchange) (ExternalIdentity, error)
}

// OAuthAuthorize is what an authorize URL carries.
type OAuthAuthorize struct {
	RedirectURI   string
	State         string
	CodeChallenge string // PKCE S256
	Nonce         string // OpenID Connect
}

// OAuthStart is where a login sends the browser, and what the provider
// needs back at the exchange.
type OAuthStart struct {
	URL   string
	Carry string // e.g. OAuth 1.0a's temporary credentials' secret; "" for OAuth 2.0
}

// OAuthExchange is what a code exchange needs.
type OAuthExchange struct {
	Code         string // the code; OAuth 1.0a's oauth_verifier
	Token        string // OAuth 1.0a's oauth_token; "" for OAuth 2.0
	RedirectURI  string // the same as in the authorize URL
	CodeVerifier string // PKCE
	Nonce        string // the ID token's nonce must be this one
	Carry        string // OAuthStart.Carry
}

// ExternalIdentity is who a provider says logged in.
type ExternalIdentity struct {
	// Subject is how loginhub keys the identity at this provider: QQ's
	// unionid (its openid when the app lacks the unionid permission),
	// Weibo's uid, WeChat's unionid (else openid), an OIDC issuer's sub.
	Subject string
	// UnionID is a WeChat unionid: a website login and a mini-program
	// login of one person find the same user through it. Other providers
	// leave it empty (their unionids are not WeChat's).
	UnionID   string
	Nickname  string
	AvatarURL string
}

// OAuthState is a third-party login in progress, kept by an
// OAuthStateStore under its state value until the callback takes it.
type OAuthState struct {
	State     string    `json:"-"`
	Provider  string    `json:"p"`
	TicketID  string    `json:"t,omitempty"` // a login: the desktop's ticket to confirm
	UserID    string    `json:"u,omitempty"` // a link: the user to link the identity to
	Verifier  string    `json:"v"`           // PKCE code verifier
	Nonce     string    `json:"n"`
	Carry     string    `json:"c,omitempty"` // OAuthStart.Carry, sealed by the Vault
	ReturnTo  string    `json:"r,omitempty"` // where the callback sends the browser; "": a page that closes itself
	ExpiresAt time.Time `json:"e"`
}

// OAuthStateStore keeps third-party logins in progress. A state is taken
// once.
type OAuthStateStore interface {
	// PutOAuthState keeps st until st.ExpiresAt; ErrConflict if its state
	// value exists.
	PutOAuthState(ctx context.Context, st OAuthState) error
	// TakeOAuthState removes and returns the login of state value state,
	// or returns ErrNotFound when there is none or it has expired at now.
	// Of concurrent callers, one gets it.
	TakeOAuthState(ctx context.Context, state string, now time.Time) (OAuthState, error)
}

// The third-party logins' names. Routes name a provider as qq, weibo,
// wechat_web or an OIDC upstream's own name; identities name an OIDC
// upstream "oidc:<name>".
const (
	ProviderQQ        = "qq"
	ProviderWeibo     = "weibo"
	ProviderWeChatWeb = "wechat_web"
	oidcPrefix        = "oidc:"
)

// OAuthRoute is the name routes use for the provider of identities named
// provider: an OIDC upstream's name without "oidc:".
func OAuthRoute(provider string) string { return strings.TrimPrefix(provider, oidcPrefix) }

// validOAuthName reports whether name may key Config.OAuth: a built-in
// provider, or "oidc:<name>" whose name is none of theirs.
func validOAuthName(name string) bool {
	switch name {
	case ProviderQQ, ProviderWeibo, ProviderWeChatWeb:
		return true
	}
	route, ok := strings.CutPrefix(name, oidcPrefix)
	return ok && validProvider(route) && !strings.Contains(route, ":") && !validOAuthName(route)
}

// OAuthProviders lists the route names of the third-party logins this hub
// offers, sorted.
func (s *Service) OAuthProviders() []string {
	names := make([]string, 0, len(s.oauth))
	for name := range s.oauth {
		names = append(names, OAuthRoute(name))
	}
	slices.Sort(names)
	return names
}

// oauthProvider returns the provider a route names and the name of its
// identities. Errors: KindNotFound.
func (s *Service) oauthProvider(route string) (string, OAuthProvider, error) {
	if !strings.Contains(route, ":") {
		for _, name := range []string{route, oidcPrefix + route} {
			if p, ok := s.oauth[name]; ok {
				return name, p, nil
			}
		}
	}
	return "", nil, Errorf(KindNotFound, "no login provider %q on this hub", route)
}

// OAuthRedirectURI is the callback of a provider (by its route name), as
// it must be registered with the provider:
// <public url>/v1/oauth/<route>/callback.
func (s *Service) OAuthRedirectURI(route string) string {
	return s.publicURL + "/v1/oauth/" + route + "/callback"
}

// TicketOAuthRequest starts a desktop's login with a provider.
type TicketOAuthRequest struct {
	TicketID, Secret string
	Client           netip.Addr
	Provider         string // its route name
	ReturnTo         string // checked by the caller against the allowed origins; "" for none
}

// StartTicketOAuth returns the authorize URL of a login with a provider
// that, once the user consents, confirms the desktop's pending ticket as
// the provider's user. Errors: KindNotFound (ticket, provider),
// KindUnauthorized (secret), KindForbidden (address), KindConflict (the
// ticket is no longer pending), KindExpired.
func (s *Service) StartTicketOAuth(ctx context.Context, req TicketOAuthRequest) (string, error) {
	name, p, err := s.oauthProvider(req.Provider)
	if err != nil {
		return "", err
	}
	rec, err := s.authorizeDesktop(ctx, req.TicketID, req.Secret, req.Client)
	if err != nil {
		return "", err
	}
	switch v := rec.ViewAt(s.now()); v.State {
	case StatePending:
	case StateExpired:
		return "", Errorf(KindExpired, "this login has expired; refresh the page")
	default:
		return "", Errorf(KindConflict, "this login is already %s", v.State)
	}
	return s.startOAuth(ctx, p, OAuthState{Provider: name, TicketID: rec.ID, ReturnTo: req.ReturnTo})
}

// StartLinkOAuth returns the authorize URL of a provider login whose
// identity is then linked to p's user, who must have logged in recently.
// Errors: KindNotFound (provider), KindStepUpRequired.
func (s *Service) StartLinkOAuth(ctx context.Context, p Principal, provider, returnTo string) (string, error) {
	name, prov, err := s.oauthProvider(provider)
	if err != nil {
		return "", err
	}
	if err := s.RequireRecentLogin(p); err != nil {
		return "", err
	}
	return s.startOAuth(ctx, prov, OAuthState{Provider: name, UserID: p.User.ID, ReturnTo: returnTo})
}

// startOAuth keeps st with a fresh state, PKCE verifier and nonce, and
// returns the provider's authorize URL for it.
func (s *Service) startOAuth(ctx context.Context, p OAuthProvider, st OAuthState) (string, error) {
	st.State = randomToken("")
	st.Verifier = oauth2.GenerateVerifier()
	st.Nonce = randomToken("")
	st.ExpiresAt = s.now().Add(OAuthStateTTL)
	start, err := p.AuthorizeURL(ctx, OAuthAuthorize{RedirectURI: s.OAuthRedirectURI(OAuthRoute(st.Provider)), State: st.State,
		CodeChallenge: oauth2.S256ChallengeFromVerifier(st.Verifier), Nonce: st.Nonce})
	if err != nil {
		return "", err
	}
	if start.Carry != "" {
		st.Carry = s.vault.Seal(oauthCarryOwner, st.State, start.Carry)
	}
	if err := s.store.PutOAuthState(ctx, st); err != nil {
		return "", fmt.Errorf("oauth %s: keep state: %w", st.Provider, err)
	}
	return start.URL, nil
}

// oauthCarryOwner is the Vault owner of a login's carry; its field is the
// login's state, so a carry opens for its own login only.
const oauthCarryOwner = "oauth_carry"

// OAuthCallbackRequest is a provider's redirect back to the hub.
type OAuthCallbackRequest struct {
	Provider, State, Code string // Provider: its route name; Code: OAuth 1.0a's oauth_verifier
	Token                 string // OAuth 1.0a's oauth_token
	// Error is the provider's error parameter (RFC 6749 4.1.2.1:
	// access_denied, temporarily_unavailable...; Weibo's error_code), if
	// it sent one instead of a code.
	Error string
}

// OAuthResult is what a completed callback did.
type OAuthResult struct {
	Provider string
	TicketID string // a login: the ticket now confirmed
	Linked   bool   // a link: the identity is the user's now
	User     User
	ReturnTo string
}

// OAuthCallback completes a third-party login: it takes the state (once),
// exchanges the code, maps the provider's identity to a user (making one
// on first login; a WeChat unionid finds the mini-program's user) and
// confirms the desktop's ticket as that user, or links the identity to the
// user who started a link. On any error the ticket and the links are left
// as they were; the result's ReturnTo is set whenever the state was ours.
// Errors: KindInvalid, KindNotFound (provider), KindUnauthorized (unknown,
// used or expired state; a bad code), KindForbidden (the user refused),
// KindConflict (the identity is another user's; the ticket is no longer
// pending), KindExpired, KindUpstreamUnavailable.
func (s *Service) OAuthCallback(ctx context.Context, req OAuthCallbackRequest) (OAuthResult, error) {
	name, p, err := s.oauthProvider(req.Provider)
	if err != nil {
		return OAuthResult{}, err
	}
	if req.State == "" || len(req.State) > 128 {
		return OAuthResult{}, Errorf(KindInvalid, "state is missing or malformed")
	}
	now := s.now()
	st, err := s.store.TakeOAuthState(ctx, req.State, now)
	if errors.Is(err, ErrNotFound) || (err == nil && st.Provider != name) {
		return OAuthResult{}, Errorf(KindUnauthorized, "this login link is unknown, used or expired; start again")
	}
	if err != nil {
		return OAuthResult{}, fmt.Errorf("oauth %s: take state: %w", req.Provider, err)
	}
	res := OAuthResult{Provider: name, TicketID: st.TicketID, ReturnTo: st.ReturnTo}
	switch {
	case req.Error == "temporarily_unavailable" || req.Error == "server_error":
		s.log.WarnContext(ctx, "oauth provider unavailable", slog.String("provider", req.Provider), slog.String("error", truncate(req.Error, 64)))
		return res, Errorf(KindUpstreamUnavailable, "%s is unavailable at the moment; try again later", req.Provider)
	case req.Error != "" || req.Code == "":
		// WeChat's refusal brings no code and no error.
		s.log.InfoContext(ctx, "oauth login declined", slog.String("provider", req.Provider), slog.String("error", truncate(req.Error, 64)))
		return res, Errorf(KindForbidden, "the login was declined at %s", req.Provider)
	}
	carry := ""
	if st.Carry != "" {
		if carry, err = s.vault.Open(oauthCarryOwner, req.State, st.Carry); err != nil {
			return res, fmt.Errorf("oauth %s: %w", req.Provider, err)
		}
	}
	ext, err := p.Identity(ctx, OAuthExchange{Code: req.Code, Token: req.Token, RedirectURI: s.OAuthRedirectURI(req.Provider),
		CodeVerifier: st.Verifier, Nonce: st.Nonce, Carry: carry})
	if err != nil {
		return res, err
	}
	if ext.Subject == "" {
		return res, fmt.Errorf("oauth %s: the provider named no subject", req.Provider)
	}
	id := Identity{Provider: name, Subject: ext.Subject, UnionID: ext.UnionID}
	if st.UserID != "" {
		u := User{ID: st.UserID}
		if err := s.link(ctx, Principal{User: u}, id, "this "+req.Provider+" account belongs to another user"); err != nil {
			return res, err
		}
		res.Linked, res.User = true, u
		return res, nil
	}
	newUser := User{ID: "u_" + NewTicketID(), Nickname: CleanNickname(ext.Nickname), CreatedAt: now}
	if !ValidAvatarURL(ext.AvatarURL) {
		ext.AvatarURL = ""
	}
	newUser.AvatarURL = ext.AvatarURL
	if newUser.Nickname == "" {
		newUser.Nickname = defaultNickname(name)
	}
	u, _, err := s.store.UpsertIdentity(ctx, id, Profile{}, newUser)
	if err != nil {
		return res, fmt.Errorf("oauth %s: %w", req.Provider, err)
	}
	res.User = u
	if err := s.confirmAs(ctx, u, id, st.TicketID); err != nil {
		return res, err
	}
	s.log.InfoContext(ctx, "oauth login confirmed a ticket", slog.String("provider", req.Provider), slog.String("user", u.ID))
	return res, nil
}

// confirmAs scans and confirms ticket id as user u, as a phone would, with
// a session that lives only for those two moves: the same atomic store
// moves, announcements and checks as a phone's, with the user's profile
// shown to the desktop as the scanner.
func (s *Service) confirmAs(ctx context.Context, u User, id Identity, ticketID string) error {
	rec, access, _ := s.sessionRecord(u.ID, sessionFacts{AMR: []string{id.Provider}, Identity: id, Method: id.Provider})
	// Should the delete below not happen (a crash), the session dies soon
	// anyway; its tokens were never shown to anyone.
	rec.AccessExpiresAt = rec.CreatedAt.Add(time.Minute)
	rec.RefreshExpiresAt = rec.AccessExpiresAt
	if err := s.store.CreateSession(ctx, rec); err != nil {
		return fmt.Errorf("oauth confirm: %w", err)
	}
	defer func() {
		ref, _ := parseToken(access, accessPrefix)
		if err := s.store.DeleteSession(context.WithoutCancel(ctx), ref); err != nil {
			s.log.WarnContext(ctx, "oauth confirm: the moment's session not deleted", "user", u.ID, "err", err)
		}
	}()
	if _, err := s.phoneMove(ctx, access, PhoneMove{ID: ticketID, From: StatePending, To: StateScanned, Now: s.now(), Via: id.Provider}); err != nil {
		return err
	}
	res, err := s.phoneMove(ctx, access, PhoneMove{ID: ticketID, From: StateScanned, To: StateConfirmed, Now: s.now()})
	if err != nil {
		return err
	}
	if !res.Moved {
		switch v := res.Ticket.ViewAt(s.now()); v.State {
		case StateExpired:
			return Errorf(KindExpired, "the login on the computer has expired; refresh it and try again")
		default:
			return Errorf(KindConflict, "the login on the computer is already %s", v.State)
		}
	}
	return nil
}

// defaultNickname is the name of a new user whose provider gave none, as
// the provider's own apps call such a user.
func defaultNickname(provider string) string {
	switch provider {
	case ProviderQQ:
		return "QQ用户"
	case ProviderWeibo:
		return "微博用户"
	case ProviderWeChatWeb:
		return DefaultWeChatNickname
	}
	return "用户"
}
