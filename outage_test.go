package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/wechat"
	"github.com/loginhub/loginhub/authcore/wechat/wechattest"
)

// fastAnswer is how soon /v1/wx/login must answer 503 while the breaker is
// open. A call that reaches the down WeChat takes at least the two retry
// pauses (400 ms), so this deadline tells the two apart.
const fastAnswer = 100 * time.Millisecond

// readyz returns /readyz's status and decoded body.
func readyz(t *testing.T, c *http.Client, h *testHub) (int, map[string]any) {
	t.Helper()
	r := call(t, c, "GET", h.URL+"/readyz", "", nil)
	var body map[string]any
	r.decode(t, &body)
	return r.Status, body
}

// dependencyUp reads loginhub_dependency_up{dependency="wechat"} from the
// internal /metrics.
func dependencyUp(t *testing.T, c *http.Client, internal string) string {
	t.Helper()
	r := call(t, c, "GET", internal+"/metrics", "", nil)
	const series = `loginhub_dependency_up{dependency="wechat"} `
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, series); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s series", strings.TrimSpace(series))
	return ""
}

// TestWeChatDown plays the contract's "When WeChat is down" over real
// HTTP: WeChat fails until the breaker opens; then /v1/wx/login answers
// 503 within fastAnswer, a live session refreshes, a logged-in phone scans
// and confirms and the desktop redeems, /readyz is 200 degraded and the
// wechat dependency is 0 in /metrics. When WeChat answers again the hub
// heals with no login to trigger it: /readyz is plain ready again, the
// metric 1, and wx.login works.
func TestWeChatDown(t *testing.T) {
	// A cool-down long enough that the fast-failure check below runs
	// before the first probe; the rest does not depend on it.
	w := startWxHub(t, map[string]string{"LOGINHUB_WECHAT_BREAKER_COOLDOWN": "2s", "LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})
	c := client("")
	internal := internalURL(t, w.logs)
	if status, body := readyz(t, c, w.testHub); status != 200 || !reflect.DeepEqual(body, map[string]any{"status": "ready"}) {
		t.Fatalf("/readyz before the outage: %d %v, want 200 {status: ready}", status, body)
	}
	if got := dependencyUp(t, c, internal); got != "1" {
		t.Fatalf("wechat dependency before the outage = %s, want 1", got)
	}

	// Logged in before the outage: a phone, and a code not yet used.
	alice := w.login(t, "alice")
	var code struct{ Code string }
	call(t, c, "POST", w.fakeURL+"/wx.login", "", map[string]string{"user": "bob"}).decode(t, &code)

	w.fake.SetDown(true)
	for i := range wechat.DefaultBreakerFailures {
		r := call(t, c, "POST", w.URL+"/v1/wx/login", "", map[string]string{"code": code.Code})
		if r.Status != 503 || r.errorCode() != "upstream_unavailable" {
			t.Fatalf("wx.login %d to a failing WeChat: %d %s, want 503 upstream_unavailable", i+1, r.Status, r.Body)
		}
	}
	sent := w.fake.Requests(wechattest.PathCode2Session)

	// The breaker is open: the answer comes before the deadline, which
	// a call reaching WeChat cannot meet.
	ctx, cancel := context.WithTimeout(context.Background(), fastAnswer)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", w.URL+"/v1/wx/login", strings.NewReader(`{"code":"`+code.Code+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wx.login with the breaker open: no answer within %v", fastAnswer)
	} else if err != nil {
		t.Fatal(err)
	}
	var body struct{ Error, Fallback string }
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 503 || body.Error != "upstream_unavailable" || resp.Header.Get("Retry-After") == "" || body.Fallback != "sms" {
		t.Fatalf("wx.login with the breaker open: %d %q fallback %q Retry-After %q, want 503 upstream_unavailable, fallback sms, with Retry-After",
			resp.StatusCode, body.Error, body.Fallback, resp.Header.Get("Retry-After"))
	}
	if got := w.fake.Requests(wechattest.PathCode2Session); got != sent {
		t.Errorf("the breaker is open but %d code2Session requests reached WeChat", got-sent)
	}

	// Everything that does not need WeChat works.
	r := call(t, c, "POST", w.URL+"/v1/session/refresh", "", map[string]string{"refresh_token": alice.RefreshToken})
	mustStatus(t, "refresh during the outage", r, 200)
	alice = authcore.Session{}
	r.decode(t, &alice)
	mustStatus(t, "/v1/me during the outage", call(t, c, "GET", w.URL+"/v1/me", alice.AccessToken, nil), 200)

	desktop := client("127.0.0.1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, _ := authcore.DPoPThumbprint(&key.PublicKey)
	nt := createTicket(t, desktop, w.testHub, jkt)
	mustStatus(t, "scan during the outage", call(t, c, "POST", w.URL+"/v1/qr/scan", alice.AccessToken, map[string]string{"ticket": nt.Ticket}), 200)
	mustStatus(t, "confirm during the outage", call(t, c, "POST", w.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", alice.AccessToken, nil), 200)
	redeemURL := w.URL + "/v1/qr/tickets/" + nt.ID + "/redeem"
	proof, err := authcore.NewDPoPProof(key, "POST", redeemURL, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = call(t, desktop, "POST", redeemURL, nt.WatchSecret, nil, "DPoP", proof)
	mustStatus(t, "redeem during the outage", r, 200)
	var desk authcore.Session
	r.decode(t, &desk)
	if desk.User.ID != alice.User.ID {
		t.Errorf("the desktop redeemed user %s, want alice's %s", desk.User.ID, alice.User.ID)
	}

	wantDegraded := map[string]any{"status": "degraded", "degraded": []any{"wechat"}}
	if status, body := readyz(t, c, w.testHub); status != 200 || !reflect.DeepEqual(body, wantDegraded) {
		t.Errorf("/readyz during the outage: %d %v, want 200 %v", status, body, wantDegraded)
	}
	if got := dependencyUp(t, c, internal); got != "0" {
		t.Errorf("wechat dependency during the outage = %s, want 0", got)
	}

	// WeChat answers again: the hub's own probe heals it, no login needed.
	w.fake.SetDown(false)
	// The probe runs on the breaker's own clock, after its cool-down: ask
	// until /readyz says so, within a deadline.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(15 * time.Second); ; <-tick.C {
		status, body := readyz(t, c, w.testHub)
		if status == 200 && reflect.DeepEqual(body, map[string]any{"status": "ready"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz 15s after WeChat came back: %d %v, want 200 {status: ready}", status, body)
		}
	}
	if got := w.fake.Requests(wechattest.PathCode2Session); got != sent {
		t.Errorf("healing sent %d code2Session requests, want none (it probes with stable_token)", got-sent)
	}
	if got := dependencyUp(t, c, internal); got != "1" {
		t.Errorf("wechat dependency after WeChat came back = %s, want 1", got)
	}
	if bob := w.login(t, "bob"); bob.User.ID == "" {
		t.Error("wx.login after WeChat came back: no user")
	}
}
