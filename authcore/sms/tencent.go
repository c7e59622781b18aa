package sms

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Tencent Cloud SMS API 3.0.
const (
	TencentBaseURL       = "https://sms.tencentcloudapi.com"
	TencentDefaultRegion = "ap-guangzhou"
	tencentService       = "sms"
	tencentContentType   = "application/json; charset=utf-8"
)

// TencentConfig configures a Tencent sender.
type TencentConfig struct {
	// BaseURL is the API endpoint; "" means TencentBaseURL. Tests point
	// it at a fake.
	BaseURL string
	// SecretID and SecretKey are the API key (a CAM user's, with
	// permission for sms:SendSms). Required.
	SecretID  string
	SecretKey string
	// SdkAppID is the SMS application's SdkAppId ("1400..."). Required.
	SdkAppID string
	// SignName is the approved signature's content. Required.
	SignName string
	// TemplateID is the approved verification-code template, whose one
	// parameter {1} is the code. Required.
	TemplateID string
	// Region is X-TC-Region; "" means TencentDefaultRegion.
	Region string
	// HTTPClient sends the requests; nil means a client of its own whose
	// Timeout is Timeout.
	HTTPClient *http.Client
	// Logger receives every refusal and failure, with Tencent's Code,
	// Message and RequestId but never the code or the full number. Nil
	// discards them.
	Logger *slog.Logger
	// Timeout bounds one send; zero means DefaultTimeout.
	Timeout time.Duration
}

// Tencent sends codes with Tencent Cloud's SMS SendSms (API 3.0, version
// 2021-01-11, signed with TC3-HMAC-SHA256). It is safe for concurrent use.
type Tencent struct {
	sender
	id, key, appID, signName, template, region string
	host                                       string // of BaseURL: signed as the host header
}

var _ authcore.SMSSender = (*Tencent)(nil)

// NewTencent returns a Tencent sender, or an error naming what cfg lacks.
func NewTencent(cfg TencentConfig) (*Tencent, error) {
	var missing []string
	for _, f := range []struct{ name, v string }{
		{"SecretID", cfg.SecretID}, {"SecretKey", cfg.SecretKey}, {"SdkAppID", cfg.SdkAppID},
		{"SignName", cfg.SignName}, {"TemplateID", cfg.TemplateID},
	} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("sms tencent: %s required", strings.Join(missing, ", "))
	}
	s, err := newSender("tencent", cfg.BaseURL, TencentBaseURL, cfg.HTTPClient, cfg.Logger, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(s.base) // checked by newSender
	region := cfg.Region
	if region == "" {
		region = TencentDefaultRegion
	}
	return &Tencent{sender: s, id: cfg.SecretID, key: cfg.SecretKey, appID: cfg.SdkAppID,
		signName: cfg.SignName, template: cfg.TemplateID, region: region, host: u.Host}, nil
}

// tencentRequest is SendSms's body.
type tencentRequest struct {
	PhoneNumberSet   []string `json:"PhoneNumberSet"`
	SmsSdkAppID      string   `json:"SmsSdkAppId"`
	SignName         string   `json:"SignName"`
	TemplateID       string   `json:"TemplateId"`
	TemplateParamSet []string `json:"TemplateParamSet"`
}

// tencentAnswer is every API 3.0 answer: an Error, or SendSms's
// SendStatusSet with one status per number.
type tencentAnswer struct {
	Response struct {
		Error *struct {
			Code    string `json:"Code"`
			Message string `json:"Message"`
		} `json:"Error"`
		SendStatusSet []struct {
			SerialNo string `json:"SerialNo"`
			Code     string `json:"Code"`
			Message  string `json:"Message"`
		} `json:"SendStatusSet"`
		RequestID string `json:"RequestId"`
	} `json:"Response"`
}

// tencentCodes maps Tencent's error codes (of the request, and of a
// number's SendStatus) to what loginhub answers. A code not listed is a
// 503.
var tencentCodes = map[string]verdict{
	// Tencent's frequency control per number (by default 1 in 30 s, 5 an
	// hour, 10 a natural day).
	"LimitExceeded.PhoneNumberThirtySecondLimit":     limitedFor(30 * time.Second),
	"LimitExceeded.PhoneNumberOneHourLimit":          limitedFor(time.Hour),
	"LimitExceeded.PhoneNumberDailyLimit":            limitedToday,
	"LimitExceeded.PhoneNumberSameContentDailyLimit": limitedToday,
	"LimitExceeded.DeliveryFrequencyLimit":           limitedFor(time.Minute),
	"InvalidParameterValue.IncorrectPhoneNumber":     badNumber,
	"FailedOperation.PhoneNumberInBlacklist":         badNumber, // the person unsubscribed (回复TD)
	"FailedOperation.PhoneNumberParseFail":           badNumber,
	"UnsupportedOperation.UnsupportedRegion":         badNumber,

	"AuthFailure.SignatureFailure":                                   misconfig,
	"AuthFailure.SignatureExpire":                                    misconfig, // this machine's clock is off
	"AuthFailure.SecretIdNotFound":                                   misconfig,
	"AuthFailure.InvalidSecretId":                                    misconfig,
	"AuthFailure.UnauthorizedOperation":                              misconfig,
	"UnauthorizedOperation.SmsSdkAppIdVerifyFail":                    misconfig,
	"UnauthorizedOperation.ServiceSuspendDueToArrears":               misconfig,
	"UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny": misconfig,
	"FailedOperation.InsufficientBalanceInSmsPackage":                misconfig,
	"FailedOperation.SignatureIncorrectOrUnapproved":                 misconfig,
	"FailedOperation.TemplateIncorrectOrUnapproved":                  misconfig,
	"FailedOperation.TemplateParamSetNotMatchApprovedTemplate":       misconfig,
	"FailedOperation.MissingSignature":                               misconfig,
	"FailedOperation.MissingSignatureToModify":                       misconfig,
	"InvalidParameterValue.TemplateParameterFormatError":             misconfig,
	"InvalidParameterValue.TemplateParameterLengthLimit":             misconfig,
	"InvalidParameterValue.SdkAppIdNotExist":                         misconfig,
	"InvalidParameterValue.ProhibitedUseUrlInTemplateParameter":      misconfig,
	"LimitExceeded.AppDailyLimit":                                    misconfig, // the whole app's quota, not this number's
	"LimitExceeded.AppGlobalDailyLimit":                              misconfig,
	"LimitExceeded.AppMainlandChinaDailyLimit":                       misconfig,
	"LimitExceeded.AppCountryOrRegionDailyLimit":                     misconfig,

	"InternalError.Timeout":              unavailable,
	"InternalError.RequestTimeException": misconfig,   // this machine's clock is off
	"RequestLimitExceeded":               unavailable, // the API's own rate, not a number's
}

// SendCode implements authcore.SMSSender: one SendSms request, never
// repeated. Errors: KindRateLimited (Tencent's own limit for the number),
// KindInvalid (Tencent refuses the number), KindUpstreamUnavailable
// (anything else, a timeout included: the message may still arrive).
func (t *Tencent) SendCode(ctx context.Context, m authcore.SMSMessage) error {
	body, err := json.Marshal(tencentRequest{
		PhoneNumberSet: []string{m.Phone}, SmsSdkAppID: t.appID, SignName: t.signName,
		TemplateID: t.template, TemplateParamSet: []string{m.Code},
	})
	if err != nil {
		return t.failed(ctx, m, err)
	}
	now := t.now()
	signature, scope := tc3Signature(t.key, tencentService, t.host, tencentContentType, body, now)
	auth := "TC3-HMAC-SHA256 Credential=" + t.id + "/" + scope + ", SignedHeaders=content-type;host, Signature=" + signature
	status, answer, err := t.exchange(ctx, func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/", bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", tencentContentType)
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-TC-Action", "SendSms")
		req.Header.Set("X-TC-Version", "2021-01-11")
		req.Header.Set("X-TC-Timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("X-TC-Region", t.region)
		return req, nil
	})
	if err != nil {
		return t.failed(ctx, m, err)
	}
	var ans tencentAnswer
	if err := json.Unmarshal(answer, &ans); err != nil || (ans.Response.Error == nil && len(ans.Response.SendStatusSet) != 1) {
		return t.failed(ctx, m, fmt.Errorf("HTTP %d, not a Tencent SendSms answer: %q", status, answerExcerpt(answer)))
	}
	r := ans.Response
	code, message, id := "", "", ""
	if r.Error != nil {
		code, message = r.Error.Code, r.Error.Message
	} else {
		code, message, id = r.SendStatusSet[0].Code, r.SendStatusSet[0].Message, r.SendStatusSet[0].SerialNo
	}
	if code == "Ok" {
		t.sent(ctx, m, id, r.RequestID)
		return nil
	}
	v, ok := tencentCodes[code]
	if !ok {
		v = unavailable
	}
	return t.refused(ctx, m, v, code, message, r.RequestID)
}

// tc3Signature signs a POST of payload to host's "/" with TC3-HMAC-SHA256,
// the content-type and host headers signed, at time at. It returns the
// hex signature and the credential scope (date/service/tc3_request).
func tc3Signature(secretKey, service, host, contentType string, payload []byte, at time.Time) (signature, scope string) {
	canonicalRequest := "POST\n/\n\n" +
		"content-type:" + strings.ToLower(contentType) + "\nhost:" + strings.ToLower(host) + "\n\n" +
		"content-type;host\n" + sha256Hex(payload)
	date := at.UTC().Format("2006-01-02")
	scope = date + "/" + service + "/tc3_request"
	stringToSign := "TC3-HMAC-SHA256\n" + strconv.FormatInt(at.Unix(), 10) + "\n" + scope + "\n" + sha256Hex([]byte(canonicalRequest))
	secretDate := hmacSHA256([]byte("TC3"+secretKey), date)
	secretService := hmacSHA256(secretDate, service)
	secretSigning := hmacSHA256(secretService, "tc3_request")
	return hex.EncodeToString(hmacSHA256(secretSigning, stringToSign)), scope
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}
