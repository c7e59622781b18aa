package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
)

// testHub is a real loginhub process body (run) serving on a random
// loopback port.
type testHub struct {
	URL    string // http://127.0.0.1:port
	origin string // Origin header for WebSockets; "" = URL
	logs   *syncBuffer
	cancel context.CancelFunc
	// stopped is closed when run returns, with its error in runErr.
	stopped chan struct{}
	runErr  error
}

// syncBuffer is a log that tests read while the hub writes it, and wait
// on: every write wakes the waiters.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	written chan struct{} // closed by the next write; nil until someone waits
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.written != nil {
		close(s.written)
		s.written = nil
	}
	return s.b.Write(p)
}

// waitFor waits until what was written satisfies ok, for at most d, and
// reports whether it did.
func (s *syncBuffer) waitFor(d time.Duration, ok func(logs string) bool) bool {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		logs := s.b.String()
		if s.written == nil {
			s.written = make(chan struct{})
		}
		next := s.written
		s.mu.Unlock()
		if ok(logs) {
			return true
		}
		select {
		case <-next:
		case <-timeout.C:
			return ok(s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startHub runs the hub with env on 127.0.0.1:0 and stops it when the test
// ends. Rate limits are off unless env sets them.
func startHub(t testing.TB, env map[string]string) *testHub {
	t.Helper()
	full := map[string]string{
		"LOGINHUB_ADDR": "127.0.0.1:0", "LOGINHUB_TICKET_RATE": "0", "LOGINHUB_LOGIN_RATE": "0", "LOGINHUB_CALL_RATE": "0",
	}
	for k, v := range env {
		full[k] = v
	}
	getenv := func(k string) string { return full[k] }
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	h := &testHub{logs: &syncBuffer{}, cancel: cancel, stopped: make(chan struct{})}
	go func() {
		h.runErr = run(ctx, nil, getenv, pw, h.logs)
		pw.CloseWithError(fmt.Errorf("run returned: %v", h.runErr))
		close(h.stopped)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("hub did not start: %v\nlogs:\n%s", err, h.logs)
	}
	go io.Copy(io.Discard, pr)
	_, addr, ok := strings.Cut(strings.TrimSpace(line), "listening on ")
	if !ok {
		cancel()
		t.Fatalf("first line %q does not say where the hub listens", line)
	}
	h.URL = "http://" + addr
	servedByHub(t, h.URL)
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.stopped:
			if h.runErr != nil {
				t.Errorf("run: %v", h.runErr)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("hub did not stop within 15s")
		}
	})
	return h
}

// client is an HTTP client bound to one loopback source address.
func client(source string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	return &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r apiResponse) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (r apiResponse) errorCode() string {
	var e struct{ Error string }
	json.Unmarshal(r.Body, &e)
	return e.Error
}

func call(t testing.TB, c *http.Client, method, url, bearer string, body any, headers ...string) apiResponse {
	t.Helper()
	r, err := tryCall(c, method, url, bearer, body, headers...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryCall is call for goroutines other than the test's: it returns errors.
func tryCall(c *http.Client, method, url, bearer string, body any, headers ...string) (apiResponse, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return apiResponse{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	check := true
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i] == noOpenAPICheck {
			check = false
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, fmt.Errorf("%s %s: read body: %w", method, url, err)
	}
	r := apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if check {
		// The request that got this answer, after any redirect.
		if err := checkOpenAPI(resp.Request, resp.StatusCode, resp.Header, b); err != nil {
			return r, err
		}
	}
	return r, nil
}

func mustStatus(t testing.TB, what string, r apiResponse, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.Status, want, r.Body)
	}
}

// phoneLogin logs a sandbox user in the way the mini-program does: wx.login
// on the phone, then /v1/wx/login with the code.
func phoneLogin(t testing.TB, h *testHub, user string) authcore.Session {
	t.Helper()
	c := client("")
	r := call(t, c, "POST", h.URL+"/sandbox/wechat/wx.login", "", map[string]string{"user": user})
	mustStatus(t, "sandbox wx.login", r, 200)
	var code struct{ Code string }
	r.decode(t, &code)
	r = call(t, c, "POST", h.URL+"/v1/wx/login", "", map[string]string{"code": code.Code, "nickname": user})
	mustStatus(t, "/v1/wx/login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}

func createTicket(t testing.TB, c *http.Client, h *testHub, jkt string) authcore.NewTicket {
	t.Helper()
	var body any
	if jkt != "" {
		body = map[string]string{"dpop_jkt": jkt}
	}
	r := call(t, c, "POST", h.URL+"/v1/qr/tickets", "", body)
	mustStatus(t, "create ticket", r, 201)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("ticket response Cache-Control %q, want no-store", cc)
	}
	var nt authcore.NewTicket
	r.decode(t, &nt)
	return nt
}

type wsEvent struct {
	Ev      string            `json:"ev"`
	ID      string            `json:"id"`
	Version uint64            `json:"version"`
	State   string            `json:"state"`
	Scanner *authcore.Profile `json:"scanner"`
	Error   string            `json:"error"`
}

func dialWS(t testing.TB, h *testHub) *websocket.Conn {
	t.Helper()
	origin := h.origin
	if origin == "" {
		origin = h.URL
	}
	hdr := http.Header{"Origin": {origin}}
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.URL, "http")+"/v1/ws", hdr)
	if err != nil {
		t.Fatalf("dial ws: %v (%v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func watch(t testing.TB, c *websocket.Conn, nt authcore.NewTicket, since uint64) {
	t.Helper()
	if err := c.WriteJSON(map[string]any{"op": "watch", "id": nt.ID, "secret": nt.WatchSecret, "since": since}); err != nil {
		t.Fatal(err)
	}
}

func nextEvent(t testing.TB, c *websocket.Conn) wsEvent {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var ev wsEvent
	if err := c.ReadJSON(&ev); err != nil {
		t.Fatalf("read event: %v", err)
	}
	return ev
}

func wantState(t testing.TB, c *websocket.Conn, state string, version uint64) wsEvent {
	t.Helper()
	ev := nextEvent(t, c)
	if ev.Ev != "state" || ev.State != state || ev.Version != version {
		t.Fatalf("event %+v, want state %s v%d", ev, state, version)
	}
	return ev
}

func TestScanLoginEndToEnd(t *testing.T) {
	h := startHub(t, map[string]string{"LOGINHUB_LOG_LEVEL": "debug"})
	desktop := client("127.0.0.1")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	jkt, _ := authcore.DPoPThumbprint(&key.PublicKey)
	nt := createTicket(t, desktop, h, jkt)
	if !strings.HasPrefix(nt.QRURL, h.URL+"/s/") || strings.Contains(nt.QRURL, nt.WatchSecret) || len(nt.Ticket) > 64 {
		t.Fatalf("ticket: qr_url %q, ticket %d chars", nt.QRURL, len(nt.Ticket))
	}

	ws := dialWS(t, h)
	watch(t, ws, nt, 0)
	wantState(t, ws, "pending", 1)

	alice := phoneLogin(t, h, "alice")
	phone := client("")
	r := call(t, phone, "POST", h.URL+"/v1/qr/scan", alice.AccessToken, map[string]string{"ticket": nt.Ticket})
	mustStatus(t, "scan", r, 200)
	var scan authcore.ScanResult
	r.decode(t, &scan)
	if scan.Requester.IP != "127.0.0.1" || scan.Requester.Device == "" || scan.Requester.CreatedAt.IsZero() {
		t.Fatalf("scan requester: %+v", scan.Requester)
	}
	ev := wantState(t, ws, "scanned", 2)
	if ev.Scanner == nil || ev.Scanner.Nickname != "alice" {
		t.Fatalf("scanned event scanner %+v, want nickname alice", ev.Scanner)
	}

	bob := phoneLogin(t, h, "bob")
	r = call(t, phone, "POST", h.URL+"/v1/qr/scan", bob.AccessToken, map[string]string{"ticket": nt.Ticket})
	mustStatus(t, "scan by a second account", r, 409)

	r = call(t, phone, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", alice.AccessToken, nil)
	mustStatus(t, "confirm", r, 200)
	first := string(r.Body)
	r = call(t, phone, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", alice.AccessToken, nil)
	mustStatus(t, "repeated confirm", r, 200)
	if string(r.Body) != first {
		t.Fatalf("repeated confirm: %s, want the same result %s", r.Body, first)
	}
	wantState(t, ws, "confirmed", 3)

	redeemURL := h.URL + "/v1/qr/tickets/" + nt.ID + "/redeem"
	proof := func() string {
		p, err := authcore.NewDPoPProof(key, "POST", redeemURL, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	r = call(t, desktop, "POST", redeemURL, "wrong-secret", nil, "DPoP", proof())
	mustStatus(t, "redeem with a wrong secret", r, 401)
	r = call(t, client("127.0.0.2"), "POST", redeemURL, nt.WatchSecret, nil, "DPoP", proof())
	mustStatus(t, "redeem from 127.0.0.2 under strict binding", r, 403)
	r = call(t, desktop, "POST", redeemURL, nt.WatchSecret, nil)
	mustStatus(t, "redeem without a DPoP proof", r, 401)

	r = call(t, desktop, "POST", redeemURL, nt.WatchSecret, nil, "DPoP", proof())
	mustStatus(t, "redeem", r, 200)
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("session Cache-Control %q, want no-store", cc)
	}
	var sess authcore.Session
	r.decode(t, &sess)
	r = call(t, desktop, "POST", redeemURL, nt.WatchSecret, nil, "DPoP", proof())
	mustStatus(t, "second redeem", r, 410)

	r = call(t, desktop, "GET", h.URL+"/v1/me", sess.AccessToken, nil)
	mustStatus(t, "/v1/me", r, 200)
	var me struct{ User authcore.SessionUser }
	r.decode(t, &me)
	if me.User.ID != alice.User.ID || me.User.Nickname != "alice" {
		t.Fatalf("/v1/me user %+v, want alice (%s)", me.User, alice.User.ID)
	}
	wantState(t, ws, "redeemed", 4)

	// The desktop's session is not an authentication on the desktop: it
	// cannot read the phone number in clear nor erase the account, and
	// shows no auth_time; the phone's session, from a fresh wx.login, can.
	for _, m := range []string{"GET", "DELETE"} {
		r = call(t, desktop, m, h.URL+"/v1/me/data", sess.AccessToken, nil)
		var body struct {
			Error  string
			StepUp *struct{ Methods []string } `json:"step_up"`
		}
		r.decode(t, &body)
		if r.Status != 401 || body.Error != "step_up_required" || body.StepUp == nil || body.StepUp.Methods == nil || len(body.StepUp.Methods) != 0 {
			t.Errorf("%s /v1/me/data from the desktop: %d %s, want 401 step_up_required with no methods", m, r.Status, r.Body)
		}
	}
	if r = call(t, desktop, "GET", h.URL+"/v1/me", sess.AccessToken, nil); strings.Contains(string(r.Body), "auth_time") {
		t.Errorf("/v1/me of the desktop session shows an auth_time: %s", r.Body)
	}
	if r = call(t, phone, "GET", h.URL+"/v1/me", alice.AccessToken, nil); !strings.Contains(string(r.Body), `"auth_time"`) {
		t.Errorf("/v1/me of the phone session shows no auth_time: %s", r.Body)
	}
	mustStatus(t, "GET /v1/me/data from the phone", call(t, phone, "GET", h.URL+"/v1/me/data", alice.AccessToken, nil), 200)

	// Nothing secret in the logs, even at debug level.
	logs := h.logs.String()
	for name, secret := range map[string]string{
		"watch secret": nt.WatchSecret, "desktop access token": sess.AccessToken,
		"desktop refresh token": sess.RefreshToken, "phone access token": alice.AccessToken,
		"phone refresh token": alice.RefreshToken,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the hub's log", name)
		}
	}
	if !strings.Contains(logs, `"path":"/v1/qr/scan"`) {
		t.Errorf("debug log has no request lines; the secret check above proves nothing:\n%s", logs)
	}
}

func TestErrorsAreJSON(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	alice := phoneLogin(t, h, "alice")
	cases := []struct {
		method, path, bearer string
		body                 any
		status               int
		code                 string
	}{
		{"POST", "/v1/qr/scan", "", map[string]string{"ticket": "x"}, 401, "unauthorized"},
		// A phone's bad token is reported before its bad body or ticket.
		{"POST", "/v1/qr/scan", "lha_nope", "not an object", 401, "unauthorized"},
		{"POST", "/v1/qr/scan", "lha_nope", map[string]string{"ticket": ""}, 401, "unauthorized"},
		{"POST", "/v1/qr/scan", alice.AccessToken, "not an object", 400, "invalid_request"},
		{"POST", "/v1/qr/scan", alice.AccessToken, map[string]string{"ticket": ""}, 400, "invalid_request"},
		{"POST", "/v1/qr/scan", alice.AccessToken, map[string]string{"ticket": "x"}, 401, "unauthorized"},
		{"POST", "/v1/qr/tickets/AAAAAAAAAAAAAAAA/confirm", "lha_nope", nil, 401, "unauthorized"},
		{"POST", "/v1/qr/tickets/AAAAAAAAAAAAAAAA/confirm", alice.AccessToken, nil, 404, "not_found"},
		{"POST", "/v1/qr/tickets/x/cancel", "lha_nope", nil, 401, "unauthorized"},
		{"GET", "/v1/me", "lha_nope", nil, 401, "unauthorized"},
		{"POST", "/v1/wx/login", "", map[string]string{"code": "never-issued"}, 401, "unauthorized"},
		{"POST", "/v1/wx/login", "", "not an object", 400, "invalid_request"},
		{"POST", "/v1/qr/tickets", "", map[string]string{"dpop_jkt": "short"}, 400, "invalid_request"},
		{"GET", "/v1/qr/tickets/AAAAAAAAAAAAAAAA", "secret", nil, 404, "not_found"},
		{"GET", "/v1/nothing-here", "", nil, 404, "not_found"},
		{"POST", "/v1/session/refresh", "", map[string]string{"refresh_token": "lhr_nope"}, 401, "unauthorized"},
	}
	for _, tc := range cases {
		r := call(t, c, tc.method, h.URL+tc.path, tc.bearer, tc.body)
		if r.Status != tc.status || r.errorCode() != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, r.Status, r.Body, tc.status, tc.code)
		}
		if strings.Contains(string(r.Body), "rid:") || strings.Contains(string(r.Body), "errcode") {
			t.Errorf("%s %s leaks upstream text: %s", tc.method, tc.path, r.Body)
		}
	}
}

func TestTicketRateLimit(t *testing.T) {
	h := startHub(t, map[string]string{"LOGINHUB_TICKET_RATE": "3"})
	c := client("127.0.0.1")
	for i := range 3 {
		mustStatus(t, fmt.Sprint("ticket ", i), call(t, c, "POST", h.URL+"/v1/qr/tickets", "", nil), 201)
	}
	r := call(t, c, "POST", h.URL+"/v1/qr/tickets", "", nil)
	mustStatus(t, "fourth ticket in a minute", r, 429)
	if r.Header.Get("Retry-After") == "" || r.errorCode() != "rate_limited" {
		t.Fatalf("429 without Retry-After or code: %v %s", r.Header, r.Body)
	}
	mustStatus(t, "another address", call(t, client("127.0.0.3"), "POST", h.URL+"/v1/qr/tickets", "", nil), 201)
}

// TestCallRateLimits: redeem, scan, refresh, phone and face calls are
// limited per client address (LOGINHUB_CALL_RATE a minute) and per user or
// session (a tenth of it).
func TestCallRateLimits(t *testing.T) {
	h := startHub(t, map[string]string{"LOGINHUB_CALL_RATE": "10"})
	c := client("127.0.0.1")
	redeem := func(c *http.Client) apiResponse {
		return call(t, c, "POST", h.URL+"/v1/qr/tickets/AAAAAAAAAAAAAAAA/redeem", "not-the-secret", nil)
	}
	for i := range 10 {
		if r := redeem(c); r.Status == http.StatusTooManyRequests {
			t.Fatalf("redeem %d of 10 in a minute: 429", i+1)
		}
	}
	r := redeem(c)
	mustStatus(t, "eleventh redeem from one address", r, 429)
	if r.Header.Get("Retry-After") == "" || r.errorCode() != "rate_limited" {
		t.Fatalf("429 without Retry-After or code: %v %s", r.Header, r.Body)
	}
	if r := redeem(client("127.0.0.3")); r.Status == http.StatusTooManyRequests {
		t.Error("redeem from another address: 429")
	}

	// Per user (session): one call a minute here.
	s := phoneLogin(t, h, "rita")
	r = call(t, c, "POST", h.URL+"/v1/session/refresh", "", map[string]string{"refresh_token": s.RefreshToken})
	mustStatus(t, "refresh", r, 200)
	var next authcore.Session
	r.decode(t, &next)
	mustStatus(t, "second refresh of a session in a minute", call(t, c, "POST", h.URL+"/v1/session/refresh", "",
		map[string]string{"refresh_token": next.RefreshToken}), 429)
	other := phoneLogin(t, h, "sam")
	mustStatus(t, "another user's refresh", call(t, c, "POST", h.URL+"/v1/session/refresh", "",
		map[string]string{"refresh_token": other.RefreshToken}), 200)

	for _, ep := range []struct {
		path string
		body any
	}{
		{"/v1/qr/scan", map[string]string{"ticket": "k1.bogus"}},
		{"/v1/wx/phone", map[string]string{"code": "bogus"}},
		{"/v1/face/verify-id", map[string]string{"name": "Rita", "id_number": "110101199003070000"}},
	} {
		if r := call(t, c, "POST", h.URL+ep.path, next.AccessToken, ep.body); r.Status == http.StatusTooManyRequests {
			t.Errorf("first %s of the user: 429", ep.path)
		}
		mustStatus(t, "second "+ep.path+" of the user in a minute", call(t, c, "POST", h.URL+ep.path, next.AccessToken, ep.body), 429)
	}
}

func TestQRImagesAndLanding(t *testing.T) {
	h := startHub(t, nil)
	c := client("127.0.0.1")
	nt := createTicket(t, c, h, "")
	r := call(t, c, "GET", h.URL+"/v1/qr/tickets/"+nt.ID+"/qr.svg", "", nil)
	mustStatus(t, "qr.svg", r, 200)
	if ct := r.Header.Get("Content-Type"); ct != "image/svg+xml" || !bytes.HasPrefix(r.Body, []byte("<svg")) {
		t.Fatalf("qr.svg: %s %.40s", ct, r.Body)
	}
	r = call(t, c, "GET", h.URL+"/v1/qr/tickets/"+nt.ID+"/qr.png?size=128", "", nil)
	mustStatus(t, "qr.png", r, 200)
	if !bytes.HasPrefix(r.Body, []byte("\x89PNG")) {
		t.Fatalf("qr.png is not a PNG")
	}
	mustStatus(t, "qr.png with a silly size", call(t, c, "GET", h.URL+"/v1/qr/tickets/"+nt.ID+"/qr.png?size=99999", "", nil), 400)
	mustStatus(t, "qr.png of an unknown ticket", call(t, c, "GET", h.URL+"/v1/qr/tickets/AAAAAAAAAAAAAAAA/qr.png", "", nil), 404)

	r = call(t, c, "GET", nt.QRURL, "", nil)
	mustStatus(t, "landing page", r, 200)
	if !strings.Contains(string(r.Body), "/sandbox/phone?ticket=") {
		t.Fatalf("sandbox landing page has no phone simulator link:\n%s", r.Body)
	}
}

// TestConfigErrors: a bad setting stops the hub with an error that names
// its variable, and no other.
func TestConfigErrors(t *testing.T) {
	cases := map[string]struct {
		env     map[string]string
		setting string
	}{
		"bad binding":          {map[string]string{"LOGINHUB_IP_BINDING": "loose"}, "LOGINHUB_IP_BINDING"},
		"bad ttl":              {map[string]string{"LOGINHUB_QR_TTL": "forever"}, "LOGINHUB_QR_TTL"},
		"half credentials":     {map[string]string{"LOGINHUB_WECHAT_APPID": "wx123"}, "LOGINHUB_WECHAT_APPID"},
		"short ticket key":     {map[string]string{"LOGINHUB_TICKET_KEYS": "k1:c2hvcnQ"}, "LOGINHUB_TICKET_KEYS"},
		"malformed ticket key": {map[string]string{"LOGINHUB_TICKET_KEYS": "k1"}, "LOGINHUB_TICKET_KEYS"},
		"short data key":       {map[string]string{"LOGINHUB_DATA_KEY": "d1:c2hvcnQ"}, "LOGINHUB_DATA_KEY"},
		"malformed data key":   {map[string]string{"LOGINHUB_DATA_KEY": "d1"}, "LOGINHUB_DATA_KEY"},
		"bad proxies":          {map[string]string{"LOGINHUB_TRUSTED_PROXIES": "10.0.0.0/99"}, "LOGINHUB_TRUSTED_PROXIES"},
		"negative cap":         {map[string]string{"LOGINHUB_MAX_SOCKETS": "-5"}, "LOGINHUB_MAX_SOCKETS"},
		"bad rate":             {map[string]string{"LOGINHUB_TICKET_RATE": "many"}, "LOGINHUB_TICKET_RATE"},
		"old debug address":    {map[string]string{"LOGINHUB_DEBUG_ADDR": "127.0.0.1:6060"}, "LOGINHUB_DEBUG_ADDR"},
		"bad internal address": {map[string]string{"LOGINHUB_INTERNAL_ADDR": "6060"}, "LOGINHUB_INTERNAL_ADDR"},
		"negative call rate":   {map[string]string{"LOGINHUB_CALL_RATE": "-1"}, "LOGINHUB_CALL_RATE"},
		"bad risk policy":      {map[string]string{"LOGINHUB_RISK": "paranoid"}, "LOGINHUB_RISK"},
		"half QQ app":          {map[string]string{"LOGINHUB_QQ_APPKEY": "key"}, "LOGINHUB_QQ_APPID"},
		"half Weibo app":       {map[string]string{"LOGINHUB_WEIBO_APPKEY": "123"}, "LOGINHUB_WEIBO_APPKEY"},
		"half website app":     {map[string]string{"LOGINHUB_WECHAT_WEB_SECRET": "s"}, "LOGINHUB_WECHAT_WEB_APPID"},
	}
	for name, tc := range cases {
		_, err := loadConfig(nil, func(k string) string { return tc.env[k] }, io.Discard)
		if err == nil {
			t.Errorf("%s: config accepted", name)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, tc.setting) {
			t.Errorf("%s: %q does not start with %s", name, msg, tc.setting)
		}
		if tc.setting == "LOGINHUB_DEBUG_ADDR" && !strings.Contains(msg, "LOGINHUB_INTERNAL_ADDR") {
			t.Errorf("%s: %q does not say what replaces it", name, msg)
		}
		if tc.setting == "LOGINHUB_DATA_KEY" && strings.Contains(strings.ToLower(msg), "ticket") {
			t.Errorf("%s: %q speaks of tickets", name, msg)
		}
	}
	cfg, err := loadConfig([]string{"--public-url=https://login.example.com", "--ip-binding=subnet"}, func(k string) string {
		return map[string]string{"PORT": "3000", "LOGINHUB_IP_BINDING": "off", "LOGINHUB_SANDBOX": "on"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":3000" || cfg.PublicURL != "https://login.example.com" || cfg.IPBinding != authcore.IPSubnet || cfg.TicketRate != 30 || cfg.CallRate != 120 || cfg.QRTTL != 2*time.Minute || cfg.MaxSockets != -1 {
		t.Fatalf("config: %+v", cfg)
	}
}

func TestSessionEndpoints(t *testing.T) {
	h := startHub(t, nil)
	c := client("")
	s := phoneLogin(t, h, "gina")
	if s.User.IsNew == nil || !*s.User.IsNew || s.User.OpenID == "" || s.ExpiresIn != 1800 {
		t.Fatalf("first login session: %+v", s)
	}
	r := call(t, c, "POST", h.URL+"/v1/session/refresh", "", map[string]string{"refresh_token": s.RefreshToken})
	mustStatus(t, "refresh", r, 200)
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("refresh response is cacheable")
	}
	var next authcore.Session
	r.decode(t, &next)
	if next.AccessToken == s.AccessToken || next.RefreshToken == s.RefreshToken || next.User.ID != s.User.ID {
		t.Fatalf("refresh did not rotate: %+v", next)
	}
	mustStatus(t, "/v1/me with the refreshed token", call(t, c, "GET", h.URL+"/v1/me", next.AccessToken, nil), 200)
	r = call(t, c, "POST", h.URL+"/v1/session/refresh", "", map[string]string{"refresh_token": s.RefreshToken})
	mustStatus(t, "reusing a rotated refresh token", r, 401)
	mustStatus(t, "/v1/me after the family was revoked", call(t, c, "GET", h.URL+"/v1/me", next.AccessToken, nil), 401)

	again := phoneLogin(t, h, "gina")
	if again.User.IsNew == nil || *again.User.IsNew || again.User.ID != s.User.ID {
		t.Fatalf("second login of the same WeChat user: %+v, want the same user, not new", again.User)
	}
	mustStatus(t, "logout", call(t, c, "POST", h.URL+"/v1/session/logout", again.AccessToken, nil), 204)
	mustStatus(t, "/v1/me after logout", call(t, c, "GET", h.URL+"/v1/me", again.AccessToken, nil), 401)
	mustStatus(t, "second logout", call(t, c, "POST", h.URL+"/v1/session/logout", again.AccessToken, nil), 401)
}

// internalURL reads where the hub serves /metrics and pprof
// (LOGINHUB_INTERNAL_ADDR) from its log.
func internalURL(t testing.TB, logs *syncBuffer) string {
	t.Helper()
	addr := ""
	found := logs.waitFor(5*time.Second, func(l string) bool {
		for _, line := range strings.Split(l, "\n") {
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "metrics and pprof served" {
				addr = entry.Addr
				return true
			}
		}
		return false
	})
	if !found {
		t.Fatalf("no log line says where /metrics and pprof are:\n%s", logs)
	}
	return "http://" + addr
}

// TestInternalListener: /metrics and pprof are served on
// LOGINHUB_INTERNAL_ADDR only, never on the public address.
func TestInternalListener(t *testing.T) {
	c := client("")
	for _, h := range []*testHub{startHub(t, nil), startHub(t, map[string]string{"LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})} {
		mustStatus(t, "/metrics through the public port", call(t, c, "GET", h.URL+"/metrics", "", nil), 404)
		mustStatus(t, "pprof through the public port", call(t, c, "GET", h.URL+"/debug/pprof/", "", nil), 404)
	}
	h := startHub(t, map[string]string{"LOGINHUB_INTERNAL_ADDR": "127.0.0.1:0"})
	internal := internalURL(t, h.logs)
	r := call(t, c, "GET", internal+"/metrics", "", nil)
	mustStatus(t, "/metrics on the internal listener", r, 200)
	if !bytes.Contains(r.Body, []byte("loginhub_hub_open_sockets")) {
		t.Errorf("internal /metrics lacks the hub's metrics:\n%.300s", r.Body)
	}
	mustStatus(t, "pprof index on the internal listener", call(t, c, "GET", internal+"/debug/pprof/", "", nil), 200)
}

// TestBinaryLinksNoTestCode: the hub's binary only serves: none of its
// packages imports testing or net/http/httptest (the sandbox's fake WeChat
// included).
func TestBinaryLinksNoTestCode(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps .: %v", err)
	}
	for pkg := range strings.Lines(string(out)) {
		if pkg = strings.TrimSpace(pkg); pkg == "testing" || pkg == "net/http/httptest" {
			t.Errorf("the hub's binary links %s", pkg)
		}
	}
}

// timings are the log fields whose digits vary from run to run: a
// timestamp and a request's duration in nanoseconds.
var timings = regexp.MustCompile(`"(time|duration)":("[^"]*"|[0-9]+)`)

// withoutTimings is a JSON log without its timings, to look for a short
// secret in (a 6-digit code could show up among their digits by chance).
func withoutTimings(logs string) string { return timings.ReplaceAllString(logs, "") }
