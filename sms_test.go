package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// smsMessages reads the sandbox's messages to phone (E.164).
func smsMessages(t testing.TB, base, phone string) []struct{ Code, Purpose, SentAt string } {
	t.Helper()
	r := call(t, client(""), "GET", base+"/sandbox/sms?phone="+url.QueryEscape(phone), "", nil)
	mustStatus(t, "GET /sandbox/sms", r, 200)
	var body struct {
		Messages []struct {
			Code    string `json:"code"`
			Purpose string `json:"purpose"`
			SentAt  string `json:"sent_at"`
		} `json:"messages"`
	}
	r.decode(t, &body)
	out := make([]struct{ Code, Purpose, SentAt string }, len(body.Messages))
	for i, m := range body.Messages {
		out[i] = struct{ Code, Purpose, SentAt string }{m.Code, m.Purpose, m.SentAt}
	}
	return out
}

// lastCode is the newest code the sandbox holds for phone.
func lastCode(t testing.TB, base, phone string) string {
	t.Helper()
	msgs := smsMessages(t, base, phone)
	if len(msgs) == 0 {
		t.Fatalf("no SMS to %s in the sandbox", phone)
	}
	return msgs[len(msgs)-1].Code
}

func sendCode(t testing.TB, base, phone string) apiResponse {
	t.Helper()
	return call(t, client(""), "POST", base+"/v1/sms/code", "", map[string]string{"phone": phone, "purpose": "login"})
}

const accepted = `{"expires_in":300,"resend_after":60}`

func TestSMSLoginEndToEnd(t *testing.T) {
	h := startHub(t, map[string]string{"LOGINHUB_LOG_LEVEL": "debug"})
	c := client("")
	const phone = "+8613800138000"

	r := sendCode(t, h.URL, "138 0013 8000")
	mustStatus(t, "POST /v1/sms/code", r, 202)
	if got := strings.TrimSpace(string(r.Body)); got != accepted {
		t.Errorf("POST /v1/sms/code: %s, want %s", got, accepted)
	}
	msgs := smsMessages(t, h.URL, "+86 138 0013 8000")
	if len(msgs) != 1 || msgs[0].Purpose != "login" || len(msgs[0].Code) != 6 || msgs[0].SentAt == "" {
		t.Fatalf("sandbox messages %+v, want one login code", msgs)
	}
	code := msgs[0].Code

	// A resend within 60 s is refused, with Retry-After.
	r = sendCode(t, h.URL, phone)
	mustStatus(t, "a resend within 60 s", r, 429)
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
		t.Errorf("Retry-After %q, want 1-60 seconds", r.Header.Get("Retry-After"))
	}

	// An unknown number gets the very answer a known one got.
	r = sendCode(t, h.URL, "+8613800138009")
	mustStatus(t, "POST /v1/sms/code (another number)", r, 202)
	if got := strings.TrimSpace(string(r.Body)); got != accepted {
		t.Errorf("another number: %s, want %s", got, accepted)
	}

	r = call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": code, "device_id": "dev-0123456789abcdef"})
	mustStatus(t, "POST /v1/sms/login", r, 200)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	var s authcore.Session
	r.decode(t, &s)
	if s.User.IsNew == nil || !*s.User.IsNew || s.User.PhoneMasked != "+86 138****8000" || s.TokenType != "Bearer" || s.ExpiresIn != 1800 {
		t.Errorf("session %+v, want a new user's with phone_masked +86 138****8000", s)
	}
	r = call(t, c, "GET", h.URL+"/v1/me", s.AccessToken, nil)
	mustStatus(t, "GET /v1/me", r, 200)
	var me struct{ User authcore.SessionUser }
	r.decode(t, &me)
	if me.User.ID != s.User.ID {
		t.Errorf("/v1/me user %q, want %q", me.User.ID, s.User.ID)
	}
	r = call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": code})
	mustStatus(t, "a used code", r, 401)

	// Five wrong tries void a code.
	const other = "+8613800138001"
	mustStatus(t, "send", sendCode(t, h.URL, other), 202)
	right := lastCode(t, h.URL, other)
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for i := range 5 {
		r = call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": other, "code": wrong})
		mustStatus(t, "wrong try "+strconv.Itoa(i+1), r, 401)
	}
	r = call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": other, "code": right})
	mustStatus(t, "the right code after 5 wrong tries", r, 401)

	// No code, and no whole number, ever reaches the log.
	logs := withoutTimings(h.logs.String())
	if !strings.Contains(logs, "sms code sent") {
		t.Fatalf("no send in the log:\n%s", logs)
	}
	for _, secret := range []string{code, right, "13800138000", "13800138001"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestSMSBadInput: malformed requests are 400, never 5xx, and send nothing.
func TestSMSBadInput(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	long := strings.Repeat("1", 100_000)
	codeBodies := []string{
		``, `null`, `[]`, `"x"`, `{}`, `{"phone":13800138000,"purpose":"login"}`,
		`{"phone":"13800138000","purpose":1}`, `{"phone":"13800138000","purpose":"login","step_up_id":5}`,
		`{"phone":"13800138000"}`, `{"phone":"13800138000","purpose":"signup"}`, `{"phone":"13800138000","purpose":"LOGIN"}`,
		`{"phone":"13800138000","purpose":"bind","step_up_id":"abc"}`, `{"phone":"13800138000","purpose":"step_up","step_up_id":"abc"}`,
		`{"phone":"13800138000","purpose":"login","step_up_id":"abc"}`,
		`{"phone":"12345","purpose":"login"}`, `{"phone":"+86 1380013800","purpose":"login"}`, `{"phone":"23800138000","purpose":"login"}`,
		`{"phone":"+8613800138000x","purpose":"login"}`, `{"phone":"` + long + `","purpose":"login"}`,
		`{"phone":"13800138000","Phone":"13800138001","purpose":"login"}`, `{"phone":"13800138000","phone":"13800138001","purpose":"login"}`,
		`{"phone":"13800138000","purpose":"login"} {}`, `{"phone":"\u0000","purpose":"login"}`,
		`{"phone":"13800138000","purpose":"` + long + `"}`,
	}
	for _, b := range codeBodies {
		r, err := tryRaw(c, h.URL+"/v1/sms/code", b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 400 || r.errorCode() != "invalid_request" {
			t.Errorf("POST /v1/sms/code %.80s: %d %s, want 400 invalid_request", b, r.Status, r.Body)
		}
	}
	loginBodies := []string{
		``, `{}`, `{"phone":"13800138000"}`, `{"phone":"13800138000","code":123456}`, `{"phone":"13800138000","code":"12345"}`,
		`{"phone":"13800138000","code":"1234567"}`, `{"phone":"13800138000","code":"12345x"}`, `{"phone":"bad","code":"123456"}`,
		`{"phone":"13800138000","code":"123456","device_id":"short"}`, `{"phone":"13800138000","code":"123456","device_id":7}`,
		`{"phone":"13800138000","code":"123456","device_id":"` + long + `"}`, `{"phone":"13800138000","code":"` + long + `"}`,
		`{"phone":"13800138000","code":"123456","Code":"654321"}`,
	}
	for _, b := range loginBodies {
		r, err := tryRaw(c, h.URL+"/v1/sms/login", b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 400 || r.errorCode() != "invalid_request" {
			t.Errorf("POST /v1/sms/login %.80s: %d %s, want 400 invalid_request", b, r.Status, r.Body)
		}
	}
	for _, q := range []string{"", "?phone=", "?phone=12345", "?phone=" + long[:200]} {
		r := call(t, c, "GET", h.URL+"/sandbox/sms"+q, "", nil)
		mustStatus(t, "GET /sandbox/sms"+q[:min(len(q), 20)], r, 400)
	}
	if msgs := smsMessages(t, h.URL, "+8613800138000"); len(msgs) != 0 {
		t.Errorf("bad requests sent %d messages", len(msgs))
	}
	// A well-formed code for a number that was never sent one: 401.
	r := call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": "13800138000", "code": "123456"})
	mustStatus(t, "a code never sent", r, 401)
}

// tryRaw posts body as it is, JSON or not.
func tryRaw(c *http.Client, u, body string) (apiResponse, error) {
	resp, err := c.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}, err
}

// TestSMSDisabled: with the sandbox off and no SMS provider, SMS does not
// exist; a provider this version does not have stops the start.
func TestSMSDisabled(t *testing.T) {
	fake := &wechattest.Server{}
	fakeURL := wechattest.Start(t, fake)
	appid, secret := fake.App()
	h := startHub(t, map[string]string{
		"LOGINHUB_SANDBOX": "off", "LOGINHUB_WECHAT_APPID": appid, "LOGINHUB_WECHAT_SECRET": secret, "LOGINHUB_WECHAT_BASE_URL": fakeURL,
	})
	c := client("")
	mustStatus(t, "POST /v1/sms/code", call(t, c, "POST", h.URL+"/v1/sms/code", "", map[string]string{"phone": "13800138000", "purpose": "login"}), 404)
	mustStatus(t, "POST /v1/sms/login", call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": "13800138000", "code": "123456"}), 404)
	mustStatus(t, "GET /sandbox/sms", call(t, c, "GET", h.URL+"/sandbox/sms?phone=%2B8613800138000", "", nil), 404)
	if logs := h.logs.String(); !strings.Contains(logs, `"sms":"off"`) {
		t.Errorf("the start-up log does not say SMS is off:\n%s", logs)
	}

	_, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LOGINHUB_SMS_PROVIDER": "twilio"}[k]
	}, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "LOGINHUB_SMS_PROVIDER") {
		t.Errorf("LOGINHUB_SMS_PROVIDER=twilio: %v, want an error naming it", err)
	}
}

// TestSMSAcrossNodes: a code sent through one node is shown by another's
// sandbox and works there, and the per-number limit counts on every node.
func TestSMSAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		a, bn := nodes[0], nodes[1]
		const phone = "+8613800138000"
		mustStatus(t, "send on node 1", sendCode(t, a.URL, phone), 202)
		mustStatus(t, "resend on node 2", sendCode(t, bn.URL, phone), 429)
		code := lastCode(t, bn.URL, phone)
		c := client("")
		r := call(t, c, "POST", bn.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": code})
		mustStatus(t, "login on node 2", r, 200)
		var first authcore.Session
		r.decode(t, &first)
		if first.User.IsNew == nil || !*first.User.IsNew {
			t.Errorf("first login %+v, want a new user", first.User)
		}

		// Let the resend window pass (the limiter's counter, see
		// redisstore's key layout), then log in again: the same user.
		rc, err := redisstore.Connect(b.url)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if err := rc.Del(context.Background(), "lh:rate:sms:resend:"+phone).Err(); err != nil {
			t.Fatal(err)
		}
		r = sendCode(t, bn.URL, phone)
		mustStatus(t, "send to a known number on node 2", r, 202)
		if got := strings.TrimSpace(string(r.Body)); got != accepted {
			t.Errorf("send to a known number: %s, want %s", got, accepted)
		}
		if msgs := smsMessages(t, a.URL, phone); len(msgs) != 2 || msgs[1].Code == code {
			t.Fatalf("node 1's sandbox shows %+v, want both codes, oldest first", msgs)
		}
		code = lastCode(t, a.URL, phone)
		r = call(t, c, "POST", a.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": code})
		mustStatus(t, "second login on node 1", r, 200)
		var second authcore.Session
		r.decode(t, &second)
		if second.User.ID != first.User.ID || second.User.IsNew == nil || *second.User.IsNew {
			t.Errorf("second login %+v, want %s, not new", second.User, first.User.ID)
		}
	})
}
