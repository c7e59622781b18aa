package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/handlers"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// waitFor bounds every wait for something the test expects to happen.
const waitFor = 10 * time.Second

const allowedOrigin = "https://desk.example"

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeTickets is an in-memory Tickets with a settable clock. advance moves a
// ticket on and publishes the new version, as the memory store does.
type fakeTickets struct {
	mu      sync.Mutex
	now     time.Time
	recs    map[string]*fakeTicket
	publish func(id string, version uint64)
	viewed  chan string // receives the id after each View, if not full
}

type fakeTicket struct {
	rec    authcore.TicketRecord
	secret string
}

func newFakeTickets() *fakeTickets {
	return &fakeTickets{now: t0, recs: make(map[string]*fakeTicket), viewed: make(chan string, 64)}
}

func (f *fakeTickets) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTickets) setNow(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// add creates a pending ticket (version 1) expiring in two minutes.
func (f *fakeTickets) add(id string) {
	f.addTrail(id, []authcore.State{authcore.StatePending}, authcore.Profile{})
}

// addTrail creates a ticket whose history is trail.
func (f *fakeTickets) addTrail(id string, trail []authcore.State, scanner authcore.Profile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := authcore.TicketRecord{
		ID: id, State: trail[len(trail)-1], Version: uint64(len(trail)), Trail: trail,
		ExpiresAt: f.now.Add(2 * time.Minute), CreatedAt: f.now,
	}
	if len(trail) > 1 {
		rec.ScannerID, rec.Scanner = "u-"+id, scanner
	}
	f.recs[id] = &fakeTicket{rec: rec, secret: "secret-" + id}
}

// advance moves ticket id to state to and publishes the new version, unless
// quiet (a lost nudge).
func (f *fakeTickets) advance(t *testing.T, id string, to authcore.State, quiet bool) uint64 {
	t.Helper()
	f.mu.Lock()
	ft := f.recs[id]
	if ft == nil {
		f.mu.Unlock()
		t.Fatalf("advance: no ticket %s", id)
	}
	r := &ft.rec
	r.State = to
	r.Version++
	r.Trail = append(r.Trail, to)
	if to == authcore.StateScanned {
		r.ScannerID, r.Scanner = "u-"+id, authcore.Profile{Nickname: "nick-" + id, AvatarURL: "https://a.example/" + id}
	}
	v := r.Version
	publish := f.publish
	f.mu.Unlock()
	if !quiet && publish != nil {
		publish(id, v)
	}
	return v
}

func (f *fakeTickets) AuthorizeWatch(ctx context.Context, id, secret string, client netip.Addr) (authcore.View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ft := f.recs[id]
	if ft == nil {
		return authcore.View{}, authcore.Errorf(authcore.KindNotFound, "no such ticket")
	}
	if secret != ft.secret {
		return authcore.View{}, authcore.Wrap(authcore.KindUnauthorized, errors.New("SECRET CAUSE"), "wrong watch secret")
	}
	if client != netip.MustParseAddr("127.0.0.1") {
		return authcore.View{}, authcore.Errorf(authcore.KindForbidden, "wrong address %v", client)
	}
	return ft.rec.ViewAt(f.now), nil
}

func (f *fakeTickets) View(ctx context.Context, id string) (authcore.View, error) {
	f.mu.Lock()
	ft := f.recs[id]
	var v authcore.View
	if ft != nil {
		v = ft.rec.ViewAt(f.now)
	}
	f.mu.Unlock()
	select {
	case f.viewed <- id:
	default:
	}
	if ft == nil {
		return authcore.View{}, authcore.Errorf(authcore.KindNotFound, "no such ticket")
	}
	return v, nil
}

// fakeBroker is a MemoryBroker that can lose nudges and "reconnect".
type fakeBroker struct {
	MemoryBroker
	lose    atomic.Bool
	started chan struct{} // closed when Run first starts
	once    sync.Once
	mu      sync.Mutex
	handler BrokerHandler
}

func (b *fakeBroker) Run(ctx context.Context, h BrokerHandler) error {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
	b.once.Do(func() { close(b.started) })
	return b.MemoryBroker.Run(ctx, h)
}

func (b *fakeBroker) publish(id string, version uint64) {
	if !b.lose.Load() {
		b.Publish(id, version)
	}
}

// reconnect ends the outage and, like a real broker after reconnecting,
// asks for a resync.
func (b *fakeBroker) reconnect(t *testing.T) {
	b.lose.Store(false)
	b.mu.Lock()
	h := b.handler
	b.mu.Unlock()
	if h == nil {
		t.Fatal("reconnect: broker Run has not started")
	}
	h.Resync()
}

// forModes runs f once per way of reading sockets: polled (epoll, on
// Linux) and a goroutine per socket. mode is a Config option for newEnv.
func forModes(t *testing.T, f func(t *testing.T, mode func(*Config))) {
	t.Helper()
	for _, m := range []struct {
		name       string
		goroutines bool
	}{{"epoll", false}, {"goroutines", true}} {
		t.Run(m.name, func(t *testing.T) {
			f(t, func(c *Config) { c.GoroutinePerSocket = m.goroutines })
		})
	}
}

type env struct {
	t       *testing.T
	hub     *Hub
	tickets *fakeTickets
	broker  *fakeBroker
	srv     *httptest.Server
	url     string
	reg     *prometheus.Registry
}

func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with a chance to adjust the hub before it serves.
func newEnvWith(t *testing.T, adjust func(*Hub), opts ...func(*Config)) *env {
	t.Helper()
	e := &env{t: t, tickets: newFakeTickets(), broker: &fakeBroker{started: make(chan struct{})}, reg: prometheus.NewRegistry()}
	e.tickets.publish = e.broker.publish
	cfg := Config{
		Tickets:     e.tickets,
		Broker:      e.broker,
		CheckOrigin: func(o string) bool { return o == allowedOrigin },
		ClientIP:    handlers.ClientIPs{}.ClientIP,
		Registerer:  e.reg,
		Now:         e.tickets.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.hub = New(cfg)
	if polled := e.hub.poll != nil; polled == cfg.GoroutinePerSocket && runtime.GOOS == "linux" {
		t.Fatalf("hub polls sockets: %v, want %v", polled, !cfg.GoroutinePerSocket)
	}
	if adjust != nil {
		adjust(e.hub)
	}
	e.srv = httptest.NewServer(e.hub)
	e.url = "ws" + strings.TrimPrefix(e.srv.URL, "http")
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- e.hub.Run(ctx) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		if err := e.hub.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		e.srv.Close()
		cancel()
		select {
		case err := <-runDone:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(waitFor):
			t.Error("Run did not return")
		}
	})
	// Wait for the broker's Run, so that reconnect has a handler.
	select {
	case <-e.broker.started:
	case <-time.After(waitFor):
		t.Fatal("broker Run did not start")
	}
	return e
}

// counter reads a hub counter.
func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// ticketsHeld is how many tickets the hub has state for (subscriptions).
func (e *env) ticketsHeld() int { return e.hub.tickets.len() }

type client struct {
	t  *testing.T
	ws *websocket.Conn
}

type event struct {
	Ev        string            `json:"ev"`
	ID        string            `json:"id"`
	Version   uint64            `json:"version"`
	State     authcore.State    `json:"state"`
	ExpiresAt time.Time         `json:"expires_at"`
	Scanner   *authcore.Profile `json:"scanner"`
	Error     string            `json:"error"`
	Message   string            `json:"message"`
}

func (e *env) dial() *client {
	e.t.Helper()
	return e.dialWith(websocket.DefaultDialer)
}

func (e *env) dialWith(d *websocket.Dialer) *client {
	e.t.Helper()
	ws, resp, err := d.Dial(e.url, http.Header{"Origin": {allowedOrigin}})
	if err != nil {
		e.t.Fatalf("dial: %v (response %v)", err, resp)
	}
	c := &client{t: e.t, ws: ws}
	e.t.Cleanup(func() { ws.Close() })
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(v); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) watch(id string, since uint64) {
	c.t.Helper()
	c.send(map[string]any{"op": "watch", "id": id, "secret": "secret-" + id, "since": since})
}

func (c *client) next() event {
	c.t.Helper()
	ev, err := c.read()
	if err != nil {
		c.t.Fatalf("reading an event: %v", err)
	}
	return ev
}

func (c *client) read() (event, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(waitFor))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		return event{}, err
	}
	if typ != websocket.TextMessage {
		return event{}, fmt.Errorf("frame type %d, want text", typ)
	}
	var ev event
	if err := json.Unmarshal(data, &ev); err != nil {
		return event{}, fmt.Errorf("decoding %s: %v", data, err)
	}
	return ev, nil
}

// expectState reads the next event and checks that it is id at version
// with state.
func (c *client) expectState(id string, version uint64, state authcore.State) event {
	c.t.Helper()
	ev := c.next()
	if ev.Ev != "state" || ev.ID != id || ev.Version != version || ev.State != state {
		c.t.Fatalf("got %+v, want state event %s v%d %s", ev, id, version, state)
	}
	return ev
}

// barrier sends an unknown op and waits for its invalid_request error:
// the hub handles a socket's messages in order, so everything sent before
// has been handled, and nothing else was sent to the client in between.
func (c *client) barrier() {
	c.t.Helper()
	c.send(map[string]any{"op": "x"})
	c.expectError("", "invalid_request")
}

func (c *client) expectError(id, code string) event {
	c.t.Helper()
	ev := c.next()
	if ev.Ev != "error" || ev.ID != id || ev.Error != code {
		c.t.Fatalf("got %+v, want error event %q for id %q", ev, code, id)
	}
	return ev
}

func TestWatchGetsCurrentStateAtOnce(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		c := e.dial()
		c.watch("t1", 0)
		ev := c.expectState("t1", 1, authcore.StatePending)
		if !ev.ExpiresAt.Equal(t0.Add(2 * time.Minute)) {
			t.Errorf("expires_at = %v, want %v", ev.ExpiresAt, t0.Add(2*time.Minute))
		}
		if ev.Scanner != nil {
			t.Errorf("pending state has scanner %+v, want none", ev.Scanner)
		}
	})
}

func TestWatchAfterChangeSeesItAtOnce(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		e.tickets.advance(t, "t1", authcore.StateScanned, false)
		c := e.dial()
		c.watch("t1", 0)
		if ev := c.expectState("t1", 1, authcore.StatePending); ev.Scanner != nil {
			t.Errorf("v1 (pending) has scanner %+v, want none", ev.Scanner)
		}
		ev := c.expectState("t1", 2, authcore.StateScanned)
		if ev.Scanner == nil || ev.Scanner.Nickname != "nick-t1" {
			t.Errorf("v2 (scanned) scanner = %+v, want nick-t1", ev.Scanner)
		}
		// A change while watching arrives too.
		e.tickets.advance(t, "t1", authcore.StateConfirmed, false)
		if ev := c.expectState("t1", 3, authcore.StateConfirmed); ev.Scanner == nil {
			t.Error("confirmed state has no scanner")
		}
	})
}

func TestSinceAndReconnect(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		e.tickets.advance(t, "t1", authcore.StateScanned, false)

		c := e.dial()
		c.watch("t1", 1) // has seen v1
		c.expectState("t1", 2, authcore.StateScanned)
		c.ws.Close()

		// Changes while the desktop reconnects (nudges for nobody).
		e.tickets.advance(t, "t1", authcore.StateConfirmed, false)
		e.tickets.advance(t, "t1", authcore.StateRedeemed, false)

		c2 := e.dial()
		c2.watch("t1", 2)
		c2.expectState("t1", 3, authcore.StateConfirmed)
		c2.expectState("t1", 4, authcore.StateRedeemed)
		c2.barrier() // nothing else came before this
	})
}

func TestTerminalStateEndsWatch(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		c := e.dial()
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending)
		e.tickets.advance(t, "t1", authcore.StateCancelled, false)
		c.expectState("t1", 2, authcore.StateCancelled)
		// The watch has ended: watching again is no duplicate (and sends
		// nothing new), and the hub holds no subscription.
		c.watch("t1", 2)
		c.barrier()
		if n := e.ticketsHeld(); n != 0 {
			t.Errorf("hub holds %d tickets after the terminal state, want 0", n)
		}
	})
}

func TestManyConcurrentTickets(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		const tickets, perClient = 200, 8
		trail := []authcore.State{authcore.StatePending, authcore.StateScanned, authcore.StateConfirmed, authcore.StateRedeemed}
		ids := make([]string, tickets)
		watched := make([]chan struct{}, tickets) // closed when a client saw v1
		for i := range ids {
			ids[i] = fmt.Sprintf("m%03d", i)
			watched[i] = make(chan struct{})
			e.tickets.add(ids[i])
		}

		var advancers sync.WaitGroup
		for i, id := range ids {
			advancers.Go(func() {
				select {
				case <-watched[i]:
				case <-time.After(waitFor):
					t.Errorf("%s: no client saw v1", id)
					return
				}
				for _, s := range trail[1:] {
					e.tickets.advance(t, id, s, false)
				}
			})
		}

		var clients sync.WaitGroup
		for k := 0; k < tickets/perClient; k++ {
			mine := ids[k*perClient : (k+1)*perClient]
			clients.Go(func() {
				last := make(map[string]uint64)
				reconnectAfter := 0
				if k%2 == 1 {
					reconnectAfter = 6 + k%7 // odd clients reconnect mid-way
				}
				received := 0
				for {
					ws, _, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Origin": {allowedOrigin}})
					if err != nil {
						t.Errorf("client %d: dial: %v", k, err)
						return
					}
					for _, id := range mine {
						if last[id] < 4 {
							msg := map[string]any{"op": "watch", "id": id, "secret": "secret-" + id, "since": last[id]}
							if err := ws.WriteJSON(msg); err != nil {
								t.Errorf("client %d: %v", k, err)
							}
						}
					}
					c := &client{t: t, ws: ws}
					reconnect := false
					for !reconnect && !allDone(mine, last) {
						ev, err := c.read()
						if err != nil {
							t.Errorf("client %d: %v", k, err)
							ws.Close()
							return
						}
						if ev.Ev != "state" {
							t.Errorf("client %d: unexpected %+v", k, ev)
							continue
						}
						if want := last[ev.ID] + 1; ev.Version != want {
							t.Errorf("client %d: %s: got version %d, want %d (no loss, no duplicate)", k, ev.ID, ev.Version, want)
						}
						if want := trail[ev.Version-1]; ev.State != want {
							t.Errorf("client %d: %s v%d: state %s, want %s", k, ev.ID, ev.Version, ev.State, want)
						}
						first := last[ev.ID] == 0
						last[ev.ID] = ev.Version
						if first {
							var i int
							fmt.Sscanf(ev.ID, "m%03d", &i)
							close(watched[i])
						}
						received++
						if received == reconnectAfter {
							reconnect = true
						}
					}
					ws.Close()
					if !reconnect {
						return
					}
				}
			})
		}
		clients.Wait()
		advancers.Wait()
	})
}

func allDone(ids []string, last map[string]uint64) bool {
	for _, id := range ids {
		if last[id] < 4 {
			return false
		}
	}
	return true
}

func TestWatchRefused(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		c := e.dial()
		c.send(map[string]any{"op": "watch", "id": "t1", "secret": "wrong", "since": 0})
		ev := c.expectError("t1", "unauthorized")
		if ev.Message != "wrong watch secret" {
			t.Errorf("message = %q, want the client-safe message only", ev.Message)
		}
		c.watch("nope", 0)
		c.expectError("nope", "not_found")
		if n := e.ticketsHeld(); n != 0 {
			t.Errorf("hub holds %d tickets after refused watches, want 0", n)
		}
		// The socket still works.
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending)
	})
}

func TestWatchForbiddenAddress(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode, func(c *Config) {
			c.ClientIP = func(*http.Request) netip.Addr { return netip.MustParseAddr("192.0.2.1") }
		})
		e.tickets.add("t1")
		c := e.dial()
		c.watch("t1", 0)
		c.expectError("t1", "forbidden")
	})
}

func TestOrigin(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		tests := []struct {
			name   string
			origin string
			want   int
		}{
			{"allowed", allowedOrigin, http.StatusSwitchingProtocols},
			{"disallowed", "https://evil.example", http.StatusForbidden},
			{"missing (non-browser client)", "", http.StatusSwitchingProtocols},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				h := http.Header{}
				if tt.origin != "" {
					h.Set("Origin", tt.origin)
				}
				ws, resp, err := websocket.DefaultDialer.Dial(e.url, h)
				if ws != nil {
					ws.Close()
				}
				if resp == nil {
					t.Fatalf("no response: %v", err)
				}
				if resp.StatusCode != tt.want {
					t.Fatalf("status = %d, want %d", resp.StatusCode, tt.want)
				}
				if tt.want == http.StatusForbidden {
					var body struct{ Error string }
					if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != "forbidden" {
						t.Errorf("body error = %q (%v), want forbidden", body.Error, err)
					}
				}
			})
		}
	})
}

func TestNotAWebSocket(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		resp, err := http.Get(e.srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != http.StatusBadRequest || body.Error != "invalid_request" {
			t.Errorf("got %d %q, want 400 invalid_request", resp.StatusCode, body.Error)
		}
	})
}

func TestUnwatchStopsEvents(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("a")
		e.tickets.add("b")
		c := e.dial()
		c.watch("a", 0)
		c.expectState("a", 1, authcore.StatePending)
		c.send(map[string]any{"op": "unwatch", "id": "a"})
		c.watch("b", 0) // processed after the unwatch
		c.expectState("b", 1, authcore.StatePending)
		if n := e.ticketsHeld(); n != 1 {
			t.Errorf("hub holds %d tickets, want 1 (b)", n)
		}
		e.tickets.advance(t, "a", authcore.StateScanned, false)
		e.tickets.advance(t, "b", authcore.StateScanned, false)
		c.expectState("b", 2, authcore.StateScanned)                   // not a's v2
		c.send(map[string]any{"op": "unwatch", "id": "never-watched"}) // ignored
		c.send(map[string]any{"op": "unwatch", "id": "b"})
		c.barrier()
		if n := e.ticketsHeld(); n != 0 {
			t.Errorf("hub holds %d tickets after unwatching all, want 0", n)
		}
	})
}

func TestProtocolErrors(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode, func(c *Config) { c.MaxWatchesPerConn = 2 })
		for _, id := range []string{"a", "b", "c"} {
			e.tickets.add(id)
		}
		c := e.dial()

		if err := c.ws.WriteMessage(websocket.TextMessage, []byte(`{"op":`)); err != nil {
			t.Fatal(err)
		}
		c.expectError("", "invalid_request")
		c.send(map[string]any{"op": "subscribe", "id": "a"})
		c.expectError("a", "invalid_request")
		c.send(map[string]any{"op": "watch", "secret": "x"})
		c.expectError("", "invalid_request")
		c.send(map[string]any{"op": "watch", "id": strings.Repeat("x", 200), "secret": "x"})
		c.expectError("", "invalid_request")
		if err := c.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"op":"watch"}`)); err != nil {
			t.Fatal(err)
		}
		c.expectError("", "invalid_request")
		c.send(map[string]any{"op": "watch", "id": "a", "secret": "secret-a", "since": -1})
		c.expectError("", "invalid_request")

		c.watch("a", 0)
		c.expectState("a", 1, authcore.StatePending)
		c.watch("a", 0)
		c.expectError("a", "invalid_request") // already watched
		c.watch("b", 0)
		c.expectState("b", 1, authcore.StatePending)
		c.watch("c", 0)
		c.expectError("c", "rate_limited") // more than MaxWatchesPerConn

		// A frame over the read limit ends the socket.
		if err := c.ws.WriteMessage(websocket.TextMessage, make([]byte, readLimit+1)); err != nil {
			t.Fatal(err)
		}
		_, err := c.read()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Errorf("after an oversized frame: %v, want close 1009", err)
		}
	})
}

func TestExpiryBySweep(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		e.tickets.add("t2")
		e.tickets.advance(t, "t2", authcore.StateScanned, false)
		c := e.dial()
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending)
		c.watch("t2", 2)
		c.barrier() // barrier: t2 had nothing to send

		now := t0.Add(2 * time.Minute)
		e.tickets.setNow(now)
		e.hub.sweep(now)
		got := map[string]event{}
		for range 2 {
			ev := c.next()
			got[ev.ID] = ev
		}
		if ev := got["t1"]; ev.Version != 2 || ev.State != authcore.StateExpired || ev.Scanner != nil {
			t.Errorf("t1: got %+v, want v2 expired without scanner", ev)
		}
		if ev := got["t2"]; ev.Version != 3 || ev.State != authcore.StateExpired || ev.Scanner == nil {
			t.Errorf("t2: got %+v, want v3 expired with scanner", ev)
		}
		c.barrier()
		if n := e.ticketsHeld(); n != 0 {
			t.Errorf("hub holds %d tickets after expiry, want 0", n)
		}
	})
}

// logTap is a slog.Handler that hands records to a channel (if not full).
type logTap struct{ ch chan slog.Record }

func (l logTap) Enabled(context.Context, slog.Level) bool { return true }
func (l logTap) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.ch <- r:
	default:
	}
	return nil
}
func (l logTap) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logTap) WithGroup(string) slog.Handler      { return l }

// waitLog waits for a log record with message msg.
func waitLog(t *testing.T, ch chan slog.Record, msg string) slog.Record {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case r := <-ch:
			if r.Message == msg {
				return r
			}
		case <-deadline:
			t.Fatalf("no log %q within %v", msg, waitFor)
		}
	}
}

// smallBufferDialer dials sockets with a fixed 64 KiB receive buffer (no
// autotuning up to tcp_rmem max), so that a client that does not read
// fills up soon.
func smallBufferDialer() *websocket.Dialer {
	return &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(64 << 10)
		}
		return conn, err
	}}
}

func TestSlowConsumerDropped(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		logs := make(chan slog.Record, 100)
		e := newEnvWith(t, func(h *Hub) { h.writeWait = 300 * time.Millisecond }, mode,
			func(c *Config) { c.Logger = slog.New(logTap{logs}) })
		// A ticket with a long history of big events: far more than the socket
		// buffers and the send queue hold.
		trail := make([]authcore.State, 400)
		trail[0] = authcore.StatePending
		for i := 1; i < len(trail); i++ {
			trail[i] = authcore.StateScanned
		}
		e.tickets.addTrail("big", trail, authcore.Profile{Nickname: strings.Repeat("n", 32<<10)})
		e.tickets.add("small")

		slow := e.dialWith(smallBufferDialer())
		slow.watch("big", 0) // and never reads

		fast := e.dial()
		fast.watch("small", 0)
		fast.expectState("small", 1, authcore.StatePending)
		e.tickets.advance(t, "small", authcore.StateScanned, false)
		fast.expectState("small", 2, authcore.StateScanned)
		waitLog(t, logs, "hub: dropping slow consumer")

		// The slow socket was dropped: reading it now ends in an error before
		// all 400 events.
		n := 0
		for {
			ev, err := slow.read()
			if err != nil {
				break
			}
			if ev.Ev == "state" {
				n++
			}
		}
		if n >= len(trail) {
			t.Errorf("slow consumer read all %d events; want it dropped", n)
		}
		if got := counter(t, e.hub.m.slow); got != 1 {
			t.Errorf("slow consumers dropped = %v, want 1", got)
		}
		// The fast client is unaffected.
		e.tickets.advance(t, "small", authcore.StateConfirmed, false)
		fast.expectState("small", 3, authcore.StateConfirmed)
	})
}

func TestResyncAfterReconnect(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("a")
		e.tickets.add("b")
		c := e.dial()
		c.watch("a", 0)
		c.expectState("a", 1, authcore.StatePending)
		c.barrier() // the watch is set up, its reads done

		e.broker.lose.Store(true) // the broker connection is down
		e.tickets.advance(t, "a", authcore.StateScanned, false)
		c.watch("b", 0)
		c.expectState("b", 1, authcore.StatePending) // a's v2 was not announced

		e.broker.reconnect(t)
		c.expectState("a", 2, authcore.StateScanned)
		e.tickets.advance(t, "a", authcore.StateConfirmed, false)
		c.expectState("a", 3, authcore.StateConfirmed) // exactly once: no second v2
		if got := counter(t, e.hub.m.resyncs); got != 1 {
			t.Errorf("resyncs = %v, want 1", got)
		}
	})
}

func TestPingFromSweeper(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		c := e.dial()
		pinged := make(chan struct{}, 1)
		c.ws.SetPingHandler(func(string) error {
			select {
			case pinged <- struct{}{}:
			default:
			}
			return c.ws.WriteControl(websocket.PongMessage, nil, time.Now().Add(time.Second))
		})
		c.barrier() // barrier: the socket is registered
		e.hub.sweep(t0.Add(defaultPingInterval))
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending) // queued after the ping
		select {
		case <-pinged:
		default:
			t.Error("no ping before the event queued after the sweep")
		}
	})
}

func TestWait(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		t.Run("AtOnce", func(t *testing.T) {
			e := newEnv(t, mode)
			e.tickets.add("t1")
			v, err := e.hub.Wait(t.Context(), "t1", 0)
			if err != nil || v.Version != 1 || v.State != authcore.StatePending {
				t.Fatalf("Wait = %+v, %v; want v1 pending", v, err)
			}
			if n := e.ticketsHeld(); n != 0 {
				t.Errorf("hub holds %d tickets after Wait, want 0", n)
			}
		})
		for _, nudge := range []struct {
			name string
			send func(t *testing.T, e *env)
		}{
			{"OnNudge", func(t *testing.T, e *env) { e.tickets.advance(t, "t1", authcore.StateScanned, false) }},
			{"OnChanged", func(t *testing.T, e *env) { e.handler().Changed(e.moveQuietly(t, "t1", authcore.StateScanned)) }},
		} {
			t.Run(nudge.name, func(t *testing.T) {
				e := newEnv(t, mode)
				e.tickets.add("t1")
				got := e.startWait(t, t.Context(), "t1", 1)
				nudge.send(t, e)
				if v := waitResult(t, got, "after the nudge"); v.Version != 2 || v.State != authcore.StateScanned {
					t.Errorf("Wait = v%d %s, want v2 scanned", v.Version, v.State)
				}
				if n := e.ticketsHeld(); n != 0 {
					t.Errorf("hub holds %d tickets after Wait, want 0", n)
				}
			})
		}
		t.Run("OnContext", func(t *testing.T) {
			e := newEnv(t, mode)
			e.tickets.add("t1")
			ctx, cancel := context.WithCancel(t.Context())
			got := e.startWait(t, ctx, "t1", 1)
			cancel()
			if v := waitResult(t, got, "after its context ended"); v.Version != 1 {
				t.Errorf("Wait = v%d, want the current v1", v.Version)
			}
			if n := e.ticketsHeld(); n != 0 {
				t.Errorf("hub holds %d tickets after Wait, want 0", n)
			}
		})
		t.Run("OnExpiry", func(t *testing.T) {
			e := newEnv(t, mode)
			e.tickets.add("t1")
			got := e.startWait(t, t.Context(), "t1", 1)
			now := t0.Add(3 * time.Minute)
			e.tickets.setNow(now)
			e.hub.sweep(now)
			if v := waitResult(t, got, "at the expiry"); v.Version != 2 || v.State != authcore.StateExpired {
				t.Errorf("Wait = v%d %s, want v2 expired", v.Version, v.State)
			}
		})
		t.Run("NotFound", func(t *testing.T) {
			e := newEnv(t, mode)
			_, err := e.hub.Wait(t.Context(), "nope", 0)
			if authcore.KindOf(err) != authcore.KindNotFound {
				t.Errorf("Wait(unknown) error = %v, want not found", err)
			}
		})
	})
}

// startWait runs Wait(ctx, id, since) in the background and returns once
// it has registered; its view comes on the channel (its error fails t).
func (e *env) startWait(t *testing.T, ctx context.Context, id string, since uint64) <-chan authcore.View {
	t.Helper()
	got := make(chan authcore.View, 1)
	go func() {
		v, err := e.hub.Wait(ctx, id, since)
		if err != nil {
			t.Errorf("Wait: %v", err)
		}
		got <- v
	}()
	e.waitViewed(t)
	return got
}

// waitResult returns what a started Wait returned, or fails t if it does
// not return in time; when says when it should have.
func waitResult(t *testing.T, got <-chan authcore.View, when string) authcore.View {
	t.Helper()
	select {
	case v := <-got:
		return v
	case <-time.After(waitFor):
		t.Fatalf("Wait did not return %s", when)
		return authcore.View{}
	}
}

// waitViewed waits until Tickets.View was called (Wait has registered).
func (e *env) waitViewed(t *testing.T) {
	t.Helper()
	select {
	case <-e.tickets.viewed:
	case <-time.After(waitFor):
		t.Fatal("View was not called")
	}
}

func TestShutdown(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		c := e.dial()
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending)

		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			done <- e.hub.Shutdown(ctx)
		}()
		_, err := c.read()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("read after Shutdown: %v, want close 1001", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Shutdown = %v", err)
			}
		case <-time.After(waitFor):
			t.Fatal("Shutdown did not return")
		}
		if n := e.ticketsHeld(); n != 0 {
			t.Errorf("hub holds %d tickets after Shutdown, want 0", n)
		}
		_, resp, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Origin": {allowedOrigin}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("dial after Shutdown: %v %v, want 503", resp, err)
		}
	})
}

func TestMetrics(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		c := e.dial()
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending)
		c.barrier() // the writer counted the state event before writing this
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			m := mf.GetMetric()[0]
			got[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
		want := map[string]float64{
			"loginhub_hub_open_sockets":    1,
			"loginhub_hub_watched_tickets": 1,
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s = %v, want %v", name, got[name], w)
			}
		}
		if n := got["loginhub_hub_events_sent_total"]; n < 1 {
			t.Errorf("loginhub_hub_events_sent_total = %v, want at least 1", n)
		}
		for _, name := range []string{"loginhub_hub_slow_consumers_dropped_total", "loginhub_hub_nudges_received_total", "loginhub_hub_resyncs_total"} {
			if _, ok := got[name]; !ok {
				t.Errorf("metric %s not registered", name)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Tickets: newFakeTickets(), Broker: NewMemoryBroker(), CheckOrigin: func(string) bool { return false },
		ClientIP: handlers.ClientIPs{}.ClientIP}
	if err := ok.Validate(); err != nil {
		t.Errorf("Validate(minimal config) = %v", err)
	}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no Tickets", func(c *Config) { c.Tickets = nil }},
		{"no Broker", func(c *Config) { c.Broker = nil }},
		{"no CheckOrigin", func(c *Config) { c.CheckOrigin = nil }},
		{"no ClientIP", func(c *Config) { c.ClientIP = nil }},
		{"negative SendQueue", func(c *Config) { c.SendQueue = -1 }},
	}
	for _, tt := range tests {
		c := ok
		tt.edit(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%s) = nil, want an error", tt.name)
		}
	}
}

// TestSocketCap: at Config.MaxSockets the node refuses new sockets with 503
// and Retry-After (clients go to another node) and takes them again once
// a socket has closed.
func TestSocketCap(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode, func(c *Config) { c.MaxSockets = 2 })
		e.tickets.add("t1")
		a, b := e.dial(), e.dial()
		a.watch("t1", 0)
		a.expectState("t1", 1, authcore.StatePending)
		b.watch("t1", 0)
		b.expectState("t1", 1, authcore.StatePending)

		_, resp, err := websocket.DefaultDialer.Dial(e.url, http.Header{"Origin": {allowedOrigin}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("third socket over a cap of 2: err %v, response %v; want 503 with Retry-After", err, resp)
		}

		a.ws.Close()
		deadline := time.Now().Add(waitFor)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for e.hub.full() { // the hub notices the close through its reader
			if time.Now().After(deadline) {
				t.Fatal("the closed socket still counts against the cap")
			}
			<-tick.C
		}
		c := e.dial()
		c.watch("t1", 0)
		c.expectState("t1", 1, authcore.StatePending)
	})
}

// TestFirstPingSpreads checks that sockets that connect together are first
// pinged over the second half of the interval, not at one instant.
func TestFirstPingSpreads(t *testing.T) {
	const interval = 25 * time.Second
	lo, hi := interval, time.Duration(0)
	for range 1000 {
		d := firstPing(interval)
		if d <= interval/2 || d > interval {
			t.Fatalf("firstPing = %v, want in (%v, %v]", d, interval/2, interval)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < interval/3 {
		t.Errorf("1000 first pings spread over %v only (%v..%v)", hi-lo, lo, hi)
	}
	if d := firstPing(1); d != 1 {
		t.Errorf("firstPing(1ns) = %v", d)
	}
}

// TestWriterRefusedAtShutdownStillCloses: a writeNow that gets to hand its
// socket to a writer goroutine only after Shutdown has refused new tasks
// sends the queued close frame as far as the socket takes it, and closes
// the connection, instead of leaving the socket open with its close frame
// queued.
func TestWriterRefusedAtShutdownStillCloses(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e, cl := watching(t, mode)
		conns := e.hub.conns.values(nil)
		if len(conns) != 1 {
			t.Fatalf("hub has %d sockets, want 1", len(conns))
		}
		c := conns[0]
		// A writeNow holds the writer role (queueState) ...
		c.mu.Lock()
		c.writing = true
		c.mu.Unlock()
		// ... while Shutdown queues the close frame and refuses new tasks.
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
		e.hub.taskMu.Lock()
		e.hub.tasksClosed = true
		e.hub.taskMu.Unlock()
		c.writeNow(false)
		_, err := cl.read()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
			t.Fatalf("read: %v, want close 1001", err)
		}
	})
}
