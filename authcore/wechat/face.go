package wechat

// Face verification (人脸核身) of the mini-program's user against a
// mainland ID card: the current getverifyid / queryverifyinfo pair and the
// legacy getinfo. All three take the app's access_token, so they go
// through callWithToken (one invalidate-and-retry on 40001, 42001, 40014)
// and, like every call, the circuit breaker.
//
// The flow: the hub calls FaceVerifyID with the user's name and ID number
// and hands the verify_id to the phone; the phone runs
// wx.requestFacialVerify({verifyId}); the hub then calls FaceQueryResult
// with the same out_seq_no, openid and the CertHash of the same CertInfo.
// WeChat answers for the verify_id only if all of them match what
// getverifyid saw, so a verify_id cannot be replayed for another person.
//
// The ID number and the name are personal data: they are sent to WeChat
// and hashed, never logged or put in an error. cert_hash and the legacy
// md5s are only logged redacted, since an ID number's small keyspace makes
// its hashes reversible.
//
// WeChat documents the request and answer shapes but not a complete table
// of verify_ret values and face errcodes. The tables below are an
// approximation assembled for loginhub and its fake (wechattest); the
// mapping treats any verify_ret other than 10000 as not passed and any
// unknown errcode as an upstream failure, so an inexact table can only
// blur a reason, never pass a failed check.

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/loginhub/loginhub/authcore"
)

// WeChat API paths of this file.
const (
	pathFaceGetVerifyID = "/cityservice/face/identify/getverifyid"
	pathFaceQuery       = "/cityservice/face/identify/queryverifyinfo"
	pathFaceGetInfo     = "/cityservice/face/identify/getinfo"
)

const (
	// CertTypeIDCard is the only cert_type loginhub sends: a mainland
	// resident identity card.
	CertTypeIDCard = "IDENTITY_CARD"
	// FaceVerifyIDLifetime is how long a verify_id is valid when WeChat's
	// answer omits expires_in (it normally says 3600).
	FaceVerifyIDLifetime = time.Hour
	// MaxOutSeqNoLength is the longest out_seq_no (the caller's own
	// request id for one verification).
	MaxOutSeqNoLength = 64
	// MaxCertNameLength is the longest name on an ID card, in characters.
	MaxCertNameLength = 64

	maxFaceTokenLength = 1024 // verify_id and verify_result are opaque
)

// verify_ret values of queryverifyinfo (and identify_ret values of the
// legacy getinfo, which uses the same codes for failures and 0 for a pass).
// Approximate; see the file comment.
const (
	VerifyRetPassed         = 10000 // the face matched the ID card's photo, liveness passed
	VerifyRetCancelled      = 90001 // the user left the face check
	VerifyRetCaptureTimeout = 90002 // no usable face within the time allowed
	VerifyRetNetworkTimeout = 90003 // the phone's request to WeChat timed out
	VerifyRetFaceMismatch   = 90004 // the face is not the ID card holder's
	VerifyRetLiveness       = 90005 // the liveness check (actions, light) failed
	VerifyRetNotFinished    = 90100 // the phone has not finished the check for this verify_id
)

// FaceResult reasons: why a verification did not pass.
const (
	FaceReasonCancelled   = "cancelled"
	FaceReasonTimeout     = "timeout"
	FaceReasonMismatch    = "face did not match"
	FaceReasonLiveness    = "liveness check failed"
	FaceReasonNotFinished = "not finished"
	FaceReasonFailed      = "failed" // any other code
)

// Face errcodes (approximate, as the fake answers them).
const (
	errcodeFaceBadVerifyID     = 85201 // unknown verify_id
	errcodeFaceCertHash        = 85202 // cert_hash differs from getverifyid's cert_info
	errcodeFaceExpired         = 85203 // verify_id or verify_result past its lifetime
	errcodeFaceOwner           = 85204 // out_seq_no or openid differ from getverifyid's
	errcodeFaceBadVerifyResult = 85205 // unknown verify_result (legacy getinfo)
	errcodeBadOpenID           = 40003 // openid is not a user of this app
)

// Client-visible messages of this file.
const (
	msgBadIDNumber   = "invalid ID number"
	msgBadCertName   = "invalid name"
	msgFaceUnknown   = "unknown face verification; start it again"
	msgFaceCertHash  = "the face verification was started for a different name or ID number"
	msgFaceOwner     = "the face verification belongs to another request or user"
	msgFaceExpired   = "the face verification has expired; start it again"
	msgFaceBadResult = "unknown face verification result; verify again"
	msgFaceOpenID    = "the openid is not a user of this mini-program"
)

// causeMissing is the logged cause of a success answer without the field
// that carries the result.
const causeMissing = "wechat %s: answer without %s"

// CertInfo is the identity a face is checked against: the name and the
// 18-character number on a mainland ID card. Its String and LogValue
// redact both, so that printing or logging one leaks nothing.
type CertInfo struct {
	Name     string
	IDNumber string
}

// String implements fmt.Stringer without the personal data.
func (c CertInfo) String() string { return "CertInfo{[redacted]}" }

// GoString implements fmt.GoStringer without the personal data.
func (c CertInfo) GoString() string { return c.String() }

// LogValue implements slog.LogValuer without the personal data.
func (c CertInfo) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// idNumber is the ID number as sent to WeChat: a lowercase check
// character x is written X, as printed on the card.
func (c CertInfo) idNumber() string {
	if n := len(c.IDNumber); n > 0 && c.IDNumber[n-1] == 'x' {
		return c.IDNumber[:n-1] + "X"
	}
	return c.IDNumber
}

// check rejects a CertInfo WeChat cannot verify, without echoing it.
func (c CertInfo) check() error {
	if !ValidIDNumber(c.IDNumber) {
		return authcore.Errorf(authcore.KindInvalid, msgBadIDNumber)
	}
	if !validCertName(c.Name) {
		return authcore.Errorf(authcore.KindInvalid, msgBadCertName)
	}
	return nil
}

// validCertName: valid UTF-8, 1 to MaxCertNameLength characters, not
// blank, no control characters and no whitespace but the plain space
// (names like "Ma Li" or "阿依古丽·买买提" pass).
func validCertName(name string) bool {
	n := utf8.RuneCountInString(name)
	return n > 0 && n <= MaxCertNameLength && utf8.ValidString(name) && strings.TrimSpace(name) != "" &&
		strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') }) < 0
}

// CertHash is the cert_hash queryverifyinfo wants for c: the lowercase hex
// SHA-256 of "cert_type=<b64>&cert_name=<b64>&cert_no=<b64>", each value
// the standard base64 of its UTF-8 bytes, cert_type always IDENTITY_CARD.
// A lowercase check character x is hashed as X, as FaceVerifyID sends it.
func CertHash(c CertInfo) string {
	b64 := base64.StdEncoding.EncodeToString
	s := "cert_type=" + b64([]byte(CertTypeIDCard)) +
		"&cert_name=" + b64([]byte(c.Name)) +
		"&cert_no=" + b64([]byte(c.idNumber()))
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// idWeights are the ISO 7064 MOD 11-2 weights of the first 17 digits
// (2^(17-i) mod 11), and idCheckChars the check character for each
// weighted sum mod 11 (GB 11643-1999).
var idWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const idCheckChars = "10X98765432"

// ValidIDNumber reports whether id is an 18-character mainland ID number
// whose last character is its ISO 7064 MOD 11-2 check character (0-9 or
// X, x accepted). It does not check the region or the birth date.
func ValidIDNumber(id string) bool {
	if len(id) != 18 {
		return false
	}
	sum := 0
	for i, w := range idWeights {
		d := id[i]
		if d < '0' || d > '9' {
			return false
		}
		sum += int(d-'0') * w
	}
	last := id[17]
	if last == 'x' {
		last = 'X'
	}
	return last == idCheckChars[sum%11]
}

// FaceResult is queryverifyinfo's verdict on one verification.
type FaceResult struct {
	Passed    bool
	VerifyRet int    // WeChat's verify_ret: VerifyRetPassed or a 9xxxx failure
	Reason    string // empty when Passed; else one of the FaceReason constants
}

// faceReason names a verify_ret (or legacy identify_ret) that is not a
// pass.
func faceReason(ret int) string {
	switch ret {
	case VerifyRetCancelled:
		return FaceReasonCancelled
	case VerifyRetCaptureTimeout, VerifyRetNetworkTimeout:
		return FaceReasonTimeout
	case VerifyRetFaceMismatch:
		return FaceReasonMismatch
	case VerifyRetLiveness:
		return FaceReasonLiveness
	case VerifyRetNotFinished:
		return FaceReasonNotFinished
	}
	return FaceReasonFailed
}

func faceResultOf(ret int) FaceResult {
	if ret == VerifyRetPassed {
		return FaceResult{Passed: true, VerifyRet: ret}
	}
	return FaceResult{VerifyRet: ret, Reason: faceReason(ret)}
}

// LegacyFaceResult is what the legacy getinfo says about a
// wx.requestFacialVerify verify_result. It names the person only by md5s:
// use Matches to check it is the one expected.
type LegacyFaceResult struct {
	Passed       bool
	IdentifyRet  int    // 0 on a pass, else a 9xxxx failure as VerifyRet
	Reason       string // empty when Passed; else one of the FaceReason constants
	OpenID       string
	IDNumberMD5  string // lowercase hex md5 of the ID number's UTF-8
	NameMD5      string // lowercase hex md5 of the name's UTF-8
	IdentifyTime time.Time
}

// Matches reports whether r is about the person c describes: both md5s
// equal those of c's ID number and name (WeChat's hex case is ignored).
func (r LegacyFaceResult) Matches(c CertInfo) bool {
	id, name := md5.Sum([]byte(c.idNumber())), md5.Sum([]byte(c.Name))
	return r.IDNumberMD5 != "" && r.NameMD5 != "" &&
		strings.EqualFold(r.IDNumberMD5, hex.EncodeToString(id[:])) &&
		strings.EqualFold(r.NameMD5, hex.EncodeToString(name[:]))
}

// LogValue keeps the md5s, which reverse easily, out of logs.
func (r LegacyFaceResult) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Bool("passed", r.Passed),
		slog.Int("identify_ret", r.IdentifyRet),
		slog.String("reason", r.Reason),
		slog.String("openid", r.OpenID),
		slog.Time("identify_time", r.IdentifyTime),
	)
}

type certInfoJSON struct {
	CertType string `json:"cert_type"`
	CertName string `json:"cert_name"`
	CertNo   string `json:"cert_no"`
}

type verifyIDAnswer struct {
	apiStatus
	VerifyID  string `json:"verify_id"`
	ExpiresIn int64  `json:"expires_in"`
}

// FaceVerifyID starts a face verification of openid's user against cert
// (POST /cityservice/face/identify/getverifyid) and returns the verify_id
// for the phone's wx.requestFacialVerify and how long it is valid.
// outSeqNo is the caller's id for this verification (1 to
// MaxOutSeqNoLength URL-safe characters); FaceQueryResult must present it
// again with the same openid and CertHash(cert).
//
// Errors, all *authcore.Error:
//   - KindInvalid, checked before calling WeChat: an ID number that is not
//     18 characters with a valid check character ("invalid ID number"), a
//     name that is empty, over MaxCertNameLength characters or has control
//     characters, a malformed openid or out_seq_no. Also openid unknown to
//     WeChat for this app (40003).
//   - KindRateLimited, KindForbidden and KindUpstreamUnavailable as
//     GetPhoneNumber (the access_token is refreshed and the call retried
//     once on 40001, 42001, 40014; other errcodes are upstream failures).
func (c *Client) FaceVerifyID(ctx context.Context, outSeqNo, openid string, cert CertInfo) (verifyID string, expiresIn time.Duration, err error) {
	if err := checkOutSeqNo(outSeqNo); err != nil {
		return "", 0, err
	}
	if err := checkCodeOf("openid", openid); err != nil {
		return "", 0, err
	}
	if err := cert.check(); err != nil {
		return "", 0, err
	}
	const op = "face_getverifyid"
	body, err := json.Marshal(struct {
		OutSeqNo string       `json:"out_seq_no"`
		CertInfo certInfoJSON `json:"cert_info"`
		OpenID   string       `json:"openid"`
	}{outSeqNo, certInfoJSON{CertTypeIDCard, cert.Name, cert.idNumber()}, openid})
	if err != nil {
		return "", 0, authcore.Wrap(authcore.KindInternal, err, "internal error")
	}
	attrs := []slog.Attr{slog.String("out_seq_no", outSeqNo), slog.String("openid", openid), slog.Any("cert", cert)}
	resp, err := callWithToken[verifyIDAnswer](ctx, c, op, attrs, c.postJSON(pathFaceGetVerifyID, body))
	if err != nil {
		return "", 0, err
	}
	if resp.ErrCode != 0 {
		return "", 0, c.faceError(ctx, op, resp.apiStatus, attrs)
	}
	if resp.VerifyID == "" {
		c.log.LogAttrs(ctx, slog.LevelError, "wechat: getverifyid success without verify_id", append(attrs, slog.String("op", op))...)
		return "", 0, authcore.Wrap(authcore.KindUpstreamUnavailable, fmt.Errorf(causeMissing, op, "verify_id"), msgUnavailable)
	}
	expiresIn = time.Duration(resp.ExpiresIn) * time.Second
	if expiresIn <= 0 {
		expiresIn = FaceVerifyIDLifetime
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "wechat: face verification started",
		append(attrs, slog.String("op", op), slog.Any("verify_id", redacted(resp.VerifyID)), slog.Duration("expires_in", expiresIn))...)
	return resp.VerifyID, expiresIn, nil
}

type queryAnswer struct {
	apiStatus
	VerifyRet *int `json:"verify_ret"`
}

// FaceQueryResult asks WeChat for the outcome of the verification
// verifyID (POST /cityservice/face/identify/queryverifyinfo), presenting
// the outSeqNo and openid given to FaceVerifyID and certHash =
// CertHash(cert) of its cert. Any verify_ret other than VerifyRetPassed is
// a FaceResult with Passed false and a Reason, not an error; asking before
// the phone has finished gives FaceReasonNotFinished.
//
// Errors, all *authcore.Error:
//   - KindInvalid, before calling WeChat: a verify_id that is empty, too
//     long or not printable ASCII, a cert_hash that is not 64 hex digits, a
//     malformed out_seq_no or openid; also openid unknown to WeChat (40003).
//   - KindUnauthorized: WeChat does not know the verify_id (85201), or it
//     was issued for another name/ID number (cert_hash mismatch, 85202) or
//     another out_seq_no or openid (85204). These are proofs that do not
//     check out, like a bad wx.login code, rather than malformed input: the
//     remedy is a new verification.
//   - KindExpired: the verify_id is past its lifetime (85203).
//   - KindRateLimited, KindForbidden, KindUpstreamUnavailable as
//     FaceVerifyID; a success without verify_ret is upstream unavailable.
func (c *Client) FaceQueryResult(ctx context.Context, verifyID, outSeqNo, certHash, openid string) (FaceResult, error) {
	if err := checkFaceToken("verify_id", verifyID); err != nil {
		return FaceResult{}, err
	}
	if err := checkOutSeqNo(outSeqNo); err != nil {
		return FaceResult{}, err
	}
	if err := checkCodeOf("openid", openid); err != nil {
		return FaceResult{}, err
	}
	if len(certHash) != sha256.Size*2 || !isHex(certHash) {
		return FaceResult{}, authcore.Errorf(authcore.KindInvalid, "malformed cert_hash")
	}
	const op = "face_queryverifyinfo"
	body, err := json.Marshal(struct {
		VerifyID string `json:"verify_id"`
		OutSeqNo string `json:"out_seq_no"`
		CertHash string `json:"cert_hash"`
		OpenID   string `json:"openid"`
	}{verifyID, outSeqNo, strings.ToLower(certHash), openid})
	if err != nil {
		return FaceResult{}, authcore.Wrap(authcore.KindInternal, err, "internal error")
	}
	attrs := []slog.Attr{slog.Any("verify_id", redacted(verifyID)), slog.String("out_seq_no", outSeqNo),
		slog.String("openid", openid), slog.Any("cert_hash", redacted(certHash))}
	resp, err := callWithToken[queryAnswer](ctx, c, op, attrs, c.postJSON(pathFaceQuery, body))
	if err != nil {
		return FaceResult{}, err
	}
	if resp.ErrCode != 0 {
		return FaceResult{}, c.faceError(ctx, op, resp.apiStatus, attrs)
	}
	if resp.VerifyRet == nil {
		c.log.LogAttrs(ctx, slog.LevelError, "wechat: queryverifyinfo success without verify_ret", append(attrs, slog.String("op", op))...)
		return FaceResult{}, authcore.Wrap(authcore.KindUpstreamUnavailable, fmt.Errorf(causeMissing, op, "verify_ret"), msgUnavailable)
	}
	r := faceResultOf(*resp.VerifyRet)
	c.log.LogAttrs(ctx, slog.LevelDebug, "wechat: face verification result", append(attrs,
		slog.String("op", op), slog.Bool("passed", r.Passed), slog.Int("verify_ret", r.VerifyRet), slog.String("reason", r.Reason))...)
	return r, nil
}

type getInfoAnswer struct {
	apiStatus
	IdentifyRet     *int      `json:"identify_ret"`
	OpenID          string    `json:"openid"`
	IDCardNumberMD5 string    `json:"id_card_number_md5"`
	NameUTF8MD5     string    `json:"name_utf8_md5"`
	IdentifyTime    unixfield `json:"identify_time"`
}

// unixfield is a unix time in seconds that WeChat may send as a number or
// as a string of digits.
type unixfield int64

func (u *unixfield) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*u = 0
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("identify_time %s: %w", b, err)
	}
	*u = unixfield(n)
	return nil
}

// FaceGetInfo is the legacy check (POST /cityservice/face/identify/getinfo):
// it reads the verify_result the phone's wx.requestFacialVerify returned.
// identify_ret 0 is a pass; anything else is a LegacyFaceResult with Passed
// false and a Reason, not an error. The answer names the person only by
// md5s of the ID number and name: call Matches with the expected CertInfo,
// and compare OpenID with the user's, before trusting a pass.
//
// Errors, all *authcore.Error: KindInvalid for an empty, over-long or
// non-printable verify_result (before calling WeChat); KindUnauthorized
// for a verify_result WeChat does not know (85205); KindExpired (85203);
// the rest as FaceQueryResult.
func (c *Client) FaceGetInfo(ctx context.Context, verifyResult string) (LegacyFaceResult, error) {
	if err := checkFaceToken("verify_result", verifyResult); err != nil {
		return LegacyFaceResult{}, err
	}
	const op = "face_getinfo"
	body, err := json.Marshal(struct {
		VerifyResult string `json:"verify_result"`
	}{verifyResult})
	if err != nil {
		return LegacyFaceResult{}, authcore.Wrap(authcore.KindInternal, err, "internal error")
	}
	attrs := []slog.Attr{slog.Any("verify_result", redacted(verifyResult))}
	resp, err := callWithToken[getInfoAnswer](ctx, c, op, attrs, c.postJSON(pathFaceGetInfo, body))
	if err != nil {
		return LegacyFaceResult{}, err
	}
	if resp.ErrCode != 0 {
		return LegacyFaceResult{}, c.faceError(ctx, op, resp.apiStatus, attrs)
	}
	if resp.IdentifyRet == nil {
		c.log.LogAttrs(ctx, slog.LevelError, "wechat: getinfo success without identify_ret", append(attrs, slog.String("op", op))...)
		return LegacyFaceResult{}, authcore.Wrap(authcore.KindUpstreamUnavailable, fmt.Errorf(causeMissing, op, "identify_ret"), msgUnavailable)
	}
	r := LegacyFaceResult{
		Passed:      *resp.IdentifyRet == 0,
		IdentifyRet: *resp.IdentifyRet,
		OpenID:      resp.OpenID,
		IDNumberMD5: resp.IDCardNumberMD5,
		NameMD5:     resp.NameUTF8MD5,
	}
	if resp.IdentifyTime > 0 {
		r.IdentifyTime = time.Unix(int64(resp.IdentifyTime), 0)
	}
	if !r.Passed {
		r.Reason = faceReason(r.IdentifyRet)
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "wechat: legacy face verification result", append(attrs, slog.String("op", op), slog.Any("result", r))...)
	return r, nil
}

// faceError maps the errcodes of the face APIs, then the common ones.
func (c *Client) faceError(ctx context.Context, op string, st apiStatus, attrs []slog.Attr) error {
	var kind authcore.Kind
	var msg string
	switch st.ErrCode {
	case errcodeFaceBadVerifyID:
		kind, msg = authcore.KindUnauthorized, msgFaceUnknown
	case errcodeFaceCertHash:
		kind, msg = authcore.KindUnauthorized, msgFaceCertHash
	case errcodeFaceOwner:
		kind, msg = authcore.KindUnauthorized, msgFaceOwner
	case errcodeFaceBadVerifyResult:
		kind, msg = authcore.KindUnauthorized, msgFaceBadResult
	case errcodeFaceExpired:
		kind, msg = authcore.KindExpired, msgFaceExpired
	case errcodeBadOpenID:
		kind, msg = authcore.KindInvalid, msgFaceOpenID
	default:
		return c.commonError(ctx, op, st, attrs)
	}
	c.logAPIError(ctx, slog.LevelInfo, op, st, attrs)
	return authcore.Wrap(kind, st.cause(op), msg)
}

// postJSON builds a POST of body (JSON) to path with the access_token in
// the query, for callWithToken.
func (c *Client) postJSON(path string, body []byte) func(ctx context.Context, token string) (*http.Request, error) {
	return func(ctx context.Context, token string) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.apiURL(path, token, nil), bytes.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
}

// checkOutSeqNo rejects an out_seq_no that is empty, over
// MaxOutSeqNoLength or not URL-safe.
func checkOutSeqNo(s string) error {
	if len(s) > MaxOutSeqNoLength {
		return authcore.Errorf(authcore.KindInvalid, "out_seq_no too long")
	}
	return checkCodeOf("out_seq_no", s)
}

// checkFaceToken rejects a verify_id or verify_result (opaque to us) that
// is empty, over maxFaceTokenLength or has bytes other than printable
// ASCII without space.
func checkFaceToken(what, s string) error {
	if s == "" {
		return authcore.Errorf(authcore.KindInvalid, "missing %s", what)
	}
	if len(s) > maxFaceTokenLength {
		return authcore.Errorf(authcore.KindInvalid, "%s too long", what)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return authcore.Errorf(authcore.KindInvalid, "malformed %s", what)
		}
	}
	return nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
