package handlers

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/authcore"
)

// authenticated resolves the caller's Bearer access token, writing the
// error response itself when it fails.
func authenticated(d Deps, w http.ResponseWriter, r *http.Request) (authcore.Principal, bool) {
	p, err := d.Auth.Authenticate(r.Context(), bearer(r))
	if err != nil {
		writeError(w, r, d.Logger, err)
		return authcore.Principal{}, false
	}
	return p, true
}

func handleScan(d Deps) http.HandlerFunc {
	type request struct {
		Ticket string `json:"ticket"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		var req request
		if err := decode(w, r, &req, false); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if req.Ticket == "" {
			writeError(w, r, d.Logger, authcore.Errorf(authcore.KindInvalid, "ticket is required"))
			return
		}
		res, err := d.Auth.Scan(r.Context(), p, req.Ticket)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

type phoneDecision func(ctx context.Context, p authcore.Principal, id string) (authcore.PhoneResult, error)

func handlePhoneDecision(d Deps, decide phoneDecision) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		res, err := decide(r.Context(), p, chi.URLParam(r, "id"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func handleConfirm(d Deps) http.HandlerFunc { return handlePhoneDecision(d, d.Auth.Confirm) }
func handleCancel(d Deps) http.HandlerFunc  { return handlePhoneDecision(d, d.Auth.Cancel) }
