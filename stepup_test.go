package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// TestStepUpRequireFace: GET /v1/me?require=face&max_age=300 is 401
// step_up_required (methods [face]) before a face check and 200 right
// after, with amr and auth_time; a check older than max_age is 401 again
// (the face check is made 25 s in the past through the fake WeChat's
// clock and the legacy verify_result, whose identify_time is WeChat's, and
// asked with max_age=10: no sleeping); bad parameters are 400.
func TestStepUpRequireFace(t *testing.T) {
	w := startWxHub(t)
	c := client("")
	s := w.login(t, "mei")
	me := func(query string) apiResponse {
		return call(t, c, "GET", w.URL+"/v1/me"+query, s.AccessToken, nil)
	}
	type stepUpBody struct {
		Error   string `json:"error"`
		Message string `json:"message"`
		StepUp  struct {
			Methods []string `json:"methods"`
		} `json:"step_up"`
	}
	wantStepUp := func(what string, r apiResponse) {
		t.Helper()
		var b stepUpBody
		r.decode(t, &b)
		if r.Status != 401 || b.Error != "step_up_required" || b.Message == "" || !slices.Equal(b.StepUp.Methods, []string{"face"}) {
			t.Fatalf("%s: %d %s, want 401 step_up_required with a message and methods [face]", what, r.Status, r.Body)
		}
	}
	type meBody struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
		Session struct {
			AMR      []string   `json:"amr"`
			FaceAt   *time.Time `json:"face_at"`
			AuthTime *time.Time `json:"auth_time"`
		} `json:"session"`
	}
	faceCheck := func(legacy bool) {
		t.Helper()
		r := call(t, c, "POST", w.URL+"/v1/face/verify-id", s.AccessToken, map[string]string{"name": "王美", "id_number": idNumber("11010519491231002")})
		mustStatus(t, "face verify-id", r, 200)
		var v struct {
			VerifyID string `json:"verify_id"`
		}
		r.decode(t, &v)
		vr := w.playFace(t, v.VerifyID, "pass")
		body := map[string]string{"verify_id": v.VerifyID}
		if legacy {
			body["verify_result"] = vr
		}
		mustStatus(t, "face result", call(t, c, "POST", w.URL+"/v1/face/result", s.AccessToken, body), 200)
	}

	r := me("")
	mustStatus(t, "/v1/me without require", r, 200)
	var plain meBody
	r.decode(t, &plain)
	if plain.User.ID == "" || !slices.Equal(plain.Session.AMR, []string{"wx"}) || plain.Session.AuthTime == nil || plain.Session.FaceAt != nil {
		t.Fatalf("/v1/me after wx.login: %s, want the user, amr [wx], auth_time and no face_at", r.Body)
	}
	wantStepUp("before a face check", me("?require=face&max_age=300"))

	faceCheck(false)
	r = me("?require=face&max_age=300")
	mustStatus(t, "right after a face check", r, 200)
	var after meBody
	r.decode(t, &after)
	if after.User.ID != plain.User.ID || !slices.Contains(after.Session.AMR, "face") || after.Session.FaceAt == nil || after.Session.AuthTime == nil {
		t.Fatalf("/v1/me right after a face check: %s, want the same user, amr with face, face_at and auth_time", r.Body)
	}

	// A check that happened 25 s ago, as WeChat's identify_time says.
	w.fake.SetClock(func() time.Time { return time.Now().Add(-25 * time.Second) })
	faceCheck(true)
	w.fake.SetClock(nil)
	wantStepUp("a face check older than max_age", me("?require=face&max_age=10"))
	mustStatus(t, "the same check within a longer max_age", me("?require=face&max_age=300"), 200)

	for _, q := range []string{
		"?require=retina&max_age=300", "?require=sms&max_age=300", "?require=face", "?max_age=300",
		"?require=face&max_age=0", "?require=face&max_age=-5", "?require=face&max_age=+5", "?require=face&max_age=1.5",
		"?require=face&max_age=abc", "?require=face&max_age=86401", "?require=face&max_age=99999999999999999999",
	} {
		r := me(q)
		if r.Status != 400 || !strings.Contains(string(r.Body), `"error":"invalid_request"`) {
			t.Errorf("/v1/me%s: %d %s, want 400 invalid_request", q, r.Status, r.Body)
		}
	}
	mustStatus(t, "max_age of a day", me("?require=face&max_age=86400"), 200)
}

// TestStepUpMetrics: each answer of WeChat's face verifier is counted in
// the internal /metrics by verifier and outcome, and timed.
func TestStepUpMetrics(t *testing.T) {
	w := startWxHub(t, map[string]string{"LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})
	c := client("")
	s := w.login(t, "yun")
	start := func() string {
		t.Helper()
		r := call(t, c, "POST", w.URL+"/v1/face/verify-id", s.AccessToken, map[string]string{"name": "李云", "id_number": idNumber("11010519491231002")})
		mustStatus(t, "face verify-id", r, 200)
		var v struct {
			VerifyID string `json:"verify_id"`
		}
		r.decode(t, &v)
		return v.VerifyID
	}
	result := func(body map[string]string) apiResponse {
		return call(t, c, "POST", w.URL+"/v1/face/result", s.AccessToken, body)
	}

	vid := start()
	mustStatus(t, "before the phone played it (pending)", result(map[string]string{"verify_id": vid}), 409)
	vr := w.playFace(t, vid, "pass")
	mustStatus(t, "after a pass", result(map[string]string{"verify_id": vid, "verify_result": vr}), 200)
	mustStatus(t, "the same verify_result again (rejected)", result(map[string]string{"verify_id": start(), "verify_result": vr}), 403)
	vid = start()
	w.playFace(t, vid, "mismatch")
	mustStatus(t, "a face that did not match", result(map[string]string{"verify_id": vid}), 403)
	vid = start()
	w.playFace(t, vid, "pass")
	w.fake.FailNext(wechattest.PathFaceQueryVerify, -1, 3) // busy on every attempt
	mustStatus(t, "WeChat busy", result(map[string]string{"verify_id": vid}), 503)

	metrics := string(call(t, client(""), "GET", internalURL(t, w.logs)+"/metrics", "", nil).Body)
	for _, series := range []string{
		`loginhub_stepup_checks_total{method="face",outcome="pending",verifier="wechat_face"} 1`,
		`loginhub_stepup_checks_total{method="face",outcome="pass",verifier="wechat_face"} 1`,
		`loginhub_stepup_checks_total{method="face",outcome="rejected",verifier="wechat_face"} 1`,
		`loginhub_stepup_checks_total{method="face",outcome="fail",verifier="wechat_face"} 1`,
		`loginhub_stepup_checks_total{method="face",outcome="error",verifier="wechat_face"} 1`,
		`loginhub_stepup_check_seconds_count{verifier="wechat_face"} 5`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}
