package wechat

// WeChat's legacy encrypted data (the phone number button's and
// wx.getUserInfo's encryptedData), rawData signatures and the session_key
// signature of /wxa/checksession.
//
// The legacy scheme is AES-128-CBC with PKCS#7 padding under the user's
// session_key, with no MAC: the padding and the JSON inside are the only
// integrity checks, so both are validated strictly. Nothing here ever puts
// a session_key, a decrypted byte or a phone number in an error.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// MaxEncryptedDataLength is the longest encryptedData (in base64
// characters) that Decrypt accepts. Real payloads are well under 2 KiB.
const MaxEncryptedDataLength = 64 << 10

// Sentinel causes of the errors of this file, for errors.Is. The returned
// errors are *authcore.Error values that wrap one of them; the sentinels'
// own text (with WeChat's demo error code) is for logs, the *authcore.Error's
// Message for clients.
var (
	// ErrBadSessionKey: the session_key is not base64 of 16 bytes
	// (WeChat's -41001 illegal aes key).
	ErrBadSessionKey = errors.New("wechat: -41001 illegal aes key: session_key is not base64 of 16 bytes")
	// ErrBadIV: the iv is missing or not base64 of 16 bytes (-41002 illegal
	// iv).
	ErrBadIV = errors.New("wechat: -41002 illegal iv: iv is not base64 of 16 bytes")
	// ErrBadPayload: the ciphertext is empty, too long or not whole AES
	// blocks, or it decrypted to JSON of the wrong shape: not an object,
	// wrong field types, no watermark, no phone number (-41003 illegal
	// buffer).
	ErrBadPayload = errors.New("wechat: -41003 illegal buffer: not the expected payload")
	// ErrBadBase64: encryptedData is not base64 (-41004).
	ErrBadBase64 = errors.New("wechat: -41004 base64 decode failed: encryptedData is not base64")
	// ErrStaleSessionKey: the padding is wrong or the plaintext is not JSON
	// at all, which is what decrypting under the wrong key gives. In
	// practice it almost always means the data was encrypted under a
	// session_key that a later wx.login replaced (-41003 illegal buffer).
	ErrStaleSessionKey = errors.New("wechat: -41003 illegal buffer: decryption failed: data encrypted under another (usually replaced) session_key")
	// ErrAppIDMismatch: the watermark names another mini-program.
	ErrAppIDMismatch = errors.New("wechat: watermark appid mismatch")
	// ErrDataTooOld: the watermark is older than the allowed age.
	ErrDataTooOld = errors.New("wechat: watermark timestamp too old")
	// ErrBadSignature: rawData's signature does not match (KindUnauthorized).
	ErrBadSignature = errors.New("wechat: rawData signature mismatch")
)

// Client-visible messages of this file.
const (
	msgDecBadSessionKey = "cannot decrypt: the session_key is not base64 of 16 bytes (WeChat -41001 illegal aes key); log in again with wx.login"
	msgDecBadIV         = "iv must be base64 of 16 bytes (WeChat -41002 illegal iv)"
	msgDecBadBase64     = "encrypted_data is not valid base64 (WeChat -41004); send it exactly as WeChat returned it"
	msgDecNoData        = "encrypted_data is missing or empty (WeChat -41003 illegal buffer)"
	msgDecDataTooLarge  = "encrypted_data is too large (WeChat -41003 illegal buffer)"
	msgDecNotBlocks     = "encrypted_data is not a whole number of AES blocks, was it truncated? (WeChat -41003 illegal buffer)"
	msgDecStaleKey      = "cannot decrypt the data with the current session_key: it was encrypted under a session_key that a later wx.login replaced; call wx.login BEFORE getPhoneNumber / getUserInfo, not after, and send the new data (WeChat -41003 illegal buffer)"
	msgDecBadJSON       = "decrypted data is not the expected JSON object (WeChat -41003 illegal buffer)"
	msgDecNoWatermark   = "decrypted data has no watermark (WeChat -41003 illegal buffer)"
	msgDecNoPhone       = "decrypted data has no phone number (WeChat -41003 illegal buffer)"
	msgDecAppIDMismatch = "data was encrypted for another mini-program (watermark appid mismatch)"
	msgDecDataTooOld    = "data too old: get it again from the phone (watermark timestamp too old)"
	msgDecBadSignature  = "rawData signature mismatch: rawData was altered or signed with another session_key (call wx.login BEFORE getUserInfo, not after)"
)

// maxKeyOrIVLength bounds the base64 session_key and iv read; 16 bytes
// need 24 characters.
const maxKeyOrIVLength = 64

func invalidData(cause error, msg string) *authcore.Error {
	return authcore.Wrap(authcore.KindInvalid, cause, msg)
}

// Decrypt opens WeChat's legacy encryptedData: AES-128-CBC with key =
// base64-decode(sessionKey) (16 bytes), IV = base64-decode(iv) (16 bytes)
// and strict PKCS#7 padding. All three accept standard or URL-safe base64,
// padded or not, with line breaks ignored and spaces read as '+' (what form
// encoding makes of an unescaped '+').
//
// It returns the plaintext, which is JSON if the key was right; Decrypt
// does not look at it. A wrong key passes the padding check about once in
// 256 tries, so callers should treat plaintext that is not JSON as
// ErrStaleSessionKey, as DecryptPhone and DecryptUserInfo do.
//
// Errors are *authcore.Error of KindInvalid wrapping ErrBadSessionKey,
// ErrBadIV, ErrBadBase64, ErrBadPayload (empty, oversized or not whole
// blocks) or ErrStaleSessionKey (bad padding).
func Decrypt(sessionKey, encryptedData, iv string) ([]byte, error) {
	key, ok := decodeWeChatBase64(sessionKey, maxKeyOrIVLength)
	if !ok || len(key) != 16 {
		return nil, invalidData(ErrBadSessionKey, msgDecBadSessionKey)
	}
	ivb, ok := decodeWeChatBase64(iv, maxKeyOrIVLength)
	if !ok || len(ivb) != aes.BlockSize {
		return nil, invalidData(ErrBadIV, msgDecBadIV)
	}
	switch {
	case strings.TrimSpace(encryptedData) == "":
		return nil, invalidData(ErrBadPayload, msgDecNoData)
	case len(encryptedData) > MaxEncryptedDataLength:
		return nil, invalidData(ErrBadPayload, msgDecDataTooLarge)
	}
	buf, ok := decodeWeChatBase64(encryptedData, MaxEncryptedDataLength)
	switch {
	case !ok:
		return nil, invalidData(ErrBadBase64, msgDecBadBase64)
	case len(buf) == 0:
		return nil, invalidData(ErrBadPayload, msgDecNoData)
	case len(buf)%aes.BlockSize != 0:
		return nil, invalidData(fmt.Errorf("%w: ciphertext is %d bytes", ErrBadPayload, len(buf)), msgDecNotBlocks)
	}
	block, err := aes.NewCipher(key)
	if err != nil { // cannot happen with 16 bytes
		return nil, invalidData(fmt.Errorf("%w: %v", ErrBadSessionKey, err), msgDecBadSessionKey)
	}
	cipher.NewCBCDecrypter(block, ivb).CryptBlocks(buf, buf)
	plain, ok := pkcs7Unpad(buf)
	if !ok {
		return nil, invalidData(fmt.Errorf("%w: bad PKCS#7 padding", ErrStaleSessionKey), msgDecStaleKey)
	}
	return plain, nil
}

// pkcs7Unpad strips PKCS#7 padding from buf, a non-empty whole number of AES
// blocks, checking that the pad length is 1 to 16 and every pad byte
// equals it. It reads the whole last block whatever the pad length, without
// branching on secret bytes.
func pkcs7Unpad(buf []byte) ([]byte, bool) {
	n := len(buf)
	if n == 0 || n%aes.BlockSize != 0 {
		return nil, false
	}
	pad := int(buf[n-1])
	good := subtle.ConstantTimeLessOrEq(1, pad) & subtle.ConstantTimeLessOrEq(pad, aes.BlockSize)
	for i := 0; i < aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i+1, pad) // byte n-1-i is padding
		same := subtle.ConstantTimeByteEq(buf[n-1-i], byte(pad))
		good &= same | (inPad ^ 1)
	}
	if good != 1 {
		return nil, false
	}
	return buf[:n-pad], true
}

// decodeWeChatBase64 decodes standard or URL-safe base64, padded or not. Spaces
// are read as '+', which form encoding turns '+' into, and line breaks are
// dropped. Padding, when present, must be complete.
func decodeWeChatBase64(s string, maxLen int) ([]byte, bool) {
	if len(s) > maxLen {
		return nil, false
	}
	if strings.ContainsAny(s, " \r\n") {
		s = strings.NewReplacer(" ", "+", "\r", "", "\n", "").Replace(s)
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		if strings.ContainsAny(s, "+/") { // two alphabets at once
			return nil, false
		}
		enc = base64.RawURLEncoding
	}
	t := strings.TrimRight(s, "=")
	if pad := len(s) - len(t); pad > 2 || (pad > 0 && len(s)%4 != 0) {
		return nil, false
	}
	b, err := enc.DecodeString(t)
	return b, err == nil
}

// Watermark is the appid and time WeChat stamps into decrypted data (and
// into getuserphonenumber's phone_info).
type Watermark struct {
	AppID     string `json:"appid"`
	Timestamp int64  `json:"timestamp"` // unix seconds
}

// Check reports a KindInvalid *authcore.Error if w is missing (no appid,
// ErrBadPayload), names another mini-program than appID (ErrAppIDMismatch),
// or, when maxAge > 0, is older than maxAge at now (ErrDataTooOld; a missing
// timestamp counts as old).
func (w Watermark) Check(appID string, maxAge time.Duration, now time.Time) error {
	switch {
	case w.AppID == "":
		return invalidData(ErrBadPayload, msgDecNoWatermark)
	case w.AppID != appID:
		return invalidData(ErrAppIDMismatch, msgDecAppIDMismatch)
	case maxAge > 0 && (w.Timestamp <= 0 || now.Sub(time.Unix(w.Timestamp, 0)) > maxAge):
		return invalidData(ErrDataTooOld, msgDecDataTooOld)
	}
	return nil
}

// PhoneInfo is the decrypted phone-number payload, and the phone_info of
// the current getuserphonenumber API, which has the same shape.
type PhoneInfo struct {
	PhoneNumber     string    `json:"phoneNumber"`     // with the country code for numbers outside mainland China
	PurePhoneNumber string    `json:"purePhoneNumber"` // without the country code
	CountryCode     string    `json:"countryCode"`     // "86"; always a string here
	Watermark       Watermark `json:"watermark"`
}

// UnmarshalJSON decodes WeChat's phone payload, accepting countryCode as a
// string ("86") or a non-negative integer (86), since WeChat's documents
// show both. Marshalling always emits a string.
func (p *PhoneInfo) UnmarshalJSON(b []byte) error {
	type plain PhoneInfo // no methods: no recursion
	var v struct {
		plain
		CountryCode json.RawMessage `json:"countryCode"` // shadows plain's
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	cc, err := parseCountryCode(v.CountryCode)
	if err != nil {
		return err
	}
	*p = PhoneInfo(v.plain)
	p.CountryCode = cc
	return nil
}

func parseCountryCode(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	for _, c := range raw {
		if c < '0' || c > '9' {
			return "", errors.New("wechat: countryCode is neither a string nor a non-negative integer")
		}
	}
	return string(raw), nil
}

// DecryptPhone decrypts the phone-number button's legacy encryptedData and
// checks it: JSON of PhoneInfo's shape, a watermark for appID, no older
// than maxAge at now when maxAge > 0, and a phone number.
//
// Errors are *authcore.Error of KindInvalid: Decrypt's, ErrStaleSessionKey
// when the plaintext is not JSON at all, ErrBadPayload when it is JSON of
// the wrong shape or lacks the watermark or phone number, and
// Watermark.Check's.
func DecryptPhone(appID, sessionKey, encryptedData, iv string, maxAge time.Duration, now time.Time) (PhoneInfo, error) {
	plain, err := Decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return PhoneInfo{}, err
	}
	var p PhoneInfo
	if err := parseDecrypted(plain, &p); err != nil {
		return PhoneInfo{}, err
	}
	if err := p.Watermark.Check(appID, maxAge, now); err != nil {
		return PhoneInfo{}, err
	}
	if p.PhoneNumber == "" && p.PurePhoneNumber == "" {
		return PhoneInfo{}, invalidData(ErrBadPayload, msgDecNoPhone)
	}
	return p, nil
}

// parseDecrypted decodes decrypted JSON into v. Bytes that are not JSON at all
// are what a wrong key gives once its padding happens to pass, so they are
// reported as a stale session_key; JSON of another shape as a bad payload.
// Neither error carries the plaintext.
func parseDecrypted(plain []byte, v any) error {
	if !json.Valid(plain) {
		return invalidData(fmt.Errorf("%w: plaintext is not JSON", ErrStaleSessionKey), msgDecStaleKey)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		// The cause names the field and type, never the value.
		var te *json.UnmarshalTypeError
		cause := ErrBadPayload
		if errors.As(err, &te) {
			cause = fmt.Errorf("%w: field %q: JSON %s, want %s", ErrBadPayload, te.Field, te.Value, te.Type)
		}
		return invalidData(cause, msgDecBadJSON)
	}
	return nil
}

// UserInfo is wx.getUserInfo's decrypted profile.
type UserInfo struct {
	OpenID    string    `json:"openId"`
	NickName  string    `json:"nickName"`
	AvatarURL string    `json:"avatarUrl"`
	UnionID   string    `json:"unionId"` // empty unless the app is bound to an Open Platform account
	Gender    int       `json:"gender"`  // 0 unknown, 1 male, 2 female
	City      string    `json:"city"`
	Province  string    `json:"province"`
	Country   string    `json:"country"`
	Language  string    `json:"language"`
	Watermark Watermark `json:"watermark"`
}

// DecryptUserInfo checks wx.getUserInfo's rawData signature when signature
// is not empty (KindUnauthorized wrapping ErrBadSignature on mismatch),
// then decrypts encryptedData and checks its watermark for appID, with the
// errors of DecryptPhone. The watermark's age is not checked.
func DecryptUserInfo(appID, sessionKey, encryptedData, iv, rawData, signature string) (UserInfo, error) {
	if signature != "" && !CheckSignature(rawData, sessionKey, signature) {
		return UserInfo{}, authcore.Wrap(authcore.KindUnauthorized, ErrBadSignature, msgDecBadSignature)
	}
	plain, err := Decrypt(sessionKey, encryptedData, iv)
	if err != nil {
		return UserInfo{}, err
	}
	var u UserInfo
	if err := parseDecrypted(plain, &u); err != nil {
		return UserInfo{}, err
	}
	if err := u.Watermark.Check(appID, 0, time.Time{}); err != nil {
		return UserInfo{}, err
	}
	return u, nil
}

// CheckSignature reports whether signature is wx.getUserInfo's signature
// of rawData: hex sha1(rawData + sessionKey), where sessionKey is the
// base64 string, not its bytes. Hex in either case is accepted; the
// comparison is constant-time.
func CheckSignature(rawData, sessionKey, signature string) bool {
	h := sha1.New()
	h.Write([]byte(rawData))
	h.Write([]byte(sessionKey))
	want := hex.EncodeToString(h.Sum(nil))
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// SessionKeySignature is the signature /wxa/checksession and
// /wxa/resetusersessionkey take with sig_method=hmac_sha256: lowercase hex
// HMAC-SHA256 of the empty message, keyed with the base64 session_key
// string (not its bytes).
func SessionKeySignature(sessionKey string) string {
	m := hmac.New(sha256.New, []byte(sessionKey))
	return hex.EncodeToString(m.Sum(nil))
}
