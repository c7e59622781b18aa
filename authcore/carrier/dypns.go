package carrier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore/aliyunrpc"
)

// Aliyun's number authentication (Dypnsapi, RPC style).
const (
	DypnsBaseURL = "https://dypnsapi.aliyuncs.com"
	DypnsVersion = "2017-05-25"
	routeAliyun  = "aliyun"
)

// DypnsAnswer is GetMobile's and VerifyMobile's answer, and the shape of
// the RPC gateway's errors.
type DypnsAnswer struct {
	Code               string         `json:"Code"`
	Message            string         `json:"Message"`
	RequestID          string         `json:"RequestId"`
	GetMobileResultDTO *DypnsMobile   `json:"GetMobileResultDTO,omitempty"`
	GateVerifyResult   *DypnsVerified `json:"GateVerifyResultDTO,omitempty"`
}

// DypnsMobile is GetMobile's result.
type DypnsMobile struct {
	Mobile string `json:"Mobile"`
}

// DypnsVerified is VerifyMobile's result.
type DypnsVerified struct {
	VerifyID     string `json:"VerifyId"`
	VerifyResult string `json:"VerifyResult"` // PASS, REJECT or UNKNOWN
}

// Dypnsapi codes. A token refused as invalid, used or expired is not
// named in the protocol notes; the fake answers DypnsTokenInvalid and
// DypnsTokenExpired, and the client reads both (and any code containing
// "TOKEN") as a refused token.
const (
	DypnsOK           = "OK"
	DypnsTokenInvalid = "isv.INVALID_TOKEN"
	DypnsTokenExpired = "isv.TOKEN_EXPIRED"
	DypnsSystemError  = "isp.SYSTEM_ERROR"
)

// dypnsMisconfig are the codes that say the hub's account, key or
// request is wrong: an error in the log, a 503 to the client.
var dypnsMisconfig = map[string]bool{
	"SignatureDoesNotMatch": true, "IncompleteSignature": true, "MissingParameter": true,
	"InvalidAccessKeyId.NotFound": true, "InvalidAccessKeyId.Inactive": true, "Forbidden.RAM": true,
	"isp.RAM_PERMISSION_DENY": true, "InvalidTimeStamp.Expired": true, "isv.INVALID_PARAMETERS": true,
	"isv.PRODUCT_UN_SUBSCRIPT": true, "isv.PRODUCT_UNSUBSCRIBE": true, "isv.ACCOUNT_NOT_EXISTS": true,
	"isv.ACCOUNT_ABNORMAL": true, "isv.AMOUNT_NOT_ENOUGH": true, "isv.OUT_OF_SERVICE": true,
}

type dypnsAPI struct {
	base, keyID, secret string
	http                *http.Client
	nonce               func() (string, error)
	now                 func() time.Time
}

func (*dypnsAPI) route() string { return routeAliyun }

// call sends one signed GET for action with params and decodes the answer.
func (d *dypnsAPI) call(ctx context.Context, action string, params map[string]string) (DypnsAnswer, error) {
	nonce, err := d.nonce()
	if err != nil {
		return DypnsAnswer{}, err
	}
	p := map[string]string{
		"AccessKeyId": d.keyID, "Action": action, "Format": "JSON", "RegionId": "cn-hangzhou",
		"SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce, "SignatureVersion": "1.0",
		"Timestamp": d.now().UTC().Format(aliyunrpc.TimestampFormat), "Version": DypnsVersion,
	}
	for k, v := range params {
		p[k] = v
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.base+"/?"+aliyunrpc.SignedQuery(http.MethodGet, p, d.secret), nil)
	if err != nil {
		return DypnsAnswer{}, err
	}
	status, raw, err := exchange(d.http, req)
	if err != nil {
		return DypnsAnswer{}, err
	}
	var ans DypnsAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || ans.Code == "" {
		return DypnsAnswer{}, fmt.Errorf("HTTP %d, not an Aliyun answer: %q", status, excerpt(raw))
	}
	if ans.Code != DypnsOK {
		outcome := OutcomeFailed
		switch {
		case dypnsMisconfig[ans.Code]:
			outcome = OutcomeMisconfigured
		case ans.Code == DypnsTokenInvalid || ans.Code == DypnsTokenExpired || strings.Contains(strings.ToUpper(ans.Code), "TOKEN"):
			outcome = OutcomeRefused
		}
		return DypnsAnswer{}, &refusal{outcome: outcome, code: ans.Code, message: ans.Message, requestID: ans.RequestID}
	}
	return ans, nil
}

func (d *dypnsAPI) number(ctx context.Context, token string) (string, error) {
	ans, err := d.call(ctx, "GetMobile", map[string]string{"AccessToken": token})
	if err != nil {
		return "", err
	}
	if ans.GetMobileResultDTO == nil || ans.GetMobileResultDTO.Mobile == "" {
		return "", fmt.Errorf("GetMobile answered OK without a number (request %s)", ans.RequestID)
	}
	return ans.GetMobileResultDTO.Mobile, nil
}

func (d *dypnsAPI) verify(ctx context.Context, token, phone string) (bool, error) {
	ans, err := d.call(ctx, "VerifyMobile", map[string]string{"AccessCode": token, "PhoneNumber": strings.TrimPrefix(phone, "+86")})
	if err != nil {
		return false, err
	}
	if ans.GateVerifyResult == nil {
		return false, fmt.Errorf("VerifyMobile answered OK without a result (request %s)", ans.RequestID)
	}
	switch ans.GateVerifyResult.VerifyResult {
	case "PASS":
		return true, nil
	case "REJECT":
		return false, nil
	}
	// UNKNOWN: the carrier could not tell; the client falls back to SMS.
	return false, &refusal{outcome: OutcomeFailed, code: "VerifyResult " + ans.GateVerifyResult.VerifyResult,
		message: "the carrier could not tell", requestID: ans.RequestID}
}
