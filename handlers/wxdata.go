package handlers

import (
	"net/http"

	"github.com/loginhub/loginhub/authcore"
)

func handleWxPhone(d Deps) http.HandlerFunc {
	type request struct {
		Code          string `json:"code"`
		EncryptedData string `json:"encrypted_data"`
		IV            string `json:"iv"`
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
		res, err := d.Auth.WxPhone(r.Context(), p, authcore.WxPhoneRequest{
			Code: req.Code, EncryptedData: req.EncryptedData, IV: req.IV, RequestID: requestIDOf(r),
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, res)
	}
}

func handleWxUserInfo(d Deps) http.HandlerFunc {
	type request struct {
		EncryptedData string `json:"encrypted_data"`
		IV            string `json:"iv"`
		RawData       string `json:"raw_data"`
		Signature     string `json:"signature"`
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
		info, err := d.Auth.WxUserInfo(r.Context(), p, authcore.WxUserInfoRequest{
			EncryptedData: req.EncryptedData, IV: req.IV, RawData: req.RawData, Signature: req.Signature,
		})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, info)
	}
}

func handleWxSessionCheck(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		res, err := d.Auth.WxCheckSession(r.Context(), p)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}

func handleMyDataExport(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		export, err := d.Auth.ExportMyData(r.Context(), p, requestIDOf(r))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, export)
	}
}

func handleMyDataErase(d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := authenticated(d, w, r)
		if !ok {
			return
		}
		if err := d.Auth.EraseMyData(r.Context(), p, requestIDOf(r)); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleFaceVerifyID(d Deps) http.HandlerFunc {
	type request struct {
		Name     string `json:"name"`
		IDNumber string `json:"id_number"`
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
		res, err := d.Auth.FaceVerifyID(r.Context(), p, req.Name, req.IDNumber, requestIDOf(r))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, res)
	}
}

func handleFaceResult(d Deps) http.HandlerFunc {
	type request struct {
		VerifyID     string `json:"verify_id"`
		VerifyResult string `json:"verify_result"`
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
		res, err := d.Auth.FaceResult(r.Context(), p, req.VerifyID, req.VerifyResult)
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, res)
	}
}
