package oidcprovider

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/loginhub/loginhub/authcore"
)

// Client is an app registered with the provider: an entry of the
// LOGINHUB_OIDC_CLIENTS file.
type Client struct {
	ID string `json:"client_id"`
	// SecretHash is "sha256:<hex>" of the client's secret, for a
	// confidential client; empty for a public one. Secrets are random
	// (32 bytes or more), so a fast hash is as good as a slow one.
	SecretHash   string   `json:"client_secret_hash,omitempty"`
	RedirectURIs []string `json:"redirect_uris"`
	// PostLogoutRedirectURIs are where RP-initiated logout may send the
	// browser back to; none: the hub's own page.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// Public clients (single-page and native apps) hold no secret and must
	// use PKCE.
	Public bool `json:"public"`
}

// HashSecret returns the client_secret_hash of secret.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// LoadClients reads and validates a LOGINHUB_OIDC_CLIENTS file.
func LoadClients(path string) ([]Client, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseClients(f)
}

// ParseClients reads and validates a clients file's JSON: every problem
// at once, each naming its client.
func ParseClients(r io.Reader) ([]Client, error) {
	raw, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var clients []Client
	if err := dec.Decode(&clients); err != nil {
		return nil, fmt.Errorf("want a JSON array of {\"client_id\",\"client_secret_hash\"?,\"redirect_uris\":[...],\"public\":bool}: %w", err)
	}
	if dec.More() {
		return nil, errors.New("trailing data after the JSON array")
	}
	var errs []error
	seen := map[string]bool{}
	for i, c := range clients {
		name := fmt.Sprintf("client %d", i+1)
		if c.ID != "" {
			name = fmt.Sprintf("client %q", c.ID)
		}
		switch {
		case c.ID == "":
			errs = append(errs, fmt.Errorf("%s: client_id is required", name))
		case seen[c.ID]:
			errs = append(errs, fmt.Errorf("%s: duplicate client_id", name))
		}
		seen[c.ID] = true
		switch {
		case c.Public && c.SecretHash != "":
			errs = append(errs, fmt.Errorf("%s: a public client has no client_secret_hash", name))
		case !c.Public && c.SecretHash == "":
			errs = append(errs, fmt.Errorf("%s: a confidential client needs client_secret_hash (\"sha256:<hex>\"), or set \"public\": true", name))
		case !c.Public && !validSecretHash(c.SecretHash):
			errs = append(errs, fmt.Errorf("%s: client_secret_hash: want \"sha256:<64 hex digits>\"", name))
		}
		if len(c.RedirectURIs) == 0 {
			errs = append(errs, fmt.Errorf("%s: redirect_uris is empty", name))
		}
		for _, u := range c.RedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				errs = append(errs, fmt.Errorf("%s: redirect URI %q: %w", name, u, err))
			}
		}
		for _, u := range c.PostLogoutRedirectURIs {
			if err := checkRedirectURI(u); err != nil {
				errs = append(errs, fmt.Errorf("%s: post-logout redirect URI %q: %w", name, u, err))
			}
		}
	}
	if len(clients) == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no clients"))
	}
	return clients, errors.Join(errs...)
}

func validSecretHash(h string) bool {
	hexed, ok := strings.CutPrefix(h, "sha256:")
	b, err := hex.DecodeString(hexed)
	return ok && err == nil && len(b) == sha256.Size
}

// checkRedirectURI: https, or http on a loopback host (a developer's
// machine, a native app's loopback redirect); absolute, no fragment.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("not an absolute URL")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("has a fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if loopbackHost(u.Hostname()) {
			return nil
		}
		return errors.New("http is allowed only for loopback hosts (localhost, 127.0.0.1, [::1]); use https")
	}
	return fmt.Errorf("scheme %q: want https (or http on loopback)", u.Scheme)
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// checkSecret compares secret with the client's hash in constant time.
func (c Client) checkSecret(secret string) bool {
	want, err := hex.DecodeString(strings.TrimPrefix(c.SecretHash, "sha256:"))
	if c.Public || err != nil {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// opClient implements op.Client.
type opClient struct {
	c        Client
	loginURL func(id string) string
}

func (o opClient) GetID() string                    { return o.c.ID }
func (o opClient) RedirectURIs() []string           { return o.c.RedirectURIs }
func (o opClient) PostLogoutRedirectURIs() []string { return o.c.PostLogoutRedirectURIs }
func (o opClient) ApplicationType() op.ApplicationType {
	if o.c.Public {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (o opClient) AuthMethod() oidc.AuthMethod {
	if o.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (o opClient) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (o opClient) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (o opClient) LoginURL(id string) string           { return o.loginURL(id) }
func (o opClient) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeJWT }
func (o opClient) IDTokenLifetime() time.Duration      { return authcore.ProviderAccessTTL }
func (o opClient) DevMode() bool                       { return false }
func (o opClient) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (o opClient) IsScopeAllowed(scope string) bool     { return false }
func (o opClient) IDTokenUserinfoClaimsAssertion() bool { return false }
func (o opClient) ClockSkew() time.Duration             { return 0 }
