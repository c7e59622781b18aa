package authcore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/memstore"
)

// fakeProvider is an OAuthProvider whose codes name identities; each code
// works once, and the exchange must bring the PKCE verifier of the
// challenge and the nonce of the authorize URL.
type fakeProvider struct {
	mu         sync.Mutex
	authorized map[string]authcore.OAuthAuthorize // by state
	codes      map[string]authcore.ExternalIdentity
	codeState  map[string]string
	fail       error // the next exchange fails with it
}

func newFakeProvider() *fakeProvider {
	return &fakeProvider{authorized: map[string]authcore.OAuthAuthorize{}, codes: map[string]authcore.ExternalIdentity{}, codeState: map[string]string{}}
}

func (p *fakeProvider) AuthorizeURL(_ context.Context, a authcore.OAuthAuthorize) (authcore.OAuthStart, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.authorized[a.State] = a
	return authcore.OAuthStart{URL: "https://provider.example/authorize?" + url.Values{"state": {a.State}, "redirect_uri": {a.RedirectURI},
		"code_challenge": {a.CodeChallenge}, "nonce": {a.Nonce}}.Encode(), Carry: "carry-" + a.State}, nil
}

// consent is the user agreeing on the provider's page: a code for ext,
// tied to the authorization of state.
func (p *fakeProvider) consent(state string, ext authcore.ExternalIdentity) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	code := "code-" + state[:8] + ext.Subject
	p.codes[code] = ext
	p.codeState[code] = state
	return code
}

func (p *fakeProvider) Identity(_ context.Context, e authcore.OAuthExchange) (authcore.ExternalIdentity, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fail; err != nil {
		p.fail = nil
		return authcore.ExternalIdentity{}, err
	}
	ext, ok := p.codes[e.Code]
	a := p.authorized[p.codeState[e.Code]]
	delete(p.codes, e.Code)
	if !ok || e.RedirectURI != a.RedirectURI || e.Nonce != a.Nonce || s256(e.CodeVerifier) != a.CodeChallenge || e.Carry != "carry-"+a.State {
		return authcore.ExternalIdentity{}, authcore.Errorf(authcore.KindUnauthorized, "bad code")
	}
	return ext, nil
}

type oauthFixture struct {
	svc   *authcore.Service
	store *memstore.Store
	qq    *fakeProvider
	web   *fakeProvider
	clock *clock
	wx    *fakeWeChat
}

func newOAuthFixture(t *testing.T) *oauthFixture {
	t.Helper()
	c := &clock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	store := memstore.New(nil, c.Now)
	signer, _ := authcore.NewSigner([]authcore.Key{authcore.RandomKey("k1")})
	vault, _ := authcore.NewVault([]authcore.Key{authcore.RandomKey("d1")})
	f := &oauthFixture{store: store, qq: newFakeProvider(), web: newFakeProvider(), clock: c, wx: &fakeWeChat{codes: map[string]string{}}}
	svc, err := authcore.NewService(authcore.Config{
		Store: store, Signer: signer, Vault: vault, WeChat: f.wx, PublicURL: "https://hub.example", Now: c.Now,
		OAuth: map[string]authcore.OAuthProvider{"qq": f.qq, "wechat_web": f.web, "oidc:corp": newFakeProvider()},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

// start creates a desktop's ticket and starts its login with provider;
// it returns the ticket and the state of the authorize URL.
func (f *oauthFixture) start(t *testing.T, provider string) (authcore.NewTicket, string) {
	t.Helper()
	ctx := context.Background()
	nt, err := f.svc.CreateTicket(ctx, authcore.NewTicketRequest{ClientIP: desktopIP})
	if err != nil {
		t.Fatal(err)
	}
	u, err := f.svc.StartTicketOAuth(ctx, authcore.TicketOAuthRequest{TicketID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP, Provider: provider})
	if err != nil {
		t.Fatalf("StartTicketOAuth: %v", err)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return nt, parsed.Query().Get("state")
}

func (f *oauthFixture) state(t *testing.T, id string) authcore.State {
	t.Helper()
	v, err := f.svc.View(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v.State
}

// TestOAuthLoginConfirmsTicket: a provider login confirms the desktop's
// ticket as the provider's user, who redeems it; the state is single use,
// bound to its provider, and the authorize URL carries the callback, a
// PKCE challenge and a nonce.
func TestOAuthLoginConfirmsTicket(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	nt, state := f.start(t, "qq")
	a := f.qq.authorized[state]
	if a.RedirectURI != "https://hub.example/v1/oauth/qq/callback" || len(a.CodeChallenge) != 43 || a.Nonce == "" || len(state) < 32 {
		t.Fatalf("authorize %+v, state %q", a, state)
	}
	code := f.qq.consent(state, authcore.ExternalIdentity{Subject: "qq-union-1", Nickname: "小企鹅"})
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "weibo", State: state, Code: code}); authcore.KindOf(err) != authcore.KindNotFound {
		t.Errorf("a provider the hub lacks: %v, want not_found", err)
	}
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "wechat_web", State: state, Code: code}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("another provider's callback with the state: %v, want unauthorized", err)
	}
	// That spent the state: the dance starts again.
	nt, state = f.start(t, "qq")
	code = f.qq.consent(state, authcore.ExternalIdentity{Subject: "qq-union-1", Nickname: "小企鹅"})
	res, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state, Code: code})
	if err != nil || res.TicketID != nt.ID || res.User.Nickname != "小企鹅" {
		t.Fatalf("callback: %+v, %v", res, err)
	}
	v, err := f.svc.View(ctx, nt.ID)
	if err != nil || v.State != authcore.StateConfirmed || v.Scanner == nil || v.Scanner.Nickname != "小企鹅" {
		t.Fatalf("the desktop's view: %+v, %v; want confirmed by 小企鹅", v, err)
	}
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state, Code: code}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("the callback again: %v, want unauthorized", err)
	}
	sess, err := f.svc.Redeem(ctx, authcore.RedeemRequest{ID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP})
	if err != nil || sess.User.ID != res.User.ID {
		t.Fatalf("redeem: %+v, %v; want the QQ user's session", sess.User, err)
	}
	if p, err := f.svc.Authenticate(ctx, sess.AccessToken); err != nil || strings.Join(p.Session.AMR, " ") != "qq" ||
		p.Session.Method != "qq" || !p.Session.AuthTime.Equal(f.clock.Now()) {
		t.Errorf("the desktop's session of a QQ login: %+v, %v; want amr [qq], method qq, auth_time now", p.Session, err)
	}
	// The moment's session that made the moves is gone.
	if got, _ := f.store.UserSessions(ctx, res.User.ID, f.clock.Now()); len(got) != 1 {
		t.Errorf("the QQ user has %d sessions, want 1 (the redeemed one)", len(got))
	}

	// The same QQ account later is the same user.
	nt2, state2 := f.start(t, "qq")
	res2, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state2,
		Code: f.qq.consent(state2, authcore.ExternalIdentity{Subject: "qq-union-1"})})
	if err != nil || res2.User.ID != res.User.ID || res2.TicketID != nt2.ID {
		t.Fatalf("second QQ login: %+v, %v; want user %s", res2, err, res.User.ID)
	}
}

// TestOAuthFailuresLeaveTicket: a refusal, a bad code and an expired state
// leave the ticket pending; a ticket no longer pending is refused.
func TestOAuthFailuresLeaveTicket(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()

	nt, state := f.start(t, "qq")
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state, Error: "access_denied"}); authcore.KindOf(err) != authcore.KindForbidden {
		t.Errorf("a refusal: %v, want forbidden", err)
	}
	_, stateNoCode := f.start(t, "qq")
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: stateNoCode}); authcore.KindOf(err) != authcore.KindForbidden {
		t.Errorf("a redirect without a code (WeChat's refusal): %v, want forbidden", err)
	}
	_, stateDown := f.start(t, "qq")
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: stateDown, Error: "temporarily_unavailable"}); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Errorf("a provider that cannot serve: %v, want upstream_unavailable", err)
	}
	nt2, state2 := f.start(t, "qq")
	f.qq.fail = authcore.Errorf(authcore.KindUpstreamUnavailable, "QQ is down")
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state2, Code: "x"}); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Errorf("a failing provider: %v, want upstream_unavailable", err)
	}
	nt3, state3 := f.start(t, "qq")
	f.clock.Advance(authcore.OAuthStateTTL)
	if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state3,
		Code: f.qq.consent(state3, authcore.ExternalIdentity{Subject: "late"})}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("a state past 10 minutes: %v, want unauthorized", err)
	}
	f.clock.Advance(-authcore.OAuthStateTTL)
	for _, id := range []string{nt.ID, nt2.ID, nt3.ID} {
		if st := f.state(t, id); st != authcore.StatePending {
			t.Errorf("ticket after a failed provider login: %s, want pending", st)
		}
	}
	for _, bad := range []string{"", strings.Repeat("s", 129)} {
		if _, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: bad, Code: "c"}); authcore.KindOf(err) != authcore.KindInvalid {
			t.Errorf("state %.10q: %v, want invalid", bad, err)
		}
	}

	// A ticket a phone scanned meanwhile is not confirmed by the callback.
	nt4, state4 := f.start(t, "qq")
	fx := &fixture{svc: f.svc, wx: f.wx, clock: f.clock, tokens: map[string]string{}}
	phone := fx.phone(t, "o-phone", "phone user")
	if _, err := f.svc.Scan(ctx, fx.token(phone), nt4.Ticket); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: state4,
		Code: f.qq.consent(state4, authcore.ExternalIdentity{Subject: "qq-2"})})
	if authcore.KindOf(err) != authcore.KindConflict {
		t.Errorf("callback for a ticket a phone scanned: %v, want conflict", err)
	}
	if v, _ := f.svc.View(ctx, nt4.ID); v.State != authcore.StateScanned || v.Scanner.Nickname != "phone user" {
		t.Errorf("the scanned ticket after the callback: %+v", v)
	}
	// Starting on a ticket that is not pending, or with a wrong secret.
	if _, err := f.svc.StartTicketOAuth(ctx, authcore.TicketOAuthRequest{TicketID: nt4.ID, Secret: nt4.WatchSecret, Client: desktopIP, Provider: "qq"}); authcore.KindOf(err) != authcore.KindConflict {
		t.Errorf("starting on a scanned ticket: %v, want conflict", err)
	}
	if _, err := f.svc.StartTicketOAuth(ctx, authcore.TicketOAuthRequest{TicketID: nt.ID, Secret: "wrong", Client: desktopIP, Provider: "qq"}); authcore.KindOf(err) != authcore.KindUnauthorized {
		t.Errorf("a wrong watch secret: %v, want unauthorized", err)
	}
	if _, err := f.svc.StartTicketOAuth(ctx, authcore.TicketOAuthRequest{TicketID: nt.ID, Secret: nt.WatchSecret, Client: desktopIP, Provider: "github"}); authcore.KindOf(err) != authcore.KindNotFound {
		t.Errorf("an unknown provider: %v, want not_found", err)
	}
}

// TestOAuthUnionIDAndLinks: a website login with the unionid of a
// mini-program user is that user; a link adds the identity to the caller,
// and one that belongs to someone else is a conflict.
func TestOAuthUnionIDAndLinks(t *testing.T) {
	f := newOAuthFixture(t)
	ctx := context.Background()
	f.wx.mu.Lock()
	f.wx.codes["c1"] = "o-mini"
	f.wx.mu.Unlock()
	// The fake WeChat gives no unionid: link one through the store, as a
	// bound mini-program's login would have.
	mini, err := f.svc.WxLogin(ctx, authcore.WxLoginRequest{Code: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.LinkIdentity(ctx, authcore.Identity{Provider: "wechat", Subject: "o-mini-2", UnionID: "union-1"}, mini.User.ID); err != nil {
		t.Fatal(err)
	}
	_, state := f.start(t, "wechat_web")
	res, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "wechat_web", State: state,
		Code: f.web.consent(state, authcore.ExternalIdentity{Subject: "union-1", UnionID: "union-1", Nickname: "web"})})
	if err != nil || res.User.ID != mini.User.ID {
		t.Fatalf("website login with the mini-program user's unionid: %+v, %v; want user %s", res.User, err, mini.User.ID)
	}

	p, err := f.svc.Authenticate(ctx, mini.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if prov := f.svc.OAuthProviders(); strings.Join(prov, " ") != "corp qq wechat_web" {
		t.Errorf("OAuthProviders = %q, want the route names, sorted", prov)
	}
	u, err := f.svc.StartLinkOAuth(ctx, p, "qq", "https://app.example/linked")
	if err != nil {
		t.Fatal(err)
	}
	parsed, _ := url.Parse(u)
	st := parsed.Query().Get("state")
	res, err = f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: st,
		Code: f.qq.consent(st, authcore.ExternalIdentity{Subject: "qq-of-mini"})})
	if err != nil || !res.Linked || res.ReturnTo != "https://app.example/linked" {
		t.Fatalf("link QQ: %+v, %v", res, err)
	}
	ids, _ := f.store.Identities(ctx, mini.User.ID)
	found := false
	for _, id := range ids {
		found = found || (id.Provider == "qq" && id.Subject == "qq-of-mini")
	}
	if !found {
		t.Errorf("identities after linking QQ: %+v", ids)
	}

	// Another user's QQ account: 409, nothing linked.
	_, st2 := f.start(t, "qq")
	other, err := f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: st2,
		Code: f.qq.consent(st2, authcore.ExternalIdentity{Subject: "qq-other"})})
	if err != nil {
		t.Fatal(err)
	}
	u, _ = f.svc.StartLinkOAuth(ctx, p, "qq", "")
	parsed, _ = url.Parse(u)
	st = parsed.Query().Get("state")
	_, err = f.svc.OAuthCallback(ctx, authcore.OAuthCallbackRequest{Provider: "qq", State: st,
		Code: f.qq.consent(st, authcore.ExternalIdentity{Subject: "qq-other"})})
	if authcore.KindOf(err) != authcore.KindConflict {
		t.Errorf("linking another user's QQ account: %v, want conflict", err)
	}
	if u, err := f.store.UserByIdentity(ctx, authcore.Identity{Provider: "qq", Subject: "qq-other"}); err != nil || u.ID != other.User.ID {
		t.Errorf("the QQ account after a refused link: %s, %v; want still %s's", u.ID, err, other.User.ID)
	}
	// A link needs a recent login.
	f.clock.Advance(time.Hour)
	if _, err := f.svc.StartLinkOAuth(ctx, p, "qq", ""); authcore.KindOf(err) != authcore.KindStepUpRequired {
		t.Errorf("a link an hour after login: %v, want step_up_required", err)
	}
}

// s256 is the PKCE S256 challenge of verifier.
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
