package handlers

import (
	"net/http"

	"github.com/loginhub/loginhub/authcore"
)

// handleCarrierLogin is a carrier one-click login: the token the carrier's
// SDK gave the phone, for a session of the number's user. A failing
// carrier answers 503 with "fallback":"sms".
func handleCarrierLogin(d Deps) http.HandlerFunc {
	type request struct {
		Carrier  string `json:"carrier"`
		Token    string `json:"token"`
		DeviceID string `json:"device_id"`
	}
	return handleLogin(d, func(r *http.Request, req request) (authcore.Session, error) {
		return d.Auth.CarrierLogin(r.Context(), authcore.CarrierLoginRequest{Carrier: req.Carrier, Token: req.Token,
			Client: client(d, r, req.DeviceID)})
	})
}

// handleCarrierVerify answers whether a number is the phone's own
// (本机号码校验): {"match"}, never the number.
func handleCarrierVerify(d Deps) http.HandlerFunc {
	type request struct {
		Carrier string `json:"carrier"`
		Token   string `json:"token"`
		Phone   string `json:"phone"`
	}
	type response struct {
		Match bool `json:"match"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, req request) (response, error) {
		match, err := d.Auth.CarrierVerify(r.Context(), p, authcore.CarrierVerifyRequest{Carrier: req.Carrier, Token: req.Token, Phone: req.Phone})
		return response{Match: match}, err
	})
}
