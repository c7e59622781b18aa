package carrier

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// China Mobile's token validation (the "direct" route).
const (
	CMCCBaseURL = "https://www.cmpassport.com"
	CMCCPath    = "/unisdk/rsapi/loginTokenValidate"
	routeCMCC   = "cmcc"
)

// CMCCRequest is loginTokenValidate's JSON body: all strings.
type CMCCRequest struct {
	Version     string `json:"version"`     // "2.0"
	MsgID       string `json:"msgid"`       // unique per request, echoed as inresponseto
	SystemTime  string `json:"systemtime"`  // yyyyMMddHHmmssSSS, China time
	StrictCheck string `json:"strictcheck"` // "0": no check of the server's address
	AppID       string `json:"appid"`
	Token       string `json:"token"`
	Sign        string `json:"sign"` // CMCCSign
}

// CMCCAnswer is loginTokenValidate's answer.
type CMCCAnswer struct {
	InResponseTo string `json:"inresponseto"`
	ResultCode   string `json:"resultCode"`
	Desc         string `json:"desc,omitempty"`
	MSISDN       string `json:"msisdn,omitempty"`
}

// China Mobile's result codes.
const (
	CMCCOK           = "103000"
	CMCCBadSign      = "103101"
	CMCCBadToken     = "103113"
	CMCCUnknownApp   = "103119"
	CMCCTokenExpired = "104201" // expired or already used
	CMCCNotPermitted = "105018" // the app may not use this capability
	CMCCNoPermission = "105019"
)

// cmccOutcomes classifies result codes; any other is OutcomeFailed.
var cmccOutcomes = map[string]string{
	CMCCBadToken:     OutcomeRefused,
	CMCCTokenExpired: OutcomeRefused,
	CMCCBadSign:      OutcomeMisconfigured,
	CMCCUnknownApp:   OutcomeMisconfigured,
	CMCCNotPermitted: OutcomeMisconfigured,
	CMCCNoPermission: OutcomeMisconfigured,
}

// CMCCSign is the request's sign: upper-case hex MD5 of appid, version,
// msgid, systemtime, strictcheck, token and appkey, concatenated.
func CMCCSign(r CMCCRequest, appKey string) string {
	sum := md5.Sum([]byte(r.AppID + r.Version + r.MsgID + r.SystemTime + r.StrictCheck + r.Token + appKey))
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// CMCCSystemTime formats t as systemtime: yyyyMMddHHmmssSSS in China
// Standard Time.
func CMCCSystemTime(t time.Time) string {
	return strings.Replace(t.In(chinaTime).Format("20060102150405.000"), ".", "", 1)
}

var chinaTime = time.FixedZone("CST", 8*60*60)

type cmccAPI struct {
	base, appID, appKey string
	http                *http.Client
	now                 func() time.Time
	msgid               func() string
}

func (*cmccAPI) route() string { return routeCMCC }

func newMsgID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *cmccAPI) number(ctx context.Context, token string) (string, error) {
	r := CMCCRequest{Version: "2.0", MsgID: c.msgid(), SystemTime: CMCCSystemTime(c.now()), StrictCheck: "0", AppID: c.appID, Token: token}
	r.Sign = CMCCSign(r, c.appKey)
	body, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+CMCCPath, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	status, raw, err := exchange(c.http, req)
	if err != nil {
		return "", err
	}
	var ans CMCCAnswer
	if err := json.Unmarshal(raw, &ans); err != nil || ans.ResultCode == "" {
		return "", fmt.Errorf("HTTP %d, not a China Mobile answer: %q", status, excerpt(raw))
	}
	if ans.ResultCode != CMCCOK {
		outcome, ok := cmccOutcomes[ans.ResultCode]
		if !ok {
			outcome = OutcomeFailed
		}
		return "", &refusal{outcome: outcome, code: ans.ResultCode, message: ans.Desc, requestID: r.MsgID}
	}
	if ans.InResponseTo != r.MsgID {
		return "", fmt.Errorf("China Mobile answered msgid %q, not ours", ans.InResponseTo)
	}
	if ans.MSISDN == "" {
		return "", fmt.Errorf("China Mobile answered %s without msisdn", CMCCOK)
	}
	return ans.MSISDN, nil
}

// verify has no call of its own on this route: the number the token
// stands for, compared here. The number is not returned.
func (c *cmccAPI) verify(ctx context.Context, token, phone string) (bool, error) {
	n, err := c.number(ctx, token)
	if err != nil {
		return false, err
	}
	got, err := authcore.NormalizePhone(n)
	if err != nil {
		return false, fmt.Errorf("China Mobile vouched for a malformed number")
	}
	return got == phone, nil
}
