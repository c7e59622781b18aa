package sms

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// TestTC3SignatureKnownAnswer checks the signature against the worked
// example of Tencent Cloud's API 3.0 documentation ("Signature v3",
// cloud.tencent.com/document/api/213/30654): CVM DescribeInstances,
// SecretKey Gu5t9xGARNpq86cd98joQYCN3EXAMPLE, timestamp 1551113065.
func TestTC3SignatureKnownAnswer(t *testing.T) {
	payload := `{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}`
	if got, want := sha256Hex([]byte(payload)), "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"; got != want {
		t.Errorf("payload hash %s, want %s", got, want)
	}
	sig, scope := tc3Signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", "cvm", "cvm.tencentcloudapi.com",
		"application/json; charset=utf-8", []byte(payload), time.Unix(1551113065, 0))
	if want := "2019-02-25/cvm/tc3_request"; scope != want {
		t.Errorf("scope %s, want %s", scope, want)
	}
	if want := "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"; sig != want {
		t.Errorf("signature %s, want %s", sig, want)
	}
}

// tencentFake is SMS API 3.0's SendSms as the tests need it: it checks the
// request's headers, body and TC3 signature with its own implementation of
// the documented steps, and answers with Tencent's shapes and codes (HTTP
// 200 always).
type tencentFake struct {
	t           *testing.T
	id, key     string
	appID       string
	status      func() (code, message string) // the number's SendStatus; nil: Ok
	requestFail func() (code, message string) // a request-level Error; nil: none
	hold        chan struct{}                 // if set, a request is recorded, then waits until it is closed or its client goes

	mu  sync.Mutex
	got []tencentRequest
}

func (f *tencentFake) requests() []tencentRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

func (f *tencentFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const requestID = "a0aabda6-cf91-4f3e-a81f-9198114a2279"
	fail := func(code, message string) {
		json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{
			"Error": map[string]string{"Code": code, "Message": message}, "RequestId": requestID}})
	}
	w.Header().Set("Content-Type", "application/json")
	body, _ := io.ReadAll(r.Body)
	var req tencentRequest
	if err := json.Unmarshal(body, &req); err != nil {
		fail("InvalidParameter", "body is not JSON")
		return
	}
	f.mu.Lock()
	f.got = append(f.got, req)
	f.mu.Unlock()
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-r.Context().Done():
		}
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" {
		f.t.Errorf("tencent fake: %s %s, want POST /", r.Method, r.URL.Path)
	}
	for k, want := range map[string]string{"X-TC-Action": "SendSms", "X-TC-Version": "2021-01-11", "X-TC-Region": "ap-guangzhou",
		"Content-Type": "application/json; charset=utf-8"} {
		if got := r.Header.Get(k); got != want {
			f.t.Errorf("tencent fake: %s: %q, want %q", k, got, want)
		}
	}
	ts, err := strconv.ParseInt(r.Header.Get("X-TC-Timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > 5*time.Minute {
		fail("AuthFailure.SignatureExpire", "签名过期。Timestamp 和服务器时间相差不得超过五分钟。")
		return
	}
	// Authorization: TC3-HMAC-SHA256 Credential=<id>/<date>/sms/tc3_request, SignedHeaders=content-type;host, Signature=<hex>
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "TC3-HMAC-SHA256 ")
	fields := map[string]string{}
	for _, part := range strings.Split(auth, ", ") {
		k, v, _ := strings.Cut(part, "=")
		fields[k] = v
	}
	cred := strings.Split(fields["Credential"], "/")
	date := time.Unix(ts, 0).UTC().Format("2006-01-02")
	if !ok || len(cred) != 4 || cred[1] != date || cred[2] != "sms" || cred[3] != "tc3_request" || fields["SignedHeaders"] != "content-type;host" {
		fail("AuthFailure.InvalidAuthorization", "Authorization 不符合规范。")
		return
	}
	if cred[0] != f.id {
		fail("AuthFailure.SecretIdNotFound", "密钥不存在。")
		return
	}
	// The documented steps, one by one.
	hash := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	mac := func(key []byte, s string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(s))
		return m.Sum(nil)
	}
	canonicalHeaders := "content-type:" + strings.ToLower(r.Header.Get("Content-Type")) + "\n" + "host:" + r.Host + "\n"
	canonicalRequest := strings.Join([]string{"POST", "/", "", canonicalHeaders, "content-type;host", hash(body)}, "\n")
	stringToSign := strings.Join([]string{"TC3-HMAC-SHA256", strconv.FormatInt(ts, 10), date + "/sms/tc3_request", hash([]byte(canonicalRequest))}, "\n")
	k := mac([]byte("TC3"+f.key), date)
	k = mac(k, "sms")
	k = mac(k, "tc3_request")
	if want := hex.EncodeToString(mac(k, stringToSign)); !hmac.Equal([]byte(fields["Signature"]), []byte(want)) {
		fail("AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct.")
		return
	}
	if req.SmsSdkAppID != f.appID {
		fail("FailedOperation.SmsSdkAppIdVerifyFail", "SdkAppId 校验失败。")
		return
	}
	if len(req.PhoneNumberSet) != 1 || len(req.TemplateParamSet) != 1 || req.SignName == "" || req.TemplateID == "" {
		fail("InvalidParameter", "参数错误。")
		return
	}
	if f.requestFail != nil {
		fail(f.requestFail())
		return
	}
	code, message := "Ok", "send success"
	if f.status != nil {
		code, message = f.status()
	}
	json.NewEncoder(w).Encode(map[string]any{"Response": map[string]any{
		"SendStatusSet": []map[string]any{{
			"SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": req.PhoneNumberSet[0], "Fee": 1,
			"SessionContext": "", "Code": code, "Message": message, "IsoCode": "CN",
		}},
		"RequestId": requestID,
	}})
}

func startTencent(t *testing.T, f *tencentFake, mutate ...func(*TencentConfig)) (*Tencent, *logBuffer) {
	t.Helper()
	f.t = t
	if f.id == "" {
		f.id, f.key, f.appID = "AKIDTestSecretId", "TestSecretKeyNeverLogged012345", "1400006666"
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	log, buf := newLogger()
	cfg := TencentConfig{BaseURL: srv.URL, SecretID: f.id, SecretKey: f.key, SdkAppID: f.appID,
		SignName: "腾讯云", TemplateID: "449739", Logger: log, Timeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	s, err := NewTencent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, buf
}

func TestTencentSends(t *testing.T) {
	f := &tencentFake{}
	s, logs := startTencent(t, f)
	if err := s.SendCode(context.Background(), testMessage); err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	got := f.requests()
	want := tencentRequest{PhoneNumberSet: []string{"+8613812345678"}, SmsSdkAppID: f.appID, SignName: "腾讯云",
		TemplateID: "449739", TemplateParamSet: []string{"904317"}}
	if len(got) != 1 || !slices.Equal(got[0].PhoneNumberSet, want.PhoneNumberSet) || !slices.Equal(got[0].TemplateParamSet, want.TemplateParamSet) ||
		got[0].SmsSdkAppID != want.SmsSdkAppID || got[0].SignName != want.SignName || got[0].TemplateID != want.TemplateID {
		t.Errorf("requests %+v, want one %+v", got, want)
	}
	if !strings.Contains(logs.String(), "5000:1045710669157053657849499619") {
		t.Errorf("the log does not name the SerialNo:\n%s", logs)
	}
	mustNotLeak(t, logs.String(), nil, f.key)
}

func TestTencentErrors(t *testing.T) {
	for _, tc := range []struct {
		code, message string
		request       bool // a request-level Error, not a number's status
		kind          authcore.Kind
		retry         time.Duration // -1: until midnight in China
		level         string
	}{
		{"LimitExceeded.PhoneNumberThirtySecondLimit", "单个手机号30秒内下发短信条数超过设定的上限", false, authcore.KindRateLimited, 30 * time.Second, "INFO"},
		{"LimitExceeded.PhoneNumberOneHourLimit", "单个手机号1小时内下发短信条数超过设定的上限", false, authcore.KindRateLimited, time.Hour, "INFO"},
		{"LimitExceeded.PhoneNumberDailyLimit", "单个手机号日下发短信条数超过设定的上限", false, authcore.KindRateLimited, -1, "INFO"},
		{"InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误", false, authcore.KindInvalid, 0, "INFO"},
		{"FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配", false, authcore.KindUpstreamUnavailable, 0, "ERROR"},
		{"FailedOperation.InsufficientBalanceInSmsPackage", "套餐包余量不足", true, authcore.KindUpstreamUnavailable, 0, "ERROR"},
		{"LimitExceeded.AppDailyLimit", "业务短信日下发条数超过设定的上限", false, authcore.KindUpstreamUnavailable, 0, "ERROR"},
		{"InternalError.Timeout", "请求下发短信超时", true, authcore.KindUpstreamUnavailable, 0, "WARN"},
		{"FailedOperation.SomethingNew", "a code this version does not know", false, authcore.KindUpstreamUnavailable, 0, "WARN"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := &tencentFake{}
			answer := func() (string, string) { return tc.code, tc.message }
			if tc.request {
				f.requestFail = answer
			} else {
				f.status = answer
			}
			s, logs := startTencent(t, f)
			err := s.SendCode(context.Background(), testMessage)
			checkRefusal(t, "Tencent", providerRefusal{kind: tc.kind, retry: tc.retry, level: tc.level, code: tc.code, message: tc.message},
				err, logs.String(), len(f.requests()), f.key)
		})
	}
}

func TestTencentMisconfigured(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*TencentConfig)
		code   string
	}{
		{"wrong key", func(c *TencentConfig) { c.SecretKey = "WrongKeyAlsoNeverLogged" }, "AuthFailure.SignatureFailure"},
		{"unknown id", func(c *TencentConfig) { c.SecretID = "AKIDUnknown" }, "AuthFailure.SecretIdNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &tencentFake{}
			s, logs := startTencent(t, f, tc.mutate)
			err := s.SendCode(context.Background(), testMessage)
			checkMisconfigured(t, err, logs.String(), tc.code, f.key, "WrongKeyAlsoNeverLogged")
		})
	}
}

func TestTencentTimeoutNotRetried(t *testing.T) {
	f := &tencentFake{hold: make(chan struct{})}
	s, logs := startTencent(t, f, func(c *TencentConfig) { c.Timeout = 100 * time.Millisecond })
	t.Cleanup(func() { close(f.hold) }) // before the server's Close, which waits for its handlers
	// A caller that gives up at once does not cut the send short: its
	// outcome is still awaited (and logged) within the sender's timeout.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.SendCode(ctx, testMessage)
	checkTimeoutNotRetried(t, err, logs.String(), len(f.requests()), f.key)
}

func TestTencentNotAnAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"Response":{"RequestId":"x"}}`)) // neither Error nor a status
	}))
	defer srv.Close()
	s, err := NewTencent(TencentConfig{BaseURL: srv.URL, SecretID: "i", SecretKey: "k", SdkAppID: "1", SignName: "s", TemplateID: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendCode(context.Background(), testMessage); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Errorf("an empty Response: %v, want upstream_unavailable", err)
	}
	if _, err := NewTencent(TencentConfig{SecretID: "i"}); err == nil || !strings.Contains(err.Error(), "SecretKey, SdkAppID, SignName, TemplateID") {
		t.Errorf("NewTencent without settings: %v, want them named", err)
	}
}
