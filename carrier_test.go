package main

import (
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/carrier/carriertest"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// carrierToken plays the carrier SDK on a phone through a sandbox (the
// hub's /sandbox/carrier or a fake's base URL).
func carrierToken(t testing.TB, base, carrierName, phone, fail string) string {
	t.Helper()
	r := call(t, client(""), "POST", base+"/token", "", map[string]string{"carrier": carrierName, "phone": phone, "fail": fail})
	mustStatus(t, "POST "+base+"/token", r, 200)
	var out struct{ Token string }
	r.decode(t, &out)
	return out.Token
}

func carrierLogin(t testing.TB, h *testHub, carrierName, token string) apiResponse {
	t.Helper()
	return call(t, client(""), "POST", h.URL+"/v1/carrier/login", "", map[string]string{"carrier": carrierName, "token": token})
}

// wantFallback checks a 503 that sends the client to SMS.
func wantFallback(t testing.TB, what string, r apiResponse) {
	t.Helper()
	var body struct{ Error, Message, Fallback string }
	r.decode(t, &body)
	if r.Status != 503 || body.Error != "upstream_unavailable" || body.Fallback != "sms" || body.Message == "" {
		t.Fatalf("%s: %d %s, want 503 upstream_unavailable with fallback sms", what, r.Status, r.Body)
	}
}

// TestCarrierLogin: on each route, each carrier's token logs its number
// in: a new number makes a user, a known one finds it (whichever carrier),
// and a number linked to a WeChat user finds that user; a reused or
// expired token is 401. No number or token reaches the log.
func TestCarrierLogin(t *testing.T) {
	for _, route := range []string{"direct", "aliyun"} {
		t.Run(route, func(t *testing.T) {
			h := startHub(t, map[string]string{"LOGINHUB_CARRIER_ROUTE": route, "LOGINHUB_LOG_LEVEL": "debug"})
			sandbox := h.URL + "/sandbox/carrier"
			c := client("")
			var tokens []string
			for i, carrierName := range []string{"cmcc", "cucc", "ctcc"} {
				phone := "+861380013800" + string(rune('1'+i))
				tok := carrierToken(t, sandbox, carrierName, phone, "")
				tokens = append(tokens, tok)
				r := carrierLogin(t, h, carrierName, tok)
				mustStatus(t, carrierName+": login", r, 200)
				if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
					t.Errorf("Cache-Control %q, want no-store", cc)
				}
				var first authcore.Session
				r.decode(t, &first)
				if first.User.IsNew == nil || !*first.User.IsNew || first.User.PhoneMasked != authcore.MaskE164(phone) {
					t.Errorf("%s: first login %+v, want a new user with %s", carrierName, first.User, authcore.MaskE164(phone))
				}
				// The same number through another carrier's token (a
				// number moved between carriers): the same user.
				other := []string{"cucc", "ctcc", "cmcc"}[i]
				r = carrierLogin(t, h, other, carrierToken(t, sandbox, other, phone, ""))
				mustStatus(t, carrierName+": second login", r, 200)
				var second authcore.Session
				r.decode(t, &second)
				if second.User.ID != first.User.ID || second.User.IsNew == nil || *second.User.IsNew {
					t.Errorf("%s: second login %+v, want %s, not new", carrierName, second.User, first.User.ID)
				}
				r = carrierLogin(t, h, carrierName, tok)
				if mustStatus(t, carrierName+": a reused token", r, 401); r.errorCode() != "unauthorized" {
					t.Errorf("a reused token: %s", r.Body)
				}
				r = carrierLogin(t, h, carrierName, carrierToken(t, sandbox, carrierName, phone, carriertest.FailExpired))
				mustStatus(t, carrierName+": an expired token", r, 401)

				r = call(t, c, "GET", h.URL+"/v1/me", first.AccessToken, nil)
				mustStatus(t, "/v1/me", r, 200)
				var me struct {
					Session struct {
						AMR      []string   `json:"amr"`
						AuthTime *time.Time `json:"auth_time"`
					}
				}
				r.decode(t, &me)
				if len(me.Session.AMR) != 1 || me.Session.AMR[0] != "carrier" || me.Session.AuthTime == nil {
					t.Errorf("/v1/me session %+v, want amr [carrier] and an auth_time", me.Session)
				}
			}

			// A WeChat user who linked a number: a carrier login of that
			// number is that user.
			alice := phoneLogin(t, h, "alice")
			const alicePhone = "+8613900139000"
			mustStatus(t, "bind code", call(t, c, "POST", h.URL+"/v1/sms/code", "", map[string]string{"phone": alicePhone, "purpose": "bind"}), 202)
			r := call(t, c, "POST", h.URL+"/v1/me/identities/phone", alice.AccessToken,
				map[string]string{"phone": alicePhone, "code": lastCode(t, h.URL, alicePhone)})
			mustStatus(t, "link alice's phone", r, 200)
			r = carrierLogin(t, h, "cmcc", carrierToken(t, sandbox, "cmcc", alicePhone, ""))
			mustStatus(t, "carrier login of alice's number", r, 200)
			var s authcore.Session
			r.decode(t, &s)
			if s.User.ID != alice.User.ID || s.User.IsNew == nil || *s.User.IsNew {
				t.Errorf("carrier login of alice's number: %+v, want alice %s", s.User, alice.User.ID)
			}

			logs := h.logs.String()
			if !strings.Contains(logs, `"msg":"carrier login"`) {
				t.Fatalf("no carrier login in the log")
			}
			for _, secret := range append(tokens, "13800138001", "13800138002", "13800138003", "13900139000") {
				if strings.Contains(logs, secret) {
					t.Errorf("the log holds %q", secret)
				}
			}
		})
	}
}

// TestCarrierFallback: a carrier that times out (the fake holds the
// request past the 2 s budget) or fails answers 503 with fallback sms
// within 2.5 s, and an SMS login of the number works next; five failures
// in a row open that carrier's breaker, after which its logins fail fast
// without a call while the others work; after the cool-down one probe
// goes through and its success closes the breaker. /metrics shows it all.
func TestCarrierFallback(t *testing.T) {
	const coolDown = 500 * time.Millisecond
	h := startHub(t, map[string]string{"LOGINHUB_CARRIER_BREAKER_COOLDOWN": coolDown.String(), "LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})
	internal := internalURL(t, h.logs)
	sandbox := h.URL + "/sandbox/carrier"
	const phone = "+8613800138000"

	start := time.Now()
	r := carrierLogin(t, h, "cmcc", carrierToken(t, sandbox, "cmcc", phone, carriertest.FailTimeout))
	elapsed := time.Since(start)
	wantFallback(t, "a carrier past the budget", r)
	if elapsed > 2500*time.Millisecond || elapsed < 1900*time.Millisecond {
		t.Errorf("the timeout's 503 came after %v, want the 2 s budget, within 2.5 s", elapsed)
	}

	// The client falls back to SMS.
	mustStatus(t, "SMS code", sendCode(t, h.URL, phone), 202)
	r = call(t, client(""), "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": lastCode(t, h.URL, phone)})
	mustStatus(t, "SMS login after the fallback", r, 200)

	for i := range 4 {
		start := time.Now()
		r := carrierLogin(t, h, "cmcc", carrierToken(t, sandbox, "cmcc", phone, carriertest.FailNetwork))
		wantFallback(t, "a network failure", r)
		if el := time.Since(start); el > 2500*time.Millisecond {
			t.Errorf("network failure %d: answered after %v", i+1, el)
		}
	}
	// Open: a good token fails at once, and is not sent.
	start = time.Now()
	r = carrierLogin(t, h, "cmcc", carrierToken(t, sandbox, "cmcc", phone, ""))
	if el := time.Since(start); el > 100*time.Millisecond {
		t.Errorf("with the breaker open the 503 came after %v, want at once", el)
	}
	wantFallback(t, "the breaker open", r)
	if r.Header.Get("Retry-After") == "" {
		t.Error("the breaker's 503 has no Retry-After")
	}
	// Another carrier is not affected.
	mustStatus(t, "ctcc while cmcc's breaker is open", carrierLogin(t, h, "ctcc", carrierToken(t, sandbox, "ctcc", phone, "")), 200)
	metrics := call(t, client(""), "GET", internal+"/metrics", "", nil).Body
	for _, want := range []string{
		`loginhub_carrier_calls_total{carrier="cmcc",op="number",outcome="timeout",route="aliyun"} 1`,
		`loginhub_carrier_calls_total{carrier="cmcc",op="number",outcome="failed",route="aliyun"} 4`,
		`loginhub_carrier_calls_total{carrier="cmcc",op="number",outcome="breaker_open",route="aliyun"} 1`,
		`loginhub_carrier_calls_total{carrier="ctcc",op="number",outcome="ok",route="aliyun"} 1`,
		`loginhub_carrier_breaker_open{carrier="cmcc"} 1`,
		`loginhub_carrier_breaker_open{carrier="ctcc"} 0`,
		`loginhub_carrier_call_seconds_count{carrier="cmcc",route="aliyun"} 5`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// The cool-down passes on the breaker's own clock: until then logins
	// fail fast; then one probe goes through, and its success closes the
	// breaker. Asked again and again, within a deadline.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(coolDown + 5*time.Second); ; <-tick.C {
		r = carrierLogin(t, h, "cmcc", carrierToken(t, sandbox, "cmcc", phone, ""))
		if r.Status == 200 {
			break
		}
		wantFallback(t, "a login while the breaker cools down", r)
		if time.Now().After(deadline) {
			t.Fatalf("no probe went through within %v of a %v cool-down", coolDown+5*time.Second, coolDown)
		}
	}
	metrics = call(t, client(""), "GET", internal+"/metrics", "", nil).Body
	if !strings.Contains(string(metrics), `loginhub_carrier_breaker_open{carrier="cmcc"} 0`) {
		t.Error("the breaker is still open after a passed probe")
	}
}

// TestCarrierBadSign: credentials the carrier does not accept are a
// configuration error in the log and a 503 with fallback sms, on each
// route; the secret is not logged.
func TestCarrierBadSign(t *testing.T) {
	fake := &carriertest.Server{}
	fakeURL := oauthsandbox.Start(t, fake)
	appID, _ := fake.CMCC()
	keyID, _ := fake.Aliyun()
	for _, tc := range []struct {
		route string
		env   map[string]string
	}{
		{"direct", map[string]string{"LOGINHUB_CMCC_APPID": appID, "LOGINHUB_CMCC_APPKEY": "not-the-appkey"}},
		{"aliyun", map[string]string{"LOGINHUB_ALIYUN_ACCESS_KEY_ID": keyID, "LOGINHUB_ALIYUN_ACCESS_KEY_SECRET": "not-the-secret"}},
	} {
		t.Run(tc.route, func(t *testing.T) {
			env := map[string]string{"LOGINHUB_CARRIER_ROUTE": tc.route,
				"LOGINHUB_CMCC_BASE_URL": fakeURL + "/cmcc", "LOGINHUB_DYPNS_BASE_URL": fakeURL + "/aliyun"}
			for k, v := range tc.env {
				env[k] = v
			}
			h := startHub(t, env)
			if r := call(t, client(""), "POST", h.URL+"/sandbox/carrier/token", "", map[string]string{"carrier": "cmcc", "phone": "13800138000"}); r.Status != 404 {
				t.Errorf("the sandbox serves carriers although they are configured: %d", r.Status)
			}
			r := carrierLogin(t, h, "cmcc", carrierToken(t, fakeURL, "cmcc", "+8613800138000", ""))
			wantFallback(t, "a bad sign", r)
			logs := h.logs.String()
			if !strings.Contains(logs, `"level":"ERROR","msg":"carrier: the carrier refused our configuration"`) {
				t.Errorf("no configuration error in the log:\n%s", logs)
			}
			if strings.Contains(logs, "not-the-") {
				t.Error("the log holds the secret")
			}
		})
	}
}

// TestCarrierVerify: the phone's own number matches, another does not,
// the answer never holds the number, and each user may ask only so often.
func TestCarrierVerify(t *testing.T) {
	h := startHub(t, nil)
	sandbox := h.URL + "/sandbox/carrier"
	c := client("")
	const own, other = "+8613800138000", "+8613900139000"
	r := carrierLogin(t, h, "cucc", carrierToken(t, sandbox, "cucc", own, ""))
	mustStatus(t, "login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	verify := func(bearer, phone string) apiResponse {
		return call(t, c, "POST", h.URL+"/v1/carrier/verify", bearer,
			map[string]string{"carrier": "cucc", "token": carrierToken(t, sandbox, "cucc", own, ""), "phone": phone})
	}
	mustStatus(t, "verify without a session", verify("", own), 401)
	for _, tc := range []struct {
		phone string
		match bool
	}{{own, true}, {"138 0013 8000", true}, {other, false}} {
		r := verify(s.AccessToken, tc.phone)
		mustStatus(t, "verify "+tc.phone, r, 200)
		var body map[string]any
		r.decode(t, &body)
		if len(body) != 1 || body["match"] != tc.match {
			t.Errorf("verify %s: %s, want only {\"match\":%v}", tc.phone, r.Body, tc.match)
		}
		if strings.Contains(string(r.Body), "138") || strings.Contains(string(r.Body), "139") {
			t.Errorf("verify %s: the answer holds the number: %s", tc.phone, r.Body)
		}
	}
	for i := 3; i < authcore.CarrierVerifyPerUser; i++ {
		mustStatus(t, "verify", verify(s.AccessToken, other), 200)
	}
	r = verify(s.AccessToken, own)
	mustStatus(t, "one verification over the limit", r, 429)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}

// TestCarrierDisabled: without credentials and with the sandbox off,
// carrier routes answer not_found and the sandbox has no carrier.
func TestCarrierDisabled(t *testing.T) {
	w := startWxHub(t, map[string]string{"LOGINHUB_SANDBOX": "off"})
	r := carrierLogin(t, w.testHub, "cmcc", "sometoken")
	if mustStatus(t, "carrier login, carriers off", r, 404); r.errorCode() != "not_found" {
		t.Errorf("carrier login, carriers off: %s", r.Body)
	}
	mustStatus(t, "the sandbox's carrier, carriers off", call(t, client(""), "POST", w.URL+"/sandbox/carrier/token", "", map[string]string{}), 404)
}

// TestCarrierAcrossNodes: with Redis, a token the sandbox gave through one
// node logs in through another, once.
func TestCarrierAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		tok := carrierToken(t, nodes[0].URL+"/sandbox/carrier", "ctcc", "+8613800138000", "")
		mustStatus(t, "login on node 2", carrierLogin(t, nodes[1].testHub, "ctcc", tok), 200)
		mustStatus(t, "the same token on node 1", carrierLogin(t, nodes[0].testHub, "ctcc", tok), 401)
	})
}
