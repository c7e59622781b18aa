// Package oauthsandbox holds what the fakes of the OAuth 2.0 login
// providers (authcore/qq/qqtest, authcore/weibo/weibotest,
// authcore/wechatweb/wechatwebtest) share, so that each fake keeps only
// its provider's paths, parameters, shapes and error codes:
//
//   - State, the port behind which a fake keeps the codes and tokens it
//     issued, with a memory implementation (NewMemoryState) and a Redis one
//     (NewRedisState) that lets the nodes of a sandbox cluster answer as one
//     provider; oauthsandbox/statetest is the suite both pass;
//   - Knobs, the failure knobs every fake exports (an outage, the next calls
//     failing with a code, held requests, an injected clock, request
//     counts, loud unknown paths), which the mini-program's
//     authcore/wechat/wechattest embeds too;
//   - the consent page a sandbox authorize URL shows in place of the
//     provider's login page (Consent), and the redirect back (Redirect);
//   - Start, which serves a fake over real HTTP for a test, and the rule of
//     a sandbox user name (ValidUserName), which every fake shares.
//
// It links neither testing nor httptest: the hub's binary serves the fakes
// as its sandbox.
package oauthsandbox

import (
	"context"
	"time"
)

// Grant is what a code or a token stands for: which sandbox user let which
// app in, and until when.
type Grant struct {
	User        string    `json:"user"`                   // sandbox user name
	App         string    `json:"app"`                    // the client_id / appid it was issued to
	RedirectURI string    `json:"redirect_uri,omitempty"` // a code's authorization request's redirect_uri
	Scope       string    `json:"scope,omitempty"`
	Issued      time.Time `json:"issued"`
	Expires     time.Time `json:"expires"`
}

// Expired reports whether g is no longer valid at now.
func (g Grant) Expired(now time.Time) bool { return !now.Before(g.Expires) }

// CodeStatus is what UseCode found.
type CodeStatus int

const (
	// CodeUnknown: no such code (never issued, or forgotten long after it
	// expired).
	CodeUnknown CodeStatus = iota
	// CodeOK: the code was valid and is now used.
	CodeOK
	// CodeUsed: the code was used before.
	CodeUsed
	// CodeExpired: the code is unused but past its expiry.
	CodeExpired
)

func (c CodeStatus) String() string {
	switch c {
	case CodeOK:
		return "ok"
	case CodeUsed:
		return "used"
	case CodeExpired:
		return "expired"
	}
	return "unknown"
}

// Retention is how long a State remembers a code or token past its
// expiry, so that a fake answers "expired" rather than "invalid" meanwhile,
// as the providers do.
const Retention = time.Hour

// State is what a fake provider remembers between requests: the codes and
// tokens it issued, and its app's secret. It is a port so that every node
// of a sandbox cluster can share one (NewRedisState), and a code issued by
// one node is redeemed on another. Everything else about a sandbox user
// (openid, unionid, uid, nickname) is derived from the app and the user's
// name, so it needs no state.
//
// Expiry is judged against the time the caller passes in (a fake's clock,
// Knobs.SetClock), never a clock of the State's own; a State reads the wall
// clock only to reclaim what expired more than Retention ago. Keys are
// opaque: a fake that keeps several kinds of token in one State prefixes
// them. Implementations are safe for concurrent use.
type State interface {
	// AppSecret returns the secret of app: candidate if none was stored
	// for it before, else the stored one, so that every node of a cluster
	// serves the app with one secret.
	AppSecret(ctx context.Context, app, candidate string) (string, error)
	// IssueCode records code for g, valid until g.Expires.
	IssueCode(ctx context.Context, code string, g Grant) error
	// UseCode marks code used if it is known, unused and unexpired at now,
	// and returns its grant (whatever the status but CodeUnknown). Of
	// concurrent calls for one code, at most one gets CodeOK.
	UseCode(ctx context.Context, code string, now time.Time) (Grant, CodeStatus, error)
	// IssueToken records token for g, valid until g.Expires.
	IssueToken(ctx context.Context, token string, g Grant) error
	// Token returns token's grant (expired or not: the caller checks with
	// Grant.Expired), found false when it knows no such token.
	Token(ctx context.Context, token string) (g Grant, found bool, err error)
}
