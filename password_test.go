package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/loginhub/loginhub/authcore"
)

// smsSession logs phone in with an SMS code from the sandbox.
func smsSession(t testing.TB, base string, phone string) authcore.Session {
	t.Helper()
	mustStatus(t, "POST /v1/sms/code", sendCode(t, base, phone), 202)
	r := call(t, client(""), "POST", base+"/v1/sms/login", "", map[string]string{"phone": phone, "code": lastCode(t, base, phone)})
	mustStatus(t, "POST /v1/sms/login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

func passwordLogin(t testing.TB, base string, login, password string) apiResponse {
	t.Helper()
	return call(t, client(""), "POST", base+"/v1/password/login", "", map[string]string{"login": login, "password": password})
}

func putPassword(t testing.TB, base string, token string, body map[string]string) apiResponse {
	t.Helper()
	return call(t, client(""), "PUT", base+"/v1/me/password", token, body)
}

// me returns GET /v1/me's status and session facts.
func me(t testing.TB, base string, token string) (int, authcore.SessionFacts) {
	t.Helper()
	r := call(t, client(""), "GET", base+"/v1/me", token, nil)
	var body struct {
		Session authcore.SessionFacts `json:"session"`
	}
	if r.Status == 200 {
		r.decode(t, &body)
	}
	return r.Status, body.Session
}

func TestPasswordEndToEnd(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	const phone, pw, pw2 = "+8613800138000", "correct horse battery", "staple and hinge 42"
	first := smsSession(t, h.URL, phone)

	// Username: rules, then set; setting it again is fine.
	for _, bad := range []string{"ab", "Alice", "al ice", "13800138000", strings.Repeat("a", 33)} {
		r := call(t, c, "PUT", h.URL+"/v1/me/username", first.AccessToken, map[string]string{"username": bad})
		if r.Status != 400 || !strings.Contains(string(r.Body), "a-z 0-9") {
			t.Errorf("username %q: %d %s, want 400 naming the rule", bad, r.Status, r.Body)
		}
	}
	for range 2 {
		r := call(t, c, "PUT", h.URL+"/v1/me/username", first.AccessToken, map[string]string{"username": "alice.w"})
		mustStatus(t, "PUT /v1/me/username", r, 204)
	}
	other := phoneLogin(t, h, "bob")
	r := call(t, c, "PUT", h.URL+"/v1/me/username", other.AccessToken, map[string]string{"username": "alice.w"})
	if r.Status != 409 || r.errorCode() != "conflict" {
		t.Errorf("another user taking the username: %d %s, want 409 conflict", r.Status, r.Body)
	}

	// Password rules, named in the message.
	for bad, rule := range map[string]string{"short1": "at least 8 characters", "password123": "common", "QWERTYUIOP": "common", "": "required"} {
		r := putPassword(t, h.URL, first.AccessToken, map[string]string{"password": bad})
		if r.Status != 400 || !strings.Contains(string(r.Body), rule) {
			t.Errorf("password %q: %d %s, want 400 saying %q", bad, r.Status, r.Body, rule)
		}
	}
	if r := passwordLogin(t, h.URL, "alice.w", pw); r.Status != 401 {
		t.Errorf("login before a password is set: %d %s, want 401", r.Status, r.Body)
	}
	mustStatus(t, "PUT /v1/me/password (first)", putPassword(t, h.URL, first.AccessToken, map[string]string{"password": pw}), 204)
	if st, _ := me(t, h.URL, first.AccessToken); st != 200 {
		t.Errorf("the caller's session after setting a password: %d, want it kept", st)
	}

	// Log in by username and by phone (any way of writing it).
	var byName, byPhone authcore.Session
	r = passwordLogin(t, h.URL, "alice.w", pw)
	mustStatus(t, "login by username", r, 200)
	r.decode(t, &byName)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("a session without Cache-Control: no-store")
	}
	r = passwordLogin(t, h.URL, "138 0013 8000", pw)
	mustStatus(t, "login by phone", r, 200)
	r.decode(t, &byPhone)
	if byName.User.ID != first.User.ID || byPhone.User.ID != first.User.ID || byName.AccessToken == "" || byName.RefreshToken == "" {
		t.Fatalf("password sessions of users %q and %q, want %q", byName.User.ID, byPhone.User.ID, first.User.ID)
	}
	if byPhone.User.PhoneMasked != "+86 138****8000" {
		t.Errorf("login by phone: phone_masked %q", byPhone.User.PhoneMasked)
	}
	if st, facts := me(t, h.URL, byName.AccessToken); st != 200 || len(facts.AMR) != 1 || facts.AMR[0] != "pwd" || facts.AuthTime == nil {
		t.Errorf("GET /v1/me of a password session: %d, amr %v, auth_time %v; want amr [pwd] and an auth_time", st, facts.AMR, facts.AuthTime)
	}

	// Renaming replaces the username: the old name stops logging in and
	// is free for another user.
	mustStatus(t, "renaming to alice.x", call(t, c, "PUT", h.URL+"/v1/me/username", first.AccessToken, map[string]string{"username": "alice.x"}), 204)
	var names []string
	for _, id := range identities(t, h, first.AccessToken) {
		if n, ok := strings.CutPrefix(id, "password "); ok {
			names = append(names, n)
		}
	}
	if len(names) != 1 || names[0] != "alice.x" {
		t.Errorf("usernames after renaming: %q, want [alice.x]", names)
	}
	mustStatus(t, "login by the new name", passwordLogin(t, h.URL, "alice.x", pw), 200)
	mustStatus(t, "login by the old name", passwordLogin(t, h.URL, "alice.w", pw), 401)
	mustStatus(t, "another user taking the old name", call(t, c, "PUT", h.URL+"/v1/me/username", other.AccessToken, map[string]string{"username": "alice.w"}), 204)
	mustStatus(t, "renaming back to a taken name", call(t, c, "PUT", h.URL+"/v1/me/username", first.AccessToken, map[string]string{"username": "alice.w"}), 409)

	// Unknown login and wrong password: the same answer.
	wrong := passwordLogin(t, h.URL, "alice.x", "not the password")
	unknown := passwordLogin(t, h.URL, "nobody.here", "not the password")
	unknownPhone := passwordLogin(t, h.URL, "+8613900139000", "not the password")
	if wrong.Status != 401 || unknown.Status != 401 || unknownPhone.Status != 401 ||
		string(wrong.Body) != string(unknown.Body) || string(wrong.Body) != string(unknownPhone.Body) {
		t.Errorf("wrong password %d %s, unknown login %d %s, unknown phone %d %s; want the same 401",
			wrong.Status, wrong.Body, unknown.Status, unknown.Body, unknownPhone.Status, unknownPhone.Body)
	}

	// Replacing the password needs the current one.
	r = putPassword(t, h.URL, byName.AccessToken, map[string]string{"password": pw2})
	if r.Status != 400 || !strings.Contains(string(r.Body), "current_password") {
		t.Errorf("replacing without current_password: %d %s, want 400 naming it", r.Status, r.Body)
	}
	r = putPassword(t, h.URL, byName.AccessToken, map[string]string{"password": pw2, "current_password": "not it at all"})
	if r.Status != 401 || r.errorCode() != "unauthorized" {
		t.Errorf("replacing with a wrong current_password: %d %s, want 401", r.Status, r.Body)
	}
	mustStatus(t, "PUT /v1/me/password (replace)", putPassword(t, h.URL, byName.AccessToken, map[string]string{"password": pw2, "current_password": pw}), 204)

	// It revoked the user's other sessions, not the caller's nor another user's.
	for name, tok := range map[string]string{"the SMS session": first.AccessToken, "the phone password session": byPhone.AccessToken} {
		if st, _ := me(t, h.URL, tok); st != 401 {
			t.Errorf("%s after a password change: %d, want 401 (revoked)", name, st)
		}
	}
	r = call(t, c, "POST", h.URL+"/v1/session/refresh", "", map[string]string{"refresh_token": byPhone.RefreshToken})
	if r.Status != 401 {
		t.Errorf("refreshing a revoked session: %d %s, want 401", r.Status, r.Body)
	}
	if st, _ := me(t, h.URL, byName.AccessToken); st != 200 {
		t.Errorf("the caller's session after a password change: %d, want 200", st)
	}
	if st, _ := me(t, h.URL, other.AccessToken); st != 200 {
		t.Errorf("another user's session after a password change: %d, want 200", st)
	}
	if r := passwordLogin(t, h.URL, "alice.x", pw); r.Status != 401 {
		t.Errorf("the old password: %d, want 401", r.Status)
	}
	mustStatus(t, "login with the new password", passwordLogin(t, h.URL, "alice.x", pw2), 200)
}

// TestPasswordLockout: the 6th failure within 15 minutes is 429 with
// Retry-After, even with the right password; an unknown login locks the
// same way, so that a lock tells nothing.
func TestPasswordLockout(t *testing.T) {
	h := startHub(t, nil)
	const pw = "correct horse battery"
	s := smsSession(t, h.URL, "+8613800138001")
	mustStatus(t, "PUT /v1/me/password", putPassword(t, h.URL, s.AccessToken, map[string]string{"password": pw}), 204)
	for _, login := range []string{"13800138001", "nobody.at.all"} {
		for i := range 5 {
			if r := passwordLogin(t, h.URL, login, "wrong password "+strconv.Itoa(i)); r.Status != 401 {
				t.Fatalf("%s: failure %d: %d %s, want 401", login, i+1, r.Status, r.Body)
			}
		}
		r := passwordLogin(t, h.URL, login, pw)
		if r.Status != 429 || r.errorCode() != "rate_limited" {
			t.Fatalf("%s: the 6th try: %d %s, want 429", login, r.Status, r.Body)
		}
		if sec, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || sec < 1 || sec > 15*60 {
			t.Errorf("%s: Retry-After %q, want 1-900 seconds", login, r.Header.Get("Retry-After"))
		}
	}
	// Other users are not locked.
	s2 := smsSession(t, h.URL, "+8613800138002")
	mustStatus(t, "PUT /v1/me/password", putPassword(t, h.URL, s2.AccessToken, map[string]string{"password": pw}), 204)
	mustStatus(t, "another user's login", passwordLogin(t, h.URL, "+8613800138002", pw), 200)
}

func TestPasswordBadInput(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	long := strings.Repeat("a", 100_000)
	s := smsSession(t, h.URL, "+8613800138003")
	loginBodies := []string{
		``, `null`, `[]`, `{}`, `{"login":"alice"}`, `{"password":"x"}`, `{"login":5,"password":"x"}`,
		`{"login":"alice","password":5}`, `{"login":"alice","password":"x","device_id":"short"}`,
		`{"login":"` + long + `","password":"x"}`, `{"login":"alice","password":"` + long + `"}`,
		`{"login":"alice","password":"x","Password":"y"}`, `{"login":"alice","password":"x"} {}`,
	}
	for _, b := range loginBodies {
		r, err := tryRaw(c, h.URL+"/v1/password/login", b)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 400 || r.errorCode() != "invalid_request" {
			t.Errorf("POST /v1/password/login %.80s: %d %s, want 400 invalid_request", b, r.Status, r.Body)
		}
	}
	putBodies := map[string][]string{
		"/v1/me/password": {``, `{}`, `{"password":5}`, `{"password":"` + long + `"}`, `{"password":"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8"}`,
			`{"password":"correct horse battery","current_password":7}`},
		"/v1/me/username": {``, `{}`, `{"username":5}`, `{"username":"` + long + `"}`, `{"username":"用户名用户名"}`, `{"username":"a/b"}`},
	}
	for path, bodies := range putBodies {
		for _, b := range bodies {
			req, _ := http.NewRequest("PUT", h.URL+path, strings.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+s.AccessToken)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("PUT %s %.80s: %d, want 400", path, b, resp.StatusCode)
			}
		}
		r := call(t, c, "PUT", h.URL+path, "", map[string]string{"password": "correct horse battery", "username": "alice"})
		if r.Status != 401 {
			t.Errorf("PUT %s without a session: %d, want 401", path, r.Status)
		}
	}
}

// TestPasswordAcrossNodes: a username and password set through one node
// work on another, and failures spread over both nodes lock together.
func TestPasswordAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		const pw = "correct horse battery"
		s := smsSession(t, nodes[0].URL, "+8613800138004")
		r := call(t, client(""), "PUT", nodes[0].URL+"/v1/me/username", s.AccessToken, map[string]string{"username": "carol"})
		mustStatus(t, "PUT /v1/me/username on node 1", r, 204)
		mustStatus(t, "PUT /v1/me/password on node 1", putPassword(t, nodes[0].URL, s.AccessToken, map[string]string{"password": pw}), 204)
		mustStatus(t, "login on node 2", passwordLogin(t, nodes[1].URL, "carol", pw), 200)
		for i := range 5 {
			if r := passwordLogin(t, nodes[i%2].URL, "carol", "wrong password"); r.Status != 401 {
				t.Fatalf("failure %d on node %d: %d %s, want 401", i+1, i%2+1, r.Status, r.Body)
			}
		}
		for i, n := range nodes {
			if r := passwordLogin(t, n.URL, "carol", pw); r.Status != 429 {
				t.Errorf("after 5 failures over both nodes, a try on node %d: %d %s, want 429", i+1, r.Status, r.Body)
			}
		}
	})
}
