package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

type sessionsList struct {
	Sessions []authcore.SessionInfo `json:"sessions"`
}

type loginsList struct {
	Logins []authcore.LoginAttempt `json:"logins"`
}

// TestDevicesEndToEnd: logins from two devices are listed with their
// method, device, masked address and which is the caller's; revoking the
// other one and logging out everywhere refuse their tokens; the login
// history lists attempts newest first with their outcomes; a malformed
// device_id is refused on every login.
func TestDevicesEndToEnd(t *testing.T) {
	h := startHub(t, nil)
	const phone, pw = "+8613800138077", "correct horse battery"
	const devA, devB = "device-A-0123456789abcdef", "device-B-0123456789abcdef"
	a, b := client("127.0.0.1"), client("127.0.0.2")
	smsLogin := func(c *http.Client, device string) authcore.Session {
		t.Helper()
		mustStatus(t, "POST /v1/sms/code", sendCode(t, h.URL, phone), 202)
		r := call(t, c, "POST", h.URL+"/v1/sms/login", "", map[string]string{"phone": phone, "code": lastCode(t, h.URL, phone), "device_id": device},
			"User-Agent", "Phone A/1.0")
		mustStatus(t, "POST /v1/sms/login", r, 200)
		var s authcore.Session
		r.decode(t, &s)
		return s
	}
	pwdLogin := func(c *http.Client, device string) authcore.Session {
		t.Helper()
		r := call(t, c, "POST", h.URL+"/v1/password/login", "", map[string]string{"login": "dev.user", "password": pw, "device_id": device})
		mustStatus(t, "POST /v1/password/login", r, 200)
		var s authcore.Session
		r.decode(t, &s)
		return s
	}
	onA := smsLogin(a, devA)
	mustStatus(t, "PUT /v1/me/username", call(t, a, "PUT", h.URL+"/v1/me/username", onA.AccessToken, map[string]string{"username": "dev.user"}), 204)
	mustStatus(t, "PUT /v1/me/password", putPassword(t, h.URL, onA.AccessToken, map[string]string{"password": pw}), 204)
	r := call(t, b, "POST", h.URL+"/v1/password/login", "", map[string]string{"login": "dev.user", "password": "not the password", "device_id": devB})
	mustStatus(t, "wrong password", r, 401)
	r = call(t, b, "POST", h.URL+"/v1/password/login", "", map[string]string{"login": "dev.user", "password": pw, "device_id": devB},
		"User-Agent", "Desktop B/2.0")
	mustStatus(t, "password login", r, 200)
	var onB authcore.Session
	r.decode(t, &onB)

	list := func(token string) sessionsList {
		t.Helper()
		r := call(t, b, "GET", h.URL+"/v1/me/sessions", token, nil)
		mustStatus(t, "GET /v1/me/sessions", r, 200)
		var l sessionsList
		r.decode(t, &l)
		return l
	}
	l := list(onB.AccessToken)
	if len(l.Sessions) != 2 {
		t.Fatalf("sessions: %+v, want 2", l.Sessions)
	}
	byDevice := map[string]authcore.SessionInfo{}
	for _, s := range l.Sessions {
		byDevice[s.DeviceID] = s
		if s.IPMasked != "127.0.0.*" || s.Region == "" || s.ID == "" || s.CreatedAt.IsZero() || s.LastUsedAt.IsZero() ||
			strings.Contains(s.ID, ".") || strings.Contains(onB.AccessToken, s.ID) == strings.Contains(onA.AccessToken, s.ID) {
			t.Errorf("session %+v: want a masked address, a region, times and a public id", s)
		}
	}
	sa, sb := byDevice[devA], byDevice[devB]
	if sa.Method != "sms" || sa.Current || sa.UserAgent != "Phone A/1.0" || sb.Method != "pwd" || !sb.Current || sb.UserAgent != "Desktop B/2.0" {
		t.Fatalf("sessions: A %+v, B %+v; want A sms not current, B pwd current", sa, sb)
	}

	// Revoke A from B: A's token is refused, B's works; a second revoke
	// and another user's session are 404.
	mustStatus(t, "DELETE A", call(t, b, "DELETE", h.URL+"/v1/me/sessions/"+sa.ID, onB.AccessToken, nil), 204)
	if st, _ := me(t, h.URL, onA.AccessToken); st != 401 {
		t.Errorf("the revoked session: %d, want 401", st)
	}
	if st, _ := me(t, h.URL, onB.AccessToken); st != 200 {
		t.Errorf("the revoking session: %d, want 200", st)
	}
	mustStatus(t, "DELETE A again", call(t, b, "DELETE", h.URL+"/v1/me/sessions/"+sa.ID, onB.AccessToken, nil), 404)
	stranger := smsSession(t, h.URL, "+8613800138078")
	strangers := list(stranger.AccessToken).Sessions
	if len(strangers) != 1 || !strangers[0].Current {
		t.Fatalf("the stranger's sessions: %+v", strangers)
	}
	mustStatus(t, "DELETE another user's session", call(t, b, "DELETE", h.URL+"/v1/me/sessions/"+strangers[0].ID, onB.AccessToken, nil), 404)
	mustStatus(t, "DELETE a malformed id", call(t, b, "DELETE", h.URL+"/v1/me/sessions/x.y", onB.AccessToken, nil), 404)

	// Logout everywhere.
	again := pwdLogin(a, devA)
	if n := len(list(again.AccessToken).Sessions); n != 2 {
		t.Errorf("sessions before logout all: %d, want 2", n)
	}
	mustStatus(t, "logout all", call(t, a, "POST", h.URL+"/v1/session/logout", again.AccessToken, map[string]bool{"all": true}), 204)
	for name, tok := range map[string]string{"B": onB.AccessToken, "the caller": again.AccessToken} {
		if st, _ := me(t, h.URL, tok); st != 401 {
			t.Errorf("%s after logout all: %d, want 401", name, st)
		}
	}
	if st, _ := me(t, h.URL, stranger.AccessToken); st != 200 {
		t.Errorf("another user's session after logout all: %d, want 200", st)
	}
	mustStatus(t, "logout all with a dead token", call(t, a, "POST", h.URL+"/v1/session/logout", again.AccessToken, map[string]bool{"all": true}), 401)

	// The login history, newest first.
	last := pwdLogin(a, devA)
	r = call(t, a, "GET", h.URL+"/v1/me/logins", last.AccessToken, nil)
	mustStatus(t, "GET /v1/me/logins", r, 200)
	var hist loginsList
	r.decode(t, &hist)
	want := []struct{ method, outcome, device string }{
		{"pwd", "ok", devA}, {"pwd", "ok", devA}, {"pwd", "ok", devB}, {"pwd", "failed", devB}, {"sms", "ok", devA},
	}
	if len(hist.Logins) != len(want) {
		t.Fatalf("logins: %+v, want %d", hist.Logins, len(want))
	}
	for i, w := range want {
		g := hist.Logins[i]
		if g.Method != w.method || g.Outcome != w.outcome || g.DeviceID != w.device || g.IPMasked != "127.0.0.*" || g.Region == "" ||
			(i > 0 && g.At.After(hist.Logins[i-1].At)) {
			t.Errorf("logins[%d] = %+v, want %+v", i, g, w)
		}
	}
	// Neither the full address nor the phone, not even masked, in any
	// field (the timestamps are left out: their digits may spell anything).
	if strings.Contains(string(r.Body), "127.0.0.1") || strings.Contains(string(r.Body), "13800138077") {
		t.Errorf("the login history shows a full address or the phone: %s", r.Body)
	}
	for i, g := range hist.Logins {
		for _, f := range []string{g.Method, g.Outcome, g.IPMasked, g.Region, g.DeviceID} {
			if strings.Contains(f, "8077") || strings.Contains(f, "****") {
				t.Errorf("logins[%d] shows the phone: %+v", i, g)
			}
		}
	}

	// A malformed device_id is refused on every login.
	for _, bad := range []string{"short", strings.Repeat("d", 65), "has spaces in it, sixteen+"} {
		for path, body := range map[string]map[string]string{
			"/v1/sms/login":                          {"phone": phone, "code": "123456", "device_id": bad},
			"/v1/password/login":                     {"login": "dev.user", "password": pw, "device_id": bad},
			"/v1/wx/login":                           {"code": "any", "device_id": bad},
			"/v1/qr/tickets/AAAAAAAAAAAAAAAA/redeem": {"device_id": bad},
		} {
			tok := ""
			if strings.HasSuffix(path, "/redeem") {
				tok = "some-watch-secret"
			}
			if r := call(t, a, "POST", h.URL+path, tok, body); r.Status != 400 {
				t.Errorf("%s with device_id %q: %d %s, want 400", path, bad, r.Status, r.Body)
			}
		}
	}
}
