package handlers

import (
	"cmp"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/web"
)

// maxReturnTo bounds a return_to URL.
const maxReturnTo = 2048

type oauthStarted struct {
	AuthorizeURL string `json:"authorize_url"`
}

type oauthStartRequest struct {
	ReturnTo string `json:"return_to"`
}

// checkReturnTo accepts "" or an http(s) URL under an allowed origin: the
// callback sends the browser there, so anything else would make the hub
// an open redirect.
func checkReturnTo(d Deps, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || len(s) > maxReturnTo || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		!d.AllowedOrigin(u.Scheme+"://"+u.Host) {
		return authcore.Errorf(authcore.KindInvalid, "return_to must be an http(s) URL under an allowed origin")
	}
	return nil
}

// handleTicketOAuth starts a desktop's login with a provider: the ticket's
// watch secret as Bearer, then the provider's authorize URL to open.
func handleTicketOAuth(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req oauthStartRequest
		if err := decode(w, r, &req, true); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		secret := bearer(r)
		if secret == "" {
			writeError(w, r, d.Logger, authcore.Errorf(authcore.KindUnauthorized, "Authorization: Bearer <watch_secret> required"))
			return
		}
		if err := checkReturnTo(d, req.ReturnTo); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		u, err := d.Auth.StartTicketOAuth(r.Context(), authcore.TicketOAuthRequest{
			TicketID: chi.URLParam(r, "id"), Secret: secret, Client: d.ClientIPs.ClientIP(r),
			Provider: chi.URLParam(r, "provider"), ReturnTo: req.ReturnTo,
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, oauthStarted{AuthorizeURL: u})
	}
}

// handleLinkOAuth starts a provider login whose identity is linked to the
// caller. The body ({"return_to"}) is optional.
func handleLinkOAuth(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		var req oauthStartRequest
		err := decode(w, r, &req, true)
		if err == nil {
			err = checkReturnTo(d, req.ReturnTo)
		}
		if err == nil {
			err = allowUser(d, r, "link", p.User.ID)
		}
		var started oauthStarted
		if err == nil {
			started.AuthorizeURL, err = d.Auth.StartLinkOAuth(r.Context(), p, chi.URLParam(r, "provider"), req.ReturnTo)
		}
		writeResult(d, w, r, true, started, err)
	}
}

// handleOAuthCallback is the redirect URI registered with each provider.
// It completes the login (or the link) and redirects to return_to, or shows
// a page that closes itself; on failure the page says why, and links back
// to return_to if there is one; the provider's own words are only logged.
func handleOAuthCallback(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		provider := chi.URLParam(r, "provider")
		res, err := d.Auth.OAuthCallback(r.Context(), authcore.OAuthCallbackRequest{
			Provider: provider, State: q.Get("state"), Code: cmp.Or(q.Get("code"), q.Get("oauth_verifier")),
			Token: q.Get("oauth_token"), Error: providerError(q),
		})
		if err == nil && res.ReturnTo != "" {
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("Referrer-Policy", "no-referrer")
			http.Redirect(w, r, res.ReturnTo, http.StatusSeeOther)
			return
		}
		done := web.OAuthDone{Provider: providerName(provider), OK: err == nil, SandboxBanner: d.SandboxBanner}
		status := http.StatusOK
		if err != nil {
			// A page that came here itself (return_to) gets a way back.
			done.ReturnTo = res.ReturnTo
			var de *authcore.Error
			if errors.As(err, &de) {
				done.Message, status = de.Message, statusOf(de.Kind)
				if de.Kind == authcore.KindUpstreamUnavailable {
					// The provider failed, not the hub: the page served
					// fine and says so; 5xx stay the hub's own failures.
					status = http.StatusOK
					d.Logger.WarnContext(r.Context(), "oauth provider failed", "provider", provider, "err", err)
				}
			} else {
				done.Message, status = "the login failed on our side; try again later", http.StatusInternalServerError
			}
			switch {
			case status >= 500:
				d.Logger.ErrorContext(r.Context(), "oauth callback failed", "provider", provider, "status", status, "err", err)
			case status >= 400:
				d.Logger.InfoContext(r.Context(), "oauth callback refused", "provider", provider, "status", status, "err", err)
			}
		}
		done.Nonce = pageHeaders(w)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		if err := web.RenderOAuthDone(w, done); err != nil {
			d.Logger.ErrorContext(r.Context(), "render oauth page", "err", err)
		}
	}
}

// providerError is the error a provider's redirect carries instead of a
// code: OAuth's error parameter, or Weibo's error_code.
func providerError(q url.Values) string {
	if e := q.Get("error"); e != "" {
		return e
	}
	return q.Get("error_code")
}

// providerName is how a page names a provider.
func providerName(provider string) string {
	switch provider {
	case "qq":
		return "QQ"
	case "weibo":
		return "微博 Weibo"
	case "wechat_web":
		return "微信 WeChat"
	}
	return strings.TrimPrefix(provider, "oidc:")
}
