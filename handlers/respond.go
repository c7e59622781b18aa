package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"

	"github.com/loginhub/loginhub/authcore"
)

// maxBodyBytes bounds every JSON request body; the largest legitimate one
// (legacy encrypted phone data) is a few KiB.
const maxBodyBytes = 64 << 10

// statusOf maps a domain error kind to its HTTP status: the only place that
// does so.
func statusOf(k authcore.Kind) int {
	switch k {
	case authcore.KindInvalid:
		return http.StatusBadRequest
	case authcore.KindUnauthorized:
		return http.StatusUnauthorized
	case authcore.KindForbidden:
		return http.StatusForbidden
	case authcore.KindNotFound:
		return http.StatusNotFound
	case authcore.KindConflict:
		return http.StatusConflict
	case authcore.KindExpired:
		return http.StatusGone
	case authcore.KindRateLimited:
		return http.StatusTooManyRequests
	case authcore.KindUpstreamUnavailable:
		return http.StatusServiceUnavailable
	case authcore.KindStepUpRequired:
		return http.StatusUnauthorized
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Error   string           `json:"error"`
	Message string           `json:"message"`
	StepUp  *authcore.StepUp `json:"step_up,omitempty"` // with step_up_required
	// Fallback is the login method to switch to ("sms"), with some
	// upstream_unavailable (a carrier's one-click login).
	Fallback string `json:"fallback,omitempty"`
}

// writeError writes err as the API's error JSON. Domain errors show their
// client-safe message; anything else is logged with its cause and shown as
// "internal". Causes (upstream text, store errors) are never returned.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var de *authcore.Error
	body := errorBody{Error: "internal", Message: "internal error"}
	status := http.StatusInternalServerError
	if errors.As(err, &de) {
		body = errorBody{Error: de.Kind.Code(), Message: de.Message, StepUp: de.StepUp, Fallback: de.Fallback}
		status = statusOf(de.Kind)
		if de.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(de.RetryAfter.Seconds()+0.999)))
		}
	}
	switch {
	case status == http.StatusServiceUnavailable:
		// An upstream down or the node shedding load (password hashes):
		// expected under stress, and counted elsewhere (the breaker, the
		// dependency metric); not a bug.
		log.WarnContext(r.Context(), "request refused: unavailable", "status", status, "err", err)
	case status >= 500:
		log.ErrorContext(r.Context(), "request failed", "status", status, "err", err)
	case de != nil && de.Err != nil:
		log.InfoContext(r.Context(), "request refused", "status", status, "err", err)
	}
	if status == http.StatusTooManyRequests && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "60")
	}
	writeJSON(w, status, body)
}

// writeJSON writes v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeSecret writes a response that carries tokens or secrets: never cached.
func writeSecret(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, status, v)
}

// decode reads a JSON body into v. An empty body is allowed when optional.
// Keys are matched as written: a key given twice, or one that names a field
// only when case is ignored, is refused (checkKeys).
func decode(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		if tooBig, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return authcore.Errorf(authcore.KindInvalid, "request body larger than %d bytes", tooBig.Limit)
		}
		return authcore.Wrap(authcore.KindInvalid, fmt.Errorf("read body: %w", err), "could not read the request body")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(v); err != nil {
		switch {
		case errors.Is(err, io.EOF) && optional:
			return nil
		case errors.Is(err, io.EOF):
			return authcore.Errorf(authcore.KindInvalid, "a JSON body is required")
		default:
			return authcore.Wrap(authcore.KindInvalid, fmt.Errorf("decode body: %w", err), "malformed JSON body")
		}
	}
	if dec.More() {
		return authcore.Errorf(authcore.KindInvalid, "trailing data after the JSON body")
	}
	if err := checkKeys(data, reflect.TypeOf(v)); err != nil {
		return authcore.Errorf(authcore.KindInvalid, "JSON body: %v", err)
	}
	return nil
}
