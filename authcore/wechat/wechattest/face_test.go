package wechattest_test

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

const (
	faceName = "张三"
	faceID   = "11010519491231002X"
)

func faceCertHash(name, id string) string {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	sum := sha256.Sum256([]byte("cert_type=" + b64("IDENTITY_CARD") + "&cert_name=" + b64(name) + "&cert_no=" + b64(id)))
	return hex.EncodeToString(sum[:])
}

func certInfo(name, id string) map[string]string {
	return map[string]string{"cert_type": "IDENTITY_CARD", "cert_name": name, "cert_no": id}
}

// getVerifyID calls getverifyid for openid with the test identity.
func (f *fixture) getVerifyID(token, openid, seq string) map[string]any {
	f.t.Helper()
	_, m := f.do("POST", wechattest.PathFaceGetVerifyID+"?access_token="+token,
		map[string]any{"out_seq_no": seq, "cert_info": certInfo(faceName, faceID), "openid": openid})
	return m
}

func (f *fixture) query(token string, body map[string]string) map[string]any {
	f.t.Helper()
	_, m := f.do("POST", wechattest.PathFaceQueryVerify+"?access_token="+token, body)
	return m
}

func TestFaceVerification(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	srv := &wechattest.Server{}
	srv.SetClock(c.now)
	f := newFixture(t, srv)
	tok, _ := f.stableToken(false)
	openid := srv.User("dora").OpenID

	m := f.getVerifyID(tok, openid, "seq-1")
	verifyID, _ := m["verify_id"].(string)
	if errcode(m) != 0 || !urlSafe.MatchString(verifyID) || m["expires_in"] != float64(3600) {
		t.Fatalf("getverifyid = %v, want errcode 0, a URL-safe verify_id and expires_in 3600", m)
	}
	hash := faceCertHash(faceName, faceID)
	q := map[string]string{"verify_id": verifyID, "out_seq_no": "seq-1", "cert_hash": hash, "openid": openid}
	if m := f.query(tok, q); errcode(m) != 0 || m["verify_ret"] != float64(wechattest.VerifyRetNotFinished) {
		t.Errorf("queryverifyinfo before the phone = %v, want verify_ret %d", m, wechattest.VerifyRetNotFinished)
	}

	// Mismatches, in WeChat's order.
	for what, tc := range map[string]struct {
		edit func(map[string]string)
		want int
	}{
		"unknown verify_id":   {func(q map[string]string) { q["verify_id"] = "nope" }, wechattest.ErrcodeFaceBadVerifyID},
		"other cert":          {func(q map[string]string) { q["cert_hash"] = faceCertHash("李四", faceID) }, wechattest.ErrcodeFaceCertHash},
		"uppercase cert_hash": {func(q map[string]string) { q["cert_hash"] = strings.ToUpper(hash) }, wechattest.ErrcodeFaceCertHash},
		"other out_seq_no":    {func(q map[string]string) { q["out_seq_no"] = "seq-2" }, wechattest.ErrcodeFaceOwner},
		"other openid":        {func(q map[string]string) { q["openid"] = srv.User("eli").OpenID }, wechattest.ErrcodeFaceOwner},
		"missing cert_hash":   {func(q map[string]string) { delete(q, "cert_hash") }, 40097},
	} {
		qq := map[string]string{}
		for k, v := range q {
			qq[k] = v
		}
		tc.edit(qq)
		wantErrcode(t, what, f.query(tok, qq), tc.want)
	}

	// The phone: unknown id, bad outcome, then the check, then not twice.
	if status, _ := f.do("POST", wechattest.PathRequestFacialVerify, map[string]string{"verify_id": "nope"}); status != 404 {
		t.Errorf("requestFacialVerify(unknown) = HTTP %d, want 404", status)
	}
	if status, _ := f.do("POST", wechattest.PathRequestFacialVerify, map[string]string{"verify_id": verifyID, "outcome": "smile"}); status != 400 {
		t.Errorf("requestFacialVerify(outcome smile) = HTTP %d, want 400", status)
	}
	if status, _ := f.do("GET", wechattest.PathRequestFacialVerify, nil); status != 405 {
		t.Errorf("GET requestFacialVerify = HTTP %d, want 405", status)
	}
	c.add(10 * time.Minute)
	status, m := f.do("POST", wechattest.PathRequestFacialVerify, map[string]string{"verify_id": verifyID})
	verifyResult, _ := m["verify_result"].(string)
	if status != 200 || verifyResult == "" {
		t.Fatalf("requestFacialVerify = %d %v, want a verify_result", status, m)
	}
	if status, _ := f.do("POST", wechattest.PathRequestFacialVerify, map[string]string{"verify_id": verifyID, "outcome": "cancel"}); status != 409 {
		t.Errorf("requestFacialVerify twice = HTTP %d, want 409", status)
	}
	if m := f.query(tok, q); errcode(m) != 0 || m["verify_ret"] != float64(10000) {
		t.Errorf("queryverifyinfo after a pass = %v, want verify_ret 10000", m)
	}

	// The legacy getinfo: WeChat's md5s are lowercase hex of the UTF-8.
	idMD5, nameMD5 := md5.Sum([]byte(faceID)), md5.Sum([]byte(faceName))
	_, info := f.do("POST", wechattest.PathFaceGetInfo+"?access_token="+tok, map[string]string{"verify_result": verifyResult})
	if errcode(info) != 0 || info["identify_ret"] != float64(0) || info["openid"] != openid ||
		info["id_card_number_md5"] != hex.EncodeToString(idMD5[:]) || info["name_utf8_md5"] != hex.EncodeToString(nameMD5[:]) ||
		info["identify_time"] != float64(c.now().Unix()) {
		t.Errorf("getinfo = %v, want a pass for %s with the md5s of the identity at %d", info, openid, c.now().Unix())
	}
	_, m = f.do("POST", wechattest.PathFaceGetInfo+"?access_token="+tok, map[string]string{"verify_result": "nope"})
	wantErrcode(t, "getinfo(unknown)", m, wechattest.ErrcodeFaceBadVerifyResult)

	// Expiry: the verify_id 1h after getverifyid, the verify_result 1h
	// after the face check.
	c.add(50 * time.Minute)
	wantErrcode(t, "queryverifyinfo after 1h", f.query(tok, q), wechattest.ErrcodeFaceExpired)
	_, m = f.do("POST", wechattest.PathFaceGetInfo+"?access_token="+tok, map[string]string{"verify_result": verifyResult})
	if errcode(m) != 0 {
		t.Errorf("getinfo 50 minutes after the check = %v, want an answer", m)
	}
	m = f.getVerifyID(tok, openid, "seq-3")
	late, _ := m["verify_id"].(string)
	c.add(time.Hour)
	if status, _ := f.do("POST", wechattest.PathRequestFacialVerify, map[string]string{"verify_id": late}); status != 410 {
		t.Errorf("requestFacialVerify on an expired verify_id = HTTP %d, want 410", status)
	}
	tok, _ = f.stableToken(false) // the old one has expired too
	_, m = f.do("POST", wechattest.PathFaceGetInfo+"?access_token="+tok, map[string]string{"verify_result": verifyResult})
	wantErrcode(t, "getinfo after 1h", m, wechattest.ErrcodeFaceExpired)
}

func TestFaceOutcomeCodes(t *testing.T) {
	for outcome, want := range map[string]int{
		"pass": 10000, "cancel": 90001, "timeout": 90002, "mismatch": 90004, "liveness": 90005,
	} {
		t.Run(outcome, func(t *testing.T) {
			srv := &wechattest.Server{}
			f := newFixture(t, srv)
			tok, _ := f.stableToken(false)
			openid := srv.User("fay").OpenID
			verifyID := f.getVerifyID(tok, openid, "s")["verify_id"].(string)
			_, m := f.do("POST", wechattest.PathRequestFacialVerify, map[string]string{"verify_id": verifyID, "outcome": outcome})
			q := f.query(tok, map[string]string{"verify_id": verifyID, "out_seq_no": "s", "cert_hash": faceCertHash(faceName, faceID), "openid": openid})
			if q["verify_ret"] != float64(want) {
				t.Errorf("verify_ret = %v, want %d", q["verify_ret"], want)
			}
			_, info := f.do("POST", wechattest.PathFaceGetInfo+"?access_token="+tok, map[string]any{"verify_result": m["verify_result"]})
			if want == 10000 {
				want = 0
			}
			if info["identify_ret"] != float64(want) {
				t.Errorf("identify_ret = %v, want %d", info["identify_ret"], want)
			}
		})
	}
}

// TestFaceRequestChecks: method, access_token, body and arguments, as the
// other token APIs check them.
func TestFaceRequestChecks(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv)
	tok, _ := f.stableToken(false)
	openid := srv.User("gus").OpenID
	for _, path := range []string{wechattest.PathFaceGetVerifyID, wechattest.PathFaceQueryVerify, wechattest.PathFaceGetInfo} {
		_, m := f.do("GET", path+"?access_token="+tok, nil)
		wantErrcode(t, "GET "+path, m, 43002)
		_, m = f.do("POST", path, map[string]string{})
		wantErrcode(t, path+" without token", m, 41001)
		_, m = f.do("POST", path+"?access_token=bogus", map[string]string{})
		wantErrcode(t, path+" with a bogus token", m, 40001)
		_, m = f.do("POST", path+"?access_token="+tok, "not an object")
		wantErrcode(t, path+" with a bad body", m, 47001)
		_, m = f.do("POST", path+"?access_token="+tok, map[string]string{})
		wantErrcode(t, path+" with no arguments", m, 40097)
	}
	for what, body := range map[string]map[string]any{
		"no out_seq_no":   {"cert_info": certInfo(faceName, faceID), "openid": openid},
		"no openid":       {"out_seq_no": "s", "cert_info": certInfo(faceName, faceID)},
		"no cert_name":    {"out_seq_no": "s", "cert_info": certInfo("", faceID), "openid": openid},
		"no cert_no":      {"out_seq_no": "s", "cert_info": certInfo(faceName, ""), "openid": openid},
		"other cert_type": {"out_seq_no": "s", "cert_info": map[string]string{"cert_type": "PASSPORT", "cert_name": faceName, "cert_no": faceID}, "openid": openid},
	} {
		_, m := f.do("POST", wechattest.PathFaceGetVerifyID+"?access_token="+tok, body)
		wantErrcode(t, what, m, 40097)
	}
	wantErrcode(t, "unknown openid", f.getVerifyID(tok, "oUnknown", "s"), 40003)
	srv.FailNext(wechattest.PathFaceQueryVerify, wechattest.ErrcodeFaceExpired, 1)
	m := f.query(tok, map[string]string{})
	wantErrcode(t, "injected expiry", m, wechattest.ErrcodeFaceExpired)
	if !strings.HasPrefix(m["errmsg"].(string), "verify_id expired rid: ") {
		t.Errorf("injected errmsg = %q, want WeChat's text", m["errmsg"])
	}
}

// TestFaceSweep: long-dead verifications are forgotten (answering "unknown"
// instead of "expired") once there are many, and live ones are kept.
func TestFaceSweep(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	srv := &wechattest.Server{}
	srv.SetClock(c.now)
	f := newFixture(t, srv)
	openid := srv.User("hal").OpenID
	tok, _ := f.stableToken(false)
	old := f.getVerifyID(tok, openid, "old")["verify_id"].(string)
	c.add(2*time.Hour + time.Minute)
	tok, _ = f.stableToken(false)
	q := func(id, seq string) map[string]any {
		return f.query(tok, map[string]string{"verify_id": id, "out_seq_no": seq, "cert_hash": faceCertHash(faceName, faceID), "openid": openid})
	}
	wantErrcode(t, "old before the sweep", q(old, "old"), wechattest.ErrcodeFaceExpired)
	var live string
	for i := range 1100 {
		live = f.getVerifyID(tok, openid, fmt.Sprint(i))["verify_id"].(string)
	}
	wantErrcode(t, "old after the sweep", q(old, "old"), wechattest.ErrcodeFaceBadVerifyID)
	if m := q(live, "1099"); errcode(m) != 0 {
		t.Errorf("a live verification after the sweep = %v", m)
	}
	if n := srv.Requests(wechattest.PathFaceGetVerifyID); n != 1101 {
		t.Errorf("Requests = %d, want 1101", n)
	}
}
