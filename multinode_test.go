package main

// Multi-node tests: several real loginhub processes (the binary, built once
// per test run) on one Redis or one Redis Cluster, started by the tests on
// random loopback ports. They skip without redis-server unless
// LOGINHUB_TEST_REQUIRE_ALL=1.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
)

// The public face every node shares, as behind one load balancer.
const clusterOrigin = "http://loginhub.test"

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// hubBinary builds the loginhub binary once per test run (with -race when
// the tests run with it).
func hubBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "loginhub-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "loginhub")
		args := []string{"build", "-o", builtPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// node is one hub process.
type node struct {
	*testHub
	cmd    *exec.Cmd
	name   string
	exited chan struct{} // closed when the process has exited
}

// sharedKeys are the ticket keys every node of one test shares.
func sharedKeys() string { return "k1:" + randomKey() }

// sharedDataKey is the personal-data key every node of one test shares.
func sharedDataKey() string { return "d1:" + randomKey() }

func randomKey() string {
	k := make([]byte, 32)
	for i := range k {
		k[i] = byte(rand.IntN(256))
	}
	return base64.StdEncoding.EncodeToString(k)
}

// startNode starts one hub process on redisURL and waits until it listens.
func startNode(t testing.TB, name, redisURL, keys, dataKey string, extra ...string) *node {
	t.Helper()
	cmd := exec.Command(hubBinary(t))
	cmd.Env = append(os.Environ(),
		"LOGINHUB_ADDR=127.0.0.1:0", "LOGINHUB_REDIS_URL="+redisURL, "LOGINHUB_TICKET_KEYS="+keys,
		"LOGINHUB_DATA_KEY="+dataKey,
		"LOGINHUB_PUBLIC_URL="+clusterOrigin, "LOGINHUB_ALLOWED_ORIGINS="+clusterOrigin,
		"LOGINHUB_TICKET_RATE=0", "LOGINHUB_LOGIN_RATE=0", "LOGINHUB_CALL_RATE=0",
		"LOGINHUB_SANDBOX=on", // Redis and no WeChat credentials: a staging cluster
		"LOGINHUB_INTERNAL_ADDR=127.0.0.1:0",
	)
	cmd.Env = append(cmd.Env, extra...)
	logs := &syncBuffer{}
	cmd.Stderr = logs
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{cmd: cmd, name: name, testHub: &testHub{origin: clusterOrigin, logs: logs}, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // ours, by PID; no-op if it already exited
		<-n.exited
		if t.Failed() {
			t.Logf("%s log tail:\n%s", name, tail(logs.String(), 3000))
		}
	})
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		l, _ := r.ReadString('\n')
		line <- l
		r.WriteTo(devNull{})
	}()
	select {
	case l := <-line:
		_, addr, ok := strings.Cut(strings.TrimSpace(l), "listening on ")
		if !ok {
			t.Fatalf("%s did not start: %q\n%s", name, l, logs)
		}
		n.URL = "http://" + addr
		servedByHub(t, n.URL)
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s\n%s", name, logs)
	}
	return n
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// signal sends sig to the node's process and waits for it to exit.
func (n *node) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	n.cmd.Process.Signal(sig)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s still running 20s after %s", n.name, sig)
	}
}

// backend is a Redis deployment the hub nodes share.
type backend struct {
	url    string
	kill   func() // a Redis outage: the server (or one Cluster master) dies
	revive func() // and comes back on the same port with its data
}

func standaloneRedis(t testing.TB) backend {
	s := redistest.Start(t, redistest.Options{Persistent: true})
	return backend{url: s.URL, kill: s.Kill, revive: s.Restart}
}

func clusterRedis(t testing.TB) backend {
	t.Helper()
	c := redistest.StartCluster(t)
	victim := c.Servers[rand.IntN(len(c.Servers))]
	return backend{url: c.URL, kill: victim.Kill, revive: victim.Restart}
}

// forEachBackend runs test against standalone Redis and Redis Cluster.
func forEachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	t.Run("redis", func(t *testing.T) { test(t, standaloneRedis(t)) })
	t.Run("cluster", func(t *testing.T) { test(t, clusterRedis(t)) })
}

func startNodes(t testing.TB, b backend, n int) []*node {
	keys, dataKey := sharedKeys(), sharedDataKey()
	var nodes []*node
	for i := range n {
		nodes = append(nodes, startNode(t, fmt.Sprintf("node%d", i+1), b.url, keys, dataKey))
	}
	return nodes
}

// desktop is one waiting page: a ticket and a WebSocket to some node.
type desktop struct {
	nt   authcore.NewTicket
	ws   *websocket.Conn
	seen []uint64
}

func openDesktop(ctx context.Context, n *node, nt authcore.NewTicket, since uint64) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.DialContext(ctx, "ws"+strings.TrimPrefix(n.URL, "http")+"/v1/ws", http.Header{"Origin": {clusterOrigin}})
	if err != nil {
		return nil, err
	}
	if err := ws.WriteJSON(map[string]any{"op": "watch", "id": nt.ID, "secret": nt.WatchSecret, "since": since}); err != nil {
		ws.Close()
		return nil, err
	}
	return ws, nil
}

// next reads the next event and checks it is the next version: each
// version exactly once, in order.
func (d *desktop) next(state string) error {
	d.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var ev wsEvent
	if err := d.ws.ReadJSON(&ev); err != nil {
		return fmt.Errorf("ticket %s after versions %v: %w", d.nt.ID, d.seen, err)
	}
	want := uint64(len(d.seen) + 1)
	if ev.Ev != "state" || ev.Version != want || ev.State != state {
		return fmt.Errorf("ticket %s after versions %v: got %+v, want %s v%d", d.nt.ID, d.seen, ev, state, want)
	}
	d.seen = append(d.seen, ev.Version)
	return nil
}

func (d *desktop) lastSeen() uint64 {
	if len(d.seen) == 0 {
		return 0
	}
	return d.seen[len(d.seen)-1]
}

func pick(nodes []*node, not ...*node) *node {
	for {
		n := nodes[rand.IntN(len(nodes))]
		ok := true
		for _, x := range not {
			ok = ok && n != x
		}
		if ok {
			return n
		}
	}
}

// parallel runs f(i) for i in [0,n) with at most width at once and returns
// the errors.
func parallel(n, width int, f func(i int) error) []error {
	sem := make(chan struct{}, width)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

func failOn(t *testing.T, errs []error) {
	t.Helper()
	for i, err := range errs {
		if i == 10 {
			t.Errorf("… and %d more", len(errs)-10)
			break
		}
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
}

// post posts and returns an error for any status but want.
func post(c *http.Client, url, bearer string, body any, want int) error {
	r, err := tryCall(c, "POST", url, bearer, body)
	if err != nil {
		return err
	}
	if r.Status != want {
		return fmt.Errorf("POST %s: %d %s, want %d", url, r.Status, r.Body, want)
	}
	return nil
}

func TestCrossNodeLogins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		loginsAcross(t, startNodes(t, b, 3), 500)
	})
}

// loginsAcross runs n logins, each watched on one node with the phone's
// calls on the others: every confirmation crosses nodes through Redis.
func loginsAcross(t *testing.T, nodes []*node, n int) {
	phones := make([]authcore.Session, 5)
	for i := range phones {
		phones[i] = phoneLogin(t, pick(nodes).testHub, fmt.Sprint("phone", i))
	}
	desktopC, phoneC := client("127.0.0.1"), client("")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	failOn(t, parallel(n, 100, func(i int) error {
		home := pick(nodes)
		d, err := watchingDesktop(ctx, desktopC, pick(nodes).URL, home)
		if err != nil {
			return err
		}
		defer d.ws.Close()
		nt := d.nt
		phone := phones[i%len(phones)]
		if err := post(phoneC, pick(nodes, home).URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}, 200); err != nil {
			return err
		}
		if err := d.next("scanned"); err != nil {
			return err
		}
		if err := post(phoneC, pick(nodes, home).URL+"/v1/qr/tickets/"+nt.ID+"/confirm", phone.AccessToken, nil, 200); err != nil {
			return err
		}
		if err := d.next("confirmed"); err != nil {
			return err
		}
		return post(desktopC, pick(nodes).URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil, 200)
	}))
}

// watchingDesktop creates a ticket on the node at createOn and watches it
// on watchOn, up to its pending state.
func watchingDesktop(ctx context.Context, c *http.Client, createOn string, watchOn *node) (*desktop, error) {
	nt, err := newTicket(c, createOn)
	if err != nil {
		return nil, err
	}
	ws, err := openDesktop(ctx, watchOn, nt, 0)
	if err != nil {
		return nil, err
	}
	d := &desktop{nt: nt, ws: ws}
	if err := d.next("pending"); err != nil {
		ws.Close()
		return nil, err
	}
	return d, nil
}

func newTicket(c *http.Client, base string) (authcore.NewTicket, error) {
	r, err := tryCall(c, "POST", base+"/v1/qr/tickets", "", nil)
	if err != nil {
		return authcore.NewTicket{}, err
	}
	if r.Status != 201 {
		return authcore.NewTicket{}, fmt.Errorf("create ticket: %d %s", r.Status, r.Body)
	}
	var nt authcore.NewTicket
	return nt, json.Unmarshal(r.Body, &nt)
}

// TestNodeLoss: desktops watch on node A; A dies (kill -9, or SIGTERM);
// the phone confirms while they are away; they reconnect to B with since
// and get every later version exactly once.
func TestNodeLoss(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, b backend) { testNodeLoss(t, b, sig) })
		})
	}
}

func testNodeLoss(t *testing.T, b backend, sig syscall.Signal) {
	const desktops = 50
	nodes := startNodes(t, b, 3)
	a, bNode, c := nodes[0], nodes[1], nodes[2]
	phone := phoneLogin(t, c.testHub, "nina")
	desktopC, phoneC := client("127.0.0.1"), client("")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ds := make([]*desktop, desktops)
	failOn(t, parallel(desktops, 50, func(i int) error {
		d, err := watchingDesktop(ctx, desktopC, pick(nodes).URL, a)
		if err != nil {
			return err
		}
		ds[i] = d
		if err := post(phoneC, c.URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": d.nt.Ticket}, 200); err != nil {
			return err
		}
		return d.next("scanned")
	}))

	a.signal(t, sig)
	failOn(t, parallel(desktops, 50, func(i int) error {
		d := ds[i]
		d.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, _, err := d.ws.ReadMessage()
		if err == nil {
			return fmt.Errorf("ticket %s: an event after the node went away", d.nt.ID)
		}
		if sig == syscall.SIGTERM && !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			return fmt.Errorf("ticket %s: SIGTERM closed the socket with %v, want 1001", d.nt.ID, err)
		}
		d.ws.Close()
		// Confirmed while the desktop is away.
		return post(phoneC, c.URL+"/v1/qr/tickets/"+d.nt.ID+"/confirm", phone.AccessToken, nil, 200)
	}))
	failOn(t, parallel(desktops, 50, func(i int) error {
		d := ds[i]
		ws, err := openDesktop(ctx, bNode, d.nt, d.lastSeen())
		if err != nil {
			return err
		}
		d.ws = ws
		defer ws.Close()
		if err := d.next("confirmed"); err != nil {
			return err
		}
		if err := post(desktopC, c.URL+"/v1/qr/tickets/"+d.nt.ID+"/redeem", d.nt.WatchSecret, nil, 200); err != nil {
			return err
		}
		return d.next("redeemed") // v4 next: "confirmed" was not delivered twice
	}))
}

// TestRedisRestart: 200 tickets watched on two nodes; Redis goes down and
// comes back while they are being confirmed; every confirmation reaches its
// desktop, and the nodes recover without a restart.
func TestRedisRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		const desktops = 200
		nodes := startNodes(t, b, 2)
		phone := phoneLogin(t, nodes[0].testHub, "rita")
		desktopC, phoneC := client("127.0.0.1"), client("")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ds := make([]*desktop, desktops)
		failOn(t, parallel(desktops, 50, func(i int) error {
			d, err := watchingDesktop(ctx, desktopC, nodes[i%2].URL, nodes[i%2])
			if err != nil {
				return err
			}
			ds[i] = d
			if err := post(phoneC, nodes[(i+1)%2].URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": d.nt.Ticket}, 200); err != nil {
				return err
			}
			return d.next("scanned")
		}))

		// Confirm them all while Redis restarts under the nodes' feet: the
		// first half before the outage, the rest retried until Redis is back.
		failOn(t, parallel(desktops/2, 50, func(i int) error {
			return post(phoneC, nodes[1].URL+"/v1/qr/tickets/"+ds[i].nt.ID+"/confirm", phone.AccessToken, nil, 200)
		}))
		b.kill()
		for _, n := range nodes {
			if r, err := tryCall(desktopC, "GET", n.URL+"/readyz", "", nil); err != nil || r.Status != 503 {
				t.Errorf("%s /readyz while Redis is down: %v %v, want 503", n.name, r.Status, err)
			}
		}
		b.revive()
		failOn(t, parallel(desktops-desktops/2, 50, func(i int) error {
			d := ds[desktops/2+i]
			// While Redis is coming back a confirm may fail: retry every
			// 100 ms, as a phone would, until it succeeds or time is up.
			retry := time.NewTicker(100 * time.Millisecond)
			defer retry.Stop()
			for {
				err := post(phoneC, nodes[0].URL+"/v1/qr/tickets/"+d.nt.ID+"/confirm", phone.AccessToken, nil, 200)
				if err == nil {
					return nil
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("ticket %s: confirm never succeeded after the Redis restart: %v", d.nt.ID, err)
				case <-retry.C:
				}
			}
		}))
		failOn(t, parallel(desktops, 100, func(i int) error {
			defer ds[i].ws.Close()
			return ds[i].next("confirmed")
		}))
		// The nodes recovered without a restart: ready again, a fresh
		// ticket works on each, and the broker counted its reconnect.
		for _, n := range nodes {
			mustStatus(t, n.name+" /readyz after the Redis restart", call(t, desktopC, "GET", n.URL+"/readyz", "", nil), 200)
			if _, err := newTicket(desktopC, n.URL); err != nil {
				t.Fatalf("%s after the Redis restart: %v", n.name, err)
			}
			m := call(t, desktopC, "GET", internalURL(t, n.logs)+"/metrics", "", nil)
			if !regexp.MustCompile(`(?m)^loginhub_broker_reconnects_total [1-9]`).Match(m.Body) {
				t.Errorf("%s: no broker reconnect counted in /metrics", n.name)
			}
		}
	})
}

// TestRedeemRaceAcrossNodes: two nodes redeem the same confirmed ticket at
// the same moment; exactly one wins, every time.
func TestRedeemRaceAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		phone := phoneLogin(t, nodes[0].testHub, "sam")
		desktopC, phoneC := client("127.0.0.1"), client("")
		for round := range 30 {
			nt, err := newTicket(desktopC, nodes[0].URL)
			if err != nil {
				t.Fatal(err)
			}
			if err := post(phoneC, nodes[1].URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}, 200); err != nil {
				t.Fatal(err)
			}
			if err := post(phoneC, nodes[0].URL+"/v1/qr/tickets/"+nt.ID+"/confirm", phone.AccessToken, nil, 200); err != nil {
				t.Fatal(err)
			}
			statuses := make([]int, 4)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					r, err := tryCall(desktopC, "POST", nodes[i%2].URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil)
					if err == nil {
						statuses[i] = r.Status
					}
				}()
			}
			close(start)
			wg.Wait()
			wins := 0
			for _, s := range statuses {
				switch s {
				case 200:
					wins++
				case 410:
				default:
					t.Fatalf("round %d: redeem statuses %v, want one 200 and the rest 410", round, statuses)
				}
			}
			if wins != 1 {
				t.Fatalf("round %d: %d redeems won (%v), want exactly 1", round, wins, statuses)
			}
		}
	})
}

func TestRedisNeedsSharedTicketKeys(t *testing.T) {
	_, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LOGINHUB_REDIS_URL": "redis://127.0.0.1:1"}[k]
	}, devNull{})
	if err == nil || !strings.Contains(err.Error(), "LOGINHUB_TICKET_KEYS") {
		t.Fatalf("Redis without shared ticket keys: %v, want an error naming LOGINHUB_TICKET_KEYS", err)
	}
}

func TestRedisNeedsSharedDataKey(t *testing.T) {
	_, err := loadConfig(nil, func(k string) string {
		return map[string]string{"LOGINHUB_REDIS_URL": "redis://127.0.0.1:1", "LOGINHUB_TICKET_KEYS": sharedKeys()}[k]
	}, devNull{})
	if err == nil || !strings.Contains(err.Error(), "LOGINHUB_DATA_KEY") {
		t.Fatalf("Redis without a shared data key: %v, want an error naming LOGINHUB_DATA_KEY", err)
	}
}

// TestSandboxAcrossNodes: with Redis, the nodes' sandboxes are one WeChat,
// as behind a round-robin load balancer: a code issued by one node works
// on another, once; a user has one openid and one session_key; the app
// has one secret; the access token the hub caches in Redis for every node
// is known to every node's sandbox; and a face check started through one
// node is played and read through another.
func TestSandboxAcrossNodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		nodes := startNodes(t, b, 2)
		a, bb := nodes[0], nodes[1]
		c := client("")

		// One app: the credentials any SDK reads agree.
		var appA, appB struct{ AppID, Secret string }
		call(t, c, "GET", a.URL+"/sandbox/wechat/app", "", nil).decode(t, &appA)
		call(t, c, "GET", bb.URL+"/sandbox/wechat/app", "", nil).decode(t, &appB)
		if appA != appB || appA.Secret == "" {
			t.Fatalf("sandbox apps: %+v on %s, %+v on %s; want one", appA, a.name, appB, bb.name)
		}

		wxLogin := func(n *node, user string) string {
			t.Helper()
			var code struct{ Code string }
			r := call(t, c, "POST", n.URL+"/sandbox/wechat/wx.login", "", map[string]string{"user": user})
			mustStatus(t, n.name+" sandbox wx.login", r, 200)
			r.decode(t, &code)
			return code.Code
		}

		// A wx.login code from A logs in on B, and only once, on any node.
		code := wxLogin(a, "mei")
		r := call(t, c, "POST", bb.URL+"/v1/wx/login", "", map[string]string{"code": code})
		mustStatus(t, "a code from "+a.name+" on "+bb.name, r, 200)
		var onB authcore.Session
		r.decode(t, &onB)
		for _, n := range nodes {
			mustStatus(t, "the same code again on "+n.name, call(t, c, "POST", n.URL+"/v1/wx/login", "", map[string]string{"code": code}), 401)
		}
		r = call(t, c, "POST", a.URL+"/v1/wx/login", "", map[string]string{"code": wxLogin(bb, "mei")})
		mustStatus(t, "a code from "+bb.name+" on "+a.name, r, 200)
		var onA authcore.Session
		r.decode(t, &onA)
		if onA.User.ID != onB.User.ID {
			t.Errorf("mei logged in as %s through %s and as %s through %s; want one user", onB.User.ID, bb.name, onA.User.ID, a.name)
		}

		// WeChat's own API, as any SDK calls it: one openid per user,
		// whichever node issued the code and whichever exchanges it.
		code2session := func(n *node, code string) (openid, sessionKey string) {
			t.Helper()
			q := url.Values{"appid": {appA.AppID}, "secret": {appA.Secret}, "js_code": {code}, "grant_type": {"authorization_code"}}
			var s struct {
				OpenID     string `json:"openid"`
				SessionKey string `json:"session_key"`
				ErrCode    int    `json:"errcode"`
			}
			call(t, c, "GET", n.URL+"/sandbox/wechat/sns/jscode2session?"+q.Encode(), "", nil).decode(t, &s)
			if s.ErrCode != 0 || s.OpenID == "" {
				t.Fatalf("jscode2session on %s: errcode %d, openid %q", n.name, s.ErrCode, s.OpenID)
			}
			return s.OpenID, s.SessionKey
		}
		openidAB, keyAB := code2session(bb, wxLogin(a, "mei"))
		openidBA, _ := code2session(a, wxLogin(bb, "mei"))
		if openidAB != openidBA {
			t.Errorf("mei's openid: %s (code from %s on %s), %s (code from %s on %s); want one", openidAB, a.name, bb.name, openidBA, bb.name, a.name)
		}
		if _, keyAgain := code2session(a, wxLogin(a, "mei")); keyAgain == keyAB {
			t.Errorf("a new wx.login on %s kept mei's session_key; want it rotated, as WeChat does", a.name)
		}

		// getPhoneNumber across nodes: the button's code (checked with the
		// access token the hub caches in Redis), single use, and the legacy
		// payload under the session_key a wx.login on the other node gave.
		nao := onLogin(t, c, bb, wxLogin(a, "nao"))
		button := func(n *node, user string) (b struct{ Code, EncryptedData, IV string }) {
			t.Helper()
			r := call(t, c, "POST", n.URL+"/sandbox/wechat/getPhoneNumber", "", map[string]string{"user": user})
			mustStatus(t, n.name+" sandbox getPhoneNumber", r, 200)
			r.decode(t, &b)
			return b
		}
		phone := button(bb, "nao")
		mustStatus(t, "a phone code from "+bb.name+" on "+a.name,
			call(t, c, "POST", a.URL+"/v1/wx/phone", nao.AccessToken, map[string]string{"code": phone.Code}), 200)
		for _, n := range nodes {
			mustStatus(t, "the same phone code again on "+n.name,
				call(t, c, "POST", n.URL+"/v1/wx/phone", nao.AccessToken, map[string]string{"code": phone.Code}), 401)
		}
		mustStatus(t, "a phone code from "+a.name+" on "+bb.name,
			call(t, c, "POST", bb.URL+"/v1/wx/phone", nao.AccessToken, map[string]string{"code": button(a, "nao").Code}), 200)
		mustStatus(t, "encrypted phone data from "+bb.name+" on "+a.name,
			call(t, c, "POST", a.URL+"/v1/wx/phone", nao.AccessToken, map[string]string{"encrypted_data": phone.EncryptedData, "iv": phone.IV}), 200)

		// A face check started on B is played on A (once, on any node) and
		// its result read on B, on both paths.
		for _, legacy := range []bool{false, true} {
			r := call(t, c, "POST", bb.URL+"/v1/face/verify-id", nao.AccessToken, map[string]string{"name": "张小奈", "id_number": idNumber("11010519491231002")})
			mustStatus(t, "face verify-id on "+bb.name, r, 200)
			var v struct {
				VerifyID string `json:"verify_id"`
			}
			r.decode(t, &v)
			r = call(t, c, "POST", a.URL+"/sandbox/wechat/requestFacialVerify", "", map[string]string{"verify_id": v.VerifyID})
			mustStatus(t, "a face check from "+bb.name+" played on "+a.name, r, 200)
			var played struct {
				VerifyResult string `json:"verify_result"`
			}
			r.decode(t, &played)
			for _, n := range nodes {
				mustStatus(t, "the same face check played again on "+n.name,
					call(t, c, "POST", n.URL+"/sandbox/wechat/requestFacialVerify", "", map[string]string{"verify_id": v.VerifyID}), 409)
			}
			body := map[string]string{"verify_id": v.VerifyID}
			if legacy {
				body["verify_result"] = played.VerifyResult
			}
			mustStatus(t, fmt.Sprintf("face result on %s (legacy %v)", bb.name, legacy),
				call(t, c, "POST", bb.URL+"/v1/face/result", nao.AccessToken, body), 200)
		}
	})
}

// onLogin logs in on n with a wx.login code.
func onLogin(t testing.TB, c *http.Client, n *node, code string) authcore.Session {
	t.Helper()
	r := call(t, c, "POST", n.URL+"/v1/wx/login", "", map[string]string{"code": code})
	mustStatus(t, n.name+" /v1/wx/login", r, 200)
	var s authcore.Session
	r.decode(t, &s)
	return s
}
