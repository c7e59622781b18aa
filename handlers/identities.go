package handlers

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/loginhub/loginhub/authcore"
)

func handleMyIdentities(d Deps) http.HandlerFunc {
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, _ noBody) (authcore.IdentityList, error) {
		return d.Auth.MyIdentities(r.Context(), p)
	})
}

func handleLinkWeChat(d Deps) http.HandlerFunc {
	type request struct {
		Code string `json:"code"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, req request) (authcore.IdentityList, error) {
		if err := allowUser(d, r, "link", p.User.ID); err != nil {
			return authcore.IdentityList{}, err
		}
		return d.Auth.LinkWeChat(r.Context(), p, req.Code)
	})
}

func handleLinkPhone(d Deps) http.HandlerFunc {
	type request struct {
		Phone string `json:"phone"`
		Code  string `json:"code"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, req request) (authcore.IdentityList, error) {
		if err := allowUser(d, r, "link", p.User.ID); err != nil {
			return authcore.IdentityList{}, err
		}
		return d.Auth.LinkPhone(r.Context(), p, req.Phone, req.Code)
	})
}

func handleUnlinkIdentity(d Deps) http.HandlerFunc {
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, _ noBody) (authcore.IdentityList, error) {
		return d.Auth.UnlinkIdentities(r.Context(), p, chi.URLParam(r, "provider"))
	})
}
