package authcore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
)

// ScrubURLError drops the query and user info from the URL in a transport
// error (a *url.Error), so that it can be logged: net/http puts the whole
// URL in its errors, and upstream APIs carry secrets, codes and phone
// numbers in their queries (WeChat's code2Session, Aliyun's SMS). Other
// errors come back unchanged.
func ScrubURLError(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	where := "request"
	if u, perr := url.Parse(ue.URL); perr == nil {
		where = URLWithoutQuery(u)
	}
	return fmt.Errorf("%s %s: %w", ue.Op, where, ue.Err)
}

// URLWithoutQuery is u with neither query nor user info, safe to log.
func URLWithoutQuery(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery = nil, "", false
	return c.String()
}

// ValidBaseURL reports whether raw can be an upstream API's base URL: an
// http or https URL with a host and neither user info, query nor fragment
// (paths are appended to it, queries built after them).
func ValidBaseURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == ""
}

// ProviderReport logs what an OAuth provider client meets (the provider's
// refusals and failures, with its codes and text) and turns each into the
// *Error the client returns, whose Message is safe to show. The causes it
// is given must hold no secret (ScrubURLError, URLWithoutQuery). The
// provider's own codes, and which of them are the user's to start again,
// stay in each client. Safe for concurrent use.
type ProviderReport struct {
	// Name is the client's package name ("qq"): it starts every log
	// message and error cause.
	Name string
	// Log receives the reports; nil discards them.
	Log *slog.Logger
	// Unavailable is the Message of KindUpstreamUnavailable errors;
	// Refused that of KindUnauthorized ones (a bad code or token).
	Unavailable, Refused string
}

// Logger is r.Log, or a logger that discards when it is nil.
func (r ProviderReport) Logger() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Failed logs a call of op that got no usable answer (a transport error,
// a timeout, an HTTP status) and returns it as KindUpstreamUnavailable.
func (r ProviderReport) Failed(ctx context.Context, op string, cause error) error {
	r.Logger().LogAttrs(ctx, slog.LevelWarn, r.Name+": call failed", slog.String("op", op), slog.String("error", cause.Error()))
	return Wrap(KindUpstreamUnavailable, fmt.Errorf("%s %s: %w", r.Name, op, cause), r.Unavailable)
}

// Garbled logs an answer to op that is not what the provider sends and
// returns it as KindUpstreamUnavailable.
func (r ProviderReport) Garbled(ctx context.Context, op string, cause error) error {
	r.Logger().LogAttrs(ctx, slog.LevelError, r.Name+": unexpected answer", slog.String("op", op), slog.String("error", cause.Error()))
	return Wrap(KindUpstreamUnavailable, fmt.Errorf("%s %s: %w", r.Name, op, cause), r.Unavailable)
}

// LoginRefused logs an error code the provider answered that means a bad
// code or token, the user's to start again, and returns it as
// KindUnauthorized.
func (r ProviderReport) LoginRefused(ctx context.Context, cause error, attrs ...slog.Attr) error {
	r.Logger().LogAttrs(ctx, slog.LevelInfo, r.Name+": login refused", attrs...)
	return Wrap(KindUnauthorized, cause, r.Refused)
}

// APIError logs any other error code the provider answered and returns it
// as KindUpstreamUnavailable. A non-empty misconfiguration says what an
// operator should check (no login works until they do) and logs at error
// level; otherwise the log is a warning.
func (r ProviderReport) APIError(ctx context.Context, cause error, misconfiguration string, attrs ...slog.Attr) error {
	level := slog.LevelWarn
	if misconfiguration != "" {
		level = slog.LevelError
		attrs = append(attrs, slog.String("misconfiguration", misconfiguration))
	}
	r.Logger().LogAttrs(ctx, level, r.Name+": API error", attrs...)
	return Wrap(KindUpstreamUnavailable, cause, r.Unavailable)
}
