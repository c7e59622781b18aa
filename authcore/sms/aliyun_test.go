package sms

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// aliyunFake is Dysmsapi's SendSms as the tests need it: it checks the
// request's shape and signature with its own implementation of the
// documented algorithm, and answers with Aliyun's shapes, status codes and
// error codes.
type aliyunFake struct {
	t             *testing.T
	keyID, secret string
	// answer, if set, is the business answer to a well-signed request:
	// an Aliyun Code and Message (HTTP 200).
	answer func() (code, message string)
	hold   chan struct{} // if set, a request is recorded, then waits until it is closed or its client goes

	mu     sync.Mutex
	got    []url.Values
	nonces map[string]bool
}

func (f *aliyunFake) requests() []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// fakeEncode is the documentation's specialUrlEncode: URL-encode (UTF-8),
// then + → %20, * → %2A, %7E → ~.
func fakeEncode(s string) string {
	s = url.QueryEscape(s)
	return strings.NewReplacer("+", "%20", "*", "%2A", "%7E", "~").Replace(s)
}

func (f *aliyunFake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Query()
	f.mu.Lock()
	f.got = append(f.got, p)
	f.mu.Unlock()
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-r.Context().Done():
		}
		return
	}
	reply := func(status int, code, message string) {
		w.Header().Set("Content-Type", "application/json;charset=utf-8")
		w.WriteHeader(status)
		body := map[string]string{"RequestId": "F655A8D5-B967-440B-8683-DAD6FF8DE990", "Code": code, "Message": message}
		if code == "OK" {
			body["BizId"] = "900619746936498440^0"
		} else if status != http.StatusOK {
			body["HostId"] = "dysmsapi.aliyuncs.com"
			body["Recommend"] = "https://next.api.aliyun.com/troubleshoot?q=" + code + "&product=Dysmsapi"
		}
		json.NewEncoder(w).Encode(body)
	}
	if r.Method != http.MethodGet || r.URL.Path != "/" {
		f.t.Errorf("aliyun fake: %s %s, want GET /", r.Method, r.URL.Path)
		reply(http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
		return
	}
	for k, want := range map[string]string{
		"Action": "SendSms", "Version": "2017-05-25", "Format": "JSON",
		"SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0",
	} {
		if got := p.Get(k); got != want {
			f.t.Errorf("aliyun fake: %s=%q, want %q", k, got, want)
		}
	}
	for _, k := range []string{"PhoneNumbers", "SignName", "TemplateCode", "TemplateParam", "SignatureNonce", "Timestamp", "Signature", "AccessKeyId"} {
		if len(p[k]) != 1 || p.Get(k) == "" {
			reply(http.StatusBadRequest, "MissingParameter", "The input parameter \""+k+"\" that is mandatory for processing this request is not supplied.")
			return
		}
	}
	if p.Get("AccessKeyId") != f.keyID {
		reply(http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
		return
	}
	// The documented steps: drop Signature, sort, encode each name and
	// value, join, then "GET&%2F&" + encode(that), HMAC-SHA1 with
	// secret + "&", base64.
	var names []string
	for k := range p {
		if k != "Signature" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	pairs := make([]string, len(names))
	for i, k := range names {
		pairs[i] = fakeEncode(k) + "=" + fakeEncode(p.Get(k))
	}
	toSign := "GET&" + fakeEncode("/") + "&" + fakeEncode(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(f.secret+"&"))
	mac.Write([]byte(toSign))
	if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(p.Get("Signature")), []byte(want)) {
		// Aliyun's real message shows its string to sign, query and all.
		reply(http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation. server string to sign is:"+toSign)
		return
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	if err != nil || time.Since(ts).Abs() > 15*time.Minute {
		reply(http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
		return
	}
	f.mu.Lock()
	used := f.nonces[p.Get("SignatureNonce")]
	if f.nonces == nil {
		f.nonces = map[string]bool{}
	}
	f.nonces[p.Get("SignatureNonce")] = true
	f.mu.Unlock()
	if used {
		reply(http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.")
		return
	}
	var param map[string]string
	if err := json.Unmarshal([]byte(p.Get("TemplateParam")), &param); err != nil || len(param) != 1 || len(param["code"]) != 6 {
		reply(http.StatusOK, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
		return
	}
	if f.answer != nil {
		code, message := f.answer()
		reply(http.StatusOK, code, message)
		return
	}
	reply(http.StatusOK, "OK", "OK")
}

func startAliyun(t *testing.T, f *aliyunFake, mutate ...func(*AliyunConfig)) (*Aliyun, *logBuffer) {
	t.Helper()
	f.t = t
	if f.keyID == "" {
		f.keyID, f.secret = "LTAI5tTestKeyId", "TestSecretNeverLogged0123456789"
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	log, buf := newLogger()
	cfg := AliyunConfig{BaseURL: srv.URL, AccessKeyID: f.keyID, AccessKeySecret: f.secret,
		SignName: "阿里云短信测试", TemplateCode: "SMS_154950909", Logger: log, Timeout: 2 * time.Second}
	for _, m := range mutate {
		m(&cfg)
	}
	a, err := NewAliyun(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a, buf
}

func TestAliyunSends(t *testing.T) {
	f := &aliyunFake{}
	a, logs := startAliyun(t, f)
	if err := a.SendCode(context.Background(), testMessage); err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	got := f.requests()
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1", len(got))
	}
	p := got[0]
	for k, want := range map[string]string{
		"PhoneNumbers": "13812345678", "SignName": "阿里云短信测试", "TemplateCode": "SMS_154950909",
		"TemplateParam": `{"code":"904317"}`, "AccessKeyId": f.keyID,
	} {
		if p.Get(k) != want {
			t.Errorf("%s=%q, want %q", k, p.Get(k), want)
		}
	}
	if !strings.Contains(logs.String(), "900619746936498440^0") {
		t.Errorf("the log does not name the BizId:\n%s", logs)
	}
	mustNotLeak(t, logs.String(), nil, f.secret)

	// Another number abroad goes as country code and number.
	m := testMessage
	m.Phone = "+85291234567"
	if err := a.SendCode(context.Background(), m); err != nil {
		t.Fatalf("SendCode abroad: %v", err)
	}
	if got := f.requests()[1].Get("PhoneNumbers"); got != "85291234567" {
		t.Errorf("PhoneNumbers=%q, want 85291234567", got)
	}
	if n1, n2 := f.requests()[0].Get("SignatureNonce"), f.requests()[1].Get("SignatureNonce"); n1 == n2 {
		t.Errorf("the same SignatureNonce %q twice", n1)
	}
}

func TestAliyunErrors(t *testing.T) {
	for _, tc := range []struct {
		code, message string
		kind          authcore.Kind
		retry         time.Duration // -1: until midnight in China
		level         string
	}{
		{"isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1", authcore.KindRateLimited, time.Minute, "INFO"},
		{"isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5", authcore.KindRateLimited, time.Hour, "INFO"},
		{"isv.BUSINESS_LIMIT_CONTROL", "触发天级流控Permits:10", authcore.KindRateLimited, -1, "INFO"},
		{"isv.MOBILE_NUMBER_ILLEGAL", "非法手机号", authcore.KindInvalid, 0, "INFO"},
		{"isv.AMOUNT_NOT_ENOUGH", "账户余额不足", authcore.KindUpstreamUnavailable, 0, "ERROR"},
		{"isv.SMS_TEMPLATE_ILLEGAL", "模板不合法(不存在或被拉黑)", authcore.KindUpstreamUnavailable, 0, "ERROR"},
		{"isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR", authcore.KindUpstreamUnavailable, 0, "WARN"},
		{"isv.SOMETHING_NEW", "a code this version does not know", authcore.KindUpstreamUnavailable, 0, "WARN"},
	} {
		t.Run(tc.code+" "+tc.message, func(t *testing.T) {
			f := &aliyunFake{answer: func() (string, string) { return tc.code, tc.message }}
			a, logs := startAliyun(t, f)
			err := a.SendCode(context.Background(), testMessage)
			checkRefusal(t, "Aliyun", providerRefusal{kind: tc.kind, retry: tc.retry, level: tc.level, code: tc.code, message: tc.message},
				err, logs.String(), len(f.requests()), f.secret)
		})
	}
}

// TestAliyunMisconfigured: a wrong secret or key id is a 503 logged as a
// configuration error, and nothing leaks even though Aliyun's message
// echoes the string to sign.
func TestAliyunMisconfigured(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*AliyunConfig)
		code   string
	}{
		{"wrong secret", func(c *AliyunConfig) { c.AccessKeySecret = "WrongSecretAlsoNeverLogged" }, "SignatureDoesNotMatch"},
		{"unknown key", func(c *AliyunConfig) { c.AccessKeyID = "LTAI5tUnknownKeyId" }, "InvalidAccessKeyId.NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &aliyunFake{}
			a, logs := startAliyun(t, f, tc.mutate)
			err := a.SendCode(context.Background(), testMessage)
			checkMisconfigured(t, err, logs.String(), tc.code, f.secret, "WrongSecretAlsoNeverLogged")
		})
	}
}

// TestAliyunTimeoutNotRetried: a provider that does not answer in time
// gives a 503 after one request: it may have sent the message.
func TestAliyunTimeoutNotRetried(t *testing.T) {
	f := &aliyunFake{hold: make(chan struct{})}
	a, logs := startAliyun(t, f, func(c *AliyunConfig) { c.Timeout = 100 * time.Millisecond })
	t.Cleanup(func() { close(f.hold) }) // before the server's Close, which waits for its handlers
	err := a.SendCode(context.Background(), testMessage)
	checkTimeoutNotRetried(t, err, logs.String(), len(f.requests()), f.secret, "Signature=")
}

// TestAliyunUnreachable: a transport error names no query (it holds the
// code and the signature), and a non-JSON answer is a 503.
func TestAliyunUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	log, logs := newLogger()
	a, err := NewAliyun(AliyunConfig{BaseURL: base, AccessKeyID: "id", AccessKeySecret: "SecretForUnreachable",
		SignName: "s", TemplateCode: "SMS_1", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	err = a.SendCode(context.Background(), testMessage)
	if authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Fatalf("SendCode: %v, want upstream_unavailable", err)
	}
	mustNotLeak(t, logs.String(), err, "SecretForUnreachable", "Signature=", "TemplateParam")

	gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>502 Bad Gateway</html>", http.StatusBadGateway)
	}))
	defer gateway.Close()
	a, _ = NewAliyun(AliyunConfig{BaseURL: gateway.URL, AccessKeyID: "id", AccessKeySecret: "x", SignName: "s", TemplateCode: "SMS_1"})
	if err := a.SendCode(context.Background(), testMessage); authcore.KindOf(err) != authcore.KindUpstreamUnavailable {
		t.Errorf("a 502 page: %v, want upstream_unavailable", err)
	}
}

func TestNewAliyunRequires(t *testing.T) {
	_, err := NewAliyun(AliyunConfig{AccessKeyID: "id"})
	if err == nil || !strings.Contains(err.Error(), "AccessKeySecret, SignName, TemplateCode") {
		t.Errorf("NewAliyun without settings: %v, want them named", err)
	}
	_, err = NewAliyun(AliyunConfig{BaseURL: "ftp://x", AccessKeyID: "i", AccessKeySecret: "s", SignName: "n", TemplateCode: "t"})
	if err == nil {
		t.Error("NewAliyun accepted an ftp base URL")
	}
}
