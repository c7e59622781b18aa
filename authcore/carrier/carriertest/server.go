// Package carriertest is a faithful fake of the carriers' one-click login
// servers, like net/http/httptest is a real server for tests: a Server
// answers China Mobile's loginTokenValidate (the "direct" route) and
// Aliyun's Dypnsapi GetMobile and VerifyMobile (the "aliyun" route, all
// three carriers) with their request checks (China Mobile's MD5 sign,
// Aliyun's RPC signature), shapes and codes, and plays the phone's carrier
// SDK: POST /token gives the token a phone with that number and carrier
// would get.
//
// Tests mount it with oauthsandbox.Start(t, &carriertest.Server{}); the
// hub mounts it as its sandbox with http.StripPrefix("/sandbox/carrier",
// srv). Tokens are single use and live as long as the carrier's
// (authcore.CarrierTokenLifetime); a token can carry a failure (network,
// timeout, expired) that the fake plays when the token is validated. The
// embedded Knobs take the fake down, fail or hold the next calls and move
// its clock; State (memory or Redis) lets a sandbox cluster answer as one
// carrier.
package carriertest

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/aliyunrpc"
	"github.com/loginhub/loginhub/authcore/carrier"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
)

// The paths the Server serves, relative to its mount point. A client's
// base URL is the mount point plus "/cmcc" (China Mobile's host) or
// "/aliyun" (Dypnsapi's endpoint).
const (
	PathCMCC  = "/cmcc" + carrier.CMCCPath
	PathDypns = "/aliyun/"
	PathToken = "/token"
)

// The failures a token can carry (POST /token's "fail").
const (
	FailNetwork = "network" // the connection is closed without an answer
	FailTimeout = "timeout" // the answer never comes: the fake holds the request until the client gives up
	FailExpired = "expired" // the token is past its lifetime
)

// Codes for Knobs.FailNext on PathDypns, which answers Aliyun's string
// codes; on PathCMCC the int is the resultCode itself (103101...).
const (
	AliyunSystemError = 1 // isp.SYSTEM_ERROR
	AliyunBadSign     = 2 // SignatureDoesNotMatch
	AliyunBadToken    = 3 // isv.INVALID_TOKEN
)

// maxHold bounds a FailTimeout hold for a client without a deadline.
const maxHold = time.Minute

// Server is a fake of both routes. The zero value is ready; set the
// exported fields before the first request and do not change them
// afterwards. Methods are safe for concurrent use.
type Server struct {
	oauthsandbox.Knobs

	// CMCCAppID and CMCCAppKey are China Mobile's app credentials; empty
	// means DefaultCMCC's.
	CMCCAppID, CMCCAppKey string
	// AliyunKeyID and AliyunSecret are the Aliyun AccessKey; empty means
	// DefaultAliyun's.
	AliyunKeyID, AliyunSecret string
	// State keeps the tokens (and the secrets, see DefaultCMCC); nil means
	// this Server's memory.
	State oauthsandbox.State

	cmcc, aliyun oauthsandbox.App
	mu           sync.Mutex
	nonces       map[string]time.Time
}

// DefaultCMCC returns the sandbox China Mobile app's appid, the same in
// every Server, and a new random appkey.
func DefaultCMCC() (appid, appkey string) {
	sum := sha256.Sum256([]byte("loginhub sandbox China Mobile app"))
	return fmt.Sprintf("300%09d", (uint32(sum[0])<<16|uint32(sum[1])<<8|uint32(sum[2]))%1000000000), randomHex(16)
}

// DefaultAliyun returns the sandbox AccessKey ID, the same in every
// Server, and a new random secret.
func DefaultAliyun() (keyID, secret string) {
	sum := sha256.Sum256([]byte("loginhub sandbox Aliyun AccessKey"))
	return "LTAI5tSandbox" + strings.ToUpper(hex.EncodeToString(sum[:5])), randomHex(15)
}

func (s *Server) init() {
	s.cmcc.Fix(s.CMCCAppID, s.CMCCAppKey, s.State, DefaultCMCC)
	s.aliyun.Fix(s.AliyunKeyID, s.AliyunSecret, s.cmcc.State(), DefaultAliyun)
}

// CMCC returns the China Mobile appid and appkey a client must use.
func (s *Server) CMCC() (appid, appkey string) {
	s.init()
	return s.cmcc.ID(), s.cmcc.Secret()
}

// Aliyun returns the AccessKey ID and secret a client must use.
func (s *Server) Aliyun() (keyID, secret string) {
	s.init()
	return s.aliyun.ID(), s.aliyun.Secret()
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.init()
	s.Serve(w, r, oauthsandbox.Routes{
		Paths: map[string]http.HandlerFunc{
			PathCMCC:  s.handleCMCC,
			PathDypns: s.handleDypns,
			PathToken: s.handleToken,
		},
		Fail: s.writeFailure,
	})
}

func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, code int) {
	if r.URL.Path == PathDypns {
		switch code {
		case AliyunBadSign:
			writeDypns(w, http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", nil)
		case AliyunBadToken:
			writeDypns(w, http.StatusOK, carrier.DypnsTokenInvalid, "token is invalid", nil)
		default:
			writeDypns(w, http.StatusInternalServerError, carrier.DypnsSystemError, "System error.", nil)
		}
		return
	}
	if r.URL.Path == PathCMCC {
		writeCMCC(w, carrier.CMCCAnswer{ResultCode: strconv.Itoa(code), Desc: "injected failure"})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "injected failure " + strconv.Itoa(code)})
}

// handleToken plays the carrier SDK on a phone: POST {"carrier","phone",
// "fail"?} → {"token","expires_in"}.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "POST {\"carrier\",\"phone\",\"fail\"?}"})
		return
	}
	var req struct {
		Carrier string `json:"carrier"`
		Phone   string `json:"phone"`
		Fail    string `json:"fail"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a JSON body {\"carrier\",\"phone\",\"fail\"?} is required"})
		return
	}
	lifetime := authcore.CarrierTokenLifetime(req.Carrier)
	phone, err := authcore.NormalizePhone(req.Phone)
	switch {
	case lifetime == 0:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "carrier must be cmcc, cucc or ctcc"})
		return
	case err != nil || !strings.HasPrefix(phone, "+86"):
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "phone must be a mainland mobile number"})
		return
	case req.Fail != "" && req.Fail != FailNetwork && req.Fail != FailTimeout && req.Fail != FailExpired:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "fail must be network, timeout or expired"})
		return
	}
	now := s.Now()
	g := oauthsandbox.Grant{User: phone, App: req.Carrier, Scope: req.Fail, Issued: now, Expires: now.Add(lifetime)}
	if req.Fail == FailExpired {
		g.Issued, g.Expires = now.Add(-lifetime), now
	}
	token := tokenPrefix(req.Carrier) + randomToken()
	if err := s.cmcc.State().IssueCode(r.Context(), token, g); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "the fake carrier's state failed"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "expires_in": int(lifetime / time.Second)})
}

// tokenPrefix mimics the carriers' token forms a little: China Mobile's
// start with STsid, the others are opaque.
func tokenPrefix(c string) string {
	switch c {
	case authcore.CarrierMobile:
		return "STsid0000001"
	case authcore.CarrierUnicom:
		return "CU"
	}
	return "CT"
}

// useToken consumes token and plays the failure it carries. It returns
// the grant and the status, or ok false when it has answered (a failure
// played) and the caller must write nothing.
func (s *Server) useToken(w http.ResponseWriter, r *http.Request, token string) (oauthsandbox.Grant, oauthsandbox.CodeStatus, bool) {
	g, status, err := s.cmcc.State().UseCode(r.Context(), token, s.Now())
	if err != nil {
		http.Error(w, "fake carrier state failed", http.StatusBadGateway)
		return g, status, false
	}
	switch g.Scope {
	case FailNetwork:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return g, status, false
			}
		}
		http.Error(w, "connection reset", http.StatusBadGateway)
		return g, status, false
	case FailTimeout:
		t := time.NewTimer(maxHold)
		defer t.Stop()
		select {
		case <-r.Context().Done():
		case <-t.C:
		}
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		return g, status, false
	}
	return g, status, true
}

// handleCMCC is loginTokenValidate: the JSON body's fields, the appid, the
// sign, then the token.
func (s *Server) handleCMCC(w http.ResponseWriter, r *http.Request) {
	var req carrier.CMCCRequest
	if r.Method != http.MethodPost || json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10)).Decode(&req) != nil {
		writeCMCC(w, carrier.CMCCAnswer{ResultCode: "103102", Desc: "request format error"})
		return
	}
	ans := carrier.CMCCAnswer{InResponseTo: req.MsgID}
	fail := func(code, desc string) {
		ans.ResultCode, ans.Desc = code, desc
		writeCMCC(w, ans)
	}
	appID, appKey := s.CMCC()
	switch {
	case req.Version != "2.0" || req.MsgID == "" || len(req.SystemTime) != 17 || req.StrictCheck != "0" || req.Token == "":
		fail("103102", "parameter error")
		return
	case req.AppID != appID:
		fail(carrier.CMCCUnknownApp, "appid does not exist")
		return
	case !hmacEqual(req.Sign, carrier.CMCCSign(req, appKey)):
		fail(carrier.CMCCBadSign, "sign error")
		return
	}
	g, status, ok := s.useToken(w, r, req.Token)
	if !ok {
		return
	}
	switch {
	case status == oauthsandbox.CodeUnknown || g.App != authcore.CarrierMobile:
		fail(carrier.CMCCBadToken, "token does not exist or is invalid")
		return
	case status != oauthsandbox.CodeOK:
		fail(carrier.CMCCTokenExpired, "token expired or already used")
		return
	}
	ans.ResultCode, ans.MSISDN = carrier.CMCCOK, strings.TrimPrefix(g.User, "+86")
	writeCMCC(w, ans)
}

// handleDypns is Dypnsapi: the RPC gateway's checks (AccessKeyId,
// signature, timestamp, nonce), then GetMobile or VerifyMobile.
func (s *Server) handleDypns(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if r.ParseForm() == nil {
			q = r.Form
		}
	}
	keyID, secret := s.Aliyun()
	for _, k := range []string{"AccessKeyId", "Action", "Version", "Signature", "SignatureNonce", "Timestamp", "SignatureMethod", "SignatureVersion"} {
		if q.Get(k) == "" {
			writeDypns(w, http.StatusBadRequest, "MissingParameter", "The input parameter \""+k+"\" that is mandatory for processing this request is not supplied.", nil)
			return
		}
	}
	if q.Get("AccessKeyId") != keyID {
		writeDypns(w, http.StatusNotFound, "InvalidAccessKeyId.NotFound", "Specified access key is not found.", nil)
		return
	}
	if ok, _ := aliyunrpc.Verify(r.Method, q, secret); !ok {
		// Aliyun's message shows its string to sign; the fake keeps the
		// token out of it.
		writeDypns(w, http.StatusBadRequest, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.", nil)
		return
	}
	ts, err := time.Parse(aliyunrpc.TimestampFormat, q.Get("Timestamp"))
	if err != nil || s.Now().Sub(ts).Abs() > 15*time.Minute {
		writeDypns(w, http.StatusBadRequest, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.", nil)
		return
	}
	if !s.freshNonce(q.Get("SignatureNonce"), ts) {
		writeDypns(w, http.StatusBadRequest, "SignatureNonceUsed", "Specified signature nonce was used already.", nil)
		return
	}
	if q.Get("Version") != carrier.DypnsVersion {
		writeDypns(w, http.StatusBadRequest, "InvalidVersion", "Specified parameter Version is not valid.", nil)
		return
	}
	switch q.Get("Action") {
	case "GetMobile":
		token := q.Get("AccessToken")
		if token == "" {
			writeDypns(w, http.StatusBadRequest, "MissingAccessToken", "AccessToken is mandatory for this action.", nil)
			return
		}
		g, ok := s.dypnsToken(w, r, token)
		if !ok {
			return
		}
		writeDypns(w, http.StatusOK, "OK", "OK", func(a *carrier.DypnsAnswer) {
			a.GetMobileResultDTO = &carrier.DypnsMobile{Mobile: strings.TrimPrefix(g.User, "+86")}
		})
	case "VerifyMobile":
		token, number := q.Get("AccessCode"), q.Get("PhoneNumber")
		if token == "" || number == "" {
			writeDypns(w, http.StatusBadRequest, "MissingParameter", "AccessCode and PhoneNumber are mandatory for this action.", nil)
			return
		}
		phone, err := authcore.NormalizePhone(number)
		if err != nil || !strings.HasPrefix(phone, "+86") {
			writeDypns(w, http.StatusOK, "isv.MOBILE_NUMBER_ILLEGAL", "the phone number is illegal", nil)
			return
		}
		g, ok := s.dypnsToken(w, r, token)
		if !ok {
			return
		}
		result := "REJECT"
		if g.User == phone {
			result = "PASS"
		}
		writeDypns(w, http.StatusOK, "OK", "OK", func(a *carrier.DypnsAnswer) {
			a.GateVerifyResult = &carrier.DypnsVerified{VerifyID: randomHex(8), VerifyResult: result}
		})
	default:
		writeDypns(w, http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.", nil)
	}
}

// dypnsToken consumes a token for Dypnsapi (any carrier's), answering the
// error itself when it is not valid.
func (s *Server) dypnsToken(w http.ResponseWriter, r *http.Request, token string) (oauthsandbox.Grant, bool) {
	g, status, ok := s.useToken(w, r, token)
	if !ok {
		return g, false
	}
	switch status {
	case oauthsandbox.CodeOK:
		return g, true
	case oauthsandbox.CodeExpired:
		writeDypns(w, http.StatusOK, carrier.DypnsTokenExpired, "token is expired", nil)
	default:
		writeDypns(w, http.StatusOK, carrier.DypnsTokenInvalid, "token is invalid or already used", nil)
	}
	return g, false
}

// freshNonce records nonce and reports whether it was not seen in the
// last 15 minutes (on this node: a nonce replayed to another node of a
// sandbox cluster passes).
func (s *Server) freshNonce(nonce string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	if s.nonces == nil || len(s.nonces) > 10000 {
		for n, t := range s.nonces {
			if now.Sub(t) > 15*time.Minute {
				delete(s.nonces, n)
			}
		}
		if s.nonces == nil {
			s.nonces = map[string]time.Time{}
		}
	}
	if _, seen := s.nonces[nonce]; seen {
		return false
	}
	s.nonces[nonce] = at
	return true
}

func writeCMCC(w http.ResponseWriter, a carrier.CMCCAnswer) {
	writeJSON(w, http.StatusOK, a)
}

func writeDypns(w http.ResponseWriter, status int, code, message string, fill func(*carrier.DypnsAnswer)) {
	a := carrier.DypnsAnswer{Code: code, Message: message, RequestID: strings.ToUpper(randomHex(4) + "-" + randomHex(2) + "-" + randomHex(2) + "-" + randomHex(2) + "-" + randomHex(6))}
	if fill != nil {
		fill(&a)
	}
	writeJSON(w, status, a)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func hmacEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// randomToken is 30 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 30)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
