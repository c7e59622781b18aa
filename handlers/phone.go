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
		req, err := decodeBody[Req](w, r)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		res, err := call(r, p, req)
		writeResult(d, w, r, private, res, err)
	}
}

// handlePhoneMove is the shape of a phone's moves on a ticket (scan,
// confirm, cancel): decode the JSON body into Req (unless it is noBody)
// and call with the Bearer access token, which the core resolves in the
// same store call as the move. A bad token is reported before a bad body,
// as handleAuthed does.
func handlePhoneMove[Req, Res any](d Deps, call func(r *http.Request, accessToken string, req Req) (Res, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		req, err := decodeBody[Req](w, r)
		if err != nil {
			if _, ok := authenticated(d, w, r); ok {
				writeError(w, r, d.Logger, err)
			}
			return
		}
		res, err := call(r, bearer(r), req)
		writeResult(d, w, r, false, res, err)
	}
}

// decodeBody decodes the request's JSON body into a Req, unless Req is
// noBody.
func decodeBody[Req any](w http.ResponseWriter, r *http.Request) (Req, error) {
	var req Req
	if _, none := any(req).(noBody); none {
		return req, nil
	}
	err := decode(w, r, &req, false)
	return req, err
}

// writeResult writes an endpoint's result, or its error; private results
// get Cache-Control: no-store.
func writeResult[Res any](d Deps, w http.ResponseWriter, r *http.Request, private bool, res Res, err error) {
	switch {
	case err != nil:
		writeError(w, r, d.Logger, err)
	case private:
		writeSecret(w, http.StatusOK, res)
	default:
		writeJSON(w, http.StatusOK, res)
	}
}

func handleScan(d Deps) http.HandlerFunc {
	type request struct {
		Ticket string `json:"ticket"`
	}
	return handlePhoneMove(d, func(r *http.Request, token string, req request) (authcore.ScanResult, error) {
		if err := allowUser(d, r, "scan", tokenSession(token)); err != nil {
			return authcore.ScanResult{}, err
		}
		return d.Auth.Scan(r.Context(), token, req.Ticket)
	})
}

func handleConfirm(d Deps) http.HandlerFunc {
	return handlePhoneMove(d, func(r *http.Request, token string, _ noBody) (authcore.PhoneResult, error) {
		return d.Auth.Confirm(r.Context(), token, chi.URLParam(r, "id"))
	})
}

func handleCancel(d Deps) http.HandlerFunc {
	return handlePhoneMove(d, func(r *http.Request, token string, _ noBody) (authcore.PhoneResult, error) {
		return d.Auth.Cancel(r.Context(), token, chi.URLParam(r, "id"))
	})
}
