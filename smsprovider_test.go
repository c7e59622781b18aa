package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

// smsProviderEnv is a complete provider configuration pointing at base.
func smsProviderEnv(provider, base string) map[string]string {
	env := map[string]string{
		"LOGINHUB_SMS_PROVIDER": provider, "LOGINHUB_SMS_BASE_URL": base,
		"LOGINHUB_SMS_ACCESS_KEY_ID": "KeyIdForTheHubTest", "LOGINHUB_SMS_ACCESS_KEY_SECRET": "HubTestSecretNeverLogged",
		"LOGINHUB_SMS_SIGN_NAME": "登录中心", "LOGINHUB_SMS_TEMPLATE": "SMS_154950909",
	}
	if provider == "tencent" {
		env["LOGINHUB_SMS_SDK_APP_ID"] = "1400006666"
		env["LOGINHUB_SMS_TEMPLATE"] = "449739"
	}
	return env
}

func TestSMSProviderConfig(t *testing.T) {
	full := smsProviderEnv("tencent", "")
	cases := map[string]struct {
		env     map[string]string
		setting string
	}{
		"unknown provider":      {map[string]string{"LOGINHUB_SMS_PROVIDER": "twilio"}, "LOGINHUB_SMS_PROVIDER"},
		"aliyun without key":    {map[string]string{"LOGINHUB_SMS_PROVIDER": "aliyun"}, "LOGINHUB_SMS_ACCESS_KEY_ID"},
		"tencent without app":   {without(full, "LOGINHUB_SMS_SDK_APP_ID"), "LOGINHUB_SMS_SDK_APP_ID"},
		"without secret":        {without(full, "LOGINHUB_SMS_ACCESS_KEY_SECRET"), "LOGINHUB_SMS_ACCESS_KEY_SECRET"},
		"without template":      {without(full, "LOGINHUB_SMS_TEMPLATE"), "LOGINHUB_SMS_TEMPLATE"},
		"without sign name":     {without(full, "LOGINHUB_SMS_SIGN_NAME"), "LOGINHUB_SMS_SIGN_NAME"},
		"settings, no provider": {without(full, "LOGINHUB_SMS_PROVIDER"), "LOGINHUB_SMS_ACCESS_KEY_ID"},
		"app id for aliyun":     {with(full, "LOGINHUB_SMS_PROVIDER", "aliyun"), "LOGINHUB_SMS_SDK_APP_ID"},
		"bad base URL":          {with(full, "LOGINHUB_SMS_BASE_URL", "dysmsapi.aliyuncs.com"), "LOGINHUB_SMS_BASE_URL"},
	}
	for name, tc := range cases {
		_, err := loadConfig(nil, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil || !strings.HasPrefix(err.Error(), tc.setting) {
			t.Errorf("%s: %v, want an error starting with %s", name, err, tc.setting)
		}
	}
	cfg, err := loadConfig(nil, func(k string) string { return full[k] }, io.Discard)
	if err != nil {
		t.Fatalf("a complete tencent configuration: %v", err)
	}
	if cfg.EmulatedSMS() || smsMode(cfg) != "tencent" {
		t.Errorf("with a provider: emulated %v, mode %q", cfg.EmulatedSMS(), smsMode(cfg))
	}

	// Usage text never shows a secret from the environment.
	var usage strings.Builder
	_, err = loadConfig([]string{"-h"}, func(k string) string { return full[k] }, &usage)
	if err == nil || strings.Contains(usage.String(), "HubTestSecretNeverLogged") || !strings.Contains(usage.String(), "sms-access-key-secret") {
		t.Errorf("-h: %v, usage shows the secret or lacks the flag:\n%s", err, usage.String())
	}
	cfg, err = loadConfig([]string{"--sms-access-key-secret=FromTheFlag"}, func(k string) string { return full[k] }, io.Discard)
	if err != nil || cfg.SMSAccessKeySecret != "FromTheFlag" {
		t.Errorf("the flag does not override the environment: %v %q", err, cfg.SMSAccessKeySecret)
	}
}

func without(env map[string]string, key string) map[string]string { return with(env, key, "") }

func with(env map[string]string, key, v string) map[string]string {
	out := map[string]string{}
	for k, val := range env {
		out[k] = val
	}
	out[key] = v
	return out
}

// providerFake stands in for Aliyun or Tencent at the hub's level: it keeps
// the codes sent and answers with the provider's success or the error
// code given. (authcore/sms's tests check the requests and signatures.)
type providerFake struct {
	mu    sync.Mutex
	codes []string
	fail  string // an error code to answer with, or ""
}

func (f *providerFake) last() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.codes) == 0 {
		return "", 0
	}
	return f.codes[len(f.codes)-1], len(f.codes)
}

func (f *providerFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Method == http.MethodGet { // aliyun
		var p struct{ Code string }
		json.Unmarshal([]byte(r.URL.Query().Get("TemplateParam")), &p)
		f.codes = append(f.codes, p.Code)
		code := "OK"
		if f.fail != "" {
			code = f.fail
		}
		json.NewEncoder(w).Encode(map[string]string{"Code": code, "Message": code, "BizId": "1^0", "RequestId": "r"})
		return
	}
	var req struct{ TemplateParamSet []string }
	json.NewDecoder(r.Body).Decode(&req)
	f.codes = append(f.codes, req.TemplateParamSet...)
	code := "Ok"
	if f.fail != "" {
		code = f.fail
	}
	json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{
		"SendStatusSet": []map[string]string{{"SerialNo": "5000:1", "Code": code, "Message": code}}, "RequestId": "r"}})
}

// TestSMSProviderEndToEnd: with a provider, a code goes to it (not to the
// sandbox), logs in, and never shows in the logs; the provider's own
// limit is a 429 and its failure a 503.
func TestSMSProviderEndToEnd(t *testing.T) {
	for _, tc := range []struct{ provider, limit, failure string }{
		{"aliyun", "isv.BUSINESS_LIMIT_CONTROL", "isv.AMOUNT_NOT_ENOUGH"},
		{"tencent", "LimitExceeded.PhoneNumberThirtySecondLimit", "FailedOperation.InsufficientBalanceInSmsPackage"},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			fake := &providerFake{}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			h := startHub(t, smsProviderEnv(tc.provider, srv.URL))
			mustStatus(t, "POST /v1/sms/code", sendCode(t, h.URL, "13800138000"), 202)
			code, n := fake.last()
			if n != 1 || len(code) != 6 {
				t.Fatalf("the provider got %d codes (last %q), want one", n, code)
			}
			mustStatus(t, "GET /sandbox/sms", call(t, client(""), "GET", h.URL+"/sandbox/sms?phone=%2B8613800138000", "", nil), 404)
			r := call(t, client(""), "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": "13800138000", "code": code})
			mustStatus(t, "POST /v1/sms/login", r, 200)
			var s authcore.Session
			r.decode(t, &s)
			if s.User.IsNew == nil || !*s.User.IsNew {
				t.Errorf("first login %+v, want a new user", s.User)
			}

			fake.mu.Lock()
			fake.fail = tc.limit
			fake.mu.Unlock()
			r = sendCode(t, h.URL, "13800138001")
			mustStatus(t, "the provider's limit", r, 429)
			if sec, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || sec < 1 {
				t.Errorf("Retry-After %q, want seconds", r.Header.Get("Retry-After"))
			}
			fake.mu.Lock()
			fake.fail = tc.failure
			fake.mu.Unlock()
			r = sendCode(t, h.URL, "13800138002")
			mustStatus(t, "the provider's failure", r, 503)
			if strings.Contains(string(r.Body), tc.failure) {
				t.Errorf("the answer shows the provider's code: %s", r.Body)
			}
			if _, n := fake.last(); n != 3 {
				t.Errorf("the provider got %d requests, want 3 (none repeated)", n)
			}
			logs := withoutTimings(h.logs.String())
			if !strings.Contains(logs, `"sms":"`+tc.provider+`"`) {
				t.Errorf("the start-up log does not name the provider:\n%s", logs)
			}
			if !strings.Contains(logs, tc.failure) {
				t.Errorf("the logs do not have the provider's failure %s", tc.failure)
			}
			for _, leak := range []string{code, "HubTestSecretNeverLogged", "13800138000"} {
				if strings.Contains(logs, leak) {
					t.Errorf("the logs hold %q:\n%s", leak, logs)
				}
			}
		})
	}
}
