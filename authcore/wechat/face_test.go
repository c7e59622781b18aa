package wechat

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// testCert is GB 11643's own example ID number with a common name.
var testCert = CertInfo{Name: "张三", IDNumber: "11010519491231002X"}

var urlSafeRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// facePaths are every path a face call may touch; bad input must reach
// none of them.
var facePaths = []string{
	wechattest.PathFaceGetVerifyID, wechattest.PathFaceQueryVerify, wechattest.PathFaceGetInfo,
	wechattest.PathStableToken, wechattest.PathToken,
}

// requestFacialVerify plays the phone's wx.requestFacialVerify on the
// fake and returns its verify_result.
func (f *fixture) requestFacialVerify(verifyID, outcome string) string {
	f.t.Helper()
	body, _ := json.Marshal(map[string]string{"verify_id": verifyID, "outcome": outcome})
	resp, err := http.Post(f.url+wechattest.PathRequestFacialVerify, "application/json", bytes.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		VerifyResult string `json:"verify_result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.VerifyResult == "" {
		f.t.Fatalf("requestFacialVerify(%q) = HTTP %d, %v, %q", outcome, resp.StatusCode, err, out.VerifyResult)
	}
	return out.VerifyResult
}

// startFace starts a verification of user against testCert with out_seq_no
// seq and returns the verify_id and the user's openid.
func (f *fixture) startFace(user, seq string) (verifyID, openid string) {
	f.t.Helper()
	openid = f.srv.User(user).OpenID
	verifyID, _, err := f.c.FaceVerifyID(context.Background(), seq, openid, testCert)
	if err != nil {
		f.t.Fatalf("FaceVerifyID: %v", err)
	}
	return verifyID, openid
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestFaceRoundTrip(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	openid := srv.User("vera").OpenID

	verifyID, expiresIn, err := f.c.FaceVerifyID(ctx, "seq-1", openid, testCert)
	if err != nil {
		t.Fatal(err)
	}
	if !urlSafeRE.MatchString(verifyID) || expiresIn != time.Hour {
		t.Errorf("FaceVerifyID = %q, %v; want a URL-safe verify_id valid 1h", verifyID, expiresIn)
	}
	hash := CertHash(testCert)
	got, err := f.c.FaceQueryResult(ctx, verifyID, "seq-1", hash, openid)
	if want := (FaceResult{false, VerifyRetNotFinished, FaceReasonNotFinished}); err != nil || got != want {
		t.Errorf("before the phone: FaceQueryResult = %+v, %v; want %+v", got, err, want)
	}

	verifyResult := f.requestFacialVerify(verifyID, "pass")
	for range 2 { // asking again gives the same answer
		got, err = f.c.FaceQueryResult(ctx, verifyID, "seq-1", strings.ToUpper(hash), openid)
		if want := (FaceResult{Passed: true, VerifyRet: 10000}); err != nil || got != want {
			t.Errorf("after a pass: FaceQueryResult = %+v, %v; want %+v", got, err, want)
		}
	}

	// The legacy path, on the same verification.
	legacy, err := f.c.FaceGetInfo(ctx, verifyResult)
	if err != nil {
		t.Fatal(err)
	}
	// WeChat's md5s: lowercase hex of the UTF-8 values, spelled out here.
	const idMD5, nameMD5 = "ae05564031c21338aa8a2e7266e7855c", "615db57aa314529aaa0fbe95b3e95bd3"
	if md5Hex(testCert.IDNumber) != idMD5 || md5Hex(testCert.Name) != nameMD5 {
		t.Fatal("the test's own md5 constants are wrong")
	}
	if !legacy.Passed || legacy.IdentifyRet != 0 || legacy.Reason != "" || legacy.OpenID != openid ||
		legacy.IDNumberMD5 != idMD5 || legacy.NameMD5 != nameMD5 || time.Since(legacy.IdentifyTime) > time.Minute {
		t.Errorf("FaceGetInfo = %+v; want a pass for %s with the md5s of testCert", legacy, openid)
	}
	if !legacy.Matches(testCert) || !legacy.Matches(CertInfo{testCert.Name, strings.ToLower(testCert.IDNumber)}) {
		t.Error("Matches(testCert) = false")
	}
	for _, other := range []CertInfo{{"李四", testCert.IDNumber}, {testCert.Name, "440524188001010014"}, {}} {
		if legacy.Matches(other) {
			t.Errorf("Matches(another person %d runes) = true", len([]rune(other.Name)))
		}
	}
	if n := srv.Requests(wechattest.PathStableToken); n != 1 {
		t.Errorf("stable_token requests = %d for 5 calls, want 1", n)
	}
}

// TestFaceOutcomes: every outcome the phone can have, through both APIs.
func TestFaceOutcomes(t *testing.T) {
	tests := []struct {
		outcome     string
		passed      bool
		verifyRet   int
		reason      string
		identifyRet int
	}{
		{"", true, 10000, "", 0}, // the sandbox's default
		{"pass", true, 10000, "", 0},
		{"cancel", false, 90001, "cancelled", 90001},
		{"timeout", false, 90002, "timeout", 90002},
		{"mismatch", false, 90004, "face did not match", 90004},
		{"liveness", false, 90005, "liveness check failed", 90005},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.outcome), func(t *testing.T) {
			srv := &wechattest.Server{}
			f := newFixture(t, srv, nil)
			ctx := context.Background()
			verifyID, openid := f.startFace("wes", "seq-o")
			verifyResult := f.requestFacialVerify(verifyID, tt.outcome)
			got, err := f.c.FaceQueryResult(ctx, verifyID, "seq-o", CertHash(testCert), openid)
			if want := (FaceResult{tt.passed, tt.verifyRet, tt.reason}); err != nil || got != want {
				t.Errorf("FaceQueryResult = %+v, %v; want %+v", got, err, want)
			}
			legacy, err := f.c.FaceGetInfo(ctx, verifyResult)
			if err != nil || legacy.Passed != tt.passed || legacy.IdentifyRet != tt.identifyRet || legacy.Reason != tt.reason {
				t.Errorf("FaceGetInfo = %+v, %v; want passed %v, identify_ret %d, reason %q",
					legacy, err, tt.passed, tt.identifyRet, tt.reason)
			}
		})
	}
}

// TestFaceResultTable: the whole verify_ret table, including codes the fake
// never produces, and agreement with the fake's constants.
func TestFaceResultTable(t *testing.T) {
	for ret, want := range map[int]FaceResult{
		10000: {true, 10000, ""},
		90001: {false, 90001, "cancelled"},
		90002: {false, 90002, "timeout"},
		90003: {false, 90003, "timeout"},
		90004: {false, 90004, "face did not match"},
		90005: {false, 90005, "liveness check failed"},
		90100: {false, 90100, "not finished"},
		90099: {false, 90099, "failed"},
		0:     {false, 0, "failed"},
		-1:    {false, -1, "failed"},
	} {
		if got := faceResultOf(ret); got != want {
			t.Errorf("faceResultOf(%d) = %+v, want %+v", ret, got, want)
		}
	}
	for _, p := range [][2]int{
		{VerifyRetPassed, wechattest.VerifyRetPassed},
		{VerifyRetCancelled, wechattest.VerifyRetCancelled},
		{VerifyRetCaptureTimeout, wechattest.VerifyRetCaptureTimeout},
		{VerifyRetNetworkTimeout, wechattest.VerifyRetNetworkTimeout},
		{VerifyRetFaceMismatch, wechattest.VerifyRetFaceMismatch},
		{VerifyRetLiveness, wechattest.VerifyRetLiveness},
		{VerifyRetNotFinished, wechattest.VerifyRetNotFinished},
		{errcodeFaceBadVerifyID, wechattest.ErrcodeFaceBadVerifyID},
		{errcodeFaceCertHash, wechattest.ErrcodeFaceCertHash},
		{errcodeFaceExpired, wechattest.ErrcodeFaceExpired},
		{errcodeFaceOwner, wechattest.ErrcodeFaceOwner},
		{errcodeFaceBadVerifyResult, wechattest.ErrcodeFaceBadVerifyResult},
	} {
		if p[0] != p[1] {
			t.Errorf("client code %d, fake code %d: the tables disagree", p[0], p[1])
		}
	}
}

// faceAPIs are the three face calls, each run against a fresh
// verification that the phone passed; ok reports a passed result.
var faceAPIs = []tokenAPI{
	{"FaceVerifyID", wechattest.PathFaceGetVerifyID, func(f *fixture) (bool, error) {
		id, _, err := f.c.FaceVerifyID(context.Background(), "seq-e", f.srv.User("xena").OpenID, testCert)
		return id != "", err
	}},
	{"FaceQueryResult", wechattest.PathFaceQueryVerify, func(f *fixture) (bool, error) {
		verifyID, openid := f.startFace("xena", "seq-e")
		f.requestFacialVerify(verifyID, "pass")
		r, err := f.c.FaceQueryResult(context.Background(), verifyID, "seq-e", CertHash(testCert), openid)
		return r.Passed, err
	}},
	{"FaceGetInfo", wechattest.PathFaceGetInfo, func(f *fixture) (bool, error) {
		verifyID, _ := f.startFace("xena", "seq-e")
		r, err := f.c.FaceGetInfo(context.Background(), f.requestFacialVerify(verifyID, "pass"))
		return r.Passed, err
	}},
}

// TestFaceErrcodes maps each errcode the face APIs answer (injected with
// FailNext) to its error, with the token refresh and retries of the other
// token APIs.
func TestFaceErrcodes(t *testing.T) {
	type want struct {
		kind     authcore.Kind // KindInternal: no error
		requests int
	}
	type errcase struct {
		errcode, n int
		want       want
	}
	common := []errcase{
		{0, 0, want{authcore.KindInternal, 1}},                // nothing injected
		{40001, 1, want{authcore.KindInternal, 2}},            // token refused once: refreshed and retried
		{42001, 1, want{authcore.KindInternal, 2}},            //
		{40014, 1, want{authcore.KindInternal, 2}},            //
		{40001, 2, want{authcore.KindUpstreamUnavailable, 2}}, // refused again after the refresh
		{42001, 2, want{authcore.KindUpstreamUnavailable, 2}}, //
		{40014, 2, want{authcore.KindUpstreamUnavailable, 2}}, //
		{-1, 2, want{authcore.KindInternal, 3}},               // busy twice, then an answer
		{-1, 3, want{authcore.KindUpstreamUnavailable, 3}},    // busy throughout
		{45011, 1, want{authcore.KindRateLimited, 1}},         //
		{45009, 1, want{authcore.KindRateLimited, 1}},         //
		{40226, 1, want{authcore.KindForbidden, 1}},           //
		{40003, 1, want{authcore.KindInvalid, 1}},             // openid not of this app: the caller's mistake
		{40097, 1, want{authcore.KindUpstreamUnavailable, 1}}, // invalid args: we validate first, so a bug of ours
		{47001, 1, want{authcore.KindUpstreamUnavailable, 1}}, //
		{48001, 1, want{authcore.KindUpstreamUnavailable, 1}}, // face API not enabled for the app
		{41001, 1, want{authcore.KindUpstreamUnavailable, 1}}, //
		{99999, 1, want{authcore.KindUpstreamUnavailable, 1}}, // unknown
		{90001, 1, want{authcore.KindUpstreamUnavailable, 1}}, // a verify_ret as errcode: unknown errcode
	}
	specific := map[string][]errcase{
		"FaceQueryResult": {
			{wechattest.ErrcodeFaceBadVerifyID, 1, want{authcore.KindUnauthorized, 1}},
			{wechattest.ErrcodeFaceCertHash, 1, want{authcore.KindUnauthorized, 1}},
			{wechattest.ErrcodeFaceOwner, 1, want{authcore.KindUnauthorized, 1}},
			{wechattest.ErrcodeFaceExpired, 1, want{authcore.KindExpired, 1}},
		},
		"FaceGetInfo": {
			{wechattest.ErrcodeFaceBadVerifyResult, 1, want{authcore.KindUnauthorized, 1}},
			{wechattest.ErrcodeFaceExpired, 1, want{authcore.KindExpired, 1}},
		},
	}
	for _, api := range faceAPIs {
		for _, tt := range append(common[:len(common):len(common)], specific[api.name]...) {
			t.Run(fmt.Sprintf("%s/%d×%d", api.name, tt.errcode, tt.n), func(t *testing.T) {
				srv := &wechattest.Server{}
				f := newFixture(t, srv, nil)
				srv.FailNext(api.path, tt.errcode, tt.n)
				ok, err := api.call(f)
				if tt.want.kind == authcore.KindInternal {
					if err != nil || !ok {
						t.Fatalf("got %v, %v; want success", ok, err)
					}
				} else {
					e := wantKind(t, api.name, err, tt.want.kind)
					if !strings.Contains(e.Err.Error(), fmt.Sprint(tt.errcode)) {
						t.Errorf("cause %q does not name errcode %d", e.Err, tt.errcode)
					}
				}
				f.checkOneCall(t, api.path, tt.want.requests)
			})
		}
	}
}

// TestFaceFakeErrors: the errcodes the fake itself answers when the
// arguments do not match its records, not injected ones.
func TestFaceFakeErrors(t *testing.T) {
	clk := newTestClock()
	srv := &wechattest.Server{}
	srv.SetClock(clk.now)
	f := clockedNode(t, srv, clk, nil)
	ctx := context.Background()
	verifyID, openid := f.startFace("yara", "seq-y")
	hash := CertHash(testCert)
	other := srv.User("zeke").OpenID

	check := func(what string, err error, kind authcore.Kind, errcode int) {
		t.Helper()
		e := wantKind(t, what, err, kind)
		if e.Err == nil || !strings.Contains(e.Err.Error(), fmt.Sprint(errcode)) {
			t.Errorf("%s: cause %v, want errcode %d", what, e.Err, errcode)
		}
	}
	_, _, err := f.c.FaceVerifyID(ctx, "seq-y", "oNotAUserOfThisAppAtAll1234", testCert)
	check("unknown openid", err, authcore.KindInvalid, 40003)
	_, err = f.c.FaceQueryResult(ctx, "unknownVerifyID", "seq-y", hash, openid)
	check("unknown verify_id", err, authcore.KindUnauthorized, wechattest.ErrcodeFaceBadVerifyID)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-y", CertHash(CertInfo{"李四", testCert.IDNumber}), openid)
	check("cert_hash of another name", err, authcore.KindUnauthorized, wechattest.ErrcodeFaceCertHash)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-y", CertHash(CertInfo{testCert.Name, "440524188001010014"}), openid)
	check("cert_hash of another ID number", err, authcore.KindUnauthorized, wechattest.ErrcodeFaceCertHash)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-other", hash, openid)
	check("another out_seq_no", err, authcore.KindUnauthorized, wechattest.ErrcodeFaceOwner)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-y", hash, other)
	check("another openid", err, authcore.KindUnauthorized, wechattest.ErrcodeFaceOwner)
	_, err = f.c.FaceGetInfo(ctx, "unknownVerifyResult")
	check("unknown verify_result", err, authcore.KindUnauthorized, wechattest.ErrcodeFaceBadVerifyResult)

	// A lowercase check character x is sent, and hashed, as X.
	lower := CertInfo{testCert.Name, strings.ToLower(testCert.IDNumber)}
	if CertHash(lower) != hash {
		t.Error("CertHash differs for a lowercase x")
	}
	lowerID, _, err := f.c.FaceVerifyID(ctx, "seq-x", openid, lower)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.FaceQueryResult(ctx, lowerID, "seq-x", hash, openid); err != nil {
		t.Errorf("verify_id started with a lowercase x, queried with CertHash: %v", err)
	}

	// Lifetimes, on the fake's clock.
	clk.add(59 * time.Minute)
	verifyResult := f.requestFacialVerify(verifyID, "pass")
	if r, err := f.c.FaceQueryResult(ctx, verifyID, "seq-y", hash, openid); err != nil || !r.Passed {
		t.Errorf("after 59 minutes: %+v, %v; want a pass", r, err)
	}
	clk.add(time.Minute)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-y", hash, openid)
	check("verify_id after 1h", err, authcore.KindExpired, wechattest.ErrcodeFaceExpired)
	if r, err := f.c.FaceGetInfo(ctx, verifyResult); err != nil || !r.Passed {
		t.Errorf("verify_result 1 minute after the check: %+v, %v; want a pass", r, err)
	}
	clk.add(time.Hour)
	_, err = f.c.FaceGetInfo(ctx, verifyResult)
	check("verify_result after 1h", err, authcore.KindExpired, wechattest.ErrcodeFaceExpired)
}

// TestFaceRejectsBadInput: malformed input fails with KindInvalid before
// any request, the token fetch included.
func TestFaceRejectsBadInput(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	openid := srv.User("abe").OpenID
	badIDs := []string{
		"110105194912310021", // testCert with a wrong check character
		"11010519491231002Y", "11010519491231002", "11010519491231002XX",
		"1101051949123100 X", "A1010519491231002X", "", "１１０１０５１９４９１２３１００２X",
		"310104198506150010", // check character should be 5
	}
	for _, id := range badIDs {
		_, _, err := f.c.FaceVerifyID(ctx, "seq", openid, CertInfo{testCert.Name, id})
		e := wantKind(t, fmt.Sprintf("ID number %q", id), err, authcore.KindInvalid)
		if e.Message != "invalid ID number" {
			t.Errorf("ID number %q: message %q, want %q", id, e.Message, "invalid ID number")
		}
		if id != "" && strings.Contains(err.Error(), id) {
			t.Errorf("error %q echoes the ID number", err)
		}
	}
	for _, name := range []string{"", strings.Repeat("张", MaxCertNameLength+1), "张\x00三", "\t张三", "张\n三", "   ", "\xff\xfe"} {
		_, _, err := f.c.FaceVerifyID(ctx, "seq", openid, CertInfo{name, testCert.IDNumber})
		wantKind(t, fmt.Sprintf("name %q", name), err, authcore.KindInvalid)
		if name != "" && strings.Contains(err.Error(), name) {
			t.Errorf("error %q echoes the name", err)
		}
	}
	for _, tc := range []struct{ seq, openid string }{
		{"", openid}, {strings.Repeat("s", MaxOutSeqNoLength+1), openid}, {"seq 1", openid}, {"seq/1", openid},
		{"seq", ""}, {"seq", "o&x=1"}, {"seq", strings.Repeat("o", 129)},
	} {
		_, _, err := f.c.FaceVerifyID(ctx, tc.seq, tc.openid, testCert)
		wantKind(t, fmt.Sprintf("FaceVerifyID(%q, %q)", tc.seq, tc.openid), err, authcore.KindInvalid)
	}
	hash := CertHash(testCert)
	for _, tc := range []struct{ verifyID, seq, hash, openid string }{
		{"", "seq", hash, openid}, {"a b", "seq", hash, openid}, {"a\x7f", "seq", hash, openid},
		{strings.Repeat("v", 1025), "seq", hash, openid},
		{"vid", "", hash, openid}, {"vid", "s=1", hash, openid},
		{"vid", "seq", "", openid}, {"vid", "seq", hash[:63], openid}, {"vid", "seq", "zz" + hash[2:], openid},
		{"vid", "seq", hash, ""}, {"vid", "seq", hash, "o x"},
	} {
		_, err := f.c.FaceQueryResult(ctx, tc.verifyID, tc.seq, tc.hash, tc.openid)
		wantKind(t, fmt.Sprintf("FaceQueryResult(%q, %q, %q, %q)", tc.verifyID, tc.seq, tc.hash, tc.openid), err, authcore.KindInvalid)
	}
	for _, vr := range []string{"", "a b", "a\nb", "é", strings.Repeat("r", 1025)} {
		_, err := f.c.FaceGetInfo(ctx, vr)
		wantKind(t, fmt.Sprintf("FaceGetInfo(%q)", vr), err, authcore.KindInvalid)
	}
	for _, p := range facePaths {
		if n := srv.Requests(p); n != 0 {
			t.Errorf("%s: %d requests for bad input, want none", p, n)
		}
	}
}

func TestValidIDNumber(t *testing.T) {
	for _, id := range []string{"11010519491231002X", "11010519491231002x", "440524188001010014", "110101199003074477"} {
		if !ValidIDNumber(id) {
			t.Errorf("ValidIDNumber(%q) = false, want true", id)
		}
	}
	// MOD 11-2 catches every single-digit error: change each of the 17
	// digits of valid numbers to every other digit.
	for _, id := range []string{"11010519491231002X", "440524188001010014"} {
		for i := range 17 {
			for d := byte('0'); d <= '9'; d++ {
				if d == id[i] {
					continue
				}
				bad := id[:i] + string(d) + id[i+1:]
				if ValidIDNumber(bad) {
					t.Errorf("ValidIDNumber(%q) = true (digit %d of %q changed)", bad, i, id)
				}
			}
		}
	}
}

// TestCertHashKnownAnswer checks CertHash against a value computed outside
// Go (Python's hashlib and base64) and against the recipe spelled out
// here.
func TestCertHashKnownAnswer(t *testing.T) {
	const (
		plain = "cert_type=SURFTlRJVFlfQ0FSRA==&cert_name=5byg5LiJ&cert_no=MTEwMTA1MTk0OTEyMzEwMDJY"
		want  = "471b502b022b21f3e120c5deb08295259bd77cac82956ebffc055c6fced73ce0"
	)
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	if got := "cert_type=" + b64("IDENTITY_CARD") + "&cert_name=" + b64(testCert.Name) + "&cert_no=" + b64(testCert.IDNumber); got != plain {
		t.Fatalf("the test's recipe gives %q, want %q", got, plain)
	}
	sum := sha256.Sum256([]byte(plain))
	if hex.EncodeToString(sum[:]) != want {
		t.Fatal("the test's known answer is wrong")
	}
	if got := CertHash(testCert); got != want {
		t.Errorf("CertHash(testCert) = %s, want %s", got, want)
	}
	// Padding of every length, and a name whose base64 has + and /.
	for _, c := range []CertInfo{{"A", "440524188001010014"}, {"ÿÿÿ", "440524188001010014"}, {"阿依古丽·买买提", "110101199003074477"}} {
		s := sha256.Sum256([]byte("cert_type=" + b64("IDENTITY_CARD") + "&cert_name=" + b64(c.Name) + "&cert_no=" + b64(c.IDNumber)))
		if got := CertHash(c); got != hex.EncodeToString(s[:]) {
			t.Errorf("CertHash(%d-rune name) = %s, want %x", len([]rune(c.Name)), got, s)
		}
	}
}

// TestFacePersonalDataStaysOutOfLogs: the name, the ID number and what
// reverses to them (their base64, cert_hash, the md5s) never reach the log
// or an error, nor do verify_ids and verify_results in full, on success,
// on errcodes, on token refreshes and on transport failures.
func TestFacePersonalDataStaysOutOfLogs(t *testing.T) {
	srv := &wechattest.Server{}
	f := newFixture(t, srv, nil)
	ctx := context.Background()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	srv.FailNext(wechattest.PathFaceGetVerifyID, 40001, 1) // refresh, then success
	verifyID, openid := f.startFace("bea", "seq-l")
	verifyResult := f.requestFacialVerify(verifyID, "mismatch")
	hash := CertHash(testCert)
	_, err := f.c.FaceQueryResult(ctx, verifyID, "seq-l", hash, openid)
	keep(err)
	_, err = f.c.FaceGetInfo(ctx, verifyResult)
	keep(err)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-l", CertHash(CertInfo{"李四", testCert.IDNumber}), openid)
	keep(err)
	srv.FailNextHTTP(wechattest.PathFaceQueryVerify, 502, 3)
	_, err = f.c.FaceQueryResult(ctx, verifyID, "seq-l", hash, openid)
	keep(err)
	for _, fail := range [][2]int{{40003, 1}, {48001, 1}, {-1, 3}} {
		srv.FailNext(wechattest.PathFaceGetVerifyID, fail[0], fail[1])
		_, _, err = f.c.FaceVerifyID(ctx, "seq-l", openid, testCert)
		keep(err)
	}
	_, _, err = f.c.FaceVerifyID(ctx, "seq-l", openid, CertInfo{testCert.Name, "110105194912310021"})
	keep(err)
	if len(errs) < 6 {
		t.Fatalf("only %d errors collected", len(errs))
	}

	// A Logger of the caller's own, and fmt, show a CertInfo redacted.
	logs := f.log.String()
	slog.New(slog.NewTextHandler(f.log, nil)).Info("caller", "cert", testCert)
	printed := fmt.Sprintf("%v %+v %#v %s", testCert, testCert, testCert, testCert)

	secrets := map[string]string{
		"name": testCert.Name, "ID number": testCert.IDNumber, "ID number body": testCert.IDNumber[:17],
		"base64 name": base64.StdEncoding.EncodeToString([]byte(testCert.Name)),
		"base64 ID":   base64.StdEncoding.EncodeToString([]byte(testCert.IDNumber)),
		"cert_hash":   hash, "cert_hash prefix": hash[:16],
		"ID md5": md5Hex(testCert.IDNumber), "name md5": md5Hex(testCert.Name),
		"verify_id": verifyID, "verify_result": verifyResult,
	}
	for _, want := range []string{"face_getverifyid", "face_queryverifyinfo", "face_getinfo", "refreshing_token", `"cert":"[redacted]"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("log lacks %q; is the test looking at the right log?\n%s", want, logs)
		}
	}
	logs = f.log.String()
	for what, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("log contains the %s", what)
		}
		if strings.Contains(printed, s) {
			t.Errorf("fmt of a CertInfo shows the %s: %s", what, printed)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains the %s", err, what)
			}
			var e *authcore.Error
			if errors.As(err, &e) && strings.Contains(e.Message, s) {
				t.Errorf("client message %q contains the %s", e.Message, what)
			}
		}
	}
}

// TestFaceOddAnswers: answers the fake never gives but WeChat might.
func TestFaceOddAnswers(t *testing.T) {
	srv := &wechattest.Server{}
	answers := map[string]string{}
	var mu sync.Mutex
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		body, ok := answers[r.URL.Path]
		mu.Unlock()
		if !ok {
			srv.ServeHTTP(w, r) // the access_token
			return
		}
		w.Write([]byte(body))
	}))
	t.Cleanup(ts.Close)
	f := newFixture(t, srv, func(c *Config) { c.BaseURL = ts.URL })
	answer := func(path, body string) {
		mu.Lock()
		defer mu.Unlock()
		answers[path] = body
	}
	ctx := context.Background()
	openid := srv.User("cy").OpenID

	answer(wechattest.PathFaceGetVerifyID, `{"errcode":0,"errmsg":"ok","expires_in":3600}`)
	_, _, err := f.c.FaceVerifyID(ctx, "seq", openid, testCert)
	wantKind(t, "getverifyid without verify_id", err, authcore.KindUpstreamUnavailable)
	answer(wechattest.PathFaceGetVerifyID, `{"verify_id":"v-1"}`)
	if id, exp, err := f.c.FaceVerifyID(ctx, "seq", openid, testCert); id != "v-1" || exp != FaceVerifyIDLifetime || err != nil {
		t.Errorf("without errcode and expires_in: %q, %v, %v; want v-1, %v", id, exp, err, FaceVerifyIDLifetime)
	}

	answer(wechattest.PathFaceQueryVerify, `{"errcode":0,"errmsg":"ok"}`)
	_, err = f.c.FaceQueryResult(ctx, "v-1", "seq", CertHash(testCert), openid)
	wantKind(t, "queryverifyinfo without verify_ret", err, authcore.KindUpstreamUnavailable)

	answer(wechattest.PathFaceGetInfo, `{"errcode":0,"openid":"o1"}`)
	_, err = f.c.FaceGetInfo(ctx, "r-1")
	wantKind(t, "getinfo without identify_ret", err, authcore.KindUpstreamUnavailable)
	answer(wechattest.PathFaceGetInfo, `{"identify_ret":0,"openid":"o1","identify_time":"1700000000"}`)
	if r, err := f.c.FaceGetInfo(ctx, "r-1"); err != nil || !r.Passed || r.IdentifyTime.Unix() != 1700000000 || r.Matches(testCert) {
		t.Errorf("identify_time as a string, no md5s: %+v, %v; want a pass at 1700000000 that matches nobody", r, err)
	}
	answer(wechattest.PathFaceGetInfo, `{"identify_ret":0,"identify_time":"soon"}`)
	_, err = f.c.FaceGetInfo(ctx, "r-1")
	wantKind(t, "garbage identify_time", err, authcore.KindUpstreamUnavailable)
}
