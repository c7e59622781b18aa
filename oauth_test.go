package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/oauthsandbox"
	"github.com/loginhub/loginhub/authcore/oauthsandbox/browsertest"
	"github.com/loginhub/loginhub/authcore/qq/qqtest"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
)

// startProviderLogin creates a ticket, watches it, and starts its login
// with provider; it returns the ticket, the watching socket and the
// provider's authorize URL.
func startProviderLogin(t *testing.T, h *testHub, provider string, body any) (authcore.NewTicket, *websocket.Conn, string) {
	t.Helper()
	c := client("")
	nt := createTicket(t, c, h, "")
	ws := dialWS(t, h)
	watch(t, ws, nt, 0)
	wantState(t, ws, "pending", 1)
	r := call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/oauth/"+provider, nt.WatchSecret, body)
	mustStatus(t, "POST …/oauth/"+provider, r, 200)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Error("the authorize URL's answer without Cache-Control: no-store")
	}
	var started struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.decode(t, &started)
	return nt, ws, started.AuthorizeURL
}

// callback plays the browser's return from the provider to the hub.
func callback(t *testing.T, h *testHub, provider string, q url.Values) apiResponse {
	t.Helper()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return call(t, noFollow, "GET", h.URL+"/v1/oauth/"+provider+"/callback?"+q.Encode(), "", nil)
}

// TestProviderLogins: each sandbox provider logs a desktop in through its
// ticket: start → consent → callback → the WebSocket sees the provider's
// user scan and confirm → redeem gives that user's session; the same
// person by WeChat website login and by mini-program is one user.
func TestProviderLogins(t *testing.T) {
	onRedis := func(url string) map[string]string {
		return map[string]string{"LOGINHUB_REDIS_URL": url, "LOGINHUB_TICKET_KEYS": sharedKeys(),
			"LOGINHUB_DATA_KEY": sharedDataKey(), "LOGINHUB_SANDBOX": "on"}
	}
	t.Run("memory", func(t *testing.T) { testProviderLogins(t, startHub(t, nil)) })
	t.Run("redis", func(t *testing.T) {
		testProviderLogins(t, startHub(t, onRedis(redistest.Start(t, redistest.Options{}).URL)))
	})
}

func testProviderLogins(t *testing.T, h *testHub) {
	c := client("")
	users := map[string]string{}
	for _, provider := range []string{"qq", "weibo", "wechat_web"} {
		nt, ws, authorize := startProviderLogin(t, h, provider, nil)
		if !strings.HasPrefix(authorize, h.URL+"/sandbox/"+provider+"/") || !strings.Contains(authorize, url.QueryEscape(h.URL+"/v1/oauth/"+provider+"/callback")) {
			t.Fatalf("%s authorize URL %s", provider, authorize)
		}
		back := browsertest.Login(t, authorize, "mei")
		r := callback(t, h, provider, back)
		mustStatus(t, provider+" callback", r, 200)
		if !strings.Contains(string(r.Body), `data-ok="true"`) || !strings.Contains(r.Header.Get("Content-Security-Policy"), "nonce-") {
			t.Errorf("%s callback page: %s", provider, r.Body)
		}
		ev := wantState(t, ws, "scanned", 2)
		if ev.Scanner == nil || ev.Scanner.Nickname == "" {
			t.Errorf("%s: scanned without the provider's user: %+v", provider, ev)
		}
		wantState(t, ws, "confirmed", 3)
		r = call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil)
		mustStatus(t, provider+" redeem", r, 200)
		var s authcore.Session
		r.decode(t, &s)
		users[provider] = s.User.ID
		// The desktop's session is its provider login's: this browser
		// authenticated, a moment ago.
		if st, facts := me(t, h.URL, s.AccessToken); st != 200 || strings.Join(facts.AMR, " ") != provider || facts.AuthTime == nil {
			t.Errorf("%s session: %d, amr %v, auth_time %v; want amr [%s] and an auth_time", provider, st, facts.AMR, facts.AuthTime, provider)
		}
		var provs []string
		for _, id := range identities(t, h, s.AccessToken) {
			provs = append(provs, strings.Fields(id)[0])
		}
		if !strings.Contains(strings.Join(provs, " "), provider) {
			t.Errorf("%s user's identities: %q", provider, provs)
		}
		// The callback again: the state is spent.
		mustStatus(t, provider+" callback replayed", callback(t, h, provider, back), 401)
	}
	if users["qq"] == users["weibo"] {
		t.Error("QQ and Weibo logins of one sandbox name made one user: they share no id")
	}
	// mei's mini-program login finds the user of her website login: one unionid.
	mini := phoneLogin(t, h, "mei")
	if mini.User.ID != users["wechat_web"] {
		t.Errorf("mini-program login of mei: user %s, website login: %s; want one user", mini.User.ID, users["wechat_web"])
	}
}

// TestProviderLoginRefusals: a refusal at the provider, a bad state and a
// ticket that is no longer pending leave the ticket as it was; return_to
// outside the allowed origins is refused; a link needs its own user's
// session and refuses another user's account.
func TestProviderLoginRefusals(t *testing.T) {
	h := startHub(t, nil)
	c := client("")

	// WeChat sends a refusal back without a code.
	nt, ws, authorize := startProviderLogin(t, h, "wechat_web", nil)
	a := browsertest.Choose(t, authorize, url.Values{"deny": {"1"}})
	if a.Location == nil {
		t.Fatalf("the consent page's refusal: %d %s", a.Status, a.Body)
	}
	r := callback(t, h, "wechat_web", a.Location.Query())
	if r.Status != 403 || !strings.Contains(string(r.Body), `data-ok="false"`) {
		t.Errorf("callback after a refusal: %d %s", r.Status, r.Body)
	}
	mustStatus(t, "a forged state", callback(t, h, "qq", url.Values{"state": {"x" + strings.Repeat("a", 42)}, "code": {"c"}}), 401)
	mustStatus(t, "no state", callback(t, h, "qq", url.Values{"code": {"c"}}), 400)
	mustStatus(t, "an unknown provider", callback(t, h, "github", url.Values{"state": {"s"}, "code": {"c"}}), 404)
	if v := status(t, c, h, nt); v != "pending" {
		t.Errorf("ticket after failed provider logins: %s, want pending", v)
	}
	ws.Close()

	for _, rt := range []string{"https://evil.example/x", "javascript:alert(1)", "//evil.example", "http://user@" + strings.TrimPrefix(h.URL, "http://") + "/"} {
		r := call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/oauth/qq", nt.WatchSecret, map[string]string{"return_to": rt})
		if r.Status != 400 {
			t.Errorf("return_to %q: %d %s, want 400", rt, r.Status, r.Body)
		}
	}
	mustStatus(t, "a wrong watch secret", call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/oauth/qq", "wrong", nil), 401)
	mustStatus(t, "no watch secret", call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/oauth/qq", "", nil), 401)
	mustStatus(t, "an unknown provider", call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/oauth/github", nt.WatchSecret, nil), 404)

	// return_to under the allowed origin: the callback redirects there.
	nt2, _, authorize := startProviderLogin(t, h, "weibo", map[string]string{"return_to": h.URL + "/?done=1"})
	r = callback(t, h, "weibo", browsertest.Login(t, authorize, "ren"))
	if r.Status != 303 || r.Header.Get("Location") != h.URL+"/?done=1" {
		t.Errorf("callback with return_to: %d, Location %q", r.Status, r.Header.Get("Location"))
	}
	if v := status(t, c, h, nt2); v != "confirmed" {
		t.Errorf("ticket after the weibo login: %s, want confirmed", v)
	}

	// Linking: a phone user links a QQ account; another user's is 409.
	kai := phoneLogin(t, h, "kai")
	r = call(t, c, "POST", h.URL+"/v1/me/identities/qq/start", kai.AccessToken, nil)
	mustStatus(t, "POST /v1/me/identities/qq/start", r, 200)
	var started struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.decode(t, &started)
	mustStatus(t, "link callback", callback(t, h, "qq", browsertest.Login(t, started.AuthorizeURL, "kai")), 200)
	if got := strings.Join(identities(t, h, kai.AccessToken), "|"); !strings.Contains(got, "qq ") {
		t.Errorf("kai's identities after linking QQ: %s", got)
	}
	r = call(t, c, "POST", h.URL+"/v1/me/identities/qq/start", kai.AccessToken, nil)
	r.decode(t, &started)
	// ren logged in with Weibo above; ren's QQ account is made by a QQ login now.
	_, _, renQQ := startProviderLogin(t, h, "qq", nil)
	mustStatus(t, "ren's QQ login", callback(t, h, "qq", browsertest.Login(t, renQQ, "ren")), 200)
	r = callback(t, h, "qq", browsertest.Login(t, started.AuthorizeURL, "ren"))
	if r.Status != 409 {
		t.Errorf("linking another user's QQ account: %d %s, want 409", r.Status, r.Body)
	}
	mustStatus(t, "a link without a session", call(t, c, "POST", h.URL+"/v1/me/identities/qq/start", "", nil), 401)
}

// status reads a ticket's state with its watch secret.
func status(t *testing.T, c *http.Client, h *testHub, nt authcore.NewTicket) string {
	t.Helper()
	r := call(t, c, "GET", h.URL+"/v1/qr/tickets/"+nt.ID+"?since=0&wait=0", nt.WatchSecret, nil)
	mustStatus(t, "GET ticket", r, 200)
	var v struct{ State string }
	r.decode(t, &v)
	return v.State
}

// TestProviderFailures runs the hub against a QQ fake of the test's own
// (LOGINHUB_QQ_BASE_URL), whose clock and outage switch the test holds: an
// expired code and QQ down leave the ticket pending, the callback page
// says why, and nothing answers 5xx; the same QQ account linked to a
// WeChat user then logs in as that user.
func TestProviderFailures(t *testing.T) {
	fake := &qqtest.Server{}
	clock := fake.ManualClock(time.Now())
	fakeURL := oauthsandbox.Start(t, fake)
	appid, appkey := fake.App()
	h := startHub(t, map[string]string{"LOGINHUB_QQ_APPID": appid, "LOGINHUB_QQ_APPKEY": appkey, "LOGINHUB_QQ_BASE_URL": fakeURL})
	c := client("")

	nt, _, authorize := startProviderLogin(t, h, "qq", nil)
	if !strings.HasPrefix(authorize, fakeURL+"/oauth2.0/authorize?") {
		t.Fatalf("authorize URL %s, want the configured QQ", authorize)
	}
	back := browsertest.Login(t, authorize, "lin")
	clock.Add(11 * time.Minute) // QQ's codes last 10
	r := callback(t, h, "qq", back)
	if r.Status != 401 || !strings.Contains(string(r.Body), `data-ok="false"`) {
		t.Errorf("callback with an expired code: %d %s, want 401 and a page saying why", r.Status, r.Body)
	}
	if st := status(t, c, h, nt); st != "pending" {
		t.Errorf("ticket after an expired code: %s, want pending", st)
	}

	clock.Set(time.Now())
	nt, _, authorize = startProviderLogin(t, h, "qq", nil)
	back = browsertest.Login(t, authorize, "lin")
	fake.SetDown(true)
	r = callback(t, h, "qq", back)
	if r.Status >= 500 || !strings.Contains(string(r.Body), "unavailable") || !strings.Contains(string(r.Body), `data-ok="false"`) {
		t.Errorf("callback while QQ is down: %d %s, want a page saying QQ is unavailable, no 5xx", r.Status, r.Body)
	}
	if st := status(t, c, h, nt); st != "pending" {
		t.Errorf("ticket while QQ is down: %s, want pending", st)
	}
	fake.SetDown(false)
	if strings.Contains(h.logs.String(), appkey) {
		t.Error("the log holds the QQ app key")
	}

	// A state names its own ticket only: the callback with ticket A's
	// state leaves ticket B alone, even with a code from B's login. (QQ
	// does not tie a code to the state it came with, so that code logs in
	// on A; an OIDC code is tied to its login's PKCE verifier and is
	// refused: TestOIDCUpstreamLogin.)
	ntA, _, authorizeA := startProviderLogin(t, h, "qq", nil)
	ntB, _, authorizeB := startProviderLogin(t, h, "qq", nil)
	stateA := browsertest.Login(t, authorizeA, "kim").Get("state")
	backB := browsertest.Login(t, authorizeB, "kim")
	backB.Set("state", stateA)
	mustStatus(t, "callback with A's state and B's code", callback(t, h, "qq", backB), 200)
	if st := status(t, c, h, ntB); st != "pending" {
		t.Errorf("ticket B after a callback with A's state: %s, want pending", st)
	}
	if st := status(t, c, h, ntA); st != "confirmed" {
		t.Errorf("ticket A after its state's callback: %s, want confirmed", st)
	}

	// A WeChat user links lin's QQ account; a QQ login is then that user.
	wx := phoneLogin(t, h, "lin")
	r = call(t, c, "POST", h.URL+"/v1/me/identities/qq/start", wx.AccessToken, nil)
	mustStatus(t, "link start", r, 200)
	var started struct {
		AuthorizeURL string `json:"authorize_url"`
	}
	r.decode(t, &started)
	mustStatus(t, "link callback", callback(t, h, "qq", browsertest.Login(t, started.AuthorizeURL, "lin")), 200)
	nt, ws, authorize := startProviderLogin(t, h, "qq", nil)
	mustStatus(t, "QQ login", callback(t, h, "qq", browsertest.Login(t, authorize, "lin")), 200)
	wantState(t, ws, "scanned", 2)
	wantState(t, ws, "confirmed", 3)
	r = call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil)
	mustStatus(t, "redeem", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	if s.User.ID != wx.User.ID {
		t.Errorf("QQ login after linking: user %s, want the WeChat user %s", s.User.ID, wx.User.ID)
	}
}

// TestProviderLoginAcrossNodes: with the sandbox on Redis two nodes are
// one QQ and one Weibo: a provider login started on node A, consented on
// B's fake and called back on B confirms the ticket the desktop watches on
// A, which redeems there.
func TestProviderLoginAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		a, bb := nodes[0], nodes[1]
		c := client("")
		for _, provider := range []string{"qq", "weibo"} {
			d, err := watchingDesktop(t.Context(), c, a.URL, a)
			if err != nil {
				t.Fatal(err)
			}
			r := call(t, c, "POST", a.URL+"/v1/qr/tickets/"+d.nt.ID+"/oauth/"+provider, d.nt.WatchSecret, nil)
			mustStatus(t, "start on "+a.name, r, 200)
			var started struct {
				AuthorizeURL string `json:"authorize_url"`
			}
			r.decode(t, &started)
			onB := strings.Replace(started.AuthorizeURL, a.URL, bb.URL, 1)
			if onB == started.AuthorizeURL {
				t.Fatalf("authorize URL %s is not on %s", started.AuthorizeURL, a.URL)
			}
			back := browsertest.Login(t, onB, "sun")
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			r = call(t, noFollow, "GET", bb.URL+"/v1/oauth/"+provider+"/callback?"+back.Encode(), "", nil)
			mustStatus(t, provider+" callback on "+bb.name, r, 200)
			for _, st := range []string{"scanned", "confirmed"} {
				if err := d.next(st); err != nil {
					t.Fatal(err)
				}
			}
			d.ws.Close()
			mustStatus(t, "redeem on "+a.name, call(t, c, "POST", a.URL+"/v1/qr/tickets/"+d.nt.ID+"/redeem", d.nt.WatchSecret, nil), 200)
		}
	})
}
