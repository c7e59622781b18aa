package wechat

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// cryptoFake is a wechattest.Server over real HTTP, playing the phone.
type cryptoFake struct {
	t   *testing.T
	srv *wechattest.Server
	url string
}

func newCryptoFake(t *testing.T, srv *wechattest.Server) *cryptoFake {
	t.Helper()
	url := wechattest.Start(t, srv)
	return &cryptoFake{t: t, srv: srv, url: url}
}

// post sends {"user":user} to a sandbox path and returns the JSON answer's
// string fields.
func (f *cryptoFake) post(path, user string) map[string]string {
	f.t.Helper()
	resp, err := http.Post(f.url+path, "application/json", strings.NewReader(fmt.Sprintf(`{"user":%q}`, user)))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		f.t.Fatalf("POST %s: HTTP %d, %v", path, resp.StatusCode, err)
	}
	out := make(map[string]string)
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

// login does wx.login on user's phone, which rotates the session_key, and
// returns the new key.
func (f *cryptoFake) login(user string) string {
	f.t.Helper()
	if f.post(wechattest.PathWxLogin, user)["code"] == "" {
		f.t.Fatal("wx.login gave no code")
	}
	return f.srv.User(user).SessionKey
}

// wantDecryptError checks that err is an *authcore.Error of kind want
// wrapping sentinel, and returns it.
func wantDecryptError(t testing.TB, what string, err error, sentinel error, kind authcore.Kind) *authcore.Error {
	t.Helper()
	var e *authcore.Error
	if !errors.As(err, &e) {
		t.Fatalf("%s: error = %v (%T), want an *authcore.Error", what, err, err)
	}
	if e.Kind != kind {
		t.Errorf("%s: kind = %s (%v), want %s", what, e.Kind.Code(), err, kind.Code())
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("%s: error = %v, want one wrapping %q", what, err, sentinel)
	}
	if e.Message == "" {
		t.Errorf("%s: empty client message", what)
	}
	return e
}

// pkcs7ForTest pads as WeChat does: n bytes of value n, 1 <= n <= 16.
func pkcs7ForTest(plain []byte) []byte {
	n := aes.BlockSize - len(plain)%aes.BlockSize
	return append(bytes.Clone(plain), bytes.Repeat([]byte{byte(n)}, n)...)
}

// cbcForTest encrypts buf (whole blocks, already padded or deliberately
// not) with AES-128-CBC, as WeChat's legacy encryptedData.
func cbcForTest(t testing.TB, key, iv, buf []byte) string {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, buf)
	return base64.StdEncoding.EncodeToString(out)
}

// testSeal encrypts plain as WeChat would under a fresh random IV and
// returns encryptedData and iv in standard base64.
func testSeal(t testing.TB, sessionKey string, plain []byte) (data, iv string) {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(sessionKey)
	if err != nil {
		t.Fatal(err)
	}
	ivb := make([]byte, aes.BlockSize)
	rand.Read(ivb)
	return cbcForTest(t, key, ivb, pkcs7ForTest(plain)), base64.StdEncoding.EncodeToString(ivb)
}

func randomSessionKey() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func phoneJSON(appid string, ts int64) []byte {
	return fmt.Appendf(nil, `{"phoneNumber":"13800001234","purePhoneNumber":"13800001234","countryCode":"86","watermark":{"appid":%q,"timestamp":%d}}`, appid, ts)
}

func TestDecryptPhoneRoundTripWithFake(t *testing.T) {
	srv := &wechattest.Server{}
	f := newCryptoFake(t, srv)
	appid, _ := srv.App()
	key := f.login("ann")
	button := f.post(wechattest.PathPhoneButton, "ann")
	ann := srv.User("ann")

	got, err := DecryptPhone(appid, key, button["encryptedData"], button["iv"], time.Minute, time.Now())
	if err != nil {
		t.Fatalf("DecryptPhone: %v", err)
	}
	if got.PhoneNumber != ann.PhoneNumber || got.PurePhoneNumber != ann.PurePhoneNumber || got.CountryCode != ann.CountryCode {
		t.Errorf("DecryptPhone = %+v, want the numbers of %+v", got, ann)
	}
	if got.Watermark.AppID != appid || time.Since(time.Unix(got.Watermark.Timestamp, 0)) > time.Minute {
		t.Errorf("watermark = %+v, want appid %q and a recent timestamp", got.Watermark, appid)
	}

	// maxAge 0 skips the age check, even with a clock far ahead.
	if _, err := DecryptPhone(appid, key, button["encryptedData"], button["iv"], 0, time.Now().Add(24*time.Hour)); err != nil {
		t.Errorf("DecryptPhone with maxAge 0 a day later: %v", err)
	}
	// The same payload a day later with maxAge an hour is too old.
	_, err = DecryptPhone(appid, key, button["encryptedData"], button["iv"], time.Hour, time.Now().Add(24*time.Hour))
	wantDecryptError(t, "a day-old watermark", err, ErrDataTooOld, authcore.KindInvalid)
	// Another mini-program's hub cannot use it even with the key.
	_, err = DecryptPhone("wx0000000000000000", key, button["encryptedData"], button["iv"], 0, time.Now())
	e := wantDecryptError(t, "another appid", err, ErrAppIDMismatch, authcore.KindInvalid)
	if !strings.Contains(e.Message, "another mini-program") {
		t.Errorf("appid mismatch message = %q", e.Message)
	}
}

func TestDecryptUserInfoRoundTripWithFake(t *testing.T) {
	srv := &wechattest.Server{UnionIDs: true}
	f := newCryptoFake(t, srv)
	appid, _ := srv.App()
	key := f.login("bob")
	info := f.post(wechattest.PathGetUserInfo, "bob")
	bob := srv.User("bob")

	for _, sig := range []string{info["signature"], strings.ToUpper(info["signature"]), ""} {
		got, err := DecryptUserInfo(appid, key, info["encryptedData"], info["iv"], info["rawData"], sig)
		if err != nil {
			t.Fatalf("DecryptUserInfo (signature %q): %v", sig, err)
		}
		if got.OpenID != bob.OpenID || got.UnionID != bob.UnionID || got.NickName != bob.Nickname ||
			got.AvatarURL != bob.AvatarURL || got.Language != "en" || got.Watermark.AppID != appid {
			t.Errorf("DecryptUserInfo = %+v, want bob %+v", got, bob)
		}
	}
	if !CheckSignature(info["rawData"], key, info["signature"]) {
		t.Error("CheckSignature rejects the fake's signature")
	}
	// rawData altered in transit.
	tampered := strings.Replace(info["rawData"], "bob", "eve", 1)
	_, err := DecryptUserInfo(appid, key, info["encryptedData"], info["iv"], tampered, info["signature"])
	e := wantDecryptError(t, "tampered rawData", err, ErrBadSignature, authcore.KindUnauthorized)
	if !strings.HasPrefix(e.Message, "rawData signature mismatch") {
		t.Errorf("signature mismatch message = %q", e.Message)
	}
	_, err = DecryptUserInfo("wx0000000000000000", key, info["encryptedData"], info["iv"], info["rawData"], info["signature"])
	wantDecryptError(t, "userinfo for another appid", err, ErrAppIDMismatch, authcore.KindInvalid)
}

// The #1 complaint: getPhoneNumber / getUserInfo, then wx.login, then send
// the data: the key it was encrypted under is gone.
func TestStaleSessionKeyWithFake(t *testing.T) {
	srv := &wechattest.Server{}
	f := newCryptoFake(t, srv)
	appid, _ := srv.App()
	f.login("cat")
	for i := range 20 { // each round is random; all must say the same
		button := f.post(wechattest.PathPhoneButton, "cat")
		info := f.post(wechattest.PathGetUserInfo, "cat")
		newKey := f.login("cat") // too late: the payloads are under the old key

		_, err := DecryptPhone(appid, newKey, button["encryptedData"], button["iv"], 0, time.Now())
		e := wantDecryptError(t, fmt.Sprintf("round %d: phone under a replaced key", i), err, ErrStaleSessionKey, authcore.KindInvalid)
		if !strings.Contains(e.Message, "call wx.login BEFORE getPhoneNumber") {
			t.Errorf("stale key message = %q, want it to say to call wx.login first", e.Message)
		}
		if strings.Contains(err.Error(), newKey) {
			t.Errorf("error %q contains the session_key", err)
		}
		_, err = DecryptUserInfo(appid, newKey, info["encryptedData"], info["iv"], "", "")
		wantDecryptError(t, "userinfo under a replaced key", err, ErrStaleSessionKey, authcore.KindInvalid)
		_, err = DecryptUserInfo(appid, newKey, info["encryptedData"], info["iv"], info["rawData"], info["signature"])
		wantDecryptError(t, "signed userinfo under a replaced key", err, ErrBadSignature, authcore.KindUnauthorized)
	}
}

// A wrong key passes the padding check about once in 256 tries; the
// garbage it yields must still be reported as a stale key.
func TestWrongKeyAlwaysReadsAsStale(t *testing.T) {
	appid := "wxtest"
	for i := range 3000 {
		data, iv := testSeal(t, randomSessionKey(), phoneJSON(appid, time.Now().Unix()))
		_, err := DecryptPhone(appid, randomSessionKey(), data, iv, 0, time.Now())
		var e *authcore.Error
		if !errors.As(err, &e) || e.Kind != authcore.KindInvalid || !errors.Is(err, ErrStaleSessionKey) {
			t.Fatalf("try %d: wrong key gave %v, want ErrStaleSessionKey", i, err)
		}
	}
}

func TestDecryptFailures(t *testing.T) {
	const appid = "wxtest"
	now := time.Now()
	key := randomSessionKey()
	keyBytes, _ := base64.StdEncoding.DecodeString(key)
	ivBytes := make([]byte, aes.BlockSize)
	rand.Read(ivBytes)
	iv := base64.StdEncoding.EncodeToString(ivBytes)
	plain := phoneJSON(appid, now.Unix())
	seal := func(p []byte) string { return cbcForTest(t, keyBytes, ivBytes, pkcs7ForTest(p)) }
	raw := func(p []byte) string { return cbcForTest(t, keyBytes, ivBytes, p) } // no padding added
	data := seal(plain)
	ct, _ := base64.StdEncoding.DecodeString(data)
	if len(ct) < 3*aes.BlockSize {
		t.Fatalf("test payload is %d bytes, want at least 3 blocks", len(ct))
	}
	flip := func(b []byte, i int, mask byte) string {
		c := bytes.Clone(b)
		c[i] ^= mask
		return base64.StdEncoding.EncodeToString(c)
	}
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	block := func(last ...byte) []byte { // one block ending in last
		b := bytes.Repeat([]byte{'x'}, aes.BlockSize)
		copy(b[aes.BlockSize-len(last):], last)
		return b
	}
	phone := func(key, data, iv string) error {
		_, err := DecryptPhone(appid, key, data, iv, time.Hour, now)
		return err
	}
	decrypt := func(key, data, iv string) error {
		_, err := Decrypt(key, data, iv)
		return err
	}

	tests := []struct {
		name           string
		do             func(key, data, iv string) error
		key, data, iv  string
		want           error
		kind           authcore.Kind
		messageContain string
	}{
		// Tampering: CBC has no MAC; padding and JSON catch it.
		{"flipped last byte of the next-to-last block (breaks the padding)", decrypt, key, flip(ct, len(ct)-aes.BlockSize-1, 0xff), iv, ErrStaleSessionKey, authcore.KindInvalid, "call wx.login BEFORE"},
		{"flipped byte in the last block", phone, key, flip(ct, len(ct)-3, 0x01), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"flipped byte in the first block", phone, key, flip(ct, 3, 0x40), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"flipped iv byte turns { into z", phone, key, data, flip(ivBytes, 0, 0x01), ErrStaleSessionKey, authcore.KindInvalid, ""},

		// Strict PKCS#7.
		{"pad byte 0", decrypt, key, raw(block(0)), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"pad byte 17", decrypt, key, raw(block(17)), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"pad byte 255", decrypt, key, raw(block(255)), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"pad bytes differ", decrypt, key, raw(block(3, 2, 3)), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"pad 16 with one odd byte", decrypt, key, raw(append([]byte{15}, bytes.Repeat([]byte{16}, 15)...)), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},

		// Keys.
		{"15-byte key", decrypt, b64(15), data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},
		{"17-byte key", decrypt, b64(17), data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},
		{"32-byte key", decrypt, b64(32), data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},
		{"empty key", decrypt, "", data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},
		{"key not base64", decrypt, "not a base64 key!!!!!!!!", data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},
		{"huge key", decrypt, strings.Repeat("A", 1<<20), data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},

		// IVs.
		{"15-byte iv", decrypt, key, data, b64(15), ErrBadIV, authcore.KindInvalid, "-41002"},
		{"17-byte iv", decrypt, key, data, b64(17), ErrBadIV, authcore.KindInvalid, "-41002"},
		{"empty iv", decrypt, key, data, "", ErrBadIV, authcore.KindInvalid, "-41002"},
		{"iv not base64", decrypt, key, data, "%%%%%%%%%%%%%%%%%%%%%%%%", ErrBadIV, authcore.KindInvalid, "-41002"},

		// Ciphertext.
		{"data not base64", decrypt, key, "this is not base64!", iv, ErrBadBase64, authcore.KindInvalid, "-41004"},
		{"data with bad padding", decrypt, key, "QUJD=", iv, ErrBadBase64, authcore.KindInvalid, "-41004"},
		{"data with too much padding", decrypt, key, data + "==", iv, ErrBadBase64, authcore.KindInvalid, "-41004"},
		{"data mixing base64 alphabets", decrypt, key, "ab+/cd-_" + data, iv, ErrBadBase64, authcore.KindInvalid, "-41004"},
		{"data not a multiple of 16", decrypt, key, base64.StdEncoding.EncodeToString(ct[:len(ct)-1]), iv, ErrBadPayload, authcore.KindInvalid, "AES blocks"},
		{"data of 17 bytes", decrypt, key, b64(17), iv, ErrBadPayload, authcore.KindInvalid, "AES blocks"},
		{"empty data", decrypt, key, "", iv, ErrBadPayload, authcore.KindInvalid, "missing"},
		{"blank data", decrypt, key, "   ", iv, ErrBadPayload, authcore.KindInvalid, "missing"},
		{"huge data", decrypt, key, strings.Repeat("A", MaxEncryptedDataLength+4), iv, ErrBadPayload, authcore.KindInvalid, "too large"},

		// Plaintext.
		{"plaintext not JSON", phone, key, seal([]byte("hello, not json")), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"empty plaintext", phone, key, seal(nil), iv, ErrStaleSessionKey, authcore.KindInvalid, ""},
		{"plaintext a JSON array", phone, key, seal([]byte(`[1,2,3]`)), iv, ErrBadPayload, authcore.KindInvalid, "-41003"},
		{"plaintext JSON null", phone, key, seal([]byte(`null`)), iv, ErrBadPayload, authcore.KindInvalid, "watermark"},
		{"no watermark", phone, key, seal([]byte(`{"phoneNumber":"13800001234","purePhoneNumber":"13800001234","countryCode":"86"}`)), iv, ErrBadPayload, authcore.KindInvalid, "watermark"},
		{"watermark without appid", phone, key, seal([]byte(`{"phoneNumber":"13800001234","watermark":{"timestamp":1}}`)), iv, ErrBadPayload, authcore.KindInvalid, "watermark"},
		{"phoneNumber a number", phone, key, seal([]byte(`{"phoneNumber":13800001234,"watermark":{"appid":"wxtest","timestamp":1}}`)), iv, ErrBadPayload, authcore.KindInvalid, "-41003"},
		{"countryCode an object", phone, key, seal([]byte(`{"phoneNumber":"1","countryCode":{},"watermark":{"appid":"wxtest","timestamp":1}}`)), iv, ErrBadPayload, authcore.KindInvalid, "-41003"},
		{"countryCode negative", phone, key, seal([]byte(`{"phoneNumber":"1","countryCode":-86,"watermark":{"appid":"wxtest","timestamp":1}}`)), iv, ErrBadPayload, authcore.KindInvalid, "-41003"},
		{"no phone number", phone, key, seal(fmt.Appendf(nil, `{"countryCode":"86","watermark":{"appid":"wxtest","timestamp":%d}}`, now.Unix())), iv, ErrBadPayload, authcore.KindInvalid, "phone number"},
		{"wrong appid watermark", phone, key, seal(phoneJSON("wxother", now.Unix())), iv, ErrAppIDMismatch, authcore.KindInvalid, "data was encrypted for another mini-program (watermark appid mismatch)"},
		{"appid differing in case", phone, key, seal(phoneJSON("WXTEST", now.Unix())), iv, ErrAppIDMismatch, authcore.KindInvalid, "another mini-program"},
		{"old watermark", phone, key, seal(phoneJSON(appid, now.Add(-2*time.Hour).Unix())), iv, ErrDataTooOld, authcore.KindInvalid, "data too old"},
		{"zero timestamp", phone, key, seal(phoneJSON(appid, 0)), iv, ErrDataTooOld, authcore.KindInvalid, "data too old"},

		// wx.getUserInfo.
		{"userinfo signature mismatch", func(key, data, iv string) error {
			_, err := DecryptUserInfo(appid, key, data, iv, `{"nickName":"x"}`, strings.Repeat("0", 40))
			return err
		}, key, data, iv, ErrBadSignature, authcore.KindUnauthorized, "rawData signature mismatch"},
		{"userinfo signature, wrong key", func(key, data, iv string) error {
			rawData := `{"nickName":"x"}`
			sum := sha1.Sum([]byte(rawData + randomSessionKey()))
			_, err := DecryptUserInfo(appid, key, data, iv, rawData, hex.EncodeToString(sum[:]))
			return err
		}, key, data, iv, ErrBadSignature, authcore.KindUnauthorized, "rawData signature mismatch"},
		{"userinfo wrong appid", func(key, data, iv string) error {
			_, err := DecryptUserInfo("wxother", key, data, iv, "", "")
			return err
		}, key, seal([]byte(`{"openId":"o1","watermark":{"appid":"wxtest","timestamp":1}}`)), iv, ErrAppIDMismatch, authcore.KindInvalid, "another mini-program"},
		{"userinfo gender a string", func(key, data, iv string) error {
			_, err := DecryptUserInfo(appid, key, data, iv, "", "")
			return err
		}, key, seal([]byte(`{"openId":"o1","gender":"1","watermark":{"appid":"wxtest","timestamp":1}}`)), iv, ErrBadPayload, authcore.KindInvalid, "-41003"},
		{"userinfo bad key before signature", func(key, data, iv string) error {
			_, err := DecryptUserInfo(appid, b64(15), data, iv, "", "")
			return err
		}, key, data, iv, ErrBadSessionKey, authcore.KindInvalid, "-41001"},
	}
	secrets := []string{key, "13800001234", hex.EncodeToString(keyBytes)}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("panic: %v", r)
					}
				}()
				err = tc.do(tc.key, tc.data, tc.iv)
			}()
			e := wantDecryptError(t, tc.name, err, tc.want, tc.kind)
			if !strings.Contains(e.Message, tc.messageContain) {
				t.Errorf("message %q does not contain %q", e.Message, tc.messageContain)
			}
			for _, s := range secrets {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q reveals a secret or the plaintext", err)
				}
			}
			if strings.Contains(err.Error(), "xxxxxxxx") || strings.Contains(err.Error(), "hello") {
				t.Errorf("error %q reveals plaintext", err)
			}
		})
	}

	// And the untouched payload opens: the table's failures are the
	// changes, not the fixture.
	if _, err := DecryptPhone(appid, key, data, iv, time.Hour, now); err != nil {
		t.Fatalf("untampered payload: %v", err)
	}
}

// '+' becomes ' ' when base64 goes through form encoding unescaped; URL-safe
// and unpadded base64 and line breaks are also read.
func TestDecryptBase64Variants(t *testing.T) {
	const appid = "wx0123456789abcdef" // a real appid's length, and a payload whose base64 is padded
	plain := phoneJSON(appid, time.Now().Unix())
	if n := len(pkcs7ForTest(plain)); n%3 == 0 {
		t.Fatalf("ciphertext of %d bytes has unpadded base64; change the plaintext", n)
	}
	// Find a key, iv and payload that all contain '+' and '/' so every
	// variant really differs from standard base64.
	var key, data, iv string
	for i := 0; ; i++ {
		key = randomSessionKey()
		data, iv = testSeal(t, key, plain)
		if strings.ContainsAny(key, "+") && strings.Contains(iv, "+") && strings.Contains(data, "+") &&
			strings.Contains(data, "/") && strings.HasSuffix(data, "=") {
			break
		}
		if i > 100000 {
			t.Fatal("no payload with '+' and '/' found")
		}
	}
	space := func(s string) string { return strings.ReplaceAll(s, "+", " ") }
	url := func(s string) string { return base64URL(s) }
	unpadded := func(s string) string { return strings.TrimRight(s, "=") }
	wrapped := func(s string) string {
		var b strings.Builder
		for i := 0; i < len(s); i += 20 {
			b.WriteString(s[i:min(i+20, len(s))])
			b.WriteString("\r\n")
		}
		return b.String()
	}
	variants := []struct {
		name          string
		key, data, iv string
	}{
		{"standard", key, data, iv},
		{"'+' as ' ' in data and iv", key, space(data), space(iv)},
		{"'+' as ' ' everywhere", space(key), space(data), space(iv)},
		{"URL-safe", url(key), url(data), url(iv)},
		{"URL-safe unpadded", unpadded(url(key)), unpadded(url(data)), unpadded(url(iv))},
		{"standard unpadded", unpadded(key), unpadded(data), unpadded(iv)},
		{"line-wrapped", key, wrapped(data), iv},
	}
	for _, v := range variants {
		got, err := DecryptPhone(appid, v.key, v.data, v.iv, 0, time.Now())
		if err != nil {
			t.Errorf("%s: %v", v.name, err)
			continue
		}
		if got.PhoneNumber != "13800001234" || got.CountryCode != "86" {
			t.Errorf("%s: got %+v", v.name, got)
		}
	}
}

func base64URL(s string) string {
	return strings.NewReplacer("+", "-", "/", "_").Replace(s)
}

func TestPhoneInfoCountryCode(t *testing.T) {
	const appid = "wxtest"
	key := randomSessionKey()
	plain := fmt.Appendf(nil, `{"phoneNumber":"+1 5550001234","purePhoneNumber":"5550001234","countryCode":1,"watermark":{"appid":%q,"timestamp":%d}}`, appid, time.Now().Unix())
	data, iv := testSeal(t, key, plain)
	got, err := DecryptPhone(appid, key, data, iv, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got.CountryCode != "1" || got.PurePhoneNumber != "5550001234" || got.PhoneNumber != "+1 5550001234" {
		t.Errorf("DecryptPhone with a numeric countryCode = %+v", got)
	}
	out, err := json.Marshal(got)
	if err != nil || !bytes.Contains(out, []byte(`"countryCode":"1"`)) {
		t.Errorf("Marshal = %s, %v; want countryCode as a string", out, err)
	}

	// The current API's phone_info, both ways, and what is not a country code.
	for in, want := range map[string]string{
		`{"phoneNumber":"13800001234","purePhoneNumber":"13800001234","countryCode":"86","watermark":{"timestamp":1,"appid":"wx1"}}`: "86",
		`{"phoneNumber":"13800001234","purePhoneNumber":"13800001234","countryCode":86,"watermark":{"timestamp":1,"appid":"wx1"}}`:   "86",
		`{"phoneNumber":"13800001234","countryCode":null}`:                                                                           "",
		`{"phoneNumber":"13800001234"}`: "",
	} {
		var p PhoneInfo
		if err := json.Unmarshal([]byte(in), &p); err != nil || p.CountryCode != want || p.PhoneNumber != "13800001234" {
			t.Errorf("Unmarshal(%s) = %+v, %v; want countryCode %q", in, p, err, want)
		}
	}
	var p PhoneInfo
	if err := json.Unmarshal([]byte(`{"phone_info":{"countryCode":86,"watermark":{"appid":"wx1","timestamp":7}}}`), &struct {
		PhoneInfo *PhoneInfo `json:"phone_info"`
	}{&p}); err != nil || p.CountryCode != "86" || p.Watermark != (Watermark{"wx1", 7}) {
		t.Errorf("nested phone_info = %+v, %v", p, err)
	}
	for _, bad := range []string{`{"countryCode":8.6}`, `{"countryCode":-86}`, `{"countryCode":true}`, `{"countryCode":[86]}`, `{"countryCode":1e2}`} {
		var p PhoneInfo
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("Unmarshal(%s) = %+v, want an error", bad, p)
		}
	}
}

func TestWatermarkCheck(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	w := Watermark{AppID: "wx1", Timestamp: now.Unix() - 60}
	if err := w.Check("wx1", time.Minute, now); err != nil {
		t.Errorf("exactly maxAge old: %v", err)
	}
	if err := w.Check("wx1", time.Minute-time.Second, now); !errors.Is(err, ErrDataTooOld) {
		t.Errorf("older than maxAge: %v", err)
	}
	if err := w.Check("wx1", 0, now.Add(1000*time.Hour)); err != nil {
		t.Errorf("maxAge 0: %v", err)
	}
	if err := (Watermark{}).Check("wx1", 0, now); !errors.Is(err, ErrBadPayload) {
		t.Errorf("no watermark: %v", err)
	}
	if err := w.Check("", 0, now); !errors.Is(err, ErrAppIDMismatch) {
		t.Errorf("empty expected appid: %v", err)
	}
}

func TestPKCS7UnpadStrict(t *testing.T) {
	blockOf := func(tail ...byte) []byte {
		b := bytes.Repeat([]byte{'a'}, aes.BlockSize)
		copy(b[aes.BlockSize-len(tail):], tail)
		return b
	}
	for _, tc := range []struct {
		in   []byte
		want int // plaintext length, -1 for rejection
	}{
		{blockOf(1), 15},
		{blockOf(2, 2), 14},
		{blockOf(1, 2), -1},
		{blockOf(2, 1), 15},
		{bytes.Repeat([]byte{16}, 16), 0},
		{append(blockOf(), bytes.Repeat([]byte{16}, 16)...), 16},
		{append(bytes.Repeat([]byte{16}, 15), 15), -1}, // pad 15, but its bytes are 16
		{blockOf(0), -1},
		{blockOf(17), -1},
		{append([]byte{7}, bytes.Repeat([]byte{16}, 15)...), -1},
		{nil, -1},
		{blockOf(1)[:15], -1},
	} {
		got, ok := pkcs7Unpad(bytes.Clone(tc.in))
		switch {
		case tc.want < 0 && ok:
			t.Errorf("pkcs7Unpad(% x) accepted, want rejection", tc.in)
		case tc.want >= 0 && (!ok || len(got) != tc.want):
			t.Errorf("pkcs7Unpad(% x) = %d bytes, %v; want %d bytes", tc.in, len(got), ok, tc.want)
		}
	}
}

// Known answers computed outside this package: WeChat's own documented
// example for the rawData signature, and HMAC-SHA256 from Python's hmac
// module for the session_key signature, plus the same computations
// written out here with the standard library.
func TestSignaturesKnownAnswers(t *testing.T) {
	const sessionKey = "HyVFkGl5F5OQWJZZaNzBBg=="
	const rawData = `{"nickName":"Band","gender":1,"language":"zh_CN","city":"Guangzhou","province":"Guangdong","country":"CN","avatarUrl":"http://wx.qlogo.cn/mmopen/vi_32/1vZvI39NWFQ9XM4LtQpFrQJ1xlgZxx3w7bQxKARol6503Iuswjjn6nIGBiaycAjAtpujxyzYsrztuuICqIM5ibXQ/0"}`
	const wantSig = "75e81ceda165f4ffa64f4068af58c64b8f54b88c" // WeChat's documentation
	const wantHMAC = "252b75c92698025afe925b29cca5517fdf9ee67aae072cf3225ebf3a53783058"

	sum := sha1.Sum([]byte(rawData + sessionKey))
	if hex.EncodeToString(sum[:]) != wantSig {
		t.Fatalf("test vector: sha1 = %x, want %s", sum, wantSig)
	}
	for sig, want := range map[string]bool{
		wantSig:                  true,
		strings.ToUpper(wantSig): true,
		wantSig[:39]:             false,
		wantSig + "0":            false,
		"":                       false,
		strings.Repeat("0", 40):  false,
	} {
		if got := CheckSignature(rawData, sessionKey, sig); got != want {
			t.Errorf("CheckSignature(rawData, key, %q) = %v, want %v", sig, got, want)
		}
	}
	// The key is the base64 string, not its bytes.
	keyBytes, _ := base64.StdEncoding.DecodeString(sessionKey)
	bytesSum := sha1.Sum(append([]byte(rawData), keyBytes...))
	if CheckSignature(rawData, sessionKey, hex.EncodeToString(bytesSum[:])) {
		t.Error("CheckSignature accepts a signature over the key's bytes")
	}
	if CheckSignature(rawData+" ", sessionKey, wantSig) {
		t.Error("CheckSignature accepts altered rawData")
	}

	if got := SessionKeySignature(sessionKey); got != wantHMAC {
		t.Errorf("SessionKeySignature = %s, want %s", got, wantHMAC)
	}
	m := hmac.New(sha256.New, []byte(sessionKey))
	m.Write(nil)
	if got := SessionKeySignature(sessionKey); got != hex.EncodeToString(m.Sum(nil)) {
		t.Errorf("SessionKeySignature = %s, want HMAC-SHA256(key string, \"\")", got)
	}
	m = hmac.New(sha256.New, keyBytes)
	if SessionKeySignature(sessionKey) == hex.EncodeToString(m.Sum(nil)) {
		t.Error("SessionKeySignature keys the HMAC with the key's bytes, want the base64 string")
	}
}

func FuzzDecrypt(f *testing.F) {
	const appid = "wxtest"
	key := "HyVFkGl5F5OQWJZZaNzBBg=="
	keyBytes, _ := base64.StdEncoding.DecodeString(key)
	ivBytes := bytes.Repeat([]byte{7}, aes.BlockSize)
	iv := base64.StdEncoding.EncodeToString(ivBytes)
	data := cbcForTest(f, keyBytes, ivBytes, pkcs7ForTest(phoneJSON(appid, 1_700_000_000)))
	user := cbcForTest(f, keyBytes, ivBytes, pkcs7ForTest([]byte(`{"openId":"o1","nickName":"n","gender":1,"watermark":{"appid":"wxtest","timestamp":1}}`)))
	rawData := `{"nickName":"n"}`
	sum := sha1.Sum([]byte(rawData + key))
	f.Add(key, data, iv, rawData, hex.EncodeToString(sum[:]))
	f.Add(key, user, iv, rawData, hex.EncodeToString(sum[:]))
	f.Add(key, user, iv, "", "")
	f.Add(key, strings.ReplaceAll(data, "+", " "), iv, "", "")
	f.Add("garbage", "garbage", "garbage", "garbage", "garbage")
	f.Add("", "", "", "", "")
	f.Add(key, "AAAAAAAAAAAAAAAAAAAAAA==", iv, "", "")
	f.Add(key, "====", "====", "", "x")
	f.Fuzz(func(t *testing.T, key, data, iv, rawData, sig string) {
		check := func(what string, err error) {
			if err == nil {
				return
			}
			var e *authcore.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: error %v (%T) is not an *authcore.Error", what, err, err)
			}
			if e.Kind != authcore.KindInvalid && e.Kind != authcore.KindUnauthorized {
				t.Fatalf("%s: kind %s, want invalid_request or unauthorized", what, e.Kind.Code())
			}
			if e.Message == "" {
				t.Fatalf("%s: empty message", what)
			}
		}
		plain, err := Decrypt(key, data, iv)
		check("Decrypt", err)
		if err == nil && len(plain) >= len(data) {
			t.Fatalf("Decrypt returned %d bytes from %d base64 characters", len(plain), len(data))
		}
		p, err := DecryptPhone(appid, key, data, iv, time.Hour, time.Unix(1_700_000_000, 0))
		check("DecryptPhone", err)
		if err == nil && (p.Watermark.AppID != appid || p.PhoneNumber == "" && p.PurePhoneNumber == "") {
			t.Fatalf("DecryptPhone accepted %+v", p)
		}
		u, err := DecryptUserInfo(appid, key, data, iv, rawData, sig)
		check("DecryptUserInfo", err)
		if err == nil && u.Watermark.AppID != appid {
			t.Fatalf("DecryptUserInfo accepted %+v", u)
		}
		var pi PhoneInfo
		_ = json.Unmarshal([]byte(data), &pi)
	})
}
