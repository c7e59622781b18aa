package handlers

import (
	"context"
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

// handlePage serves a page template (web.IndexPage, web.PhonePage).
func handlePage(d Deps, name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if err := web.RenderPage(w, name, web.Page{SandboxBanner: d.SandboxBanner}); err != nil {
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
		l := web.Landing{Ticket: ticket, SandboxBanner: d.SandboxBanner}
		if d.Sandbox != nil {
			l.SandboxPhoneURL = "/sandbox/phone?ticket=" + url.QueryEscape(ticket)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Referrer-Policy", "no-referrer")
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
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}
