// Package oauth1 signs and verifies requests as OAuth 1.0a does (RFC 5849)
// with HMAC-SHA1: percent-encoding (section 3.6), parameter normalisation
// (3.4.1.3), the signature base string (3.4.1), the HMAC-SHA1 signature
// (3.4.2) and the Authorization header (3.5.1). It is a generic provider
// kind for platforms that still speak OAuth 1.0a (Weibo's retired V1 API
// did); nothing in the hub uses it by default.
package oauth1

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MethodHMACSHA1 is the only signature method the package implements.
const MethodHMACSHA1 = "HMAC-SHA1"

// maxBodyBytes bounds the form body read for its parameters.
const maxBodyBytes = 1 << 20

// PercentEncode encodes s as RFC 5849 section 3.6 requires: the UTF-8
// bytes of s, every one but the unreserved characters (ALPHA, DIGIT, "-",
// ".", "_", "~") as "%" and two upper-case hex digits. (url.QueryEscape
// is not that: it writes a space as "+".)
func PercentEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte{c})))
	}
	return b.String()
}

// NormalizeParameters returns the normalized request parameters of section
// 3.4.1.3.2: every name and value percent-encoded, the pairs sorted by
// encoded name and then by encoded value, each written "name=value" and
// joined with "&".
func NormalizeParameters(params url.Values) string {
	type pair struct{ k, v string }
	var pairs []pair
	for k, vs := range params {
		for _, v := range vs {
			pairs = append(pairs, pair{PercentEncode(k), PercentEncode(v)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// BaseStringURI returns the base string URI of section 3.4.1.2: scheme and
// host in lower case, the port only when it is not the scheme's default,
// and the path ("/" when empty), without query or fragment.
func BaseStringURI(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]" // an IPv6 literal
	}
	if p := u.Port(); p != "" && !(scheme == "http" && p == "80") && !(scheme == "https" && p == "443") {
		host += ":" + p
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path
}

// BaseString returns the signature base string of section 3.4.1: the
// upper-case method, the base string URI and the normalized parameters,
// each percent-encoded and joined with "&". params are all the request's
// parameters (RequestParameters) except oauth_signature and realm.
func BaseString(method string, u *url.URL, params url.Values) string {
	return PercentEncode(strings.ToUpper(method)) + "&" + PercentEncode(BaseStringURI(u)) + "&" + PercentEncode(NormalizeParameters(params))
}

// HMACSHA1 returns the HMAC-SHA1 signature of section 3.4.2 of base: the
// base64 of HMAC-SHA1 keyed with the percent-encoded consumer secret, "&"
// and the percent-encoded token secret (empty when there is no token).
func HMACSHA1(base, consumerSecret, tokenSecret string) string {
	m := hmac.New(sha1.New, []byte(PercentEncode(consumerSecret)+"&"+PercentEncode(tokenSecret)))
	m.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// AuthorizationHeader returns an "OAuth" Authorization header (section
// 3.5.1) with realm, when not empty, and the oauth_* parameters in oauth,
// names sorted, values percent-encoded and quoted.
func AuthorizationHeader(realm string, oauth url.Values) string {
	var parts []string
	if realm != "" {
		parts = append(parts, `realm="`+PercentEncode(realm)+`"`)
	}
	keys := make([]string, 0, len(oauth))
	for k := range oauth {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, v := range oauth[k] {
			parts = append(parts, PercentEncode(k)+`="`+PercentEncode(v)+`"`)
		}
	}
	return "OAuth " + strings.Join(parts, ", ")
}

// ErrNoOAuthHeader is returned by ParseAuthorizationHeader for a header
// that is not of the OAuth scheme.
var ErrNoOAuthHeader = errors.New("oauth1: not an OAuth Authorization header")

// ParseAuthorizationHeader reads an "OAuth" Authorization header: its
// realm, and its other parameters decoded.
func ParseAuthorizationHeader(h string) (realm string, params url.Values, err error) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if !strings.EqualFold(scheme, "OAuth") {
		return "", nil, ErrNoOAuthHeader
	}
	params = url.Values{}
	for item := range strings.SplitSeq(rest, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
			return "", nil, fmt.Errorf("oauth1: malformed Authorization parameter %q", item)
		}
		name, err1 := url.PathUnescape(k)
		value, err2 := url.PathUnescape(v[1 : len(v)-1])
		if err := errors.Join(err1, err2); err != nil {
			return "", nil, fmt.Errorf("oauth1: Authorization parameter %q: %w", item, err)
		}
		if name == "realm" {
			realm = value
			continue
		}
		params.Add(name, value)
	}
	return realm, params, nil
}

// RequestParameters collects the parameters that section 3.4.1.3.1 signs:
// the query's, the form body's when the body is
// application/x-www-form-urlencoded (it is read and put back), and the
// Authorization header's oauth_* parameters, without realm and
// oauth_signature.
func RequestParameters(r *http.Request) (url.Values, error) {
	params := url.Values{}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("oauth1: query: %w", err)
	}
	add(params, q)
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" && r.Body != nil {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
		r.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("oauth1: body: %w", err)
		}
		if len(body) > maxBodyBytes {
			return nil, fmt.Errorf("oauth1: body over %d bytes", maxBodyBytes)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("oauth1: body: %w", err)
		}
		add(params, form)
	}
	if h := r.Header.Get("Authorization"); h != "" {
		_, oauth, err := ParseAuthorizationHeader(h)
		if err != nil && !errors.Is(err, ErrNoOAuthHeader) {
			return nil, err
		}
		add(params, oauth)
	}
	params.Del("oauth_signature")
	return params, nil
}

func add(dst, src url.Values) {
	for k, vs := range src {
		dst[k] = append(dst[k], vs...)
	}
}

// Signer signs requests for one client (consumer). Set its fields before
// use; a Signer is safe for concurrent use.
type Signer struct {
	ConsumerKey    string
	ConsumerSecret string
	// Realm, when not empty, is sent in the Authorization header (it is
	// not signed).
	Realm string
	// Now reads the time for oauth_timestamp; nil means time.Now.
	Now func() time.Time
	// Nonce returns a new oauth_nonce; nil means 16 random bytes in hex.
	Nonce func() string
}

// Sign signs r with the token and its secret (both empty when asking for
// temporary credentials) and sets its Authorization header. extra are
// further oauth_* parameters of the step: oauth_callback when asking for
// temporary credentials, oauth_verifier when asking for token credentials.
// A form body is read for its parameters and put back.
func (s *Signer) Sign(r *http.Request, token, tokenSecret string, extra url.Values) error {
	now, nonce := time.Now, s.Nonce
	if s.Now != nil {
		now = s.Now
	}
	if nonce == nil {
		nonce = func() string {
			b := make([]byte, 16)
			rand.Read(b) // never fails (crypto/rand since Go 1.24)
			return hex.EncodeToString(b)
		}
	}
	oauth := url.Values{
		"oauth_consumer_key":     {s.ConsumerKey},
		"oauth_signature_method": {MethodHMACSHA1},
		"oauth_timestamp":        {strconv.FormatInt(now().Unix(), 10)},
		"oauth_nonce":            {nonce()},
	}
	if token != "" {
		oauth.Set("oauth_token", token)
	}
	for k, vs := range extra {
		oauth[k] = vs
	}
	r.Header.Del("Authorization")
	params, err := RequestParameters(r)
	if err != nil {
		return err
	}
	add(params, oauth)
	oauth.Set("oauth_signature", HMACSHA1(BaseString(r.Method, r.URL, params), s.ConsumerSecret, tokenSecret))
	r.Header.Set("Authorization", AuthorizationHeader(s.Realm, oauth))
	return nil
}

// ErrBadSignature is returned by Verify for a request whose signature does
// not match.
var ErrBadSignature = errors.New("oauth1: signature does not match")

// Verify checks r's HMAC-SHA1 signature, as a server does, with the
// secrets of the consumer and token it names (the caller looks them up
// from oauth_consumer_key and oauth_token in r's parameters). It does not
// check the timestamp and nonce against replays: that needs the caller's
// store. r's URL must carry the scheme and host the client signed (a
// server sets them from its public address).
func Verify(r *http.Request, consumerSecret, tokenSecret string) error {
	h := r.Header.Get("Authorization")
	_, oauth, err := ParseAuthorizationHeader(h)
	if err != nil {
		return err
	}
	if m := oauth.Get("oauth_signature_method"); m != MethodHMACSHA1 {
		return fmt.Errorf("oauth1: signature method %q, want %s", m, MethodHMACSHA1)
	}
	params, err := RequestParameters(r)
	if err != nil {
		return err
	}
	want := HMACSHA1(BaseString(r.Method, r.URL, params), consumerSecret, tokenSecret)
	if !hmac.Equal([]byte(oauth.Get("oauth_signature")), []byte(want)) {
		return ErrBadSignature
	}
	return nil
}
