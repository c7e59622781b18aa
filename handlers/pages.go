package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/web"
)

func handleStatic(name string) http.HandlerFunc {
	static := web.Static()
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.ServeFileFS(w, r, static, name)
	}
}

// pageHeaders sets the headers of an HTML page and returns the nonce its
// inline <script> and <style> must carry. The Content-Security-Policy
// runs only this response's inline code and scripts from this origin
// (loginhub.js), so markup that ever slipped into a page cannot run;
// frame-ancestors 'none' stops another site from framing a page to trick a
// click (a QR code to scan, a confirm button).
func pageHeaders(w http.ResponseWriter) (nonce string) {
	var b [16]byte
	rand.Read(b[:])
	nonce = base64.RawURLEncoding.EncodeToString(b[:]) // no + or /: nothing for html/template to escape
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self' 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+"'; "+
		"img-src 'self' data: https:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY") // frame-ancestors for browsers without CSP level 2
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	return nonce
}

// hsts tells browsers to reach the hub over HTTPS only, for a year, when
// its public URL is https (on plain http the header would be ignored, and
// on a loopback first run it would pin localhost to HTTPS).
func hsts(on bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if !on {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Strict-Transport-Security", "max-age=31536000")
			next.ServeHTTP(w, r)
		})
	}
}

// handlePage serves a page template (web.IndexPage, web.PhonePage).
func handlePage(d Deps, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		nonce := pageHeaders(w)
		page := web.Page{SandboxBanner: d.SandboxBanner, Nonce: nonce}
		if name == web.IndexPage {
			for _, route := range d.Auth.OAuthProviders() {
				page.Providers = append(page.Providers, web.Provider{Route: route, Name: providerName(route)})
			}
		}
		if err := web.RenderPage(w, name, page); err != nil {
			d.Logger.ErrorContext(r.Context(), "render page", "page", name, "err", err)
			http.Error(w, "page unavailable", http.StatusInternalServerError)
		}
	}
}

// handleLanding answers a QR URL opened outside WeChat (a phone's camera
// app, a desktop browser): it tells the person to scan with WeChat.
func handleLanding(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ticket := chi.URLParam(r, "ticket")
		l := web.Landing{Ticket: ticket, SandboxBanner: d.SandboxBanner, Nonce: pageHeaders(w)}
		if d.Sandbox != nil {
			l.SandboxPhoneURL = "/sandbox/phone?ticket=" + url.QueryEscape(ticket)
		}
		if err := web.RenderLanding(w, l); err != nil {
			d.Logger.ErrorContext(r.Context(), "render landing page", "err", err)
		}
	}
}

func handleHealthz() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

func handleReadyz(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := d.Ready(ctx); err != nil {
			d.Logger.WarnContext(ctx, "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "upstream_unavailable", Message: "store or broker unreachable"})
			return
		}
		// A down WeChat keeps the node in rotation (200): sessions,
		// refreshes and scans by logged-in phones still work here, and
		// every other node has the same WeChat. Only its name is shown.
		if down := d.degraded(); len(down) > 0 {
			writeJSON(w, http.StatusOK, readyBody{Status: "degraded", Degraded: down})
			return
		}
		writeJSON(w, http.StatusOK, readyBody{Status: "ready"})
	}
}

type readyBody struct {
	Status   string   `json:"status"`             // "ready" or "degraded"
	Degraded []string `json:"degraded,omitempty"` // the dependencies that are down, when degraded
}
