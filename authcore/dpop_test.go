package authcore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// RFC 9449 section 4.1, figure 3: a real ES256 proof and (section 6.1) the
// thumbprint of its key.
const (
	rfcDPoPProof = "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19" +
		".eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ" +
		".2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
	rfcDPoPX   = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"
	rfcDPoPY   = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
	rfcDPoPJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	rfcDPoPHTU = "https://server.example.com/token"
	rfcDPoPIat = 1562262616
)

var dpopTB64 = base64.RawURLEncoding

// dpopMemReplay is a ReplayCache for tests.
type dpopMemReplay struct {
	mu   sync.Mutex
	seen map[string]time.Duration
	err  error
}

func newDPoPMemReplay() *dpopMemReplay { return &dpopMemReplay{seen: map[string]time.Duration{}} }

func (m *dpopMemReplay) FirstUse(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if _, ok := m.seen[key]; ok {
		return false, nil
	}
	m.seen[key] = ttl
	return true, nil
}

func dpopTestKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func dpopTestJKT(t testing.TB, k *ecdsa.PrivateKey) string {
	t.Helper()
	jkt, err := DPoPThumbprint(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return jkt
}

// dpopTestCoords returns the base64url x and y of k, derived through crypto/ecdh
// rather than the code under test.
func dpopTestCoords(t testing.TB, pub *ecdsa.PublicKey) (x, y string) {
	t.Helper()
	ek, err := pub.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	b := ek.Bytes()
	return dpopTB64.EncodeToString(b[1:33]), dpopTB64.EncodeToString(b[33:])
}

func dpopTestJWK(t testing.TB, k *ecdsa.PrivateKey) string {
	x, y := dpopTestCoords(t, &k.PublicKey)
	return `{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y + `"}`
}

func dpopTestHeader(t testing.TB, k *ecdsa.PrivateKey) string {
	return `{"typ":"dpop+jwt","alg":"ES256","jwk":` + dpopTestJWK(t, k) + `}`
}

func dpopTestPayload(jti, htm, htu string, iat int64) string {
	b, _ := json.Marshal(map[string]any{"jti": jti, "htm": htm, "htu": htu, "iat": iat})
	return string(b)
}

// dpopSignRaw signs header.payload with ES256 in JWS (r||s) form.
func dpopSignRaw(t testing.TB, k *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	in := dpopTB64.EncodeToString([]byte(header)) + "." + dpopTB64.EncodeToString([]byte(payload))
	d := sha256.Sum256([]byte(in))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return in + "." + dpopTB64.EncodeToString(sig)
}

// dpopSignASN1 signs header.payload with an ASN.1 DER signature, which JWS forbids.
func dpopSignASN1(t testing.TB, k *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	in := dpopTB64.EncodeToString([]byte(header)) + "." + dpopTB64.EncodeToString([]byte(payload))
	d := sha256.Sum256([]byte(in))
	sig, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + dpopTB64.EncodeToString(sig)
}

// dpopMalleate returns proof with its signature (r, s) replaced by (r, n-s),
// which is just as valid for ECDSA.
func dpopMalleate(t testing.TB, proof string) string {
	t.Helper()
	parts := strings.Split(proof, ".")
	sig, err := dpopTB64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		t.Fatalf("dpopMalleate: bad signature %q", parts[2])
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	s.FillBytes(sig[32:])
	return parts[0] + "." + parts[1] + "." + dpopTB64.EncodeToString(sig)
}

func TestDPoPThumbprint(t *testing.T) {
	// RFC 9449 example key.
	xb, _ := dpopTB64.DecodeString(rfcDPoPX)
	yb, _ := dpopTB64.DecodeString(rfcDPoPY)
	rfcPub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, xb...), yb...))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DPoPThumbprint(rfcPub); err != nil || got != rfcDPoPJKT {
		t.Errorf("DPoPThumbprint(RFC 9449 key) = %q, %v; want %q", got, err, rfcDPoPJKT)
	}

	// Random keys, and one whose x starts with a zero byte (left padding).
	keys := []*ecdsa.PrivateKey{dpopTestKey(t), dpopTestKey(t)}
	for i := 0; i < 20000; i++ {
		k := dpopTestKey(t)
		if b, _ := k.PublicKey.Bytes(); b[1] == 0 {
			keys = append(keys, k)
			break
		}
	}
	if len(keys) != 3 {
		t.Log("no key with a leading zero x byte found; padding case skipped")
	}
	for i, k := range keys {
		x, y := dpopTestCoords(t, &k.PublicKey)
		if len(x) != 43 || len(y) != 43 {
			t.Fatalf("key %d: coordinate encodings %q %q not 43 chars", i, x, y)
		}
		canon := `{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`
		sum := sha256.Sum256([]byte(canon))
		want := dpopTB64.EncodeToString(sum[:])
		got, err := DPoPThumbprint(&k.PublicKey)
		if err != nil || got != want {
			t.Errorf("key %d: DPoPThumbprint = %q, %v; want %q", i, got, err, want)
		}
	}

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]*ecdsa.PublicKey{"nil": nil, "P-384": &p384.PublicKey} {
		if got, err := DPoPThumbprint(pub); err == nil {
			t.Errorf("DPoPThumbprint(%s) = %q, nil; want an error", name, got)
		}
	}
}

func TestDPoPVerify(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const (
		method = "POST"
		htu    = "https://hub.example.com/v1/qr/tickets/abc/redeem"
	)
	key, other := dpopTestKey(t), dpopTestKey(t)
	jkt, otherJKT := dpopTestJKT(t, key), dpopTestJKT(t, other)
	hdr := dpopTestHeader(t, key)
	pl := dpopTestPayload("jti-1", method, htu, now.Unix())
	valid := dpopSignRaw(t, key, hdr, pl)
	validParts := strings.Split(valid, ".")
	x, y := dpopTestCoords(t, &key.PublicKey)

	withHeader := func(h string) string { return dpopSignRaw(t, key, h, pl) }
	withPayload := func(p string) string { return dpopSignRaw(t, key, hdr, p) }
	hs256 := func() string {
		h := `{"typ":"dpop+jwt","alg":"HS256","jwk":` + dpopTestJWK(t, key) + `}`
		in := dpopTB64.EncodeToString([]byte(h)) + "." + dpopTB64.EncodeToString([]byte(pl))
		m := hmac.New(sha256.New, []byte(x))
		m.Write([]byte(in))
		return in + "." + dpopTB64.EncodeToString(m.Sum(nil))
	}
	flipSig := func() string {
		sig, _ := dpopTB64.DecodeString(validParts[2])
		sig[10] ^= 1
		return validParts[0] + "." + validParts[1] + "." + dpopTB64.EncodeToString(sig)
	}
	offCurveY := func() string {
		yb, _ := dpopTB64.DecodeString(y)
		yb[31] ^= 1
		return dpopTB64.EncodeToString(yb)
	}()

	tests := []struct {
		name    string
		proof   string
		method  string // default method
		htu     string // default htu
		jkt     string // default jkt; "-" for empty
		now     time.Time
		maxAge  time.Duration
		wantMsg string // "" = accepted
	}{
		{name: "valid", proof: valid},
		{name: "query and fragment in htu ignored", htu: htu + "?x=1#frag",
			proof: withPayload(dpopTestPayload("j", method, htu+"?y=2#other", now.Unix()))},
		{name: "scheme and host case-insensitive, default port", htu: "HTTPS://Hub.Example.COM:443/v1/qr/tickets/abc/redeem",
			proof: valid},
		{name: "iat at oldest bound", proof: withPayload(dpopTestPayload("j", method, htu, now.Add(-60*time.Second).Unix()))},
		{name: "iat at newest bound", proof: withPayload(dpopTestPayload("j", method, htu, now.Add(5*time.Second).Unix()))},
		{name: "fractional iat", proof: withPayload(`{"jti":"j","htm":"POST","htu":"` + htu + `","iat":1800000000.5}`)},
		{name: "RFC 9449 example", proof: rfcDPoPProof, method: "POST", htu: rfcDPoPHTU, jkt: rfcDPoPJKT,
			now: time.Unix(rfcDPoPIat+3, 0)},

		{name: "empty", proof: "", wantMsg: "missing DPoP proof"},
		{name: "too long", proof: valid + strings.Repeat("A", 4097-len(valid)), wantMsg: "invalid DPoP proof: too long"},
		{name: "two parts", proof: validParts[0] + "." + validParts[1], wantMsg: "invalid DPoP proof: malformed"},
		{name: "four parts", proof: valid + ".x", wantMsg: "invalid DPoP proof: malformed"},
		{name: "padded base64", proof: validParts[0] + "=." + validParts[1] + "." + validParts[2], wantMsg: "invalid DPoP proof: malformed header"},
		{name: "std base64 alphabet", proof: "+/+/." + validParts[1] + "." + validParts[2], wantMsg: "invalid DPoP proof: malformed header"},
		{name: "bad base64 payload", proof: validParts[0] + ".!!!." + validParts[2], wantMsg: "invalid DPoP proof: malformed payload"},
		{name: "bad base64 signature", proof: validParts[0] + "." + validParts[1] + ".***", wantMsg: "invalid DPoP proof: malformed signature"},
		{name: "header not JSON", proof: withHeader(`not json`), wantMsg: "invalid DPoP proof: malformed header"},
		{name: "header JSON array", proof: withHeader(`[1,2]`), wantMsg: "invalid DPoP proof: malformed header"},
		{name: "header trailing data", proof: withHeader(hdr + `{}`), wantMsg: "invalid DPoP proof: malformed header"},
		{name: "duplicate alg", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","alg":"none","jwk":` + dpopTestJWK(t, key) + `}`),
			wantMsg: "invalid DPoP proof: malformed header"},
		{name: "wrong typ", proof: withHeader(`{"typ":"JWT","alg":"ES256","jwk":` + dpopTestJWK(t, key) + `}`), wantMsg: "invalid DPoP proof: bad typ"},
		{name: "missing typ", proof: withHeader(`{"alg":"ES256","jwk":` + dpopTestJWK(t, key) + `}`), wantMsg: "invalid DPoP proof: bad typ"},
		{name: "alg none", proof: dpopTB64.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":`+dpopTestJWK(t, key)+`}`)) + "." + validParts[1] + ".",
			wantMsg: "invalid DPoP proof: unsupported alg"},
		{name: "alg HS256", proof: hs256(), wantMsg: "invalid DPoP proof: unsupported alg"},
		{name: "alg lower case", proof: withHeader(`{"typ":"dpop+jwt","alg":"es256","jwk":` + dpopTestJWK(t, key) + `}`), wantMsg: "invalid DPoP proof: unsupported alg"},
		{name: "upper-case member name", proof: withHeader(`{"typ":"dpop+jwt","ALG":"ES256","jwk":` + dpopTestJWK(t, key) + `}`), wantMsg: "invalid DPoP proof: unsupported alg"},
		{name: "crit", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","crit":["x"],"x":1,"jwk":` + dpopTestJWK(t, key) + `}`), wantMsg: "invalid DPoP proof: unsupported crit"},
		{name: "missing jwk", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256"}`), wantMsg: "invalid DPoP proof: missing jwk"},
		{name: "jwk null", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":null}`), wantMsg: "invalid DPoP proof: bad jwk"},
		{name: "private key member", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + y +
			`","d":"` + dpopTB64.EncodeToString(make([]byte, 32)) + `"}}`), wantMsg: "invalid DPoP proof: private key in jwk"},
		{name: "kty RSA", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"RSA","crv":"P-256","x":"` + x + `","y":"` + y + `"}}`),
			wantMsg: "invalid DPoP proof: bad jwk"},
		{name: "crv P-384", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-384","x":"` + x + `","y":"` + y + `"}}`),
			wantMsg: "invalid DPoP proof: bad jwk"},
		{name: "short x", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"` + x[:40] + `","y":"` + y + `"}}`),
			wantMsg: "invalid DPoP proof: bad jwk"},
		{name: "missing y", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"` + x + `"}}`),
			wantMsg: "invalid DPoP proof: bad jwk"},
		{name: "point not on curve", proof: withHeader(`{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + offCurveY + `"}}`),
			wantMsg: "invalid DPoP proof: bad jwk"},
		{name: "tampered payload", proof: validParts[0] + "." + dpopTB64.EncodeToString([]byte(dpopTestPayload("jti-1", method, htu, now.Unix()+1))) + "." + validParts[2],
			wantMsg: "invalid DPoP proof: bad signature"},
		{name: "tampered signature", proof: flipSig(), wantMsg: "invalid DPoP proof: bad signature"},
		{name: "ASN.1 signature", proof: dpopSignASN1(t, key, hdr, pl), wantMsg: "invalid DPoP proof: bad signature"},
		{name: "signed by another key", proof: dpopSignRaw(t, other, hdr, pl),
			wantMsg: "invalid DPoP proof: bad signature"},
		{name: "zero signature", proof: validParts[0] + "." + validParts[1] + "." + dpopTB64.EncodeToString(make([]byte, 64)),
			wantMsg: "invalid DPoP proof: bad signature"},
		{name: "wrong key thumbprint", proof: valid, jkt: otherJKT, wantMsg: "invalid DPoP proof: key mismatch"},
		{name: "proof by the other key", proof: dpopSignRaw(t, other, dpopTestHeader(t, other), pl), wantMsg: "invalid DPoP proof: key mismatch"},
		{name: "empty wanted thumbprint", proof: valid, jkt: "-", wantMsg: "invalid DPoP proof: key mismatch"},
		{name: "payload not JSON", proof: withPayload(`nope`), wantMsg: "invalid DPoP proof: malformed payload"},
		{name: "missing jti", proof: withPayload(`{"htm":"POST","htu":"` + htu + `","iat":1800000000}`), wantMsg: "invalid DPoP proof: bad jti"},
		{name: "empty jti", proof: withPayload(dpopTestPayload("", method, htu, now.Unix())), wantMsg: "invalid DPoP proof: bad jti"},
		{name: "jti too long", proof: withPayload(dpopTestPayload(strings.Repeat("j", 257), method, htu, now.Unix())), wantMsg: "invalid DPoP proof: bad jti"},
		{name: "jti number", proof: withPayload(`{"jti":1,"htm":"POST","htu":"` + htu + `","iat":1800000000}`), wantMsg: "invalid DPoP proof: bad jti"},
		{name: "wrong method", proof: valid, method: "GET", wantMsg: "invalid DPoP proof: htm mismatch"},
		{name: "method case", proof: withPayload(dpopTestPayload("j", "post", htu, now.Unix())), wantMsg: "invalid DPoP proof: htm mismatch"},
		{name: "wrong htu path", proof: valid, htu: "https://hub.example.com/v1/qr/tickets/other/redeem", wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "htu path case", proof: valid, htu: "https://hub.example.com/V1/qr/tickets/abc/redeem", wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "wrong htu host", proof: valid, htu: "https://evil.example.com/v1/qr/tickets/abc/redeem", wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "wrong htu scheme", proof: valid, htu: "http://hub.example.com/v1/qr/tickets/abc/redeem", wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "wrong htu port", proof: valid, htu: "https://hub.example.com:8443/v1/qr/tickets/abc/redeem", wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "relative htu in proof", proof: withPayload(dpopTestPayload("j", method, "/v1/qr/tickets/abc/redeem", now.Unix())),
			wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "missing htu", proof: withPayload(`{"jti":"j","htm":"POST","iat":1800000000}`), wantMsg: "invalid DPoP proof: htu mismatch"},
		{name: "old iat", proof: withPayload(dpopTestPayload("j", method, htu, now.Add(-61*time.Second).Unix())), wantMsg: "invalid DPoP proof: iat too old"},
		{name: "old iat, custom MaxAge", maxAge: 10 * time.Second,
			proof: withPayload(dpopTestPayload("j", method, htu, now.Add(-11*time.Second).Unix())), wantMsg: "invalid DPoP proof: iat too old"},
		{name: "future iat", proof: withPayload(dpopTestPayload("j", method, htu, now.Add(6*time.Second).Unix())), wantMsg: "invalid DPoP proof: iat in the future"},
		{name: "iat string", proof: withPayload(`{"jti":"j","htm":"POST","htu":"` + htu + `","iat":"1800000000"}`), wantMsg: "invalid DPoP proof: bad iat"},
		{name: "iat missing", proof: withPayload(`{"jti":"j","htm":"POST","htu":"` + htu + `"}`), wantMsg: "invalid DPoP proof: bad iat"},
		{name: "iat huge", proof: withPayload(`{"jti":"j","htm":"POST","htu":"` + htu + `","iat":1e400}`), wantMsg: "invalid DPoP proof: bad iat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, u, want, at := method, htu, jkt, now
			if tc.method != "" {
				m = tc.method
			}
			if tc.htu != "" {
				u = tc.htu
			}
			switch tc.jkt {
			case "":
			case "-":
				want = ""
			default:
				want = tc.jkt
			}
			if !tc.now.IsZero() {
				at = tc.now
			}
			v := DPoPVerifier{Replay: newDPoPMemReplay(), MaxAge: tc.maxAge}
			err := v.Verify(ctx, tc.proof, m, u, want, at)
			if tc.wantMsg == "" {
				if err != nil {
					t.Fatalf("Verify = %v; want accepted", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Verify = %v; want *Error %q", err, tc.wantMsg)
			}
			if e.Kind != KindUnauthorized || e.Message != tc.wantMsg {
				t.Errorf("Verify = kind %v message %q; want kind %v message %q", e.Kind, e.Message, KindUnauthorized, tc.wantMsg)
			}
		})
	}
}

func TestDPoPReplay(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const htu = "https://hub.example.com/v1/qr/tickets/abc/redeem"
	key := dpopTestKey(t)
	jkt := dpopTestJKT(t, key)
	proof := dpopSignRaw(t, key, dpopTestHeader(t, key), dpopTestPayload("jti-replay", "POST", htu, now.Unix()))

	cache := newDPoPMemReplay()
	v := DPoPVerifier{Replay: cache}
	if err := v.Verify(ctx, proof, "POST", htu, jkt, now); err != nil {
		t.Fatalf("first Verify = %v; want accepted", err)
	}
	err := v.Verify(ctx, proof, "POST", htu, jkt, now.Add(time.Second))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindUnauthorized || e.Message != "DPoP proof replayed" {
		t.Fatalf("second Verify = %v; want unauthorized %q", err, "DPoP proof replayed")
	}
	wantKey := "dpop:" + jkt + ":jti-replay"
	if got, ok := cache.seen[wantKey]; !ok || got != 65*time.Second {
		t.Errorf("replay cache = %v; want key %q with ttl 65s", cache.seen, wantKey)
	}

	// A proof that fails an earlier check does not burn its jti.
	cache2 := newDPoPMemReplay()
	v2 := DPoPVerifier{Replay: cache2, MaxAge: 30 * time.Second, Skew: 2 * time.Second}
	if err := v2.Verify(ctx, proof, "GET", htu, jkt, now); err == nil {
		t.Fatal("Verify with wrong method accepted")
	}
	if len(cache2.seen) != 0 {
		t.Errorf("rejected proof recorded its jti: %v", cache2.seen)
	}
	if err := v2.Verify(ctx, proof, "POST", htu, jkt, now); err != nil {
		t.Fatalf("Verify after rejected attempt = %v; want accepted", err)
	}
	if got := cache2.seen[wantKey]; got != 32*time.Second {
		t.Errorf("ttl = %v; want MaxAge+Skew = 32s", got)
	}

	// Concurrent presentations of one proof: exactly one wins.
	cache3 := newDPoPMemReplay()
	v3 := DPoPVerifier{Replay: cache3}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 16 {
		wg.Go(func() {
			if v3.Verify(ctx, proof, "POST", htu, jkt, now) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Errorf("concurrent Verify: %d accepted; want 1", wins)
	}
}

func TestDPoPReplayStoreError(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	const htu = "https://hub.example.com/x"
	key := dpopTestKey(t)
	proof, err := NewDPoPProof(key, "POST", htu, now)
	if err != nil {
		t.Fatal(err)
	}
	storeErr := errors.New("redis: connection refused")
	cache := newDPoPMemReplay()
	cache.err = storeErr
	err = DPoPVerifier{Replay: cache}.Verify(ctx, proof, "POST", htu, dpopTestJKT(t, key), now)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindInternal {
		t.Fatalf("Verify = %v; want a KindInternal *Error", err)
	}
	if !errors.Is(err, storeErr) {
		t.Errorf("Verify = %v; want it to wrap the store error", err)
	}
	if strings.Contains(e.Message, "redis") {
		t.Errorf("client message %q leaks the cause", e.Message)
	}

	err = DPoPVerifier{}.Verify(ctx, proof, "POST", htu, dpopTestJKT(t, key), now)
	if KindOf(err) != KindInternal {
		t.Errorf("Verify without a replay cache = %v; want KindInternal", err)
	}
}

func TestNewDPoPProof(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0)
	key := dpopTestKey(t)
	jkt := dpopTestJKT(t, key)
	const htu = "https://hub.example.com/v1/qr/tickets/abc/redeem"

	p1, err := NewDPoPProof(key, "POST", htu+"?a=b#c", now)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := NewDPoPProof(key, "POST", htu, now)
	if err != nil {
		t.Fatal(err)
	}
	v := DPoPVerifier{Replay: newDPoPMemReplay()}
	for i, p := range []string{p1, p2} {
		if err := v.Verify(ctx, p, "POST", htu, jkt, now); err != nil {
			t.Errorf("proof %d: Verify = %v; want accepted", i, err)
		}
	}

	parts := strings.Split(p1, ".")
	var claims struct {
		JTI string `json:"jti"`
		HTM string `json:"htm"`
		HTU string `json:"htu"`
		IAT int64  `json:"iat"`
	}
	raw, _ := dpopTB64.DecodeString(parts[1])
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.HTU != htu || claims.HTM != "POST" || claims.IAT != now.Unix() || len(claims.JTI) < 16 {
		t.Errorf("claims = %+v; want htu %q without query, htm POST, iat %d, a random jti", claims, htu, now.Unix())
	}
	raw2, _ := dpopTB64.DecodeString(strings.Split(p2, ".")[1])
	if strings.Contains(string(raw2), claims.JTI) {
		t.Errorf("two proofs share jti %q", claims.JTI)
	}
	hdr, _ := dpopTB64.DecodeString(parts[0])
	if strings.Contains(string(hdr), `"d"`) {
		t.Errorf("header %s holds the private key", hdr)
	}

	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDPoPProof(p384, "POST", htu, now); err == nil {
		t.Error("NewDPoPProof(P-384 key) succeeded; want an error")
	}
	if _, err := NewDPoPProof(nil, "POST", htu, now); err == nil {
		t.Error("NewDPoPProof(nil) succeeded; want an error")
	}
}

func FuzzDPoPVerify(f *testing.F) {
	parts := strings.Split(rfcDPoPProof, ".")
	f.Add(rfcDPoPProof)
	f.Add(dpopMalleate(f, rfcDPoPProof))
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(dpopTB64.EncodeToString([]byte(`{"typ":"dpop+jwt","alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(dpopTB64.EncodeToString([]byte(`{"jwk":{"kty":"EC","crv":"P-256","x":1}}`)) + "." + parts[1] + "." + parts[2])
	f.Add(parts[0] + "." + dpopTB64.EncodeToString([]byte(`{"iat":1e999}`)) + "." + parts[2])
	f.Add(strings.Repeat(".", 5000))

	accept := map[string]bool{rfcDPoPProof: true, dpopMalleate(f, rfcDPoPProof): true}
	now := time.Unix(rfcDPoPIat, 0)
	f.Fuzz(func(t *testing.T, proof string) {
		v := DPoPVerifier{Replay: newDPoPMemReplay()}
		err := v.Verify(context.Background(), proof, "POST", rfcDPoPHTU, rfcDPoPJKT, now)
		if err == nil {
			if !accept[proof] {
				t.Fatalf("accepted a proof other than the valid seed: %q", proof)
			}
			return
		}
		if k := KindOf(err); k != KindUnauthorized {
			t.Fatalf("Verify = %v (kind %v); want KindUnauthorized", err, k)
		}
	})
}
