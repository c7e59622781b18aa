package handlers

import (
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

// noBody is the request type of endpoints that read no JSON body.
type noBody struct{}

// handleAuthed is the shape of every endpoint a logged-in phone or user
// calls: authenticate, decode the JSON body into Req (unless Req is
// noBody), call, and write the result — with Cache-Control: no-store when
// it carries personal data or secrets.
func handleAuthed[Req, Res any](d Deps, private bool, call func(r *http.Request, p authcore.Principal, req Req) (Res, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		var req Req
		if _, none := any(req).(noBody); !none {
			if err := decode(w, r, &req, false); err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
		}
		res, err := call(r, p, req)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if private {
			writeSecret(w, http.StatusOK, res)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func handleScan(d Deps) http.HandlerFunc {
	type request struct {
		Ticket string `json:"ticket"`
	}
	return handleAuthed(d, false, func(r *http.Request, p authcore.Principal, req request) (authcore.ScanResult, error) {
		if req.Ticket == "" {
			return authcore.ScanResult{}, authcore.Errorf(authcore.KindInvalid, "ticket is required")
		}
		return d.Auth.Scan(r.Context(), p, req.Ticket)
	})
}

func handleConfirm(d Deps) http.HandlerFunc {
	return handleAuthed(d, false, func(r *http.Request, p authcore.Principal, _ noBody) (authcore.PhoneResult, error) {
		return d.Auth.Confirm(r.Context(), p, chi.URLParam(r, "id"))
	})
}

func handleCancel(d Deps) http.HandlerFunc {
	return handleAuthed(d, false, func(r *http.Request, p authcore.Principal, _ noBody) (authcore.PhoneResult, error) {
		return d.Auth.Cancel(r.Context(), p, chi.URLParam(r, "id"))
	})
}
