package authcore

import (
	"context"
	"time"
)

// The hub as an OpenID Connect provider keeps, in the store, the
// authorization requests in progress, their codes, and the grants that
// the codes turned into (the tokens an app holds). The protocol itself
// (package oidcprovider, on zitadel/oidc's op) sits on top of this port.

// Lifetimes of the OpenID Connect provider's records.
const (
	// ProviderRequestTTL is how long a user has to log in on the page an
	// authorization request shows.
	ProviderRequestTTL = 10 * time.Minute
	// ProviderCodeTTL is an authorization code's lifetime.
	ProviderCodeTTL = 60 * time.Second
	// ProviderAccessTTL is the lifetime of an access token and an
	// id_token: a signing key retired from LOGINHUB_SIGNING_KEYS must stay
	// listed at least this long.
	ProviderAccessTTL = 15 * time.Minute
	// ProviderRefreshTTL is a refresh token's lifetime; each rotation
	// gives the new one a full lifetime.
	ProviderRefreshTTL = RefreshTokenTTL
)

// ProviderRequest is an OpenID Connect authorization request in progress,
// as the provider validated it.
type ProviderRequest struct {
	ID                  string    `json:"id"`
	ClientID            string    `json:"client_id"`
	RedirectURI         string    `json:"redirect_uri"`
	Scopes              []string  `json:"scopes"`
	ResponseType        string    `json:"response_type"`
	ResponseMode        string    `json:"response_mode,omitempty"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              int64     `json:"max_age"` // seconds; negative: none asked
	CreatedAt           time.Time `json:"created_at"`
	ExpiresAt           time.Time `json:"expires_at"`
	// Login is set once the user logged in for this request.
	Login *ProviderLogin `json:"login,omitempty"`
}

// ProviderLogin is how the user of an authorization request logged in.
type ProviderLogin struct {
	UserID   string    `json:"user_id"`
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`
	// SID is the login family of the hub session the user logged in with:
	// the id_token's sid, and what RP-initiated logout ends.
	SID string `json:"sid"`
}

// Grant is what an authorization code became: the tokens of one app for
// one user. Every access token names its grant, and a refresh token
// rotates within it; revoking the grant revokes them all.
type Grant struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	ClientID string    `json:"client_id"`
	Scopes   []string  `json:"scopes"`
	AMR      []string  `json:"amr"`
	AuthTime time.Time `json:"auth_time"`
	SID      string    `json:"sid"`
	// RefreshHash is the SHA-256 of the grant's live refresh token; zero
	// when the grant has none (no offline_access).
	RefreshHash [32]byte `json:"-"`
	// DPoPJKT is the RFC 7638 thumbprint of the DPoP key that the grant's
	// refresh token is bound to (RFC 9449 section 5): each refresh must
	// prove possession of that key. Empty: unbound.
	DPoPJKT   string    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is when the grant ends: its refresh token's expiry, or its
	// access token's when it has no refresh token.
	ExpiresAt time.Time `json:"expires_at"`
}

// GrantRotation replaces a grant's refresh token (RotateGrant).
type GrantRotation struct {
	UserID, ID string
	Old, New   [32]byte  // hashes of the presented and of the new refresh token
	ExpiresAt  time.Time // the grant's new expiry
	Now        time.Time
	// DPoPJKT, when not empty, binds an unbound grant to that DPoP key;
	// a bound grant keeps its key.
	DPoPJKT string
}

// ProviderStore keeps the OpenID Connect provider's records so that every
// node sees them: a user authorizes on one node and the app redeems the
// code on another.
type ProviderStore interface {
	// PutProviderRequest stores r until r.ExpiresAt; ErrConflict if its id
	// exists.
	PutProviderRequest(ctx context.Context, r ProviderRequest) error
	// ProviderRequest returns the request id, or ErrNotFound when it is
	// unknown, deleted or expired at now.
	ProviderRequest(ctx context.Context, id string, now time.Time) (ProviderRequest, error)
	// CompleteProviderRequest records l as the login of request id, once:
	// ErrConflict, changing nothing, when it has one already; ErrNotFound
	// when the request is unknown or expired at now.
	CompleteProviderRequest(ctx context.Context, id string, l ProviderLogin, now time.Time) error
	// PutProviderCode binds the code whose SHA-256 is hash to request
	// requestID, which must have its login, until expiresAt; ErrNotFound
	// when the request is unknown, expired or without a login.
	PutProviderCode(ctx context.Context, hash [32]byte, requestID string, expiresAt time.Time) error
	// TakeProviderCode consumes the code whose SHA-256 is hash and returns
	// its request. A code is taken at most once, under any interleaving,
	// and kept as used until its expiry (RFC 6749 section 4.1.2): taking
	// it again before then gives ErrConflict with a request that has only
	// its ID and its Login.UserID, enough for the caller to revoke the
	// grant it made from the code. ErrNotFound for an unknown or expired
	// (at now) code, and when its request is gone.
	TakeProviderCode(ctx context.Context, hash [32]byte, now time.Time) (ProviderRequest, error)
	// DeleteProviderRequest deletes request id (nothing if it is gone).
	DeleteProviderRequest(ctx context.Context, id string) error

	// CreateGrant stores g until g.ExpiresAt, beside its user (erasing the
	// user erases its grants). ErrNotFound, storing nothing, when the user
	// does not exist; ErrConflict when the id exists.
	CreateGrant(ctx context.Context, g Grant) error
	// Grant returns user userID's grant id, or ErrNotFound when it is
	// unknown, revoked or expired at now.
	Grant(ctx context.Context, userID, id string, now time.Time) (Grant, error)
	// RotateGrant replaces the grant's refresh token r.Old by r.New and
	// its expiry by r.ExpiresAt, binds it to r.DPoPJKT if it has no DPoP
	// key yet, and returns the grant. A refresh token is
	// consumed once: presenting a consumed one revokes the grant and
	// returns ErrConflict. An unknown token, or a grant revoked or expired
	// at r.Now, gives ErrNotFound with nothing changed. Of callers racing
	// with one token, one wins.
	RotateGrant(ctx context.Context, r GrantRotation) (Grant, error)
	// RevokeGrant deletes user userID's grant id; ErrNotFound when there is
	// none. Either way the id stays barred for ProviderRequestTTL (CreateGrant
	// gives ErrConflict), so that a grant revoked before it was made (a
	// replayed code racing its first exchange) is not made after.
	RevokeGrant(ctx context.Context, userID, id string) error
	// RevokeSessionGrants deletes every grant of user userID made from the
	// hub session of login family sid, and reports how many.
	RevokeSessionGrants(ctx context.Context, userID, sid string) (int, error)
}
