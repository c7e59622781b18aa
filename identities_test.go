package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
)

// smsLogin logs in with a fresh sandbox SMS code to phone (E.164).
func smsLogin(t testing.TB, h *testHub, phone string) authcore.Session {
	t.Helper()
	mustStatus(t, "POST /v1/sms/code", sendCode(t, h.URL, phone), 202)
	r := call(t, client(""), "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": lastCode(t, h.URL, phone)})
	mustStatus(t, "POST /v1/sms/login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

// wxCode is a fresh sandbox wx.login code of user.
func wxCode(t testing.TB, h *testHub, user string) string {
	t.Helper()
	r := call(t, client(""), "POST", h.URL+"/sandbox/wechat/wx.login", "", map[string]string{"user": user})
	mustStatus(t, "sandbox wx.login", r, 200)
	var code struct{ Code string }
	r.decode(t, &code)
	return code.Code
}

// identities reads GET /v1/me/identities as "provider subject unionid?".
func identities(t testing.TB, h *testHub, token string) []string {
	t.Helper()
	r := call(t, client(""), "GET", h.URL+"/v1/me/identities", token, nil)
	mustStatus(t, "GET /v1/me/identities", r, 200)
	var body struct {
		Identities []struct {
			Provider string `json:"provider"`
			Subject  string `json:"subject"`
			UnionID  string `json:"unionid"`
			LinkedAt string `json:"linked_at"`
		} `json:"identities"`
	}
	r.decode(t, &body)
	var out []string
	for _, id := range body.Identities {
		if id.LinkedAt == "" {
			t.Errorf("identity %+v without linked_at", id)
		}
		out = append(out, strings.TrimSpace(id.Provider+" "+id.Subject))
	}
	return out
}

// TestLinkIdentities runs the linking story on a hub with the embedded
// store, on Redis and on Redis Cluster.
func TestLinkIdentities(t *testing.T) {
	onRedis := func(url string) map[string]string {
		return map[string]string{"LOGINHUB_REDIS_URL": url, "LOGINHUB_TICKET_KEYS": sharedKeys(),
			"LOGINHUB_DATA_KEY": sharedDataKey(), "LOGINHUB_SANDBOX": "on"}
	}
	t.Run("memory", func(t *testing.T) { testLinkIdentities(t, startHub(t, nil)) })
	t.Run("redis", func(t *testing.T) {
		testLinkIdentities(t, startHub(t, onRedis(redistest.Start(t, redistest.Options{}).URL)))
	})
	t.Run("cluster", func(t *testing.T) { testLinkIdentities(t, startHub(t, onRedis(redistest.StartCluster(t).URL))) })
}

func testLinkIdentities(t *testing.T, h *testHub) {
	c := client("")
	const number = "+8613800138000"
	a := smsLogin(t, h, number)
	if got := identities(t, h, a.AccessToken); len(got) != 1 || got[0] != "phone +86 138****8000" {
		t.Fatalf("identities of an SMS user: %q", got)
	}

	// A WeChat identity linked to the SMS user logs in as that user.
	r := call(t, c, "POST", h.URL+"/v1/me/identities/wechat", a.AccessToken, map[string]string{"code": wxCode(t, h, "lin")})
	mustStatus(t, "POST /v1/me/identities/wechat", r, 200)
	if got := identities(t, h, a.AccessToken); len(got) != 2 || got[0] != "phone +86 138****8000" || !strings.HasPrefix(got[1], "wechat o") {
		t.Fatalf("identities after linking WeChat: %q", got)
	}
	s := phoneLogin(t, h, "lin")
	if s.User.ID != a.User.ID || s.User.IsNew == nil || *s.User.IsNew {
		t.Fatalf("wx.login of the linked WeChat user: user %s (new %v), want %s", s.User.ID, s.User.IsNew, a.User.ID)
	}

	// Someone else's identity: 409, and nothing changes.
	b := phoneLogin(t, h, "kai")
	r = call(t, c, "POST", h.URL+"/v1/me/identities/wechat", b.AccessToken, map[string]string{"code": wxCode(t, h, "lin")})
	mustStatus(t, "linking another user's WeChat", r, 409)
	if !strings.Contains(string(r.Body), "belongs to another account") {
		t.Errorf("409 body %s does not say the identity is another account's", r.Body)
	}
	if got := identities(t, h, b.AccessToken); len(got) != 1 {
		t.Errorf("identities of the refused user: %q", got)
	}
	if got := identities(t, h, a.AccessToken); len(got) != 2 {
		t.Errorf("identities of the owner after a refused link: %q", got)
	}
	if s := phoneLogin(t, h, "lin"); s.User.ID != a.User.ID {
		t.Errorf("after a refused link, wx.login gives %s, want %s", s.User.ID, a.User.ID)
	}

	// The last way to log in cannot be unlinked.
	r = call(t, c, "DELETE", h.URL+"/v1/me/identities/wechat", b.AccessToken, nil)
	mustStatus(t, "unlinking the last identity", r, 409)
	r = call(t, c, "DELETE", h.URL+"/v1/me/identities/phone", b.AccessToken, nil)
	mustStatus(t, "unlinking an identity the user does not have", r, 404)

	// /v1/wx/phone links kai's number to kai.
	r = call(t, c, "POST", h.URL+"/sandbox/wechat/getPhoneNumber", "", map[string]string{"user": "kai"})
	mustStatus(t, "sandbox getPhoneNumber", r, 200)
	var button struct{ Code string }
	r.decode(t, &button)
	r = call(t, c, "POST", h.URL+"/v1/wx/phone", b.AccessToken, map[string]string{"code": button.Code})
	mustStatus(t, "POST /v1/wx/phone", r, 200)
	got := identities(t, h, b.AccessToken)
	if len(got) != 2 || !strings.HasPrefix(got[1], "phone +86 138****") {
		t.Fatalf("identities after /v1/wx/phone: %q", got)
	}
	r = call(t, c, "GET", h.URL+"/v1/me/data", b.AccessToken, nil)
	mustStatus(t, "GET /v1/me/data", r, 200)
	var data struct {
		Personal struct {
			Phone struct{ Number string } `json:"phone"`
		} `json:"personal_data"`
	}
	r.decode(t, &data)
	kaiNumber := "+86" + data.Personal.Phone.Number
	if len(kaiNumber) != 14 {
		t.Fatalf("kai's number %q", kaiNumber)
	}

	// The SMS user cannot bind kai's number: 409 naming it masked.
	r = call(t, c, "POST", h.URL+"/v1/sms/code", "", map[string]string{"phone": kaiNumber, "purpose": "bind"})
	mustStatus(t, "POST /v1/sms/code (bind)", r, 202)
	bind := lastCode(t, h.URL, kaiNumber)
	mustStatus(t, "a bind code used to log in", call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": kaiNumber, "code": bind}), 401)
	r = call(t, c, "POST", h.URL+"/v1/me/identities/phone", a.AccessToken, map[string]string{"phone": kaiNumber, "code": bind})
	mustStatus(t, "binding another user's number", r, 409)
	if masked := authcore.MaskE164(kaiNumber); !strings.Contains(string(r.Body), masked) || strings.Contains(string(r.Body), kaiNumber[3:]) {
		t.Errorf("409 body %s: want the number masked (%s), never in clear", r.Body, masked)
	}
	if got := identities(t, h, a.AccessToken); len(got) != 2 {
		t.Errorf("identities after a refused bind: %q", got)
	}

	// The WeChat user's own phone via /v1/wx/phone now belongs to kai: the
	// linked user "lin" (a) is refused, and nothing is stored.
	r = call(t, c, "POST", h.URL+"/sandbox/wechat/getPhoneNumber", "", map[string]string{"user": "kai"})
	r.decode(t, &button)
	r = call(t, c, "POST", h.URL+"/v1/wx/phone", s.AccessToken, map[string]string{"code": button.Code})
	mustStatus(t, "/v1/wx/phone of another user's number", r, 409)
	if masked := authcore.MaskE164(kaiNumber); !strings.Contains(string(r.Body), masked) || strings.Contains(string(r.Body), kaiNumber[3:]) {
		t.Errorf("409 body %s: want the number masked (%s), never in clear", r.Body, masked)
	}
	r = call(t, c, "GET", h.URL+"/v1/me/data", s.AccessToken, nil)
	mustStatus(t, "GET /v1/me/data", r, 200)
	if strings.Contains(string(r.Body), kaiNumber[3:]) {
		t.Errorf("a refused /v1/wx/phone stored the number: %s", r.Body)
	}

	// Binding a free number with a bind code, then unlinking.
	const free = "+8613800138001"
	r = call(t, c, "POST", h.URL+"/v1/sms/code", "", map[string]string{"phone": free, "purpose": "bind"})
	mustStatus(t, "POST /v1/sms/code (bind)", r, 202)
	r = call(t, c, "POST", h.URL+"/v1/me/identities/phone", b.AccessToken, map[string]string{"phone": free, "code": lastCode(t, h.URL, free)})
	mustStatus(t, "binding a free number", r, 200)
	if got := identities(t, h, b.AccessToken); len(got) != 3 {
		t.Errorf("identities after binding: %q", got)
	}
	r = call(t, c, "DELETE", h.URL+"/v1/me/identities/wechat", b.AccessToken, nil)
	mustStatus(t, "unlinking WeChat", r, 200)
	if got := identities(t, h, b.AccessToken); len(got) != 2 || !strings.HasPrefix(got[0], "phone") || !strings.HasPrefix(got[1], "phone") {
		t.Errorf("identities after unlinking WeChat: %q", got)
	}
	// kai's wx.login is a new user now.
	if s := phoneLogin(t, h, "kai"); s.User.ID == b.User.ID || s.User.IsNew == nil || !*s.User.IsNew {
		t.Errorf("wx.login of an unlinked WeChat user: %s (new %v), want a new user", s.User.ID, s.User.IsNew)
	}

	// Numbers never reach the log in clear.
	logs := h.logs.String()
	for _, n := range []string{number, kaiNumber, free} {
		if strings.Contains(logs, n[3:]) {
			t.Errorf("the log holds %s in clear", n)
		}
	}
}

// TestLinkBadInput: malformed requests are 400 (or 401/404), never 5xx.
func TestLinkBadInput(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	a := smsLogin(t, h, "+8613800138000")
	for _, tc := range []struct{ path, body string }{
		{"/v1/me/identities/wechat", ``}, {"/v1/me/identities/wechat", `{}`}, {"/v1/me/identities/wechat", `{"code":5}`},
		{"/v1/me/identities/wechat", `[]`}, {"/v1/me/identities/wechat", `{"code":"x","code":"y"}`},
		{"/v1/me/identities/phone", `{}`}, {"/v1/me/identities/phone", `{"phone":"123","code":"123456"}`},
		{"/v1/me/identities/phone", `{"phone":"13800138001","code":"12345"}`}, {"/v1/me/identities/phone", `{"phone":"13800138001","code":123456}`},
		{"/v1/me/identities/phone", `{"phone":"` + strings.Repeat("1", 100_000) + `","code":"123456"}`},
	} {
		r := callRaw(t, c, "POST", h.URL+tc.path, a.AccessToken, tc.body)
		if r.Status != 400 {
			t.Errorf("POST %s %.60s: %d %s, want 400", tc.path, tc.body, r.Status, r.Body)
		}
	}
	for _, p := range []string{"nope!", "a%20b", "oidc:", strings.Repeat("x", 100), "oidc:a:b"} {
		r := call(t, c, "DELETE", h.URL+"/v1/me/identities/"+p, a.AccessToken, nil)
		if r.Status != 400 && r.Status != 404 {
			t.Errorf("DELETE /v1/me/identities/%s: %d %s, want 400 or 404", p, r.Status, r.Body)
		}
	}
	mustStatus(t, "unlink of a provider the user lacks", call(t, c, "DELETE", h.URL+"/v1/me/identities/qq", a.AccessToken, nil), 404)
	mustStatus(t, "a wrong bind code", call(t, c, "POST", h.URL+"/v1/me/identities/phone", a.AccessToken, map[string]string{"phone": "+8613800138001", "code": "123456"}), 401)
	mustStatus(t, "no token", call(t, c, "GET", h.URL+"/v1/me/identities", "", nil), 401)
	mustStatus(t, "no token", call(t, c, "DELETE", h.URL+"/v1/me/identities/phone", "", nil), 401)
}

// callRaw sends body as it is (JSON or not).
func callRaw(t testing.TB, c *http.Client, method, url, bearer, body string) apiResponse {
	t.Helper()
	return call(t, c, method, url, bearer, json.RawMessage(body))
}
