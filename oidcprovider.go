package main

import (
	"log/slog"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/oidcprovider"
)

// newOIDCProvider makes the hub's OpenID Connect provider from
// LOGINHUB_OIDC_CLIENTS and LOGINHUB_SIGNING_KEYS, or returns nil when no
// clients are configured. An embedded hub without keys signs with a
// random key of its own (Validate refuses that with Redis: every node
// must sign with the same keys).
func newOIDCProvider(cfg Config, store hubStore, svc *authcore.Service, log *slog.Logger) (*oidcprovider.Provider, error) {
	if len(cfg.OIDCClients) == 0 {
		return nil, nil
	}
	keys := cfg.SigningKeys
	if len(keys) == 0 {
		keys = []oidcprovider.SigningKey{oidcprovider.RandomSigningKey("random-" + authcore.NewTicketID()[:8])}
	}
	return oidcprovider.New(oidcprovider.Config{
		Issuer: cfg.PublicURL, Store: store, Sessions: svc, Clients: cfg.OIDCClients, Keys: keys,
		DPoP: authcore.DPoPVerifier{Replay: store}, Logger: log,
	})
}
