package main

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// wxHub is a hub configured with "real" credentials against a WeChat fake
// the test owns, so the test can read what only WeChat and the phone know
// (session keys, phone numbers) and look for them where they must not be.
type wxHub struct {
	*testHub
	fake    *wechattest.Server
	fakeURL string
}

// startWxHub starts a hub on a fake WeChat; env adds settings.
func startWxHub(t *testing.T, env ...map[string]string) *wxHub {
	t.Helper()
	fake := &wechattest.Server{}
	fakeURL := wechattest.Start(t, fake)
	appid, secret := fake.App()
	settings := map[string]string{
		"LOGINHUB_WECHAT_APPID": appid, "LOGINHUB_WECHAT_SECRET": secret, "LOGINHUB_WECHAT_BASE_URL": fakeURL,
		"LOGINHUB_LOG_LEVEL": "debug",
	}
	for _, e := range env {
		maps.Copy(settings, e)
	}
	h := startHub(t, settings)
	return &wxHub{testHub: h, fake: fake, fakeURL: fakeURL}
}

// phone plays the mini-program: a wx.login code from the fake, then
// /v1/wx/login on the hub.
func (w *wxHub) login(t *testing.T, user string) authcore.Session {
	t.Helper()
	c := client("")
	var code struct{ Code string }
	call(t, c, "POST", w.fakeURL+"/wx.login", "", map[string]string{"user": user}).decode(t, &code)
	r := call(t, c, "POST", w.URL+"/v1/wx/login", "", map[string]string{"code": code.Code, "nickname": user})
	mustStatus(t, "/v1/wx/login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

type phoneButton struct {
	Code, EncryptedData, IV string
}

func (w *wxHub) phoneButton(t *testing.T, user string) phoneButton {
	t.Helper()
	var b phoneButton
	call(t, client(""), "POST", w.fakeURL+"/getPhoneNumber", "", map[string]string{"user": user}).decode(t, &b)
	return b
}

func TestPhoneNumberLogin(t *testing.T) {
	w := startWxHub(t)
	c := client("")
	s := w.login(t, "hana")
	number := w.fake.User("hana").PurePhoneNumber
	masked := number[:3] + "****" + number[7:]

	// The current API: the button's code.
	r := call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, map[string]string{"code": w.phoneButton(t, "hana").Code})
	mustStatus(t, "phone by code", r, 200)
	var res authcore.WxPhoneResult
	r.decode(t, &res)
	if res.PhoneMasked != masked || res.CountryCode != "86" || !res.Verified {
		t.Fatalf("phone by code: %+v, want %s", res, masked)
	}
	if strings.Contains(string(r.Body), number) {
		t.Fatal("the response shows the whole phone number")
	}

	// The legacy payload, decrypted with the server-side session_key.
	b := w.phoneButton(t, "hana")
	r = call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, map[string]string{"encrypted_data": b.EncryptedData, "iv": b.IV})
	mustStatus(t, "legacy phone", r, 200)
	r.decode(t, &res)
	if res.PhoneMasked != masked {
		t.Fatalf("legacy phone: %+v", res)
	}
	// '+' turned into a space by form encoding still works.
	r = call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, map[string]string{
		"encrypted_data": strings.ReplaceAll(b.EncryptedData, "+", " "), "iv": strings.ReplaceAll(b.IV, "+", " ")})
	mustStatus(t, "legacy phone with spaces for '+'", r, 200)

	// Every broken payload is a clear 4xx, never a 500.
	tampered := []byte(b.EncryptedData)
	tampered[len(tampered)/2] ^= 0x01
	for name, body := range map[string]map[string]string{
		"tampered ciphertext": {"encrypted_data": string(tampered), "iv": b.IV},
		"bad base64":          {"encrypted_data": "%%%not base64%%%", "iv": b.IV},
		"short iv":            {"encrypted_data": b.EncryptedData, "iv": "AAAAAAAAAAAAAAAAAAAA"},
		"nothing":             {},
		"both":                {"code": "x", "encrypted_data": b.EncryptedData, "iv": b.IV},
	} {
		r := call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, body)
		if r.Status != 400 {
			t.Errorf("%s: %d %s, want 400", name, r.Status, r.Body)
		}
	}
	mustStatus(t, "a used phone code", call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, map[string]string{"code": b.Code + "x"}), 401)
	mustStatus(t, "phone without a session", call(t, c, "POST", w.URL+"/v1/wx/phone", "", map[string]string{"code": "x"}), 401)

	// wx.login again on the phone but not on the hub: the payload is sealed
	// under a session_key the hub does not have. The error says what to do.
	r = call(t, c, "POST", w.URL+"/v1/wx/session/check", s.AccessToken, nil)
	mustStatus(t, "session check", r, 200)
	if !strings.Contains(string(r.Body), `"valid":true`) {
		t.Fatalf("session check before rotation: %s", r.Body)
	}
	call(t, c, "POST", w.fakeURL+"/wx.login", "", map[string]string{"user": "hana"})
	stale := w.phoneButton(t, "hana")
	r = call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, map[string]string{"encrypted_data": stale.EncryptedData, "iv": stale.IV})
	if r.Status != 400 || !strings.Contains(string(r.Body), "wx.login") {
		t.Fatalf("payload under a replaced session_key: %d %s, want 400 telling to call wx.login first", r.Status, r.Body)
	}
	r = call(t, c, "POST", w.URL+"/v1/wx/session/check", s.AccessToken, nil)
	if !strings.Contains(string(r.Body), `"valid":false`) {
		t.Fatalf("session check after rotation: %s", r.Body)
	}

	// Nothing secret in the logs.
	logs := w.logs.String()
	for name, secret := range map[string]string{
		"phone number": number, "session_key": w.fake.User("hana").SessionKey,
		"access token": s.AccessToken, "refresh token": s.RefreshToken,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the hub's log", name)
		}
	}
}

func TestUserInfo(t *testing.T) {
	w := startWxHub(t)
	c := client("")
	s := w.login(t, "ivan")
	var ui struct{ RawData, Signature, EncryptedData, IV string }
	call(t, c, "POST", w.fakeURL+"/getUserInfo", "", map[string]string{"user": "ivan"}).decode(t, &ui)
	body := map[string]string{"encrypted_data": ui.EncryptedData, "iv": ui.IV, "raw_data": ui.RawData, "signature": ui.Signature}
	r := call(t, c, "POST", w.URL+"/v1/wx/userinfo", s.AccessToken, body)
	mustStatus(t, "userinfo", r, 200)
	var info authcore.WeChatUserInfo
	r.decode(t, &info)
	if !strings.Contains(info.Nickname, "ivan") || info.OpenID != s.User.OpenID {
		t.Fatalf("userinfo: %+v", info)
	}
	body["signature"] = strings.Repeat("0", 40)
	mustStatus(t, "userinfo with a wrong signature", call(t, c, "POST", w.URL+"/v1/wx/userinfo", s.AccessToken, body), 401)
}

func TestMyDataExportAndErase(t *testing.T) {
	// The test plays a trusted proxy (the hub trusts loopback), whose
	// request ids the hub keeps.
	w := startWxHub(t, map[string]string{"LOGINHUB_TRUSTED_PROXIES": "127.0.0.1, ::1"})
	c := client("")
	s := w.login(t, "jun")
	// The proxy's request id is kept, echoed and written into the audit
	// trail; one that is not sane is replaced by a generated one.
	r := call(t, c, "POST", w.URL+"/v1/wx/phone", s.AccessToken, map[string]string{"code": w.phoneButton(t, "jun").Code}, "X-Request-Id", "phone-req-1")
	mustStatus(t, "phone", r, 200)
	if got := r.Header.Get("X-Request-Id"); got != "phone-req-1" {
		t.Errorf("phone: X-Request-Id %q, want the caller's phone-req-1", got)
	}

	r = call(t, c, "GET", w.URL+"/v1/me/data", s.AccessToken, nil, "X-Request-Id", "not sane!")
	mustStatus(t, "export", r, 200)
	exportID := r.Header.Get("X-Request-Id")
	if len(exportID) != 16 || strings.Trim(exportID, "0123456789abcdef") != "" {
		t.Errorf("export with an insane X-Request-Id: answered %q, want a generated 16-hex-digit id", exportID)
	}
	var export struct {
		User     authcore.SessionUser
		Personal map[string]json.RawMessage `json:"personal_data"`
		Audit    []authcore.AuditEntry
	}
	r.decode(t, &export)
	if !strings.Contains(string(export.Personal["phone"]), w.fake.User("jun").PurePhoneNumber) {
		t.Fatalf("the export does not give the user their own phone number: %s", r.Body)
	}
	actions := []string{}
	for _, e := range export.Audit {
		actions = append(actions, e.Action+":"+e.Field)
	}
	if len(actions) == 0 || actions[0] != "collect:phone" {
		t.Fatalf("audit trail %v, want it to start with collect:phone", actions)
	}
	if id := export.Audit[0].RequestID; id != "phone-req-1" {
		t.Errorf("the phone's audit entry has request id %q, want phone-req-1", id)
	}
	if e := export.Audit[len(export.Audit)-1]; e.Action != "export" || e.RequestID != exportID {
		t.Errorf("the last audit entry is %+v, want the export with request id %q", e, exportID)
	}

	mustStatus(t, "erase", call(t, c, "DELETE", w.URL+"/v1/me/data", s.AccessToken, nil), 204)
	mustStatus(t, "/v1/me after erasure", call(t, c, "GET", w.URL+"/v1/me", s.AccessToken, nil), 401)
	mustStatus(t, "refresh after erasure", call(t, c, "POST", w.URL+"/v1/session/refresh", "", map[string]string{"refresh_token": s.RefreshToken}), 401)
	again := w.login(t, "jun")
	if again.User.IsNew == nil || !*again.User.IsNew || again.User.ID == s.User.ID {
		t.Fatalf("login after erasure: %+v, want a new user", again.User)
	}
}

// idNumber completes a 17-digit base with its ISO 7064 MOD 11-2 check
// character, as on a mainland ID card.
func idNumber(base string) string {
	weights := []int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i, w := range weights {
		sum += int(base[i]-'0') * w
	}
	return base + string("10X98765432"[sum%11])
}

func (w *wxHub) playFace(t *testing.T, verifyID, outcome string) string {
	t.Helper()
	r := call(t, client(""), "POST", w.fakeURL+"/requestFacialVerify", "", map[string]string{"verify_id": verifyID, "outcome": outcome})
	mustStatus(t, "requestFacialVerify on the phone", r, 200)
	var v struct {
		VerifyResult string `json:"verify_result"`
	}
	r.decode(t, &v)
	return v.VerifyResult
}

func TestFaceVerificationStepUp(t *testing.T) {
	w := startWxHub(t)
	c := client("")
	s := w.login(t, "kai")
	const name = "张小凯"
	id := idNumber("11010519491231002")
	start := func() string {
		r := call(t, c, "POST", w.URL+"/v1/face/verify-id", s.AccessToken, map[string]string{"name": name, "id_number": id})
		mustStatus(t, "face verify-id", r, 200)
		var v struct {
			VerifyID  string `json:"verify_id"`
			ExpiresIn int    `json:"expires_in"`
		}
		r.decode(t, &v)
		if v.VerifyID == "" || v.ExpiresIn <= 0 {
			t.Fatalf("verify-id: %s", r.Body)
		}
		return v.VerifyID
	}
	result := func(body map[string]string) apiResponse {
		return call(t, c, "POST", w.URL+"/v1/face/result", s.AccessToken, body)
	}

	mustStatus(t, "a malformed ID number", call(t, c, "POST", w.URL+"/v1/face/verify-id", s.AccessToken,
		map[string]string{"name": name, "id_number": id[:17] + "0"}), 400)

	vid := start()
	mustStatus(t, "result before the phone finished", result(map[string]string{"verify_id": vid}), 409)
	w.playFace(t, vid, "pass")
	r := result(map[string]string{"verify_id": vid})
	mustStatus(t, "result after a pass", r, 200)
	var passed authcore.FacePassed
	r.decode(t, &passed)
	if !passed.Passed || passed.Session.FaceAt == nil || !strings.Contains(strings.Join(passed.Session.AMR, ","), "face") {
		t.Fatalf("passed result: %s", r.Body)
	}
	r = call(t, c, "GET", w.URL+"/v1/me", s.AccessToken, nil)
	if !strings.Contains(string(r.Body), `"face"`) || !strings.Contains(string(r.Body), "face_at") {
		t.Fatalf("/v1/me does not show the face step-up: %s", r.Body)
	}
	mustStatus(t, "the same verify_id again", result(map[string]string{"verify_id": vid}), 404)

	vid = start()
	w.playFace(t, vid, "mismatch")
	r = result(map[string]string{"verify_id": vid})
	if r.Status != 403 || !strings.Contains(string(r.Body), "did not match") {
		t.Fatalf("a face that did not match: %d %s, want 403 saying so", r.Status, r.Body)
	}

	// The legacy path: a verify_result from the phone, with the verify_id
	// of the check the hub started.
	vid = start()
	vr := w.playFace(t, vid, "pass")
	mustStatus(t, "a legacy result without its verify_id", result(map[string]string{"verify_result": vr}), 400)
	r = result(map[string]string{"verify_id": vid, "verify_result": vr})
	mustStatus(t, "legacy result", r, 200)
	var legacy struct {
		IdentifyTime time.Time `json:"identify_time"`
		Session      struct {
			FaceAt *time.Time `json:"face_at"`
		}
	}
	r.decode(t, &legacy)
	if legacy.IdentifyTime.IsZero() || legacy.Session.FaceAt == nil || !legacy.Session.FaceAt.Equal(legacy.IdentifyTime) {
		t.Fatalf("legacy result: %s, want identify_time reported and face_at set to it", r.Body)
	}

	// A result counts once: not for a later session of the same user, not
	// with a new verify_id, not with the same one again.
	s = w.login(t, "kai")
	mustStatus(t, "the same verify_result for a later session, with its old verify_id", result(map[string]string{"verify_id": vid, "verify_result": vr}), 404)
	vid = start()
	mustStatus(t, "the same verify_result with a new verify_id", result(map[string]string{"verify_id": vid, "verify_result": vr}), 403)

	// Another user cannot use this user's verification, nor spoil it.
	other := w.login(t, "lin")
	vid = start()
	w.playFace(t, vid, "pass")
	mustStatus(t, "another user's verify_id", call(t, c, "POST", w.URL+"/v1/face/result", other.AccessToken, map[string]string{"verify_id": vid}), 403)
	mustStatus(t, "the owner after another user's try", result(map[string]string{"verify_id": vid}), 200)

	logs := w.logs.String()
	if strings.Contains(logs, id) || strings.Contains(logs, name) {
		t.Error("the ID number or the name appears in the hub's log")
	}
}

func TestWeChatOutageFailsFast(t *testing.T) {
	w := startWxHub(t)
	c := client("")
	var code struct{ Code string }
	call(t, c, "POST", w.fakeURL+"/wx.login", "", map[string]string{"user": "mia"}).decode(t, &code)
	w.fake.SetDown(true)
	var before int
	for i := range 8 {
		r := call(t, c, "POST", w.URL+"/v1/wx/login", "", map[string]string{"code": code.Code})
		if r.Status != 503 || r.errorCode() != "upstream_unavailable" {
			t.Fatalf("login %d while WeChat is down: %d %s, want 503", i, r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "rid:") {
			t.Fatalf("upstream text leaked: %s", r.Body)
		}
		if i == 5 {
			before = w.fake.Requests("/sns/jscode2session")
			if r.Header.Get("Retry-After") == "" {
				t.Errorf("503 from an open breaker without Retry-After")
			}
		}
	}
	if after := w.fake.Requests("/sns/jscode2session"); after != before {
		t.Fatalf("the breaker is open but %d more requests reached WeChat", after-before)
	}
}

// TestUserInfoProfileCleaned: a profile from WeChat (here the sandbox,
// which takes any name) loses its control and bidi characters before it
// is stored and returned.
func TestUserInfoProfileCleaned(t *testing.T) {
	w := startWxHub(t)
	c := client("")
	const name = "\u202Eevil\u2066"
	s := w.login(t, name)
	var ui struct{ RawData, Signature, EncryptedData, IV string }
	call(t, c, "POST", w.fakeURL+"/getUserInfo", "", map[string]string{"user": name}).decode(t, &ui)
	body := map[string]string{"encrypted_data": ui.EncryptedData, "iv": ui.IV, "raw_data": ui.RawData, "signature": ui.Signature}
	r := call(t, c, "POST", w.URL+"/v1/wx/userinfo", s.AccessToken, body)
	mustStatus(t, "userinfo", r, 200)
	var info authcore.WeChatUserInfo
	r.decode(t, &info)
	if want := "evil (sandbox)"; info.Nickname != want {
		t.Errorf("userinfo nickname %q, want %q", info.Nickname, want)
	}
	var me struct{ User authcore.SessionUser }
	call(t, c, "GET", w.URL+"/v1/me", s.AccessToken, nil).decode(t, &me)
	if want := "evil (sandbox)"; me.User.Nickname != want {
		t.Errorf("stored nickname %q, want %q", me.User.Nickname, want)
	}
}
