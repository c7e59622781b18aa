package oidcprovider

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// SigningKey is an ES256 key that signs id_tokens and access tokens.
type SigningKey struct {
	ID  string
	Key *ecdsa.PrivateKey
}

// ParseSigningKeys reads LOGINHUB_SIGNING_KEYS: "kid:base64 PKCS#8,...",
// P-256 keys; the first signs, every one is published in the JWKS (a key
// being retired stays listed, not first, until the tokens it signed have
// expired). Errors name the key by its position and id, never its bytes.
func ParseSigningKeys(s string) ([]SigningKey, error) {
	var keys []SigningKey
	seen := map[string]bool{}
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kid, b64, ok := strings.Cut(part, ":")
		if !ok || kid == "" || strings.ContainsAny(kid, " \"") {
			return nil, fmt.Errorf("key %d: want kid:base64 PKCS#8", i+1)
		}
		if seen[kid] {
			return nil, fmt.Errorf("key %d: kid %q is listed twice", i+1, kid)
		}
		seen[kid] = true
		der, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if der, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("key %q: not base64", kid)
			}
		}
		parsed, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			return nil, fmt.Errorf("key %q: not a PKCS#8 private key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | openssl pkcs8 -topk8 -nocrypt -outform DER | base64 -w0)", kid)
		}
		ec, ok := parsed.(*ecdsa.PrivateKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("key %q: want an ECDSA P-256 key (ES256)", kid)
		}
		keys = append(keys, SigningKey{ID: kid, Key: ec})
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return keys, nil
}

// RandomSigningKey returns a fresh key (an embedded hub's, per process).
func RandomSigningKey(kid string) SigningKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("oidcprovider: " + err.Error()) // crypto/rand never fails
	}
	return SigningKey{ID: kid, Key: k}
}

// EncodeSigningKey is the inverse of ParseSigningKeys for one key.
func EncodeSigningKey(k SigningKey) string {
	der, err := x509.MarshalPKCS8PrivateKey(k.Key)
	if err != nil {
		panic("oidcprovider: " + err.Error())
	}
	return k.ID + ":" + base64.StdEncoding.EncodeToString(der)
}

// signingKey implements op.SigningKey.
type signingKey struct{ k SigningKey }

func (s signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (s signingKey) Key() any                                    { return s.k.Key }
func (s signingKey) ID() string                                  { return s.k.ID }

// publicKey implements op.Key.
type publicKey struct{ k SigningKey }

func (p publicKey) ID() string                         { return p.k.ID }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.ES256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.Key.PublicKey }
