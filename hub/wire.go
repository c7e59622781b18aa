package hub

import (
	"encoding/json"
	"errors"

	"github.com/loginhub/loginhub/authcore"
)

// stateEvent is {"ev":"state",...}: the ticket at one version.
type stateEvent struct {
	Ev string `json:"ev"`
	authcore.StateMessage
}

// errorEvent is {"ev":"error",...}.
type errorEvent struct {
	Ev      string `json:"ev"`
	ID      string `json:"id"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// encodeState is the event for version n of v.
func encodeState(v authcore.View, n uint64) []byte {
	return mustJSON(stateEvent{Ev: "state", StateMessage: v.Message(n)})
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
