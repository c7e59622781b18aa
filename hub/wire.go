package hub

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// stateEvent is {"ev":"state",...}: the ticket at one version.
type stateEvent struct {
	Ev        string            `json:"ev"`
	ID        string            `json:"id"`
	Version   uint64            `json:"version"`
	State     authcore.State    `json:"state"`
	ExpiresAt time.Time         `json:"expires_at"`
	Scanner   *authcore.Profile `json:"scanner,omitempty"`
}

// errorEvent is {"ev":"error",...}.
type errorEvent struct {
	Ev      string `json:"ev"`
	ID      string `json:"id"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// encodeState is the event for version n of v, whose state was st. The
// scanner is shown from the scanned state on (not at pending versions).
func encodeState(v authcore.View, n uint64, st authcore.State) []byte {
	e := stateEvent{Ev: "state", ID: v.ID, Version: n, State: st, ExpiresAt: v.ExpiresAt.UTC()}
	if v.Scanner != nil && st != authcore.StatePending {
		e.Scanner = v.Scanner
	}
	return mustJSON(e)
}

// encodeError is the error event for err about ticket id. Only the kind's
// code and the client-safe message of an *authcore.Error are sent.
func encodeError(id string, err error) []byte {
	e := errorEvent{Ev: "error", ID: id, Error: "internal", Message: "internal error"}
	var ae *authcore.Error
	if errors.As(err, &ae) {
		e.Error = ae.Kind.Code()
		if ae.Message != "" {
			e.Message = ae.Message
		}
	}
	return mustJSON(e)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hub: encoding an event: " + err.Error()) // only plain strings and numbers
	}
	return b
}
