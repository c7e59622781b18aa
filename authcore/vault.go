package authcore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
)

// Vault encrypts personal data at rest (phone numbers, ID numbers) with
// AES-256-GCM under a key ring: the first key seals, every key opens, so
// keys rotate by prepending a new one, re-sealing (Reseal) and later
// dropping the old one. A sealed value is "<kid>.<base64url(nonce|ciphertext|tag)>".
// The associated data binds each value to its owner and field, so a value
// copied to another user or field does not open. A Vault is immutable and
// safe for concurrent use.
type Vault struct {
	keys []vaultKey
}

type vaultKey struct {
	id   string
	aead cipher.AEAD
}

// NewVault returns a vault over keys (LOGINHUB_DATA_KEY, ParseKeys); each
// key must be exactly 32 bytes.
func NewVault(keys []Key) (*Vault, error) {
	if len(keys) == 0 {
		return nil, errors.New("data keys: none given")
	}
	v := &Vault{}
	seen := map[string]bool{}
	for _, k := range keys {
		if !validKID(k.ID) || seen[k.ID] {
			return nil, fmt.Errorf("data keys: key id %q is malformed or repeated", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) != 32 {
			return nil, fmt.Errorf("data keys: key %q is %d bytes, want 32 (AES-256)", k.ID, len(k.Secret))
		}
		block, err := aes.NewCipher(k.Secret)
		if err != nil {
			return nil, fmt.Errorf("data keys: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("data keys: %w", err)
		}
		v.keys = append(v.keys, vaultKey{id: k.ID, aead: aead})
	}
	return v, nil
}

func vaultAAD(owner, field string) []byte {
	return []byte(owner + "\x00" + field)
}

// Seal encrypts plaintext for owner's field under the first key.
func (v *Vault) Seal(owner, field, plaintext string) string {
	k := v.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	sealed := k.aead.Seal(nonce, nonce, []byte(plaintext), vaultAAD(owner, field))
	return k.id + "." + b64.EncodeToString(sealed)
}

// Open decrypts a value sealed for owner's field. It fails (KindInternal)
// for a value sealed under a key no longer in the ring, or tampered with,
// or sealed for another owner or field.
func (v *Vault) Open(owner, field, sealed string) (string, error) {
	kid, enc, ok := strings.Cut(sealed, ".")
	if !ok {
		return "", errors.New("vault: malformed sealed value")
	}
	raw, err := b64.DecodeString(enc)
	if err != nil {
		return "", errors.New("vault: malformed sealed value")
	}
	for _, k := range v.keys {
		if k.id != kid {
			continue
		}
		ns := k.aead.NonceSize()
		if len(raw) < ns+k.aead.Overhead() {
			return "", errors.New("vault: sealed value too short")
		}
		plain, err := k.aead.Open(nil, raw[:ns], raw[ns:], vaultAAD(owner, field))
		if err != nil {
			return "", fmt.Errorf("vault: value for %s does not open under key %q", field, kid)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("vault: key %q is not in the ring (rotated out?)", kid)
}

// Reseal re-encrypts a value under the first key if another key sealed it
// (key rotation); changed reports whether it did.
func (v *Vault) Reseal(owner, field, sealed string) (out string, changed bool, err error) {
	if strings.HasPrefix(sealed, v.keys[0].id+".") {
		return sealed, false, nil
	}
	plain, err := v.Open(owner, field, sealed)
	if err != nil {
		return "", false, err
	}
	return v.Seal(owner, field, plain), true, nil
}
