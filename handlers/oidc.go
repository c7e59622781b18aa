package handlers

import (
	"context"
	"net/http"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/oidcprovider"
	"github.com/loginhub/loginhub/web"
)

// OIDCProvider is the hub as an OpenID Connect provider
// (oidcprovider.Provider): it serves the protocol's endpoints itself; the
// handlers here serve the login page of an authorization request and take
// the hub session that completes it.
type OIDCProvider interface {
	http.Handler
	Login(ctx context.Context, id, sessionToken string) (oidcprovider.Step, error)
	Complete(ctx context.Context, id, accessToken string) (redirect string, err error)
	SessionCookie(token string, maxAge int) *http.Cookie
}

// handleOIDCLogin shows the hub's login page for an authorization request
// (GET /oauth2/authorize/login?id=), or sends the browser on at once when
// its hub session completes the request (or prompt=none refuses it).
func handleOIDCLogin(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		var session string
		if c, err := r.Cookie(oidcprovider.SessionCookie); err == nil {
			session = c.Value
		}
		step, err := d.OIDC.Login(r.Context(), id, session)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if step.Redirect != "" {
			http.Redirect(w, r, step.Redirect, http.StatusFound)
			return
		}
		nonce := pageHeaders(w)
		page := web.Page{SandboxBanner: d.SandboxBanner, Nonce: nonce, Authorize: id}
		for _, route := range d.Auth.OAuthProviders() {
			page.Providers = append(page.Providers, web.Provider{Route: route, Name: providerName(route)})
		}
		if err := web.RenderPage(w, web.IndexPage, page); err != nil {
			d.Logger.ErrorContext(r.Context(), "render page", "page", "oidc login", "err", err)
			http.Error(w, "page unavailable", http.StatusInternalServerError)
		}
	}
}

// handleOIDCComplete takes the hub session the login page just got
// (Authorization: Bearer <access token>) and completes the authorization
// request (POST /oauth2/authorize/complete?id=) → {"redirect"}. The
// session also goes into a cookie for the provider's paths, so that the
// next app's authorization needs no new login.
func handleOIDCComplete(d Deps) http.HandlerFunc {
	type response struct {
		Redirect string `json:"redirect"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		token := bearer(r)
		if token == "" {
			writeError(w, r, d.Logger, authcore.Errorf(authcore.KindUnauthorized, "Authorization: Bearer <access token> required"))
			return
		}
		redirect, err := d.OIDC.Complete(r.Context(), r.URL.Query().Get("id"), token)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		http.SetCookie(w, d.OIDC.SessionCookie(token, int(authcore.RefreshTokenTTL.Seconds())))
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, response{Redirect: redirect})
	}
}
