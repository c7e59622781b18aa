// Package handlers is loginhub's HTTP surface: routes.go lists every route;
// each handler is a small function that takes its dependencies and turns
// HTTP into authcore calls and back. Domain errors become HTTP statuses in
// one place (writeError).
package handlers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/web"
)

// Waiter is the hub's long-poll primitive.
type Waiter interface {
	Wait(ctx context.Context, id string, since uint64) (authcore.View, error)
}

// Deps is what the handlers need.
type Deps struct {
	Logger        *slog.Logger
	Auth          *authcore.Service
	WebSocket     http.Handler // the hub's /v1/ws endpoint
	Waiter        Waiter
	Limiter       Limiter
	ClientIPs     ClientIPs
	AllowedOrigin func(origin string) bool
	TicketRate    int                             // tickets per client address per minute; 0 = unlimited
	LoginRate     int                             // wx, SMS and password logins per client address per minute each; 0 = unlimited
	CallRate      int                             // redeem, scan, refresh, phone, face calls per client address per minute each, a tenth per user; 0 = unlimited
	Sandbox       http.Handler                    // the fake WeChat API; nil when WeChat is real
	OAuthFakes    map[string]http.Handler         // the sandbox's fake QQ, Weibo, WeChat website login, by route name (/sandbox/<name>)
	CarrierFake   http.Handler                    // the sandbox's fake carriers (/sandbox/carrier); nil when carriers are real or off
	SMSInbox      SMSInbox                        // the sandbox's SMS messages (GET /sandbox/sms); nil when SMS is not emulated
	SandboxUsers  bool                            // every user came through the sandbox: /v1/me says "sandbox": true
	SandboxBanner bool                            // the sandbox is on beyond loopback: every page shows a banner
	HSTS          bool                            // the public URL is https: every response sends Strict-Transport-Security
	Ready         func(ctx context.Context) error // store and broker reachable
	Degradable    []Dependency                    // upstreams the hub serves without, degraded, while they are down
	QR            *QRCache
	OIDC          OIDCProvider // the OpenID Connect provider; nil: none (its routes answer 404)
}

// Dependency is an upstream the hub keeps serving without: while it is
// down /readyz answers 200 "degraded" and names it.
type Dependency struct {
	Name string      // as /readyz and loginhub_dependency_up name it: "wechat"
	Up   func() bool // cheap, no I/O: a circuit breaker's state
}

// degraded lists the names of the dependencies that are down, in Degradable's
// order, or nil.
func (d Deps) degraded() []string {
	var down []string
	for _, dep := range d.Degradable {
		if !dep.Up() {
			down = append(down, dep.Name)
		}
	}
	return down
}

// Routes returns the hub's whole HTTP API.
func Routes(d Deps) http.Handler {
	r := chi.NewRouter()
	r.Use(requestID(d.Logger, d.ClientIPs), cors(d.AllowedOrigin), hsts(d.HSTS))

	r.Get("/healthz", handleHealthz())
	r.Get("/readyz", handleReadyz(d))
	// No /metrics here: the hub serves it on its internal listener only.

	// Pages and the JavaScript client.
	r.Get("/", handlePage(d, web.IndexPage))
	r.Get("/loginhub.js", handleStatic(web.ClientScript))
	r.Get("/loginhub.mjs", handleStatic(web.ClientModule))
	r.Get("/s/{ticket}", handleLanding(d))

	r.Route("/v1", func(r chi.Router) {
		r.Handle("/ws", d.WebSocket)
		r.Get("/openapi.json", handleOpenAPI()) // this API, as OpenAPI 3.1

		// Desktop.
		r.With(rateLimit(d, "ticket", d.TicketRate)).Post("/qr/tickets", handleCreateTicket(d))
		r.Get("/qr/tickets/{id}", handleTicketStatus(d))
		r.Get("/qr/tickets/{id}/qr.png", handleQRPNG(d))
		r.Get("/qr/tickets/{id}/qr.svg", handleQRSVG(d))
		r.With(rateLimit(d, "redeem", d.CallRate)).Post("/qr/tickets/{id}/redeem", handleRedeem(d))
		// Third-party logins (QQ, Weibo, WeChat website, OIDC) confirm the
		// ticket from their callback: the desktop's path is unchanged.
		r.With(rateLimit(d, "oauth", d.CallRate)).Post("/qr/tickets/{id}/oauth/{provider}", handleTicketOAuth(d))
		r.With(rateLimit(d, "oauth", d.CallRate)).Get("/oauth/{provider}/callback", handleOAuthCallback(d))

		// Phone.
		r.With(rateLimit(d, "scan", d.CallRate)).Post("/qr/scan", handleScan(d))
		r.Post("/qr/tickets/{id}/confirm", handleConfirm(d))
		r.Post("/qr/tickets/{id}/cancel", handleCancel(d))

		// Mini-program login and sessions.
		r.With(rateLimit(d, "wxlogin", d.LoginRate)).Post("/wx/login", handleWxLogin(d))
		r.With(rateLimit(d, "phone", d.CallRate)).Post("/wx/phone", handleWxPhone(d))
		r.Post("/wx/userinfo", handleWxUserInfo(d))
		r.Post("/wx/session/check", handleWxSessionCheck(d))

		// SMS login (answers not_found when SMS is disabled). The code
		// route's own limits (per number, per address) live in the core.
		r.Post("/sms/code", handleSMSCode(d))
		r.With(rateLimit(d, "smslogin", d.LoginRate)).Post("/sms/login", handleSMSLogin(d))
		// A login stepped up by risk control, completed by an SMS code.
		r.With(rateLimit(d, "stepup", d.LoginRate)).Post("/step-up", handleStepUp(d))

		// Passwords. The failure limits (per user, per address) and the
		// bound on concurrent hashes live in the core.
		r.With(rateLimit(d, "pwdlogin", d.LoginRate)).Post("/password/login", handlePasswordLogin(d))
		r.Put("/me/password", handleSetPassword(d))
		r.Put("/me/username", handleSetUsername(d))

		// Face verification (step-up).
		r.With(rateLimit(d, "face", d.CallRate)).Post("/face/verify-id", handleFaceVerifyID(d))
		r.With(rateLimit(d, "face", d.CallRate)).Post("/face/result", handleFaceResult(d))
		r.With(rateLimit(d, "refresh", d.CallRate)).Post("/session/refresh", handleRefresh(d))
		r.Post("/session/logout", handleLogout(d))
		r.Get("/me", handleMe(d))
		r.Get("/me/data", handleMyDataExport(d))
		r.Delete("/me/data", handleMyDataErase(d))
		r.Get("/me/identities", handleMyIdentities(d))
		r.Get("/me/sessions", handleMySessions(d))
		r.Delete("/me/sessions/{id}", handleRevokeMySession(d))
		r.Get("/me/logins", handleMyLogins(d))
		r.With(rateLimit(d, "link", d.CallRate)).Post("/me/identities/wechat", handleLinkWeChat(d))
		r.With(rateLimit(d, "link", d.CallRate)).Post("/me/identities/phone", handleLinkPhone(d))
		r.Delete("/me/identities/{provider}", handleUnlinkIdentity(d))

		// Carrier one-click login and number verification (not_found when
		// no carrier is enabled). The per-user verification limit lives in
		// the core.
		r.With(rateLimit(d, "carrierlogin", d.LoginRate)).Post("/carrier/login", handleCarrierLogin(d))
		r.With(rateLimit(d, "carrierverify", d.CallRate)).Post("/carrier/verify", handleCarrierVerify(d))
		r.With(rateLimit(d, "link", d.CallRate)).Post("/me/identities/{provider}/start", handleLinkOAuth(d))
	})

	// The OpenID Connect provider (oidc.go): the protocol's endpoints are
	// its own; the login page of a request and its completion are ours.
	if d.OIDC != nil {
		r.Handle("/.well-known/openid-configuration", d.OIDC)
		r.Handle("/.well-known/jwks.json", d.OIDC)
		r.Get("/oauth2/authorize/login", handleOIDCLogin(d))
		r.With(rateLimit(d, "oidc", d.CallRate)).Post("/oauth2/authorize/complete", handleOIDCComplete(d))
		r.Handle("/oauth2/*", d.OIDC)
	}

	if d.Sandbox != nil {
		r.Mount("/sandbox/wechat", http.StripPrefix("/sandbox/wechat", d.Sandbox))
		r.Get("/sandbox/phone", handlePage(d, web.PhonePage))
	}
	for name, fake := range d.OAuthFakes {
		r.Mount("/sandbox/"+name, http.StripPrefix("/sandbox/"+name, fake))
	}
	if d.SMSInbox != nil {
		r.Get("/sandbox/sms", handleSandboxSMS(d))
	}
	if d.CarrierFake != nil {
		r.Mount("/sandbox/carrier", http.StripPrefix("/sandbox/carrier", d.CarrierFake))
	}

	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, d.Logger, authcore.Errorf(authcore.KindNotFound, "no such endpoint"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "invalid_request", Message: "method not allowed"})
	})
	return r
}
