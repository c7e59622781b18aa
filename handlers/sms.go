package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/sms"
)

// SMSInbox is the sandbox's SMS gateway (sms.Inbox): where codes go when
// SMS is emulated.
type SMSInbox interface {
	Messages(ctx context.Context, phone string, now time.Time) ([]sms.Message, error)
}

func handleSMSCode(d Deps) http.HandlerFunc {
	type request struct {
		Phone    string `json:"phone"`
		Purpose  string `json:"purpose"`
		StepUpID string `json:"step_up_id"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(w, r, &req, false); err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		sent, err := d.Auth.SendSMSCode(r.Context(), authcore.SMSCodeRequest{
			Phone: req.Phone, Purpose: req.Purpose, StepUpID: req.StepUpID, ClientIP: d.ClientIPs.ClientIP(r)})
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeJSON(w, http.StatusAccepted, sent)
	}
}

func handleSMSLogin(d Deps) http.HandlerFunc {
	type request struct {
		Phone    string `json:"phone"`
		Code     string `json:"code"`
		DeviceID string `json:"device_id"`
	}
	return handleLogin(d, func(r *http.Request, req request) (authcore.Session, error) {
		return d.Auth.SMSLogin(r.Context(), authcore.SMSLoginRequest{Phone: req.Phone, Code: req.Code, Client: client(d, r, req.DeviceID)})
	})
}

// handleStepUp completes a login that risk control stepped up: the
// challenge's id and the SMS code sent for it.
func handleStepUp(d Deps) http.HandlerFunc {
	type request struct {
		ID   string `json:"id"`
		Code string `json:"code"`
	}
	return handleLogin(d, func(r *http.Request, req request) (authcore.Session, error) {
		return d.Auth.CompleteStepUp(r.Context(), authcore.StepUpRequest{ID: req.ID, Code: req.Code, Client: client(d, r, "")})
	})
}

// handleSandboxSMS shows the sandbox's messages to a number: what the
// phone would have received.
func handleSandboxSMS(d Deps) http.HandlerFunc {
	type response struct {
		Messages []sms.Message `json:"messages"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		phone, err := authcore.NormalizePhone(r.URL.Query().Get("phone"))
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		msgs, err := d.SMSInbox.Messages(r.Context(), phone, time.Now())
		if err != nil {
			writeError(w, r, d.Logger, err)
			return
		}
		writeSecret(w, http.StatusOK, response{Messages: msgs})
	}
}
