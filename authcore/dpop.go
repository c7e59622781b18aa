package authcore

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/url"
	"strings"
	"time"
)

// DPoP (RFC 9449) proof verification, ES256 only: what a desktop client sends
// when it redeems a ticket that was created with a dpop_jkt.

// Limits and defaults of DPoP proof verification.
const (
	// DPoPMaxProofLen is the longest proof (compact JWS) Verify parses.
	DPoPMaxProofLen = 4096
	// DPoPMaxJTILen is the longest jti Verify accepts.
	DPoPMaxJTILen = 256
	// DPoPDefaultMaxAge is how old a proof's iat may be when
	// DPoPVerifier.MaxAge is not set.
	DPoPDefaultMaxAge = 60 * time.Second
	// DPoPDefaultSkew is how far in the future a proof's iat may be when
	// DPoPVerifier.Skew is not set (clock drift between client and hub).
	DPoPDefaultSkew = 5 * time.Second
)

const (
	dpopTyp      = "dpop+jwt"
	dpopAlg      = "ES256"
	dpopCoordLen = 32 // P-256 field element, big-endian
	dpopSigLen   = 2 * dpopCoordLen
)

// dpopB64 is strict unpadded base64url: one encoding per byte string, so an
// accepted proof cannot be re-encoded into another accepted string.
var dpopB64 = base64.RawURLEncoding.Strict()

// DPoPThumbprint returns the RFC 7638 JWK thumbprint of an EC P-256 public
// key: the unpadded base64url SHA-256 of
// {"crv":"P-256","kty":"EC","x":"<x>","y":"<y>"}, with x and y the 32-byte
// big-endian coordinates in unpadded base64url. It is the dpop_jkt a client
// announces when it creates a ticket.
func DPoPThumbprint(pub *ecdsa.PublicKey) (string, error) {
	if pub == nil || pub.Curve != elliptic.P256() {
		return "", errors.New("dpop thumbprint: not a P-256 public key")
	}
	pt, err := pub.Bytes() // 0x04 || X || Y
	if err != nil {
		return "", fmt.Errorf("dpop thumbprint: %w", err)
	}
	if len(pt) != 1+2*dpopCoordLen {
		return "", errors.New("dpop thumbprint: not a P-256 public key")
	}
	return dpopThumbprintCoords(pt[1:1+dpopCoordLen], pt[1+dpopCoordLen:]), nil
}

func dpopThumbprintCoords(x, y []byte) string {
	// Required members only, in lexicographic order, no whitespace. The
	// values are base64url, so they need no JSON escaping.
	canon := `{"crv":"P-256","kty":"EC","x":"` + dpopB64.EncodeToString(x) +
		`","y":"` + dpopB64.EncodeToString(y) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return dpopB64.EncodeToString(sum[:])
}

// DPoPVerifier checks DPoP proofs (RFC 9449) signed with ES256.
//
// A proof is accepted when its iat lies in [now-MaxAge, now+Skew]. Its jti
// is then remembered in Replay for MaxAge+Skew, which covers the whole
// window in which the same proof could be accepted again.
type DPoPVerifier struct {
	Replay ReplayCache   // remembers used jti values; required
	MaxAge time.Duration // oldest accepted iat, before now; <= 0 means DPoPDefaultMaxAge (60s)
	Skew   time.Duration // newest accepted iat, after now (clock drift); <= 0 means DPoPDefaultSkew (5s)
}

func (v DPoPVerifier) maxAge() time.Duration {
	if v.MaxAge <= 0 {
		return DPoPDefaultMaxAge
	}
	return v.MaxAge
}

func (v DPoPVerifier) skew() time.Duration {
	if v.Skew <= 0 {
		return DPoPDefaultSkew
	}
	return v.Skew
}

func dpopInvalid(reason string) *Error {
	return Errorf(KindUnauthorized, "invalid DPoP proof: %s", reason)
}

// Verify checks proof, the value of a request's DPoP header, for a request
// with the given HTTP method and target URI htu, against wantJKT, the key
// thumbprint the ticket was bound to. It checks, in this order: the compact
// JWS form and length; the header (typ "dpop+jwt", alg "ES256", a public
// P-256 jwk with no private member, on the curve); the raw r||s signature;
// the jwk thumbprint against wantJKT (constant time); the claims jti, htm,
// htu (query and fragment ignored, scheme and host case-insensitive) and
// iat; and finally that the jti was not used before with this key.
//
// Every rejection is a KindUnauthorized *Error with a client-safe message;
// a failing replay cache gives a KindInternal error.
func (v DPoPVerifier) Verify(ctx context.Context, proof, method, htu, wantJKT string, now time.Time) error {
	return v.verify(ctx, proof, method, htu, wantJKT, "", now)
}

// VerifyAccess is Verify for a request that presents a DPoP-bound access
// token to a protected resource (RFC 9449 section 7): the proof must also
// carry ath, the base64url SHA-256 of accessToken.
func (v DPoPVerifier) VerifyAccess(ctx context.Context, proof, method, htu, wantJKT, accessToken string, now time.Time) error {
	h := sha256.Sum256([]byte(accessToken))
	return v.verify(ctx, proof, method, htu, wantJKT, dpopB64.EncodeToString(h[:]), now)
}

// verify is Verify, and when wantATH is set, the ath claim's check.
func (v DPoPVerifier) verify(ctx context.Context, proof, method, htu, wantJKT, wantATH string, now time.Time) error {
	if proof == "" {
		return Errorf(KindUnauthorized, "missing DPoP proof")
	}
	if len(proof) > DPoPMaxProofLen {
		return dpopInvalid("too long")
	}
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		return dpopInvalid("malformed")
	}
	headerJSON, err := dpopB64.DecodeString(parts[0])
	if err != nil {
		return dpopInvalid("malformed header")
	}
	payloadJSON, err := dpopB64.DecodeString(parts[1])
	if err != nil {
		return dpopInvalid("malformed payload")
	}
	sig, err := dpopB64.DecodeString(parts[2])
	if err != nil {
		return dpopInvalid("malformed signature")
	}

	// Header.
	header, err := dpopObject(headerJSON)
	if err != nil {
		return dpopInvalid("malformed header")
	}
	if typ, ok := dpopString(header, "typ"); !ok || typ != dpopTyp {
		return dpopInvalid("bad typ")
	}
	if alg, ok := dpopString(header, "alg"); !ok || alg != dpopAlg {
		return dpopInvalid("unsupported alg")
	}
	if _, ok := header["crit"]; ok {
		return dpopInvalid("unsupported crit")
	}
	jwkJSON, ok := header["jwk"]
	if !ok {
		return dpopInvalid("missing jwk")
	}
	jwk, err := dpopObject(jwkJSON)
	if err != nil {
		return dpopInvalid("bad jwk")
	}
	if _, ok := jwk["d"]; ok {
		return dpopInvalid("private key in jwk")
	}
	if kty, ok := dpopString(jwk, "kty"); !ok || kty != "EC" {
		return dpopInvalid("bad jwk")
	}
	if crv, ok := dpopString(jwk, "crv"); !ok || crv != "P-256" {
		return dpopInvalid("bad jwk")
	}
	x, okX := dpopCoord(jwk, "x")
	y, okY := dpopCoord(jwk, "y")
	if !okX || !okY {
		return dpopInvalid("bad jwk")
	}
	point := make([]byte, 0, 1+2*dpopCoordLen)
	point = append(point, 0x04)
	point = append(point, x...)
	point = append(point, y...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil { // not on the curve
		return dpopInvalid("bad jwk")
	}

	// Signature: JWS ES256 is raw r||s (RFC 7518 3.4), not ASN.1.
	if len(sig) != dpopSigLen {
		return dpopInvalid("bad signature")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r := new(big.Int).SetBytes(sig[:dpopCoordLen])
	s := new(big.Int).SetBytes(sig[dpopCoordLen:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		return dpopInvalid("bad signature")
	}

	// Key binding.
	jkt := dpopThumbprintCoords(x, y)
	if wantJKT == "" || subtle.ConstantTimeCompare([]byte(jkt), []byte(wantJKT)) != 1 {
		return dpopInvalid("key mismatch")
	}

	// Claims.
	claims, err := dpopObject(payloadJSON)
	if err != nil {
		return dpopInvalid("malformed payload")
	}
	jti, ok := dpopString(claims, "jti")
	if !ok || jti == "" || len(jti) > DPoPMaxJTILen {
		return dpopInvalid("bad jti")
	}
	if htm, ok := dpopString(claims, "htm"); !ok || htm != method {
		return dpopInvalid("htm mismatch")
	}
	gotHTU, ok := dpopString(claims, "htu")
	if !ok {
		return dpopInvalid("htu mismatch")
	}
	a, okA := normalizeHTU(gotHTU)
	b, okB := normalizeHTU(htu)
	if !okA || !okB || a != b {
		return dpopInvalid("htu mismatch")
	}
	if wantATH != "" {
		if ath, ok := dpopString(claims, "ath"); !ok || subtle.ConstantTimeCompare([]byte(ath), []byte(wantATH)) != 1 {
			return dpopInvalid("ath mismatch")
		}
	}
	iat, ok := dpopNumber(claims, "iat")
	if !ok {
		return dpopInvalid("bad iat")
	}
	maxAge, skew := v.maxAge(), v.skew()
	nowSec := float64(now.UnixNano()) / 1e9
	if iat < nowSec-maxAge.Seconds() {
		return dpopInvalid("iat too old")
	}
	if iat > nowSec+skew.Seconds() {
		return dpopInvalid("iat in the future")
	}

	// Replay.
	if v.Replay == nil {
		return Wrap(KindInternal, errors.New("dpop replay check: no replay cache configured"), "internal error")
	}
	first, err := v.Replay.FirstUse(ctx, "dpop:"+wantJKT+":"+jti, maxAge+skew)
	if err != nil {
		return Wrap(KindInternal, fmt.Errorf("dpop replay check: %w", err), "internal error")
	}
	if !first {
		return Errorf(KindUnauthorized, "DPoP proof replayed")
	}
	return nil
}

// NewDPoPProof builds a DPoP proof (RFC 9449, ES256) for a request with the
// given method and target URI, issued at now, with a random jti. The query
// and fragment of htu are left out, as RFC 9449 requires. key must be a
// P-256 key. It is used by tests and by Go clients of the hub; the hub
// itself only verifies proofs.
func NewDPoPProof(key *ecdsa.PrivateKey, method, htu string, now time.Time) (string, error) {
	return newDPoPProof(key, method, htu, "", now)
}

// NewDPoPAccessProof is NewDPoPProof for a request that presents the
// DPoP-bound accessToken: the proof carries its hash as ath.
func NewDPoPAccessProof(key *ecdsa.PrivateKey, method, htu, accessToken string, now time.Time) (string, error) {
	h := sha256.Sum256([]byte(accessToken))
	return newDPoPProof(key, method, htu, dpopB64.EncodeToString(h[:]), now)
}

func newDPoPProof(key *ecdsa.PrivateKey, method, htu, ath string, now time.Time) (string, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return "", errors.New("dpop proof: not a P-256 private key")
	}
	pt, err := key.PublicKey.Bytes()
	if err != nil || len(pt) != 1+2*dpopCoordLen {
		return "", errors.New("dpop proof: not a P-256 private key")
	}
	if i := strings.IndexAny(htu, "?#"); i >= 0 {
		htu = htu[:i]
	}
	type jwkT struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}
	header, err := json.Marshal(struct {
		Typ string `json:"typ"`
		Alg string `json:"alg"`
		JWK jwkT   `json:"jwk"`
	}{dpopTyp, dpopAlg, jwkT{
		Kty: "EC",
		Crv: "P-256",
		X:   dpopB64.EncodeToString(pt[1 : 1+dpopCoordLen]),
		Y:   dpopB64.EncodeToString(pt[1+dpopCoordLen:]),
	}})
	if err != nil {
		return "", fmt.Errorf("dpop proof: %w", err)
	}
	payload, err := json.Marshal(struct {
		JTI string `json:"jti"`
		HTM string `json:"htm"`
		HTU string `json:"htu"`
		IAT int64  `json:"iat"`
		ATH string `json:"ath,omitempty"`
	}{rand.Text(), method, htu, now.Unix(), ath})
	if err != nil {
		return "", fmt.Errorf("dpop proof: %w", err)
	}
	signingInput := dpopB64.EncodeToString(header) + "." + dpopB64.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signingInput))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		return "", fmt.Errorf("dpop proof: %w", err)
	}
	sig := make([]byte, dpopSigLen)
	r.FillBytes(sig[:dpopCoordLen])
	s.FillBytes(sig[dpopCoordLen:])
	return signingInput + "." + dpopB64.EncodeToString(sig), nil
}

// normalizeHTU reduces an absolute http(s) URI to what DPoP compares:
// scheme and host lower-cased, default port dropped, empty path made "/",
// query and fragment removed. ok is false for anything else.
func normalizeHTU(raw string) (string, bool) {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.User != nil || u.Host == "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, true
}

// dpopObject parses one JSON object into its members, keeping the exact
// member names (encoding/json struct decoding would match "D" to "d" and
// "ALG" to "alg") and rejecting duplicate names, which different JSON
// parsers resolve differently.
func dpopObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	m := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("bad member name")
		}
		if _, dup := m[name]; dup {
			return nil, errors.New("duplicate member")
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		m[name] = raw
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("unterminated object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return m, nil
}

// dpopString returns member name of m when it is a JSON string.
func dpopString(m map[string]json.RawMessage, name string) (string, bool) {
	raw, ok := m[name]
	if !ok || len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// dpopNumber returns member name of m when it is a finite JSON number.
func dpopNumber(m map[string]json.RawMessage, name string) (float64, bool) {
	raw, ok := m[name]
	if !ok || len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// dpopCoord returns member name of m decoded as a 32-byte P-256 coordinate.
func dpopCoord(m map[string]json.RawMessage, name string) ([]byte, bool) {
	s, ok := dpopString(m, name)
	if !ok {
		return nil, false
	}
	b, err := dpopB64.DecodeString(s)
	if err != nil || len(b) != dpopCoordLen {
		return nil, false
	}
	return b, true
}
