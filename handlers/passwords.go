package handlers

import (
	"net/http"

	"github.com/loginhub/loginhub/authcore"
)

func handleSetPassword(d Deps) http.HandlerFunc {
	type request struct {
		Password        string `json:"password"`
		CurrentPassword string `json:"current_password"`
	}
	return handleAuthedNoContent(d, func(r *http.Request, p authcore.Principal, req request) error {
		return d.Auth.SetPassword(r.Context(), p, authcore.SetPasswordRequest{Password: req.Password, CurrentPassword: req.CurrentPassword})
	})
}

func handleSetUsername(d Deps) http.HandlerFunc {
	type request struct {
		Username string `json:"username"`
	}
	return handleAuthedNoContent(d, func(r *http.Request, p authcore.Principal, req request) error {
		return d.Auth.SetUsername(r.Context(), p, req.Username)
	})
}

// handleAuthedNoContent is handleAuthed for calls that answer 204.
func handleAuthedNoContent[Req any](d Deps, call func(r *http.Request, p authcore.Principal, req Req) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		req, err := decodeBody[Req](w, r)
		if err == nil {
			err = call(r, p, req)
		}
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handlePasswordLogin(d Deps) http.HandlerFunc {
	type request struct {
		Login    string `json:"login"`
		Password string `json:"password"`
		DeviceID string `json:"device_id"`
	}
	return handleLogin(d, func(r *http.Request, req request) (authcore.Session, error) {
		return d.Auth.PasswordLogin(r.Context(), authcore.PasswordLoginRequest{
			Login: req.Login, Password: req.Password, Client: client(d, r, req.DeviceID)})
	})
}
