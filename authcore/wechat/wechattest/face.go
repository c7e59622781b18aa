package wechattest

// Face verification (人脸核身): getverifyid, queryverifyinfo, the legacy
// getinfo, and the sandbox-only /requestFacialVerify that plays the phone's
// wx.requestFacialVerify.
//
// WeChat documents the shapes but not a full table of verify_ret values
// and face errcodes; the ones below are an approximation shared with
// loginhub's client (authcore/wechat), which treats any verify_ret but
// 10000 as not passed and any unknown errcode as an upstream failure.

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// The face paths (WeChat's, then the sandbox's).
const (
	PathFaceGetVerifyID     = "/cityservice/face/identify/getverifyid"
	PathFaceQueryVerify     = "/cityservice/face/identify/queryverifyinfo"
	PathFaceGetInfo         = "/cityservice/face/identify/getinfo"
	PathRequestFacialVerify = "/requestFacialVerify" // sandbox: POST {"verify_id","outcome"}: the phone's face check
)

// FaceLifetime is how long a verify_id is valid (expires_in 3600), and a
// verify_result after the face check that produced it.
const FaceLifetime = time.Hour

// Outcomes of the sandbox's /requestFacialVerify: what the person in
// front of the phone did. Empty means FaceOutcomePass.
const (
	FaceOutcomePass     = "pass"
	FaceOutcomeCancel   = "cancel"   // left the face check: verify_ret 90001
	FaceOutcomeTimeout  = "timeout"  // no usable face in time: 90002
	FaceOutcomeMismatch = "mismatch" // not the card holder's face: 90004
	FaceOutcomeLiveness = "liveness" // failed the liveness actions: 90005
)

// verify_ret values (identify_ret uses the same failures and 0 for a pass).
const (
	VerifyRetPassed         = 10000
	VerifyRetCancelled      = 90001
	VerifyRetCaptureTimeout = 90002
	VerifyRetNetworkTimeout = 90003 // never produced by an outcome; for FailNext-style tests of clients
	VerifyRetFaceMismatch   = 90004
	VerifyRetLiveness       = 90005
	VerifyRetNotFinished    = 90100 // queried before the phone finished
)

// Face errcodes the Server answers.
const (
	ErrcodeFaceBadVerifyID     = 85201 // unknown verify_id
	ErrcodeFaceCertHash        = 85202 // cert_hash is not that of getverifyid's cert_info
	ErrcodeFaceExpired         = 85203 // verify_id (or verify_result) older than FaceLifetime
	ErrcodeFaceOwner           = 85204 // out_seq_no or openid differ from getverifyid's
	ErrcodeFaceBadVerifyResult = 85205 // unknown verify_result
)

var faceOutcomes = map[string]int{
	FaceOutcomePass:     VerifyRetPassed,
	FaceOutcomeCancel:   VerifyRetCancelled,
	FaceOutcomeTimeout:  VerifyRetCaptureTimeout,
	FaceOutcomeMismatch: VerifyRetFaceMismatch,
	FaceOutcomeLiveness: VerifyRetLiveness,
}

// faceVerification is a face check as the State keeps it (JSON, opaque
// to the State): under "id:<verify_id>" from getverifyid on, and also
// under "result:<verify_result>" once the phone played it.
type faceVerification struct {
	OpenID     string    `json:"o"`
	OutSeqNo   string    `json:"s"`
	CertHash   string    `json:"h"`
	IDMD5      string    `json:"i"`
	NameMD5    string    `json:"n"`
	Expires    time.Time `json:"e"`
	VerifyRet  int       `json:"r,omitempty"`   // 0 until the phone played it
	VerifiedAt time.Time `json:"va,omitzero"`   // when it did
	Result     string    `json:"res,omitempty"` // the verify_result it got
}

// faceRetention is how long a face record is kept past all use: until
// then an expired one answers "expired" rather than "unknown".
const faceRetention = time.Hour

// putFace stores v under key until an hour past its last use, from now.
func (s *Server) putFace(ctx context.Context, key string, v *faceVerification, now time.Time) error {
	rec, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wechattest: face record: %w", err)
	}
	return s.state.PutFace(ctx, key, rec, now.Add(FaceLifetime+faceRetention))
}

// face returns the record under key, nil if there is none.
func (s *Server) face(ctx context.Context, key string) (*faceVerification, error) {
	rec, err := s.state.Face(ctx, key)
	if err != nil || rec == nil {
		return nil, err
	}
	var v faceVerification
	if err := json.Unmarshal(rec, &v); err != nil {
		return nil, fmt.Errorf("wechattest: face record: %w", err)
	}
	return &v, nil
}

// handleFaceGetVerifyID is POST /cityservice/face/identify/getverifyid
// {"out_seq_no","cert_info":{"cert_type","cert_name","cert_no"},"openid"}
// → {"errcode":0,"errmsg":"ok","verify_id","expires_in":3600}.
func (s *Server) handleFaceGetVerifyID(w http.ResponseWriter, r *http.Request) {
	var req struct {
		OutSeqNo string `json:"out_seq_no"`
		CertInfo struct {
			CertType string `json:"cert_type"`
			CertName string `json:"cert_name"`
			CertNo   string `json:"cert_no"`
		} `json:"cert_info"`
		OpenID string `json:"openid"`
	}
	if !s.faceCall(w, r, &req) {
		return
	}
	ci := req.CertInfo
	if req.OutSeqNo == "" || req.OpenID == "" || ci.CertType != "IDENTITY_CARD" || ci.CertName == "" || ci.CertNo == "" {
		writeWeChatError(w, 40097, "invalid args")
		return
	}
	user, err := s.state.UserByOpenID(r.Context(), req.OpenID)
	switch {
	case err != nil:
		writeSystemError(w)
		return
	case user == "":
		writeWeChatError(w, 40003, "invalid openid")
		return
	}
	now := s.clock()
	id, name := md5.Sum([]byte(ci.CertNo)), md5.Sum([]byte(ci.CertName))
	verifyID := randomToken(32)
	err = s.putFace(r.Context(), "id:"+verifyID, &faceVerification{
		OpenID:   req.OpenID,
		OutSeqNo: req.OutSeqNo,
		CertHash: certHash(ci.CertType, ci.CertName, ci.CertNo),
		IDMD5:    hex.EncodeToString(id[:]),
		NameMD5:  hex.EncodeToString(name[:]),
		Expires:  now.Add(FaceLifetime),
	}, now)
	if err != nil {
		writeSystemError(w)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ErrCode   int    `json:"errcode"`
		ErrMsg    string `json:"errmsg"`
		VerifyID  string `json:"verify_id"`
		ExpiresIn int64  `json:"expires_in"`
	}{0, "ok", verifyID, int64(FaceLifetime / time.Second)})
}

// handleFaceQuery is POST /cityservice/face/identify/queryverifyinfo
// {"verify_id","out_seq_no","cert_hash","openid"} →
// {"errcode":0,"errmsg":"ok","verify_ret":N}: 10000 after a "pass", the
// outcome's 9xxxx code after another, 90100 before the phone played it.
func (s *Server) handleFaceQuery(w http.ResponseWriter, r *http.Request) {
	var req struct {
		VerifyID string `json:"verify_id"`
		OutSeqNo string `json:"out_seq_no"`
		CertHash string `json:"cert_hash"`
		OpenID   string `json:"openid"`
	}
	if !s.faceCall(w, r, &req) {
		return
	}
	if req.VerifyID == "" || req.OutSeqNo == "" || req.CertHash == "" || req.OpenID == "" {
		writeWeChatError(w, 40097, "invalid args")
		return
	}
	v, err := s.face(r.Context(), "id:"+req.VerifyID)
	switch {
	case err != nil:
		writeSystemError(w)
		return
	case v == nil:
		writeWeChatError(w, ErrcodeFaceBadVerifyID, errmsgs[ErrcodeFaceBadVerifyID])
		return
	case !s.clock().Before(v.Expires):
		writeWeChatError(w, ErrcodeFaceExpired, errmsgs[ErrcodeFaceExpired])
		return
	case !equal(req.CertHash, v.CertHash): // lowercase hex, as documented
		writeWeChatError(w, ErrcodeFaceCertHash, errmsgs[ErrcodeFaceCertHash])
		return
	case req.OutSeqNo != v.OutSeqNo || req.OpenID != v.OpenID:
		writeWeChatError(w, ErrcodeFaceOwner, errmsgs[ErrcodeFaceOwner])
		return
	}
	ret := v.VerifyRet
	if ret == 0 {
		ret = VerifyRetNotFinished
	}
	writeJSON(w, http.StatusOK, struct {
		ErrCode   int    `json:"errcode"`
		ErrMsg    string `json:"errmsg"`
		VerifyRet int    `json:"verify_ret"`
	}{0, "ok", ret})
}

// handleFaceGetInfo is the legacy POST /cityservice/face/identify/getinfo
// {"verify_result"} → {"errcode":0,"errmsg":"ok","identify_ret",
// "openid","id_card_number_md5","name_utf8_md5","identify_time"}:
// identify_ret 0 after a "pass", else the outcome's 9xxxx code; the md5s
// are lowercase hex of the UTF-8 values getverifyid received.
func (s *Server) handleFaceGetInfo(w http.ResponseWriter, r *http.Request) {
	var req struct {
		VerifyResult string `json:"verify_result"`
	}
	if !s.faceCall(w, r, &req) {
		return
	}
	if req.VerifyResult == "" {
		writeWeChatError(w, 40097, "invalid args")
		return
	}
	v, err := s.face(r.Context(), "result:"+req.VerifyResult)
	switch {
	case err != nil:
		writeSystemError(w)
		return
	case v == nil:
		writeWeChatError(w, ErrcodeFaceBadVerifyResult, errmsgs[ErrcodeFaceBadVerifyResult])
		return
	case !s.clock().Before(v.VerifiedAt.Add(FaceLifetime)):
		writeWeChatError(w, ErrcodeFaceExpired, errmsgs[ErrcodeFaceExpired])
		return
	}
	ret := v.VerifyRet
	if ret == VerifyRetPassed {
		ret = 0
	}
	writeJSON(w, http.StatusOK, struct {
		ErrCode         int    `json:"errcode"`
		ErrMsg          string `json:"errmsg"`
		IdentifyRet     int    `json:"identify_ret"`
		OpenID          string `json:"openid"`
		IDCardNumberMD5 string `json:"id_card_number_md5"`
		NameUTF8MD5     string `json:"name_utf8_md5"`
		IdentifyTime    int64  `json:"identify_time"`
	}{0, "ok", ret, v.OpenID, v.IDMD5, v.NameMD5, v.VerifiedAt.Unix()})
}

// faceCall checks what every face API checks, in WeChat's order (method,
// access_token, body), and reports whether to go on.
func (s *Server) faceCall(w http.ResponseWriter, r *http.Request, req any) bool {
	if r.Method != http.MethodPost {
		writeWeChatError(w, 43002, "require POST method")
		return false
	}
	token := r.URL.Query().Get("access_token")
	bodyOK := decodeBody(r, req)
	if code, msg := s.checkToken(r.Context(), token); code != 0 {
		writeWeChatError(w, code, msg)
		return false
	}
	if !bodyOK {
		writeWeChatError(w, 47001, "data format error")
		return false
	}
	return true
}

// handleRequestFacialVerify is the sandbox's POST /requestFacialVerify
// {"verify_id","outcome"}: what wx.requestFacialVerify({verifyId}) does on
// the phone, the person in front of it doing outcome (default "pass").
// It answers {"verify_result"}, the token the legacy getinfo reads, and
// records the outcome for queryverifyinfo. A verify_id is played once:
// 404 for an unknown one, 410 for an expired one, 409 for one already
// played, 400 for an unknown outcome.
func (s *Server) handleRequestFacialVerify(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeSandboxError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	var req struct {
		VerifyID string `json:"verify_id"`
		Outcome  string `json:"outcome"`
	}
	if !decodeBody(r, &req) {
		writeSandboxError(w, http.StatusBadRequest, `body must be JSON {"verify_id":"...","outcome":"pass"}`)
		return
	}
	if req.Outcome == "" {
		req.Outcome = FaceOutcomePass
	}
	ret, ok := faceOutcomes[req.Outcome]
	if !ok {
		writeSandboxError(w, http.StatusBadRequest, `outcome must be "pass", "cancel", "timeout", "mismatch" or "liveness"`)
		return
	}
	ctx, now := r.Context(), s.clock()
	v, err := s.face(ctx, "id:"+req.VerifyID)
	switch {
	case err != nil:
		writeSandboxFailure(w)
		return
	case v == nil:
		writeSandboxError(w, http.StatusNotFound, "unknown verify_id")
		return
	case !now.Before(v.Expires):
		writeSandboxError(w, http.StatusGone, "verify_id expired")
		return
	}
	// The claim makes playing once hold across the nodes sharing the
	// State; a record already played was claimed.
	claimed, err := s.state.ClaimFace(ctx, req.VerifyID, now.Add(FaceLifetime+faceRetention))
	switch {
	case err != nil:
		writeSandboxFailure(w)
		return
	case !claimed || v.VerifyRet != 0:
		writeSandboxError(w, http.StatusConflict, "verify_id already used")
		return
	}
	v.VerifyRet, v.VerifiedAt, v.Result = ret, now, randomToken(48)
	// The result first: a query that sees the played verify_id can read it.
	err = s.putFace(ctx, "result:"+v.Result, v, now)
	if err == nil {
		err = s.putFace(ctx, "id:"+req.VerifyID, v, now)
	}
	if err != nil {
		writeSandboxFailure(w)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		VerifyResult string `json:"verify_result"`
	}{v.Result})
}

// certHash is WeChat's cert_hash: lowercase hex sha256 of
// "cert_type=<b64>&cert_name=<b64>&cert_no=<b64>", standard base64 of each
// UTF-8 value.
func certHash(certType, name, number string) string {
	b64 := base64.StdEncoding.EncodeToString
	sum := sha256.Sum256([]byte("cert_type=" + b64([]byte(certType)) +
		"&cert_name=" + b64([]byte(name)) + "&cert_no=" + b64([]byte(number))))
	return hex.EncodeToString(sum[:])
}
