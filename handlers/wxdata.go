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
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, req request) (authcore.WxPhoneResult, error) {
		if err := allowUser(d, r, "phone", p.User.ID); err != nil {
			return authcore.WxPhoneResult{}, err
		}
		return d.Auth.WxPhone(r.Context(), p, authcore.WxPhoneRequest{
			Code: req.Code, EncryptedData: req.EncryptedData, IV: req.IV, RequestID: requestIDOf(r),
		})
	})
}

func handleWxUserInfo(d Deps) http.HandlerFunc {
	type request struct {
		EncryptedData string `json:"encrypted_data"`
		IV            string `json:"iv"`
		RawData       string `json:"raw_data"`
		Signature     string `json:"signature"`
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, req request) (authcore.WeChatUserInfo, error) {
		return d.Auth.WxUserInfo(r.Context(), p, authcore.WxUserInfoRequest{
			EncryptedData: req.EncryptedData, IV: req.IV, RawData: req.RawData, Signature: req.Signature,
		})
	})
}

func handleWxSessionCheck(d Deps) http.HandlerFunc {
	return handleAuthed(d, false, func(r *http.Request, p authcore.Principal, _ noBody) (authcore.SessionKeyCheck, error) {
		return d.Auth.WxCheckSession(r.Context(), p)
	})
}

func handleMyDataExport(d Deps) http.HandlerFunc {
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, _ noBody) (authcore.DataExport, error) {
		return d.Auth.ExportMyData(r.Context(), p, requestIDOf(r))
	})
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
		Verifier string `json:"verifier"` // empty: authcore.VerifierWeChatFace
	}
	return handleAuthed(d, true, func(r *http.Request, p authcore.Principal, req request) (authcore.FaceStarted, error) {
		if err := allowUser(d, r, "face", p.User.ID); err != nil {
			return authcore.FaceStarted{}, err
		}
		return d.Auth.FaceVerifyID(r.Context(), p, req.Verifier, req.Name, req.IDNumber, requestIDOf(r))
	})
}

func handleFaceResult(d Deps) http.HandlerFunc {
	type request struct {
		VerifyID     string `json:"verify_id"`
		VerifyResult string `json:"verify_result"`
	}
	return handleAuthed(d, false, func(r *http.Request, p authcore.Principal, req request) (authcore.FacePassed, error) {
		if err := allowUser(d, r, "face", p.User.ID); err != nil {
			return authcore.FacePassed{}, err
		}
		return d.Auth.FaceResult(r.Context(), p, req.VerifyID, req.VerifyResult)
	})
}
