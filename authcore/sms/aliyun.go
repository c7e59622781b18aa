package sms

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/aliyunrpc"
)

// AliyunBaseURL is the Dysmsapi endpoint.
const AliyunBaseURL = "https://dysmsapi.aliyuncs.com"

// AliyunConfig configures an Aliyun sender.
type AliyunConfig struct {
	// BaseURL is the API endpoint; "" means AliyunBaseURL. Tests point it
	// at a fake.
	BaseURL string
	// AccessKeyID and AccessKeySecret are the RAM user's AccessKey, which
	// needs permission for dysms:SendSms. Required.
	AccessKeyID     string
	AccessKeySecret string
	// SignName is the approved signature (签名) shown as 【SignName】.
	// Required.
	SignName string
	// TemplateCode is the approved verification-code template
	// ("SMS_123456789"), whose one variable is ${code}. Required.
	TemplateCode string
	// HTTPClient sends the requests; nil means a client of its own whose
	// Timeout is Timeout.
	HTTPClient *http.Client
	// Logger receives every refusal and failure, with Aliyun's Code,
	// Message and RequestId but never the code or the full number. Nil
	// discards them.
	Logger *slog.Logger
	// Timeout bounds one send; zero means DefaultTimeout.
	Timeout time.Duration
}

// Aliyun sends codes with Aliyun's Dysmsapi SendSms (RPC style, signature
// version 1.0 with HMAC-SHA1, authcore/aliyunrpc). It is safe for concurrent use.
type Aliyun struct {
	sender
	keyID, secret, signName, template string
	nonce                             func() (string, error)
}

var _ authcore.SMSSender = (*Aliyun)(nil)

// NewAliyun returns an Aliyun sender, or an error naming what cfg lacks.
func NewAliyun(cfg AliyunConfig) (*Aliyun, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"AccessKeyID", cfg.AccessKeyID}, {"AccessKeySecret", cfg.AccessKeySecret},
		{"SignName", cfg.SignName}, {"TemplateCode", cfg.TemplateCode},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("sms aliyun: %s required", strings.Join(missing, ", "))
	}
	s, err := newSender("aliyun", cfg.BaseURL, AliyunBaseURL, cfg.HTTPClient, cfg.Logger, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	return &Aliyun{sender: s, keyID: cfg.AccessKeyID, secret: cfg.AccessKeySecret,
		signName: cfg.SignName, template: cfg.TemplateCode, nonce: aliyunrpc.Nonce}, nil
}

// aliyunAnswer is SendSms's answer, and the shape of every error of the
// RPC gateway (which adds HostId and Recommend).
type aliyunAnswer struct {
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	BizID     string `json:"BizId"`
	RequestID string `json:"RequestId"`
}

// aliyunCodes maps Aliyun's error codes (SendSms's and the RPC
// gateway's) to what loginhub answers. A code not listed is a 503.
var aliyunCodes = map[string]verdict{
	// Aliyun's frequency control per number (by default 1 a minute, 5 an
	// hour, 10 a natural day): the Message says which, see aliyunLimit.
	"isv.BUSINESS_LIMIT_CONTROL": limitedFor(time.Minute),
	"isv.DAY_LIMIT_CONTROL":      limitedToday,
	"isv.MOBILE_NUMBER_ILLEGAL":  badNumber,
	"isv.DENY_IP_RANGE":          badNumber, // the number's country is not allowed

	"isv.AMOUNT_NOT_ENOUGH":           misconfig,
	"isv.OUT_OF_SERVICE":              misconfig,
	"isv.SMS_TEMPLATE_ILLEGAL":        misconfig,
	"isv.SMS_SIGNATURE_ILLEGAL":       misconfig,
	"isv.SMS_SIGNATURE_SCENE_ILLEGAL": misconfig,
	"isv.TEMPLATE_MISSING_PARAMETERS": misconfig,
	"isv.INVALID_PARAMETERS":          misconfig,
	"isv.INVALID_JSON_PARAM":          misconfig,
	"isv.BLACK_KEY_CONTROL_LIMIT":     misconfig,
	"isv.PARAM_LENGTH_LIMIT":          misconfig,
	"isv.ACCOUNT_NOT_EXISTS":          misconfig,
	"isv.ACCOUNT_ABNORMAL":            misconfig,
	"isv.PRODUCT_UN_SUBSCRIPT":        misconfig,
	"isv.PRODUCT_UNSUBSCRIBE":         misconfig,
	"isp.RAM_PERMISSION_DENY":         misconfig,
	"SignatureDoesNotMatch":           misconfig,
	"IncompleteSignature":             misconfig,
	"InvalidAccessKeyId.NotFound":     misconfig,
	"InvalidAccessKeyId.Inactive":     misconfig,
	"Forbidden.RAM":                   misconfig,
	"InvalidTimeStamp.Expired":        misconfig, // this machine's clock is off

	"isp.SYSTEM_ERROR":   unavailable,
	"ServiceUnavailable": unavailable,
	"Throttling":         unavailable, // the API's own rate, not a number's
}

// aliyunLimit reads which of Aliyun's per-number windows a
// isv.BUSINESS_LIMIT_CONTROL hit: its Message says 分钟级 (a minute),
// 小时级 (an hour) or 天级 (the natural day).
func aliyunLimit(message string) verdict {
	switch {
	case strings.Contains(message, "天级") || strings.Contains(message, "日级"):
		return limitedToday
	case strings.Contains(message, "小时级"):
		return limitedFor(time.Hour)
	}
	return limitedFor(time.Minute)
}

// SendCode implements authcore.SMSSender: one SendSms request, never
// repeated. Errors: KindRateLimited (Aliyun's own limit for the number),
// KindInvalid (Aliyun refuses the number), KindUpstreamUnavailable
// (anything else, a timeout included: the message may still arrive).
func (a *Aliyun) SendCode(ctx context.Context, m authcore.SMSMessage) error {
	nonce, err := a.nonce()
	if err != nil {
		return a.failed(ctx, m, err)
	}
	param, err := json.Marshal(map[string]string{"code": m.Code})
	if err != nil {
		return a.failed(ctx, m, err)
	}
	params := map[string]string{
		"AccessKeyId":      a.keyID,
		"Action":           "SendSms",
		"Format":           "JSON",
		"PhoneNumbers":     aliyunNumber(m.Phone),
		"RegionId":         "cn-hangzhou",
		"SignName":         a.signName,
		"SignatureMethod":  "HMAC-SHA1",
		"SignatureNonce":   nonce,
		"SignatureVersion": "1.0",
		"TemplateCode":     a.template,
		"TemplateParam":    string(param),
		"Timestamp":        a.now().UTC().Format(aliyunrpc.TimestampFormat),
		"Version":          "2017-05-25",
	}
	target := a.base + "/?" + aliyunrpc.SignedQuery(http.MethodGet, params, a.secret)
	status, body, err := a.exchange(ctx, func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	})
	if err != nil {
		return a.failed(ctx, m, err)
	}
	var ans aliyunAnswer
	if err := json.Unmarshal(body, &ans); err != nil || ans.Code == "" {
		return a.failed(ctx, m, fmt.Errorf("HTTP %d, not an Aliyun answer: %q", status, answerExcerpt(body)))
	}
	if ans.Code == "OK" {
		a.sent(ctx, m, ans.BizID, ans.RequestID)
		return nil
	}
	v, ok := aliyunCodes[ans.Code]
	if ans.Code == "isv.BUSINESS_LIMIT_CONTROL" {
		v = aliyunLimit(ans.Message)
	}
	if !ok {
		v = unavailable
	}
	return a.refused(ctx, m, v, ans.Code, ans.Message, ans.RequestID)
}

// aliyunNumber is an E.164 number as PhoneNumbers takes it: a mainland
// number without +86, any other as its country code and number.
func aliyunNumber(e164 string) string {
	if n, ok := strings.CutPrefix(e164, "+86"); ok {
		return n
	}
	return strings.TrimPrefix(e164, "+")
}
