package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/geoip/geoiptest"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// twoProvinces is a GeoIP database in which the loopback networks
// 127.1.0.0/16 and 127.2.0.0/16 are in two provinces, so that clients
// bound to 127.1.0.1 and 127.2.0.1 log in from two places.
func twoProvinces(t *testing.T) string {
	return geoiptest.WriteMMDB(t, map[string]mmdbtype.Map{
		"127.1.0.0/16": geoiptest.City("CN", "China", "Guangdong", "Shenzhen"),
		"127.2.0.0/16": geoiptest.City("CN", "China", "Zhejiang", "Hangzhou"),
	})
}

type stepUpBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	StepUp  struct {
		ID          string   `json:"id"`
		Methods     []string `json:"methods"`
		PhoneMasked string   `json:"phone_masked"`
		Region      string   `json:"region"`
		ExpiresIn   int      `json:"expires_in"`
	} `json:"step_up"`
}

// TestRiskEndToEnd runs the risk story on the embedded store and on Redis:
// a user made in Guangdong who logs in from Zhejiang on a new device is
// stepped up, an SMS code to their own phone completes the login, and that
// place and device pass from then on; a WeChat login from a third place
// is stepped up too; decisions are in /metrics.
func TestRiskEndToEnd(t *testing.T) {
	db := twoProvinces(t)
	env := func(extra ...string) map[string]string {
		m := map[string]string{"LOGINHUB_GEOIP_DB": db, "LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	t.Run("memory", func(t *testing.T) { testRisk(t, startHub(t, env())) })
	t.Run("redis", func(t *testing.T) {
		testRisk(t, startHub(t, env("LOGINHUB_REDIS_URL", redistest.Start(t, redistest.Options{}).URL,
			"LOGINHUB_TICKET_KEYS", sharedKeys(), "LOGINHUB_DATA_KEY", sharedDataKey(), "LOGINHUB_SANDBOX", "on")))
	})
}

func testRisk(t *testing.T, h *testHub) {
	const devA, devB, devC = "device-A-0123456789abcdef", "device-B-0123456789abcdef", "device-C-0123456789abcdef"
	const pw = "correct horse battery"
	inGuangdong, inZhejiang, elsewhere := client("127.1.0.1"), client("127.2.0.1"), client("127.3.0.1")
	wxLogin := func(c *http.Client, device string) apiResponse {
		return call(t, c, "POST", h.URL+"/v1/wx/login", "", map[string]string{"code": wxCode(t, h, "riko"), "device_id": device})
	}
	pwdLogin := func(c *http.Client, device string) apiResponse {
		return call(t, c, "POST", h.URL+"/v1/password/login", "", map[string]string{"login": "riko", "password": pw, "device_id": device})
	}

	// riko logs in with WeChat in Guangdong, links the phone from WeChat's
	// phone button and sets a username and a password.
	r := wxLogin(inGuangdong, devA)
	mustStatus(t, "first wx.login", r, 200)
	var first authcore.Session
	r.decode(t, &first)
	number := passwordWithWeChatPhone(t, h.URL, first.AccessToken, "riko", pw)
	phone := authcore.MaskE164(number)

	// From Zhejiang on a new device: stepped up, no session.
	r = pwdLogin(inZhejiang, devB)
	mustStatus(t, "password login from Zhejiang on a new device", r, 401)
	var su stepUpBody
	r.decode(t, &su)
	if su.Error != "step_up_required" || su.Message == "" || !strings.HasPrefix(su.StepUp.ID, "su_") ||
		!slices.Equal(su.StepUp.Methods, []string{"sms"}) || su.StepUp.PhoneMasked != phone ||
		su.StepUp.Region != "CN/Zhejiang/Hangzhou" || su.StepUp.ExpiresIn != 300 || strings.Contains(string(r.Body), "access_token") {
		t.Fatalf("stepped-up login: %s", r.Body)
	}
	// The code goes to riko's phone, whatever number the request names.
	r = call(t, inZhejiang, "POST", h.URL+"/v1/sms/code", "", map[string]string{"purpose": "step_up", "step_up_id": su.StepUp.ID, "phone": "+8613900139000"})
	mustStatus(t, "POST /v1/sms/code (step_up)", r, 202)
	if got := strings.TrimSpace(string(r.Body)); got != accepted {
		t.Errorf("step-up code sent: %s, want %s", got, accepted)
	}
	msgs := smsMessages(t, h.URL, number)
	if len(msgs) != 1 || msgs[0].Purpose != "step_up" {
		t.Fatalf("riko's messages: %+v, want one step_up code", msgs)
	}
	if len(smsMessages(t, h.URL, "+8613900139000")) != 0 {
		t.Fatal("a step-up code went to the number the request named")
	}
	mustStatus(t, "a wrong step-up code", call(t, inZhejiang, "POST", h.URL+"/v1/step-up", "", map[string]string{"id": su.StepUp.ID, "code": wrongDigits(msgs[0].Code)}), 401)
	r = call(t, inZhejiang, "POST", h.URL+"/v1/step-up", "", map[string]string{"id": su.StepUp.ID, "code": msgs[0].Code})
	mustStatus(t, "POST /v1/step-up", r, 200)
	var done authcore.Session
	r.decode(t, &done)
	if done.User.ID != first.User.ID || done.AccessToken == "" {
		t.Fatalf("step-up session %+v, want riko's", done.User)
	}
	mustStatus(t, "the step-up again", call(t, inZhejiang, "POST", h.URL+"/v1/step-up", "", map[string]string{"id": su.StepUp.ID, "code": msgs[0].Code}), 401)

	// That place and device are known now.
	mustStatus(t, "password login from Zhejiang on the same device", pwdLogin(inZhejiang, devB), 200)
	// A WeChat login from a third place on a third device is stepped up too.
	r = wxLogin(elsewhere, devC)
	mustStatus(t, "wx.login from a third place on a new device", r, 401)
	if r.errorCode() != "step_up_required" {
		t.Fatalf("wx.login from a third place: %s", r.Body)
	}

	r = call(t, inZhejiang, "GET", h.URL+"/v1/me/logins", done.AccessToken, nil)
	mustStatus(t, "GET /v1/me/logins", r, 200)
	var logins loginsList
	r.decode(t, &logins)
	var outcomes []string
	for _, l := range logins.Logins {
		outcomes = append(outcomes, l.Method+" "+l.Outcome+" "+l.Region)
	}
	want := []string{"wx step_up 127.3.0.0/16", "pwd ok CN/Zhejiang/Hangzhou", "pwd ok CN/Zhejiang/Hangzhou",
		"pwd step_up CN/Zhejiang/Hangzhou", "wx ok CN/Guangdong/Shenzhen"}
	if !slices.Equal(outcomes, want) {
		t.Errorf("login history %q, want %q", outcomes, want)
	}

	metrics := call(t, client(""), "GET", internalURL(t, h.logs)+"/metrics", "", nil)
	for _, series := range []string{
		`loginhub_risk_decisions_total{decision="pass",method="wx",reasons="first_login"} 1`,
		`loginhub_risk_decisions_total{decision="step_up",method="pwd",reasons="new_device+new_region"} 1`,
		`loginhub_risk_decisions_total{decision="pass",method="pwd",reasons="known_device+known_region"} 1`,
		`loginhub_risk_decisions_total{decision="step_up",method="wx",reasons="new_device+new_region"} 1`,
	} {
		if !strings.Contains(string(metrics.Body), series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if logs := withoutTimings(h.logs.String()); strings.Contains(logs, number[3:]) || strings.Contains(logs, msgs[0].Code) {
		t.Errorf("the log holds riko's number or the step-up code")
	}
	if !strings.Contains(h.logs.String(), `"reasons":"new_device,new_region"`) {
		t.Errorf("the log lacks the step-up's reasons")
	}
}

// passwordWithWeChatPhone links the sandbox user's phone number to the
// session's user through WeChat's phone button (no SMS is sent, so the
// number's resend window stays free) and sets the user's username and
// password. It returns the number (E.164).
func passwordWithWeChatPhone(t *testing.T, base, token, username, password string) string {
	t.Helper()
	c := client("")
	r := call(t, c, "POST", base+"/sandbox/wechat/getPhoneNumber", "", map[string]string{"user": username})
	mustStatus(t, "sandbox getPhoneNumber", r, 200)
	var button struct{ Code string }
	r.decode(t, &button)
	mustStatus(t, "POST /v1/wx/phone", call(t, c, "POST", base+"/v1/wx/phone", token, map[string]string{"code": button.Code}), 200)
	mustStatus(t, "PUT /v1/me/username", call(t, c, "PUT", base+"/v1/me/username", token, map[string]string{"username": username}), 204)
	mustStatus(t, "PUT /v1/me/password", call(t, c, "PUT", base+"/v1/me/password", token, map[string]string{"password": password}), 204)
	r = call(t, c, "GET", base+"/v1/me/data", token, nil)
	mustStatus(t, "GET /v1/me/data", r, 200)
	var data struct {
		Personal struct {
			Phone struct{ Number string } `json:"phone"`
		} `json:"personal_data"`
	}
	r.decode(t, &data)
	number := "+86" + data.Personal.Phone.Number
	if len(number) != 14 {
		t.Fatalf("%s's number %q", username, number)
	}
	return number
}

// TestStepUpAcrossNodes: a login held on one node is completed through
// the other (the challenge is sealed with the shared data key, the code
// kept in Redis), once.
func TestStepUpAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		const pw = "correct horse battery"
		var code struct{ Code string }
		call(t, client(""), "POST", nodes[0].URL+"/sandbox/wechat/wx.login", "", map[string]string{"user": "sora"}).decode(t, &code)
		r := call(t, client("127.1.0.1"), "POST", nodes[0].URL+"/v1/wx/login", "", map[string]string{"code": code.Code, "device_id": "device-A-0123456789abcdef"})
		mustStatus(t, "wx.login on node 1", r, 200)
		var s authcore.Session
		r.decode(t, &s)
		number := passwordWithWeChatPhone(t, nodes[0].URL, s.AccessToken, "sora", pw)

		// Another /16 is another region without a GeoIP database.
		r = call(t, client("127.2.0.1"), "POST", nodes[1].URL+"/v1/password/login", "", map[string]string{"login": "sora", "password": pw, "device_id": "device-B-0123456789abcdef"})
		mustStatus(t, "password login on node 2 from another network", r, 401)
		var su stepUpBody
		r.decode(t, &su)
		r = call(t, client("127.2.0.1"), "POST", nodes[0].URL+"/v1/sms/code", "", map[string]string{"purpose": "step_up", "step_up_id": su.StepUp.ID})
		mustStatus(t, "step-up code through node 1", r, 202)
		body := map[string]string{"id": su.StepUp.ID, "code": lastCode(t, nodes[1].URL, number)}
		r = call(t, client("127.2.0.1"), "POST", nodes[1].URL+"/v1/step-up", "", body)
		mustStatus(t, "POST /v1/step-up on node 2", r, 200)
		var done authcore.Session
		r.decode(t, &done)
		if done.User.ID != s.User.ID {
			t.Fatalf("step-up session of %s, want %s", done.User.ID, s.User.ID)
		}
		mustStatus(t, "the same step-up on node 1", call(t, client("127.2.0.1"), "POST", nodes[0].URL+"/v1/step-up", "", body), 401)
	})
}

func wrongDigits(code string) string {
	if code == "123456" {
		return "654321"
	}
	return "123456"
}

// TestRiskOff: with LOGINHUB_RISK=off the same login from a new province
// on a new device is not stepped up.
func TestRiskOff(t *testing.T) {
	h := startHub(t, map[string]string{"LOGINHUB_GEOIP_DB": twoProvinces(t), "LOGINHUB_RISK": "off"})
	const pw = "correct horse battery"
	s := smsLogin(t, h, "+8613800138123")
	mustStatus(t, "PUT /v1/me/password", putPassword(t, h.URL, s.AccessToken, map[string]string{"password": pw}), 204)
	r := call(t, client("127.2.0.1"), "POST", h.URL+"/v1/password/login", "", map[string]string{
		"login": "+8613800138123", "password": pw, "device_id": "device-Z-0123456789abcdef"})
	mustStatus(t, "password login from Zhejiang with LOGINHUB_RISK=off", r, 200)
	if strings.Contains(h.logs.String(), "risk decision") {
		t.Error("risk decisions logged with LOGINHUB_RISK=off")
	}
}

// TestStepUpBadInput: the step-up routes answer 400 to malformed bodies
// and 401 to challenges that are not the hub's; never a 5xx.
func TestStepUpBadInput(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	for _, body := range []string{
		`{}`, `{"id":"su_x"}`, `{"id":123,"code":"123456"}`, `{"id":"su_x","code":123456}`, `{"id":"su_x","code":"12"}`,
		`{"id":"x","code":"123456"}`, `{"id":"su_` + strings.Repeat("a", 2000) + `","code":"123456"}`, `[`,
	} {
		r := callRaw(t, c, "POST", h.URL+"/v1/step-up", "", body)
		if r.Status != 400 || r.errorCode() != "invalid_request" {
			t.Errorf("POST /v1/step-up %.40s: %d %s, want 400 invalid_request", body, r.Status, r.Body)
		}
	}
	for _, body := range []string{
		`{"purpose":"step_up"}`, `{"purpose":"step_up","step_up_id":7}`, `{"purpose":"step_up","step_up_id":"nope"}`,
		`{"purpose":"login","phone":"+8613800138000","step_up_id":"su_x"}`,
	} {
		r := callRaw(t, c, "POST", h.URL+"/v1/sms/code", "", body)
		if r.Status != 400 {
			t.Errorf("POST /v1/sms/code %s: %d %s, want 400", body, r.Status, r.Body)
		}
	}
	for _, id := range []string{"su_d1.AAAA", "su_k9.bm90IGEgY2hhbGxlbmdl"} {
		r := call(t, c, "POST", h.URL+"/v1/step-up", "", map[string]string{"id": id, "code": "123456"})
		mustStatus(t, "a step-up id the hub never made", r, 401)
		r = call(t, c, "POST", h.URL+"/v1/sms/code", "", map[string]string{"purpose": "step_up", "step_up_id": id})
		mustStatus(t, "a code for a step-up id the hub never made", r, 401)
	}
}
