package authcore

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// A signed ticket is "<kid>.<base64url(id[12] | expiry[4] | mac[16])>": at
// most 16+1+43 = 60 characters, so the QR code stays small. The MAC is
// HMAC-SHA256 over kid, id and expiry, truncated to 128 bits.
const (
	ticketIDBytes  = 12
	ticketMACBytes = 16
	maxKIDLen      = 16
	minKeyBytes    = 16
	// MaxSignedTicketLen is the longest signed ticket a Signer produces.
	MaxSignedTicketLen = maxKIDLen + 1 + (ticketIDBytes+4+ticketMACBytes)*4/3 + 1
)

var b64 = base64.RawURLEncoding

// Key is a secret key with its id: a ticket key (HMAC, Signer) or a
// personal-data key (AES-256, Vault).
type Key struct {
	ID     string
	Secret []byte
}

// Signer signs and verifies tickets. The first key signs; every key
// verifies, so keys can be rotated by prepending a new one and dropping the
// old one after a ticket lifetime. A Signer is immutable and safe for
// concurrent use.
type Signer struct {
	keys []Key
}

// NewSigner returns a Signer over keys (first signs). It returns an error
// for no keys, duplicate or malformed ids, or keys shorter than 16 bytes.
func NewSigner(keys []Key) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("ticket keys: none given")
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !validKID(k.ID) {
			return nil, fmt.Errorf("ticket keys: key id %q must be 1-%d characters of A-Z a-z 0-9 _ -", k.ID, maxKIDLen)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("ticket keys: duplicate key id %q", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) < minKeyBytes {
			return nil, fmt.Errorf("ticket keys: key %q is %d bytes, want at least %d (32 recommended)", k.ID, len(k.Secret), minKeyBytes)
		}
	}
	return &Signer{keys: append([]Key(nil), keys...)}, nil
}

// ParseKeys parses a key list as LOGINHUB_TICKET_KEYS and
// LOGINHUB_DATA_KEY give it: "kid:base64key,kid2:base64key2". Keys may use
// standard or URL-safe base64, padded or not. NewSigner and NewVault check
// the keys for their own use.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		kid, enc, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("%q is not kid:base64key", redactKeyPart(part))
		}
		secret, err := decodeAnyBase64(enc)
		if err != nil {
			return nil, fmt.Errorf("key %q is not base64", kid)
		}
		keys = append(keys, Key{ID: kid, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys given")
	}
	return keys, nil
}

// RandomKey returns a fresh 32-byte key with the given id.
func RandomKey(kid string) Key {
	k := Key{ID: kid, Secret: make([]byte, 32)}
	rand.Read(k.Secret)
	return k
}

func redactKeyPart(s string) string {
	if kid, _, ok := strings.Cut(s, ":"); ok {
		return kid + ":…"
	}
	if len(s) > 4 {
		return s[:4] + "…"
	}
	return s
}

func decodeAnyBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return b64.DecodeString(s)
}

func validKID(kid string) bool {
	return kid != "" && len(kid) <= maxKIDLen && URLSafe(kid)
}

// URLSafe reports whether s is made only of A-Z a-z 0-9 _ - (base64url
// without padding): the alphabet of loginhub's ids and tokens, and of
// WeChat's codes and openids, which SDKs put in URLs unescaped. The empty
// string is URL-safe.
func URLSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewTicketID returns a random ticket id (16 URL-safe characters).
func NewTicketID() string {
	var id [ticketIDBytes]byte
	rand.Read(id[:])
	return b64.EncodeToString(id[:])
}

// Sign returns the signed ticket for id (from NewTicketID) expiring at exp.
func (s *Signer) Sign(id string, exp time.Time) (string, error) {
	raw, err := b64.DecodeString(id)
	if err != nil || len(raw) != ticketIDBytes {
		return "", fmt.Errorf("sign ticket: malformed id")
	}
	k := s.keys[0]
	var body [ticketIDBytes + 4 + ticketMACBytes]byte
	copy(body[:], raw)
	binary.BigEndian.PutUint32(body[ticketIDBytes:], uint32(exp.Unix()))
	copy(body[ticketIDBytes+4:], mac(k, body[:ticketIDBytes+4]))
	return k.ID + "." + b64.EncodeToString(body[:]), nil
}

// SignedTicket is what a verified ticket says.
type SignedTicket struct {
	ID        string
	ExpiresAt time.Time
}

// Verify checks a signed ticket's MAC and expiry, without touching any
// store. It returns a KindUnauthorized error for anything malformed, forged
// or signed by an unknown key, and a KindExpired error past expiry.
func (s *Signer) Verify(ticket string, now time.Time) (SignedTicket, error) {
	bad := Errorf(KindUnauthorized, "invalid ticket")
	if len(ticket) > MaxSignedTicketLen {
		return SignedTicket{}, bad
	}
	kid, enc, ok := strings.Cut(ticket, ".")
	if !ok {
		return SignedTicket{}, bad
	}
	body, err := b64.DecodeString(enc)
	if err != nil || len(body) != ticketIDBytes+4+ticketMACBytes {
		return SignedTicket{}, bad
	}
	var key *Key
	for i := range s.keys {
		if s.keys[i].ID == kid {
			key = &s.keys[i]
			break
		}
	}
	if key == nil {
		return SignedTicket{}, bad
	}
	if !hmac.Equal(body[ticketIDBytes+4:], mac(*key, body[:ticketIDBytes+4])) {
		return SignedTicket{}, bad
	}
	exp := time.Unix(int64(binary.BigEndian.Uint32(body[ticketIDBytes:])), 0)
	if !now.Before(exp) {
		return SignedTicket{}, Errorf(KindExpired, "ticket expired")
	}
	return SignedTicket{ID: b64.EncodeToString(body[:ticketIDBytes]), ExpiresAt: exp}, nil
}

func mac(k Key, msg []byte) []byte {
	h := hmac.New(sha256.New, k.Secret)
	h.Write([]byte(k.ID))
	h.Write([]byte{'.'})
	h.Write(msg)
	return h.Sum(nil)[:ticketMACBytes]
}
