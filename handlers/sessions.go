package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/loginhub/loginhub/authcore"
)

// handleLogin is a route that answers a session (a login, a refresh):
// decode the body into a T, get the session with it, answer it (never
// cached).
func handleLogin[T any](d Deps, login func(r *http.Request, body T) (authcore.Session, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body T
		if err := decode(w, r, &body, false); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		sess, err := login(r, body)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, sess)
	}
}

func handleWxLogin(d Deps) http.HandlerFunc {
	type request struct {
		Code      string `json:"code"`
		Nickname  string `json:"nickname"`
		AvatarURL string `json:"avatar_url"`
		DeviceID  string `json:"device_id"`
	}
	return handleLogin(d, func(r *http.Request, req request) (authcore.Session, error) {
		return d.Auth.WxLogin(r.Context(), authcore.WxLoginRequest{Code: req.Code, Nickname: req.Nickname, AvatarURL: req.AvatarURL,
			Client: client(d, r, req.DeviceID)})
	})
}

func handleRefresh(d Deps) http.HandlerFunc {
	type request struct {
		RefreshToken string `json:"refresh_token"`
	}
	return handleLogin(d, func(r *http.Request, req request) (authcore.Session, error) {
		if err := allowUser(d, r, "refresh", tokenSession(req.RefreshToken)); err != nil {
			return authcore.Session{}, err
		}
		return d.Auth.Refresh(r.Context(), req.RefreshToken)
	})
}

// client is what a login request tells of its client.
func client(d Deps, r *http.Request, deviceID string) authcore.Client {
	return authcore.Client{IP: d.ClientIPs.ClientIP(r), UserAgent: r.UserAgent(), DeviceID: deviceID}
}

// handleLogout revokes the caller's session, or with {"all":true} every
// session of the user.
func handleLogout(d Deps) http.HandlerFunc {
	type request struct {
		All bool `json:"all"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(w, r, &req, true); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if !req.All {
			if err := d.Auth.Logout(r.Context(), bearer(r)); err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		if err := d.Auth.LogoutAll(r.Context(), p); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleMySessions(d Deps) http.HandlerFunc {
	type response struct {
		Sessions []authcore.SessionInfo `json:"sessions"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, _ noBody) (response, error) {
		l, err := d.Auth.MySessions(r.Context(), p)
		return response{Sessions: l}, err
	})
}

func handleRevokeMySession(d Deps) http.HandlerFunc {
	return handleAuthedNoContent(d, func(r *http.Request, p authcore.Principal, _ noBody) error {
		return d.Auth.RevokeMySession(r.Context(), p, chi.URLParam(r, "id"))
	})
}

func handleMyLogins(d Deps) http.HandlerFunc {
	type response struct {
		Logins []authcore.LoginAttempt `json:"logins"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, _ noBody) (response, error) {
		l, err := d.Auth.MyLogins(r.Context(), p)
		return response{Logins: l}, err
	})
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
		if err := requireStepUp(d, r, p); err != nil {
			return me{}, err
		}
		sandbox := d.SandboxUsers || d.SMSInbox != nil && p.Session.Provider == "phone"
		return me{User: user{SessionUser: p.SessionUser(), Sandbox: sandbox}, Session: p.Facts()}, nil
	})
}

// requireStepUp applies the query's require=<method>&max_age=<seconds>, if
// any: an app backend's way to ask that the session passed a check of that
// method recently.
func requireStepUp(d Deps, r *http.Request, p authcore.Principal) error {
	q := r.URL.Query()
	method, maxAge := q.Get("require"), q.Get("max_age")
	if method == "" && maxAge == "" {
		return nil
	}
	if method == "" || maxAge == "" {
		return authcore.Errorf(authcore.KindInvalid, "require and max_age go together: ?require=face&max_age=<seconds>")
	}
	secs, err := strconv.ParseUint(maxAge, 10, 32)
	if err != nil {
		return authcore.Errorf(authcore.KindInvalid, "max_age: a whole number of seconds")
	}
	return d.Auth.RequireStepUp(p, method, time.Duration(secs)*time.Second)
}
