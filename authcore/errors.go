package authcore

import (
	"errors"
	"fmt"
	"time"
)

// Kind is a domain error kind. Handlers map each kind to one HTTP status in
// exactly one place; nothing else in loginhub knows about status codes.
type Kind int

// The error kinds authcore returns. Their names match the "error" codes of
// the external API.
const (
	KindInternal            Kind = iota // a bug or a store failure: 500
	KindInvalid                         // malformed input: 400
	KindUnauthorized                    // missing or wrong credential: 401
	KindForbidden                       // authenticated but not allowed: 403
	KindNotFound                        // no such thing: 404
	KindConflict                        // wrong state for the operation: 409
	KindExpired                         // used up or past its lifetime: 410
	KindRateLimited                     // too many requests: 429
	KindUpstreamUnavailable             // WeChat or another upstream failed: 503
	KindStepUpRequired                  // authenticated, but not recently enough for this: 401 with Error.StepUp
)

// Code is the API error code of the kind ("invalid_request", ...).
func (k Kind) Code() string {
	switch k {
	case KindInvalid:
		return "invalid_request"
	case KindUnauthorized:
		return "unauthorized"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not_found"
	case KindConflict:
		return "conflict"
	case KindExpired:
		return "expired"
	case KindRateLimited:
		return "rate_limited"
	case KindUpstreamUnavailable:
		return "upstream_unavailable"
	case KindStepUpRequired:
		return "step_up_required"
	default:
		return "internal"
	}
}

// Error is a domain error: a kind, a message that is safe to show to the
// caller, and optionally the underlying cause, which is logged but never
// returned to clients (it may hold upstream text).
type Error struct {
	Kind       Kind
	Message    string        // safe for clients
	RetryAfter time.Duration // set for KindRateLimited and sometimes KindUpstreamUnavailable
	StepUp     *StepUp       // set for KindStepUpRequired: how to renew the authentication
	Fallback   string        // set with some KindUpstreamUnavailable: the login method to switch to (FallbackSMS)
	Err        error         // cause; logged only
}

// StepUp says how a caller can authenticate again to be allowed what a
// KindStepUpRequired error refused; the API returns it as "step_up".
type StepUp struct {
	// Methods lists the ways: "wx" (a fresh wx.login and /v1/wx/login),
	// "sms" (a fresh code and /v1/sms/login, for a session of an SMS login),
	// "pwd" (/v1/password/login, for a session of a username password login),
	// "face" (a face check, /v1/face/...). Empty when this session has
	// none: a desktop's session from a QR scan.
	Methods []string `json:"methods"`
	// The rest is set for a login that risk control stepped up: the
	// challenge to complete with a code sent to the user's phone
	// (POST /v1/sms/code with purpose step_up, then POST /v1/step-up).
	ID          string `json:"id,omitempty"`
	PhoneMasked string `json:"phone_masked,omitempty"` // where the code goes
	Region      string `json:"region,omitempty"`       // where the login comes from
	ExpiresIn   int    `json:"expires_in,omitempty"`   // seconds
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind.Code(), e.Message, e.Err)
	}
	return e.Kind.Code() + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds a domain error whose message is shown to clients.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds a domain error with a client-safe message and a logged cause.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or
// KindInternal when there is none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// Sentinel errors for comparisons with errors.Is in stores and tests. Each is
// an *Error, so KindOf works on them and on anything that wraps them.
var (
	ErrNotFound = &Error{Kind: KindNotFound, Message: "not found"}
	ErrConflict = &Error{Kind: KindConflict, Message: "conflict"}
	ErrExpired  = &Error{Kind: KindExpired, Message: "expired"}
	// ErrForbidden: the thing exists but belongs to someone else.
	ErrForbidden = &Error{Kind: KindForbidden, Message: "forbidden"}
	// ErrNoSession: an access token that is not live, or whose user is gone.
	ErrNoSession = &Error{Kind: KindUnauthorized, Message: "missing or invalid access token"}
)
