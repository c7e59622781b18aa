// Package aliyunrpc holds the signature of Aliyun's RPC-style APIs
// (signature version 1.0, HMAC-SHA1), which Dysmsapi (SMS) and Dypnsapi
// (number authentication) share: the canonical query, the string to sign,
// the signature, and the check a fake of such an API makes.
package aliyunrpc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/url"
	"sort"
	"strings"
)

// TimestampFormat is the layout of the Timestamp parameter (ISO 8601, UTC).
const TimestampFormat = "2006-01-02T15:04:05Z"

// CanonicalQuery is the canonicalized query string of the signature: the
// parameters sorted by name, each name and value encoded with Encode,
// joined with = and &.
func CanonicalQuery(params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for i, k := range names {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(Encode(k))
		b.WriteByte('=')
		b.WriteString(Encode(params[k]))
	}
	return b.String()
}

// StringToSign is method&%2F&Encode(canonical query).
func StringToSign(method, query string) string {
	return method + "&" + Encode("/") + "&" + Encode(query)
}

// Signature is base64(HMAC-SHA1(secret + "&", StringToSign(method, query))).
func Signature(method, query, secret string) string {
	mac := hmac.New(sha1.New, []byte(secret+"&"))
	mac.Write([]byte(StringToSign(method, query)))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// SignedQuery is the query string of a request with params (which must not
// hold Signature): Signature first, then the canonical query.
func SignedQuery(method string, params map[string]string, secret string) string {
	query := CanonicalQuery(params)
	return "Signature=" + Encode(Signature(method, query, secret)) + "&" + query
}

// Verify reports whether q (a request's parameters, Signature included)
// is signed with secret for method, as Aliyun's gateway checks it, and
// returns the string to sign it computed (the gateway's
// SignatureDoesNotMatch message shows it). A parameter given twice is
// refused.
func Verify(method string, q url.Values, secret string) (ok bool, stringToSign string) {
	params := make(map[string]string, len(q))
	for k, v := range q {
		if len(v) != 1 {
			return false, ""
		}
		if k != "Signature" {
			params[k] = v[0]
		}
	}
	query := CanonicalQuery(params)
	want := Signature(method, query, secret)
	return hmac.Equal([]byte(q.Get("Signature")), []byte(want)), StringToSign(method, query)
}

// Encode percent-encodes s as the signature requires: RFC 3986, UTF-8,
// every byte but A-Z a-z 0-9 - _ . ~ as %XX in upper case. That is what
// Aliyun's "URL-encode, then + → %20, * → %2A, %7E → ~" comes to.
func Encode(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// Nonce is a SignatureNonce: 16 random bytes in hex. Aliyun refuses a
// nonce used in the last 15 minutes.
func Nonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", errors.Join(errors.New("signature nonce"), err)
	}
	return hex.EncodeToString(b[:]), nil
}
