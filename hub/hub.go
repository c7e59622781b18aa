// Package hub pushes QR ticket state to desktops: the /v1/ws WebSocket
// endpoint (Hub.ServeHTTP) and the wait behind the long-poll fallback
// (Hub.Wait).
//
// Truth lives in the ticket store (Tickets); a Broker carries nudges
// between nodes, which may be lost, duplicated or reordered. For every
// watch the hub subscribes first, then reads, then sends each version the
// client has not seen, exactly once and in order. Nothing on the nudge
// path waits for a socket: each socket has a bounded queue, and slow
// consumers are dropped. On Linux an idle socket has no goroutine: a
// ws.Poller says when it has something to read. The frames and the poller
// are in package ws; the protocol as clients see it is in docs/API.md.
package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub/ws"
)

const (
	defaultPingInterval = 25 * time.Second
	defaultIdleTimeout  = 30 * time.Second
	defaultMaxWatches   = 16
	defaultSendQueue    = 16

	readLimit   = 4096                     // largest client message
	readBufSize = ws.MaxHeader + readLimit // a read buffer holds any frame the hub accepts
	maxIDLen    = 128                      // longest ticket id accepted in a watch
	readSlack   = 5 * time.Second          // added to 2*PingInterval for silence; the time to finish a started frame
	writeWait   = 10 * time.Second         // deadline of one frame write: a slower peer is dropped
	killWait    = time.Second              // deadline of the close frame to a slow consumer
	closeGrace  = 2 * time.Second          // wait for the peer's close reply on Shutdown
	opTimeout   = 10 * time.Second         // store and broker calls made by the hub itself
	finalRead   = 2 * time.Second          // re-read when a Wait ends by its context
	maxSweepGap = time.Second              // the sweeper runs at least this often
	sweepSlices = 16                       // a sweep goes out in this many slices (sweepLoop)
)

// Config configures a Hub. The zero value of each optional field means the
// documented default.
type Config struct {
	// Tickets authorizes watches and reads ticket views. Required.
	Tickets Tickets
	// Broker carries nudges between nodes. Required.
	Broker Broker
	// Logger receives the hub's logs; nil discards them.
	Logger *slog.Logger
	// CheckOrigin reports whether a browser page from origin (the Origin
	// header, e.g. "https://example.com") may open a socket. Required: there
	// is no accept-all default. Requests without an Origin header do not call
	// it and are accepted (non-browser clients).
	CheckOrigin func(origin string) bool
	// ClientIP returns the client address used for the IP binding (the
	// same function the HTTP handlers use, so that both see one address).
	// Required.
	ClientIP func(*http.Request) netip.Addr
	// PingInterval is how often each socket is pinged; zero means 25s. A
	// socket silent for 2*PingInterval+5s is closed.
	PingInterval time.Duration
	// IdleTimeout is how long a socket may go without a live watch (from
	// its opening, or from the end of its last watch) before it is closed
	// with code 1008; zero means 30s. The sweeper notices it, so a socket
	// lives up to a second longer.
	IdleTimeout time.Duration
	// MaxWatchesPerConn limits the tickets one socket may watch at once; zero
	// means 16.
	MaxWatchesPerConn int
	// SendQueue is how many error events and control frames may wait to be
	// written to one socket before it is dropped as a slow consumer (close
	// 1008); zero means 16. State events do not count: a watch waits in
	// the queue at most once however many changes come, and its events are
	// built from the ticket's newest view when they are written.
	SendQueue int
	// Registerer receives the hub's metrics; nil means no metrics.
	Registerer prometheus.Registerer
	// Now returns the current time (ticket expiry, the ping schedule and
	// the silence of sockets); nil means time.Now. Socket deadlines always
	// use the real clock.
	Now func() time.Time
	// GoroutinePerSocket gives every socket a reader goroutine of its own
	// (and its stack), as on systems without epoll. False
	// means that on Linux idle sockets have no goroutine: the hub polls them
	// with epoll.
	GoroutinePerSocket bool
	// MaxSockets caps the open WebSockets of this node; beyond it /v1/ws
	// answers 503 with Retry-After at once, so clients try another node,
	// instead of the process running out of file descriptors (where accept
	// fails and clients hang). Zero means no cap.
	MaxSockets int
}

// Validate reports whether c can be used by New.
func (c Config) Validate() error {
	var errs []error
	if c.Tickets == nil {
		errs = append(errs, errors.New("Tickets is required"))
	}
	if c.Broker == nil {
		errs = append(errs, errors.New("Broker is required"))
	}
	if c.CheckOrigin == nil {
		errs = append(errs, errors.New("CheckOrigin is required"))
	}
	if c.ClientIP == nil {
		errs = append(errs, errors.New("ClientIP is required"))
	}
	if c.PingInterval < 0 {
		errs = append(errs, errors.New("PingInterval must not be negative"))
	}
	if c.IdleTimeout < 0 {
		errs = append(errs, errors.New("IdleTimeout must not be negative"))
	}
	if c.MaxWatchesPerConn < 0 {
		errs = append(errs, errors.New("MaxWatchesPerConn must not be negative"))
	}
	if c.SendQueue < 0 {
		errs = append(errs, errors.New("SendQueue must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hub: invalid config: %w", err)
	}
	return nil
}

// Hub serves /v1/ws and waits for ticket changes. Create it with New, start
// its background work with Run, stop it with Shutdown. Its methods are safe
// for concurrent use.
type Hub struct {
	cfg         Config // defaults filled in
	log         *slog.Logger
	m           *metrics
	upgrader    websocket.Upgrader
	readTimeout time.Duration
	writeWait   time.Duration // writeWait; tests shorten it
	sweepEvery  time.Duration

	// ctx bounds the hub's own store and broker calls; canceled when
	// Shutdown ends. stop is canceled when Shutdown starts.
	ctx        context.Context
	cancel     context.CancelFunc
	stop       context.Context
	stopCancel context.CancelFunc

	// poll watches idle sockets (epoll); nil means a reader goroutine per
	// socket. pollFailed: the poller stopped working, new sockets get
	// goroutines.
	poll       *ws.Poller
	pollFailed atomic.Bool

	// Lock order: ticketState.subMu, then a part of tickets; mu, then a
	// part of conns; inlineMu, then ticketState.mu, then conn.mu; taskMu is
	// a leaf. mu and the parts are never held while taking ticketState.mu
	// or conn.mu.
	mu      sync.Mutex
	lastID  uint64 // the id of the last socket
	closing bool
	running bool
	conns   *shardedMap[uint64, *conn]        // by conn.id
	tickets *shardedMap[string, *ticketState] // tickets watched or waited on by this node

	// frameBufs lends writers a buffer to build a batch of frames in: one
	// write per batch, and an idle socket holds none. readBufs lends
	// readers a *[readBufSize]byte while they handle bytes.
	frameBufs sync.Pool
	readBufs  sync.Pool

	// inlineMu is read-held by every conn.writeNow, which may have to hand
	// its socket to a writer goroutine (a task). Shutdown write-holds it
	// between queueing the close frames and refusing new tasks, so that a
	// writeNow in flight then can still hand its close frame on.
	inlineMu sync.RWMutex

	taskMu      sync.Mutex
	tasksClosed bool
	tasks       sync.WaitGroup // readers, writers, re-reads: everything Shutdown waits for
}

// New returns a Hub. It panics if cfg does not pass Validate (a programming
// error; call Validate first to get it as an error).
func New(cfg Config) *Hub {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = defaultPingInterval
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = defaultIdleTimeout
	}
	if cfg.MaxWatchesPerConn == 0 {
		cfg.MaxWatchesPerConn = defaultMaxWatches
	}
	if cfg.SendQueue == 0 {
		cfg.SendQueue = defaultSendQueue
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Hub{
		cfg:         cfg,
		log:         cfg.Logger,
		readTimeout: 2*cfg.PingInterval + readSlack,
		writeWait:   writeWait,
		sweepEvery:  min(cfg.PingInterval, maxSweepGap),
		conns:       newShardedMap[uint64, *conn](),
		tickets:     newShardedMap[string, *ticketState](),
		readBufs:    sync.Pool{New: func() any { return new([readBufSize]byte) }},
	}
	h.m = newMetrics(cfg.Registerer, h.log,
		func() float64 { return float64(h.conns.len()) },
		func() float64 { return float64(h.tickets.len()) })
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.stop, h.stopCancel = context.WithCancel(context.Background())
	if !cfg.GoroutinePerSocket {
		p, err := ws.NewPoller()
		switch {
		case err == nil:
			h.poll = p
			runtime.AddCleanup(h, (*ws.Poller).Close, p) // a Hub dropped without Shutdown
		case !errors.Is(err, errors.ErrUnsupported):
			h.log.Warn("hub: cannot poll sockets; each gets a reader goroutine", "err", err)
		}
	}
	h.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		// The hub reads client frames itself (ws.Conn), yet gorilla
		// allocates a read buffer: the smallest it takes (125). Zero would
		// make it keep net/http's 4 KiB hijacked reader instead. Upgrade
		// fails if the client sent bytes before the handshake completed, so
		// no frame is ever stranded in that buffer. Nothing is written
		// through gorilla, so its write buffer, taken from the pool at the
		// first write, is never taken.
		ReadBufferSize:  125,
		WriteBufferSize: 512,
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     h.checkOrigin,
		Error:           writeUpgradeError,
	}
	return h
}

func (h *Hub) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	return origin == "" || h.cfg.CheckOrigin(origin)
}

// Run delivers broker nudges, pings sockets, notices expired tickets and
// (on Linux) polls idle sockets until ctx is done or Shutdown is called. It
// returns nil then. A Broker.Run that fails is restarted with backoff,
// followed by a resync. Polled sockets are not read while Run is not
// running.
func (h *Hub) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.running {
		h.mu.Unlock()
		return errors.New("hub: Run is already running")
	}
	h.running = true
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.running = false
		h.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(h.stop, cancel)()

	// The poll loop is a task, so that the readers it starts are always
	// tasks too (goFrom): Shutdown waits for them all.
	polling := make(chan struct{})
	if h.poll == nil || !h.goTask(func() { defer close(polling); h.pollLoop(ctx) }) {
		close(polling)
	}
	var wg sync.WaitGroup
	wg.Go(func() { h.runBroker(ctx) })
	wg.Go(func() { h.sweepLoop(ctx) })
	wg.Wait()
	<-polling
	return nil
}

// pollLoop hands each polled socket that becomes readable to a short-lived
// reader, until ctx is done.
func (h *Hub) pollLoop(ctx context.Context) {
	defer context.AfterFunc(ctx, h.poll.Wake)()
	var ids []uint64
	var ready []*conn
	for ctx.Err() == nil {
		var err error
		ids, err = h.poll.Wait(ids)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				h.log.Error("hub: polling sockets failed; reading each with a goroutine from now on", "err", err)
				h.unpoll()
			}
			return
		}
		for _, id := range ids {
			if c := h.conns.get(id); c != nil {
				ready = append(ready, c)
			}
		}
		for i, c := range ready {
			c.ready()
			ready[i] = nil
		}
		ready = ready[:0]
	}
}

// unpoll gives every polled socket that no goroutine reads a reader
// goroutine, and new sockets too: the poller failed. Called by the poll
// loop.
func (h *Hub) unpoll() {
	h.pollFailed.Store(true)
	for _, c := range h.conns.values(nil) {
		c.mu.Lock()
		took := c.takeReaderLocked()
		c.mu.Unlock()
		if took {
			h.goFrom(c.readLoop)
		}
	}
}

func (h *Hub) runBroker(ctx context.Context) {
	const maxBackoff = 30 * time.Second
	backoff := 100 * time.Millisecond
	for {
		started := time.Now()
		err := h.cfg.Broker.Run(ctx, brokerHandler{h})
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > maxBackoff {
			backoff = 100 * time.Millisecond
		}
		h.log.Warn("hub: broker stopped; restarting", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
		h.resync() // nudges may have been lost while the broker was down
	}
}

// sweepLoop runs sweep every sweepEvery, one slice at a time: each of
// sweepSlices ticks pings the sockets of one slice that are due and
// re-reads the tickets of one slice that expired. Pings are due at random
// points of the interval, but a sweep sends all that came due since the
// last one, a burst of writes (and writer goroutines) on the cores the
// deliveries need; a slice sends a sweepSlices-th of it.
func (h *Hub) sweepLoop(ctx context.Context) {
	t := time.NewTicker(max(h.sweepEvery/sweepSlices, time.Millisecond))
	defer t.Stop()
	for slice := 0; ; slice = (slice + 1) % sweepSlices {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := h.cfg.Now()
		h.sweepSockets(now, slice, sweepSlices)
		h.sweepTickets(now, slice, sweepSlices)
	}
}

// firstPing is when a new socket is first pinged: at a random point of the
// second half of the interval, so that sockets that connected together (a
// load balancer's reconnect storm, a restart) are not pinged together
// forever after; each later ping comes one interval after the previous.
func firstPing(interval time.Duration) time.Duration {
	if interval < 2 {
		return interval
	}
	return interval/2 + rand.N(interval/2) + 1
}

// brokerHandler is the hub as the Broker sees it; it keeps Nudge, Changed
// and Resync out of the Hub's exported API.
type brokerHandler struct{ h *Hub }

func (b brokerHandler) Nudge(id string, version uint64)   { b.h.nudge(id, version) }
func (b brokerHandler) Changed(rec authcore.TicketRecord) { b.h.changed(rec) }
func (b brokerHandler) Resync()                           { b.h.resync() }

// goTask runs f in a goroutine that Shutdown waits for. It reports false,
// and does not run f, once Shutdown has started waiting.
func (h *Hub) goTask(f func()) bool {
	h.taskMu.Lock()
	defer h.taskMu.Unlock()
	if h.tasksClosed {
		return false
	}
	h.tasks.Add(1)
	go func() {
		defer h.tasks.Done()
		f()
	}()
	return true
}

// goFrom runs f in a goroutine that Shutdown waits for, like goTask, but
// even once Shutdown is waiting: only a task may call it, and Shutdown,
// which waits for that task, then waits for f too.
func (h *Hub) goFrom(f func()) {
	h.tasks.Add(1)
	go func() {
		defer h.tasks.Done()
		f()
	}()
}

// frameBuf is an empty buffer from frameBufs.
func (h *Hub) frameBuf() []byte {
	if bp, ok := h.frameBufs.Get().(*[]byte); ok {
		return (*bp)[:0]
	}
	return make([]byte, 0, 512)
}

// putFrameBuf gives b back to frameBufs; big ones are left to the GC.
func (h *Hub) putFrameBuf(b []byte) {
	if cap(b) <= 4<<10 {
		h.frameBufs.Put(&b)
	}
}

// full reports whether the node is at Config.MaxSockets.
func (h *Hub) full() bool {
	if h.cfg.MaxSockets <= 0 {
		return false
	}
	return h.conns.len() >= h.cfg.MaxSockets
}

// ServeHTTP is the GET /v1/ws endpoint. After the upgrade it returns; the
// socket belongs to the hub.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	closing := h.closing
	h.mu.Unlock()
	if closing {
		writeJSONError(w, http.StatusServiceUnavailable, "upstream_unavailable", "this node is shutting down; reconnect")
		return
	}
	if h.full() {
		h.m.refusedFull.Inc()
		w.Header().Set("Retry-After", "1")
		writeJSONError(w, http.StatusServiceUnavailable, "upstream_unavailable", "this node has no room for more sockets; reconnect")
		return
	}
	upgraded, err := h.upgrader.Upgrade(w, r, nil) // answers failures itself
	if err != nil {
		h.log.Debug("hub: upgrade failed", "err", err)
		return
	}
	sock := ws.NewConn(upgraded.NetConn(), ws.Server, readLimit)
	c := &conn{h: h, sock: sock, ip: h.cfg.ClientIP(r)}
	nc := sock.NetConn()
	c.polled = h.poll != nil && !h.pollFailed.Load() && ws.Pollable(nc)
	if c.polled {
		c.reader = readerIdle // before it is registered: the first event takes it
	}
	now := h.cfg.Now()
	c.heard.Store(now.UnixNano())
	c.idleSince.Store(now.UnixNano())

	// Under mu: Shutdown, which sets closing under it, then finds every
	// registered socket. Registered before its reader starts, so that a
	// socket is never served uncounted.
	h.mu.Lock()
	ok := !h.closing
	if ok {
		h.lastID++
		c.id = h.lastID
		p := h.conns.part(c.id)
		p.mu.Lock()
		c.nextPing = now.Add(firstPing(h.cfg.PingInterval)).UnixNano()
		h.conns.putLocked(p, c.id, c)
		p.mu.Unlock()
		if !c.polled && !h.goTask(c.readLoop) {
			ok = false
			p.mu.Lock()
			h.conns.deleteLocked(p, c.id)
			p.mu.Unlock()
		}
	}
	h.mu.Unlock()
	if !ok {
		_ = sock.WriteClose(websocket.CloseGoingAway, "server shutting down", time.Now().Add(killWait))
		_ = sock.Close()
		return
	}
	if !c.polled {
		return
	}
	err = h.poll.Add(nc, c.id)
	if err == nil && !h.pollFailed.Load() {
		return
	}
	// Read it with a goroutine instead, unless a closer or unpoll has taken
	// it over already.
	c.mu.Lock()
	took := c.takeReaderLocked()
	c.mu.Unlock()
	if !took {
		return
	}
	if err != nil {
		h.log.Warn("hub: cannot poll a socket; reading it with a goroutine", "err", err)
	}
	h.poll.Remove(nc)
	if !h.goTask(c.readLoop) {
		c.endRead(errors.New("hub: shutting down"))
	}
}

// Shutdown closes every socket with close code 1001 (going away), after the
// frames already queued for it, and waits for the hub's goroutines to end.
// When ctx ends first it closes the remaining connections at once and returns
// ctx.Err(). New sockets are refused with 503 from the start; Run returns;
// pending Wait calls return the current view.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.stopCancel()
	h.mu.Lock()
	h.closing = true
	h.mu.Unlock()
	conns := h.conns.values(nil)
	for _, c := range conns {
		c.closeWith(websocket.CloseGoingAway, "server shutting down")
	}

	h.inlineMu.Lock()
	h.taskMu.Lock()
	h.tasksClosed = true
	h.taskMu.Unlock()
	h.inlineMu.Unlock()
	done := make(chan struct{})
	go func() {
		h.tasks.Wait()
		close(done)
	}()
	select {
	case <-done:
		if h.poll != nil {
			h.poll.Close() // its loop has ended: it was a task
		}
		h.cancel()
		return nil
	case <-ctx.Done():
		conns = h.conns.values(conns[:0])
		var idle []*conn
		for _, c := range conns {
			c.mu.Lock()
			c.closed, c.dead = true, true
			if c.takeReaderLocked() {
				idle = append(idle, c)
			}
			c.mu.Unlock()
			if c.polled {
				h.poll.Remove(c.sock.NetConn())
			}
			_ = c.sock.Close() // their readers end them
		}
		if h.poll != nil {
			h.poll.Close()
		}
		h.cancel()
		// Polled sockets that no goroutine read are ended here, as their
		// readers would; the hub's own calls fail fast now.
		if len(idle) > 0 {
			go func() {
				for _, c := range idle {
					c.cleanup()
				}
			}()
		}
		return ctx.Err()
	}
}

func writeUpgradeError(w http.ResponseWriter, _ *http.Request, status int, reason error) {
	code, msg := "invalid_request", "expected a WebSocket upgrade"
	switch status {
	case http.StatusForbidden:
		code, msg = "forbidden", "origin not allowed"
	case http.StatusInternalServerError:
		code, msg = "internal", "internal error"
	}
	w.Header().Set("Sec-Websocket-Version", "13")
	writeJSONError(w, status, code, msg)
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{code, msg})
}
