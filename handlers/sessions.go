package handlers

import (
	"net/http"

	"github.com/loginhub/loginhub/authcore"
)

func handleWxLogin(d Deps) http.HandlerFunc {
	type request struct {
		Code      string `json:"code"`
		Nickname  string `json:"nickname"`
		AvatarURL string `json:"avatar_url"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(w, r, &req, false); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		sess, err := d.Auth.WxLogin(r.Context(), authcore.WxLoginRequest{Code: req.Code, Nickname: req.Nickname, AvatarURL: req.AvatarURL})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, sess)
	}
}

func handleRefresh(d Deps) http.HandlerFunc {
	type request struct {
		RefreshToken string `json:"refresh_token"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(w, r, &req, false); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if err := allowUser(d, r, "refresh", tokenSession(req.RefreshToken)); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		sess, err := d.Auth.Refresh(r.Context(), req.RefreshToken)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, sess)
	}
}

func handleLogout(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := d.Auth.Logout(r.Context(), bearer(r)); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleMe(d Deps) http.HandlerFunc {
	// user is the core's SessionUser plus the sandbox mark, which the core
	// need not know: a hub that emulates WeChat has no users of a real
	// WeChat, so the mark is the hub's, not the user's; and a session of
	// an SMS login on a hub that emulates SMS proved no real phone.
	type user struct {
		authcore.SessionUser
		Sandbox bool `json:"sandbox,omitempty"`
	}
	type me struct {
		User    user                  `json:"user"`
		Session authcore.SessionFacts `json:"session"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, _ noBody) (me, error) {
		sandbox := d.SandboxUsers || d.SMSInbox != nil && p.Session.Provider == "phone"
		return me{User: user{SessionUser: p.SessionUser(), Sandbox: sandbox}, Session: p.Facts()}, nil
	})
}
