package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ticket is the part of POST /v1/qr/tickets's answer a desktop uses.
type ticket struct {
	ID          string `json:"id"`
	Ticket      string `json:"ticket"`
	QRURL       string `json:"qr_url"`
	WatchSecret string `json:"watch_secret"`
	Version     uint64 `json:"version"`
	State       string `json:"state"`
}

// stateMsg is a WebSocket event or a status response.
type stateMsg struct {
	Ev      string `json:"ev"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	State   string `json:"state"`
	Error   string `json:"error"`
}

// notice is what a desktop learned: a new version, or that it failed.
type notice struct {
	version uint64
	state   string
	at      time.Time
	arrived time.Time // when the kernel received it (push on Linux), else zero
	err     string    // error kind; empty for a state
}

// desktop is one waiting page: a ticket and a way to learn its state.
type desktop struct {
	src     *source
	base    string // its node's base URL
	t       ticket
	ws      *wsConn // push
	stop    context.CancelFunc
	closing atomic.Bool
	done    chan struct{} // the watching goroutine returned

	// --confirm-waiting: a waiting desktop's notices, until a flow claims
	// it and takes them.
	notices chan notice
	claimed atomic.Bool
}

// terminal states end a desktop's watching (a page redeems on confirmed).
func terminal(state string) bool {
	switch state {
	case "confirmed", "redeemed", "expired", "cancelled":
		return true
	}
	return false
}

// desktopEnv is what opening a desktop needs.
type desktopEnv struct {
	cfg      config
	mode     string
	life     context.Context // stops every watching goroutine
	requests *atomic.Int64   // status requests made by these desktops
	wg       *sync.WaitGroup // watching goroutines
}

// openDesktop creates a ticket from src on node and starts watching it
// there the way the mode does; notify is called from the watching
// goroutine (it must not block). For push it returns once the hub has sent
// the pending state.
func (e *desktopEnv) openDesktop(ctx context.Context, src *source, node int, notify func(notice)) (*desktop, error) {
	d := &desktop{src: src, base: e.cfg.baseURLs[node], done: make(chan struct{})}
	if err := src.call(ctx, "create", "POST", d.base+"/v1/qr/tickets", "", nil, &d.t, http.StatusCreated); err != nil {
		return nil, err
	}
	if d.t.ID == "" || d.t.WatchSecret == "" || d.t.Ticket == "" {
		return nil, &stepError{"create", "bad_json"}
	}
	lctx, stop := context.WithCancel(e.life)
	d.stop = stop
	switch e.mode {
	case modePush:
		if err := d.dialWatch(ctx, e.cfg.wsTargets[node], e.origin(d)); err != nil {
			stop()
			return nil, err
		}
		e.wg.Go(func() { d.readLoop(notify) })
		// The reader blocks in the socket: close it when life ends
		// (no goroutine waits for that meanwhile).
		unhook := context.AfterFunc(lctx, func() {
			d.closing.Store(true)
			d.ws.Close()
		})
		d.stop = func() { unhook(); stop() }
	case modePoll:
		e.wg.Go(func() { d.pollLoop(lctx, e, notify) })
	case modeLongPoll:
		e.wg.Go(func() { d.longPollLoop(lctx, e, notify) })
	}
	return d, nil
}

// origin is the Origin header of d's WebSocket: --origin, or the origin
// of the hub's public URL, which its qr_url starts with (the hub allows
// it by default, and a cluster lists its shared public origin), or else
// the node's own.
func (e *desktopEnv) origin(d *desktop) string {
	if e.cfg.origin != "" {
		return e.cfg.origin
	}
	if o := originOf(d.t.QRURL); o != "" {
		return o
	}
	return originOf(d.base)
}

// originOf is scheme://host of an absolute http(s) URL, or "".
func originOf(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return ""
	}
	host, _, _ := strings.Cut(rest, "/")
	if host == "" || strings.ContainsAny(host, "?#@ \r\n") {
		return ""
	}
	return scheme + "://" + host
}

// dialWatch opens the desktop's WebSocket to t from its source address,
// sends watch, and reads the current state.
func (d *desktop) dialWatch(ctx context.Context, t wsTarget, origin string) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d.src.reqs.Add(1)
	c, err := dialWS(dctx, d.src.wsDial, t, origin)
	if err != nil {
		if he, ok := errors.AsType[*wsHandshakeError](err); ok {
			return &stepError{"ws_dial", fmt.Sprint(he.status)}
		}
		return &stepError{"ws_dial", netKind(err)}
	}
	fail := func(kind string) error {
		c.Close()
		return &stepError{"ws_watch", kind}
	}
	deadline, _ := dctx.Deadline()
	watch, _ := json.Marshal(map[string]any{"op": "watch", "id": d.t.ID, "secret": d.t.WatchSecret, "since": 0})
	if err := c.writeText(watch, deadline); err != nil {
		return fail(netKind(err))
	}
	c.SetReadDeadline(deadline)
	data, err := c.readMessage()
	if err != nil {
		return fail(netKind(err))
	}
	var m stateMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return fail("bad_json")
	}
	switch {
	case m.Ev == "error":
		return fail("event_" + m.Error)
	case m.Ev != "state" || m.Version < 1:
		return fail("unexpected_event")
	}
	c.SetReadDeadline(time.Time{})
	d.ws = c
	return nil
}

// readLoop reads the desktop's events until the socket closes; reading
// also answers the hub's pings.
func (d *desktop) readLoop(notify func(notice)) {
	defer close(d.done)
	for {
		data, err := d.ws.readMessage()
		at := time.Now()
		if err != nil {
			if !d.closing.Load() {
				notify(notice{err: "ws_read:" + netKind(err), at: at})
			}
			return
		}
		var m stateMsg
		if json.Unmarshal(data, &m) != nil {
			notify(notice{err: "ws_read:bad_json", at: at})
			continue
		}
		switch m.Ev {
		case "state":
			notify(notice{version: m.Version, state: m.State, at: at, arrived: receivedAt(d.ws.under)})
		case "error":
			notify(notice{err: "ws_event:" + m.Error, at: at})
		}
	}
}

// pollLoop GETs the status every interval, starting at a random point of
// the first interval (pages load at random times), until a terminal state,
// an error, or stop.
func (d *desktop) pollLoop(ctx context.Context, e *desktopEnv, notify func(notice)) {
	defer close(d.done)
	interval := e.cfg.pollInterval
	last := d.t.Version
	url := d.base + "/v1/qr/tickets/" + d.t.ID
	next := time.Now().Add(rand.N(interval))
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.askStatus(ctx, e, "status", url, 10*time.Second, &last, notify) {
			return
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now // fell behind: poll at once, do not burst
		}
		t.Reset(time.Until(next))
	}
}

// longPollLoop holds GET ...?since=N&wait=S until a terminal state, an
// error, or stop.
func (d *desktop) longPollLoop(ctx context.Context, e *desktopEnv, notify func(notice)) {
	defer close(d.done)
	last := d.t.Version
	wait := time.Duration(e.cfg.longPollWait) * time.Second
	for ctx.Err() == nil {
		url := fmt.Sprintf("%s/v1/qr/tickets/%s?since=%d&wait=%d", d.base, d.t.ID, last, e.cfg.longPollWait)
		if !d.askStatus(ctx, e, "longpoll", url, wait+15*time.Second, &last, notify) {
			return
		}
	}
}

// askStatus GETs the ticket's status once (short or long poll), notifies a
// version newer than *last, and reports whether to go on: false after an
// error or a terminal state.
func (d *desktop) askStatus(ctx context.Context, e *desktopEnv, name, url string, timeout time.Duration, last *uint64, notify func(notice)) bool {
	var m stateMsg
	rctx, cancel := context.WithTimeout(ctx, timeout)
	err := d.src.call(rctx, name, "GET", url, d.t.WatchSecret, nil, &m, http.StatusOK)
	cancel()
	at := time.Now()
	e.requests.Add(1)
	if err != nil {
		if ctx.Err() == nil {
			notify(notice{err: errKind(err), at: at})
		}
		return false
	}
	if m.Version > *last {
		*last = m.Version
		notify(notice{version: m.Version, state: m.State, at: at})
		if terminal(m.State) {
			return false
		}
	}
	return true
}

// close stops watching and closes the desktop's socket, and waits for its
// goroutine.
func (d *desktop) close() {
	d.closing.Store(true)
	if d.ws != nil {
		d.ws.closeNow()
	}
	d.stop()
	<-d.done
}
