package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/authcore"
)

// maxWait is the longest a long-poll may hold a request.
const maxWait = 30 * time.Second

func handleCreateTicket(d Deps) http.HandlerFunc {
	type request struct {
		DPoPJKT string `json:"dpop_jkt"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(w, r, &req, true); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		t, err := d.Auth.CreateTicket(r.Context(), authcore.NewTicketRequest{
			DPoPJKT: req.DPoPJKT, ClientIP: d.ClientIPs.ClientIP(r), UserAgent: r.UserAgent(),
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusCreated, t)
	}
}

func handleTicketStatus(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		since, err := queryUint(q.Get("since"))
		if err != nil {
			writeError(w, r, d.Logger, authcore.Errorf(authcore.KindInvalid, "since must be a version number"))
			return
		}
		wait, err := queryUint(q.Get("wait"))
		if err != nil {
			writeError(w, r, d.Logger, authcore.Errorf(authcore.KindInvalid, "wait must be a number of seconds"))
			return
		}
		id := chi.URLParam(r, "id")
		v, err := d.Auth.AuthorizeWatch(r.Context(), id, bearer(r), d.ClientIPs.ClientIP(r))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		if v.Version <= since && wait > 0 {
			ctx, cancel := context.WithTimeout(r.Context(), min(time.Duration(wait)*time.Second, maxWait))
			defer cancel()
			if v, err = d.Waiter.Wait(ctx, id, since); err != nil {
				writeError(w, r, d.Logger, err)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		writeJSON(w, http.StatusOK, v.Message(v.Version))
	}
}

func queryUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func handleRedeem(d Deps) http.HandlerFunc {
	type request struct {
		DeviceID string `json:"device_id"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(w, r, &req, true); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		secret := bearer(r)
		if secret == "" {
			writeError(w, r, d.Logger, authcore.Errorf(authcore.KindUnauthorized, "Authorization: Bearer <watch_secret> required"))
			return
		}
		sess, err := d.Auth.Redeem(r.Context(), authcore.RedeemRequest{
			ID: chi.URLParam(r, "id"), Secret: secret, Client: d.ClientIPs.ClientIP(r),
			DPoPProof: r.Header.Get("DPoP"), Method: r.Method, Path: r.URL.Path,
			UserAgent: r.UserAgent(), DeviceID: req.DeviceID,
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, sess)
	}
}
