package hub

import (
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/loginhub/loginhub/authcore"
)

// errorEvent is {"ev":"error",...}.
type errorEvent struct {
	Ev      string `json:"ev"`
	ID      string `json:"id"`
	Error   string `json:"error"`
	Message string `json:"message"`
}

// appendStateEvent appends the event for version n of v to dst: the bytes
// json.Marshal gives for {"ev":"state"} plus authcore.StateMessage
// (FuzzStateEvent holds it to that), written without reflection or
// allocation, since every login sends three of them.
func appendStateEvent(dst []byte, v authcore.View, n uint64) []byte {
	m := v.Message(n)
	dst = append(dst, `{"ev":"state","id":`...)
	dst = appendJSONString(dst, m.ID)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, m.Version, 10)
	dst = append(dst, `,"state":`...)
	dst = appendJSONString(dst, string(m.State))
	dst = append(dst, `,"expires_at":"`...)
	dst = m.ExpiresAt.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if m.Scanner != nil {
		dst = append(dst, `,"scanner":{"nickname":`...)
		dst = appendJSONString(dst, m.Scanner.Nickname)
		dst = append(dst, `,"avatar_url":`...)
		dst = appendJSONString(dst, m.Scanner.AvatarURL)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string escaped as encoding/json
// escapes it: quotes, backslashes and control characters; <, > and & (so
// the text is safe inside HTML); U+2028 and U+2029 (JavaScript line
// ends); invalid UTF-8 becomes U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
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
