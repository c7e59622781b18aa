package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
)

func confirmVia(t testing.TB, h *testHub, phone authcore.Session, nt authcore.NewTicket) {
	t.Helper()
	c := client("")
	mustStatus(t, "scan", call(t, c, "POST", h.URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}), 200)
	mustStatus(t, "confirm", call(t, c, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", phone.AccessToken, nil), 200)
}

func TestLateWatchSeesConfirmedAtOnce(t *testing.T) {
	h := startHub(t, nil)
	nt := createTicket(t, client("127.0.0.1"), h, "")
	confirmVia(t, h, phoneLogin(t, h, "carol"), nt)

	ws := dialWS(t, h)
	watch(t, ws, nt, 2) // it saw "scanned" before it went away
	wantState(t, ws, "confirmed", 3)

	ws2 := dialWS(t, h)
	watch(t, ws2, nt, 0) // a fresh page: every version, in order
	wantState(t, ws2, "pending", 1)
	wantState(t, ws2, "scanned", 2)
	wantState(t, ws2, "confirmed", 3)
}

// TestReconnectDeliversEachVersionOnce runs many logins at once; each
// desktop drops its socket at a random point and comes back with since.
// Every desktop must see versions 1..4 exactly once, in order.
func TestReconnectDeliversEachVersionOnce(t *testing.T) {
	const n = 100
	h := startHub(t, nil)
	phones := []authcore.Session{phoneLogin(t, h, "p1"), phoneLogin(t, h, "p2"), phoneLogin(t, h, "p3")}
	desktop := client("127.0.0.1")

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		nt := createTicket(t, desktop, h, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- runReconnectingDesktop(t, h, phones[i%len(phones)], nt, i%4)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// runReconnectingDesktop watches nt, drives the phone side, and reconnects
// after dropAfter events.
func runReconnectingDesktop(t *testing.T, h *testHub, phone authcore.Session, nt authcore.NewTicket, dropAfter int) error {
	dial := func() (*websocket.Conn, error) {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.URL, "http")+"/v1/ws", http.Header{"Origin": {h.URL}})
		return c, err
	}
	conn, err := dial()
	if err != nil {
		return err
	}
	defer func() { conn.Close() }()
	var seen []uint64
	send := func(since uint64) error {
		return conn.WriteJSON(map[string]any{"op": "watch", "id": nt.ID, "secret": nt.WatchSecret, "since": since})
	}
	if err := send(0); err != nil {
		return err
	}
	phoneC := client("")
	desktopC := client("127.0.0.1")
	steps := []func() error{
		func() error {
			return expectOK(call(t, phoneC, "POST", h.URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}))
		},
		func() error {
			return expectOK(call(t, phoneC, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/confirm", phone.AccessToken, nil))
		},
		func() error {
			return expectOK(call(t, desktopC, "POST", h.URL+"/v1/qr/tickets/"+nt.ID+"/redeem", nt.WatchSecret, nil))
		},
	}
	dropped := false
	for len(seen) < 4 {
		if !dropped && len(seen) == dropAfter {
			// Go away, let the next change happen while away, come back.
			conn.Close()
			dropped = true
			if len(seen) >= 1 && len(seen) <= len(steps) {
				if err := steps[len(seen)-1](); err != nil {
					return err
				}
			}
			if conn, err = dial(); err != nil {
				return err
			}
			var since uint64
			if len(seen) > 0 {
				since = seen[len(seen)-1]
			}
			if err := send(since); err != nil {
				return err
			}
		}
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		var ev wsEvent
		if err := conn.ReadJSON(&ev); err != nil {
			return fmt.Errorf("ticket %s after %v: %w", nt.ID, seen, err)
		}
		if ev.Ev != "state" {
			return fmt.Errorf("ticket %s: unexpected event %+v", nt.ID, ev)
		}
		want := uint64(len(seen) + 1)
		if ev.Version != want {
			return fmt.Errorf("ticket %s: got version %d after %v, want %d (each version once, in order)", nt.ID, ev.Version, seen, want)
		}
		seen = append(seen, ev.Version)
		// Drive the next step once the desktop has seen the previous one,
		// unless that step is the one done while away (just below, at the drop).
		k := len(seen) - 1
		if k < len(steps) && k != dropAfter-1 {
			if err := steps[k](); err != nil {
				return err
			}
		}
	}
	return nil
}

func expectOK(r apiResponse) error {
	if r.Status != 200 {
		return fmt.Errorf("status %d: %s", r.Status, r.Body)
	}
	return nil
}

func TestLongPoll(t *testing.T) {
	h := startHub(t, nil)
	desktop := client("127.0.0.1")
	nt := createTicket(t, desktop, h, "")
	status := h.URL + "/v1/qr/tickets/" + nt.ID

	r := call(t, desktop, "GET", status+"?since=0", nt.WatchSecret, nil)
	mustStatus(t, "status", r, 200)
	var m struct {
		State   string
		Version uint64
	}
	r.decode(t, &m)
	if m.State != "pending" || m.Version != 1 {
		t.Fatalf("status: %s", r.Body)
	}
	mustStatus(t, "status with a wrong secret", call(t, desktop, "GET", status, "nope", nil), 401)
	mustStatus(t, "status from another address", call(t, client("127.0.0.2"), "GET", status, nt.WatchSecret, nil), 403)

	phone := phoneLogin(t, h, "dave")
	got := make(chan apiResponse, 1)
	go func() { got <- call(t, desktop, "GET", status+"?since=1&wait=25", nt.WatchSecret, nil) }()
	mustStatus(t, "scan", call(t, client(""), "POST", h.URL+"/v1/qr/scan", phone.AccessToken, map[string]string{"ticket": nt.Ticket}), 200)
	select {
	case r := <-got:
		mustStatus(t, "long-poll", r, 200)
		r.decode(t, &m)
		if m.State != "scanned" || m.Version != 2 {
			t.Fatalf("long-poll answered %s, want scanned v2", r.Body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("long-poll did not answer within 20s of the scan")
	}
}

func TestWebSocketOriginAllowList(t *testing.T) {
	h := startHub(t, nil)
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(h.URL, "http")+"/v1/ws", http.Header{"Origin": {"https://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Origin: err %v, response %v; want 403", err, resp)
	}
}

func TestShutdownClosesSocketsWith1001(t *testing.T) {
	h := startHub(t, nil)
	nt := createTicket(t, client("127.0.0.1"), h, "")
	ws := dialWS(t, h)
	watch(t, ws, nt, 0)
	wantState(t, ws, "pending", 1)
	h.cancel() // what SIGTERM does, through signal.NotifyContext
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("after shutdown: %v, want close 1001 (going away)", err)
	}
}

// TestLongPollWatchersPerTicket: long-polls count among a ticket's
// watchers: with 4 sockets watching a ticket, a long-poll is answered 429
// rate_limited with Retry-After, at once; once a socket leaves, a
// long-poll waits again. (The sockets are confirmed by their first state
// event, so no step here races the hub's registration.)
func TestLongPollWatchersPerTicket(t *testing.T) {
	h := startHub(t, nil)
	c := client("127.0.0.1")
	nt := createTicket(t, c, h, "")
	var sockets []*websocket.Conn
	for range 4 {
		ws := dialWS(t, h)
		watch(t, ws, nt, 0)
		wantState(t, ws, "pending", 1)
		sockets = append(sockets, ws)
	}
	url := fmt.Sprintf("%s/v1/qr/tickets/%s?since=1&wait=1", h.URL, nt.ID)
	r := call(t, c, "GET", url, nt.WatchSecret, nil)
	if r.Status != http.StatusTooManyRequests || r.errorCode() != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("a fifth watcher, by long-poll: %d %v %s; want 429 rate_limited with Retry-After", r.Status, r.Header, r.Body)
	}
	// A socket that leaves frees its place; the hub notices the close a
	// moment later, so ask until a long-poll is let in.
	sockets[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := call(t, c, "GET", url, nt.WatchSecret, nil)
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("a long-poll after a socket left: %d %s; want 200 within 10 s", r.Status, r.Body)
		}
	}
}
