package hub

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub/ws"
)

type msgKind uint8

const (
	msgText  msgKind = iota // an error event
	msgState                // "send w what it has not seen": built when written
	msgPing
	msgPong
	msgClose
)

// outMsg is one item in a socket's queue.
type outMsg struct {
	kind msgKind
	code uint16 // msgClose
	data []byte // msgText, msgPong; the reason of msgClose
	w    *watch // msgState
}

// conn is one WebSocket. A polled socket (Linux) has no goroutine while it
// is idle: when the poller reports it readable, a short-lived reader
// handles what came and gives it back. Other sockets keep a reader
// goroutine for their whole life. Either way its events are written by the
// goroutine that made the change when the socket takes them at once (else
// by a writer goroutine that lives while the queue is not empty), and its
// messages are handled on a short-lived handler goroutine.
type conn struct {
	h        *Hub
	sock     *ws.Conn // gorilla's Conn is dropped after the handshake
	ip       netip.Addr
	id       uint64 // key in Hub.conns and the poller's token; never reused
	nextPing int64  // unix nanoseconds by Config.Now; guarded by its part of Hub.conns

	// Liveness, for the sweeper: when the client last sent a frame (unix
	// nanoseconds by Config.Now), and how many pings were queued since.
	heard      atomic.Int64
	unanswered atomic.Int32
	polled     bool // read when the poller says so (else by a goroutine of its own)
	dropped    bool // found silent or idle by the sweeper; guarded by its part of Hub.conns

	// idleSince is when the socket last had no live (authorized) watch,
	// unix nanoseconds by Config.Now; 0 while it has one. The sweeper closes
	// a socket idle for Config.IdleTimeout: sockets cost nothing to open, so
	// each must hold a ticket, which is rate limited. Written under mu.
	// (Placed with the small fields above it, a conn stays in its 192-byte
	// size class.)
	idleSince atomic.Int64

	mu        sync.Mutex
	reader    readerState
	inbox     [][]byte      // client messages not yet handled
	handling  chan struct{} // non-nil while a handler goroutine runs; closed when it ends
	queue     []outMsg      // items not yet taken by the writer
	others    int           // queued or in-flight items other than msgState; at most Config.SendQueue
	writing   bool          // a writer goroutine runs
	closed    bool          // nothing more will be queued
	closeSent bool          // our close frame went out: the reader waits for the answer, until closeGrace
	dead      bool          // the TCP connection is closed (or being closed): the reader ends
	watches   []*watch      // at most Config.MaxWatchesPerConn
}

// readerState says who reads a socket. At most one goroutine holds the
// reader role, and only it ends the socket (cleanup), exactly once.
type readerState uint8

const (
	// readerBusy: a goroutine reads: the socket's own reader, a polled
	// socket's short-lived reader, or a closer that took the role over.
	readerBusy readerState = iota
	// readerIdle: a polled socket that no goroutine reads. The poller's
	// next event for it, or a goroutine closing it, takes the role.
	readerIdle
	// readerDone: the socket has been cleaned up.
	readerDone
)

// watch is one ticket watched on one socket.
type watch struct {
	c  *conn
	id string
	ts *ticketState

	// Guarded by ts.mu.
	lastSent uint64 // highest version sent (or the client's since)
	pending  bool   // being set up (authorized, subscribed): not in ts.watchers yet
	gone     bool   // unregistered from ts

	queued bool // a msgState for it waits in c.queue; guarded by c.mu
	live   bool // authorized and subscribed: keeps the socket from idling; guarded by c.mu
}

type clientMsg struct {
	Op     string `json:"op"`
	ID     string `json:"id"`
	Secret string `json:"secret"`
	Since  uint64 `json:"since"`
}

var (
	errBadJSON      = authcore.Errorf(authcore.KindInvalid, "a message must be a JSON object with an op")
	errBinary       = authcore.Errorf(authcore.KindInvalid, "messages must be text frames")
	errUnknownOp    = authcore.Errorf(authcore.KindInvalid, `op must be "watch" or "unwatch"`)
	errBadID        = authcore.Errorf(authcore.KindInvalid, "id must be a ticket id")
	errDuplicate    = authcore.Errorf(authcore.KindInvalid, "this ticket is already watched on this connection")
	errTooMany      = authcore.Errorf(authcore.KindRateLimited, "too many tickets watched on this connection")
	errCrowded      = &authcore.Error{Kind: authcore.KindRateLimited, Message: "too many watchers of this ticket", RetryAfter: 5 * time.Second}
	errBrokerFailed = authcore.Errorf(authcore.KindInternal, "internal error")
)

// maxInbox bounds the client messages waiting to be handled on one socket.
const maxInbox = 8

var errFlood = authcore.Errorf(authcore.KindRateLimited, "too many messages at once; wait for the answers")

// deliver queues a client message for the handler goroutine, starting it
// if none runs. Messages are handled one at a time, in order.
func (c *conn) deliver(data []byte) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if len(c.inbox) >= maxInbox {
		c.mu.Unlock()
		c.sendError("", errFlood)
		return
	}
	c.inbox = append(c.inbox, data)
	if c.handling == nil {
		done := make(chan struct{})
		if c.h.goTask(func() { c.handleLoop(done) }) {
			c.handling = done
		}
	}
	c.mu.Unlock()
}

// handleLoop handles queued messages until there are none, then ends.
func (c *conn) handleLoop(done chan struct{}) {
	defer close(done)
	for {
		c.mu.Lock()
		if c.closed || len(c.inbox) == 0 {
			c.inbox = nil
			c.handling = nil
			c.mu.Unlock()
			return
		}
		data := c.inbox[0]
		c.inbox[0] = nil
		c.inbox = c.inbox[1:]
		c.mu.Unlock()
		c.handle(data)
	}
}

func (c *conn) handle(data []byte) {
	var m clientMsg
	if err := json.Unmarshal(data, &m); err != nil {
		c.sendError("", errBadJSON)
		return
	}
	id := m.ID
	if len(id) > maxIDLen {
		id = "" // not echoed back
	}
	switch {
	case m.Op != "watch" && m.Op != "unwatch":
		c.sendError(id, errUnknownOp)
	case id == "":
		c.sendError("", errBadID)
	case m.Op == "watch":
		c.watch(id, m.Secret, m.Since)
	default:
		c.unwatch(id)
	}
}

// watch authorizes, subscribes, then delivers. The broker is subscribed
// only for a ticket whose id and watch secret check out, so a client
// cannot make the hub subscribe to channels of its choosing. Subscribing
// after the authorizing read leaves a gap in which a change would be
// missed, so a watch that took the ticket's subscription reads it once
// more; later watchers share a subscription whose own read covers them.
func (c *conn) watch(id, secret string, since uint64) {
	h := c.h
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.findLocked(id) != nil {
		c.mu.Unlock()
		c.sendError(id, errDuplicate)
		return
	}
	if len(c.watches) >= h.cfg.MaxWatchesPerConn {
		c.mu.Unlock()
		c.sendError(id, errTooMany)
		return
	}
	// Listed while it is set up, so that a second watch of id is refused
	// as a duplicate and cleanup waits for it.
	w := &watch{c: c, id: id, lastSent: since, pending: true}
	c.watches = append(c.watches, w)
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
	defer cancel()
	v, err := h.cfg.Tickets.AuthorizeWatch(ctx, id, secret, c.ip)
	if err != nil {
		if k := authcore.KindOf(err); k == authcore.KindInternal || k == authcore.KindUpstreamUnavailable {
			h.log.Warn("hub: authorize watch failed", "err", err)
		}
		c.removeWatch(w)
		c.sendError(id, err)
		return
	}
	ts, fresh, err := h.acquire(ctx, id, maxWatchers)
	if err != nil {
		c.removeWatch(w)
		if errors.Is(err, errCrowded) {
			c.sendError(id, errCrowded)
			return
		}
		h.log.Warn("hub: broker subscribe failed", "err", err)
		c.sendError(id, errBrokerFailed)
		return
	}
	c.mu.Lock()
	w.live = true
	c.idleSince.Store(0)
	c.mu.Unlock()
	w.ts = ts
	ts.mu.Lock()
	w.pending = false
	ts.watchers = append(ts.watchers, w)
	d := h.deliverLocked(ts, v)
	ts.mu.Unlock()
	h.finish(ts, d, false)
	if fresh {
		h.reread(ctx, ts)
	}
}

func (c *conn) unwatch(id string) {
	c.mu.Lock()
	w := c.findLocked(id)
	c.mu.Unlock()
	if w == nil {
		return
	}
	c.removeWatch(w)
	if w.ts.removeWatcher(w) {
		c.h.release(w.ts)
	}
}

func (c *conn) findLocked(id string) *watch {
	for _, w := range c.watches {
		if w.id == id {
			return w
		}
	}
	return nil
}

func (c *conn) removeWatch(w *watch) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.watches {
		if x == w {
			last := len(c.watches) - 1
			c.watches[i] = c.watches[last]
			c.watches[last] = nil
			c.watches = c.watches[:last]
			if len(c.watches) == 0 {
				c.watches = nil
			}
			// Only the end of a live watch starts the idle time: watches
			// that fail do not keep a socket open.
			if w.live && !slices.ContainsFunc(c.watches, func(x *watch) bool { return x.live }) {
				c.idleSince.Store(c.h.cfg.Now().UnixNano())
			}
			return
		}
	}
}

// cleanup ends the socket; only the holder of the reader role calls it,
// after unregistering a polled socket from the poller. It first waits for a
// running handler, so that a watch being set up cannot outlive the socket.
func (c *conn) cleanup() {
	c.mu.Lock()
	c.closed = true
	c.reader = readerDone
	c.queue = nil
	c.inbox = nil
	handling := c.handling
	c.mu.Unlock()
	if handling != nil {
		<-handling
	}
	c.mu.Lock()
	watches := c.watches
	c.watches = nil
	c.mu.Unlock()
	for _, w := range watches {
		if w.ts != nil && w.ts.removeWatcher(w) {
			c.h.release(w.ts)
		}
	}
	h := c.h
	p := h.conns.part(c.id)
	p.mu.Lock()
	h.conns.deleteLocked(p, c.id)
	p.mu.Unlock()
	_ = c.sock.Close()
}

func (c *conn) sendError(id string, err error) {
	c.enqueue(outMsg{kind: msgText, data: encodeError(id, err)})
}

// enqueue queues an error event or a control frame without ever waiting.
// More than Config.SendQueue of them waiting means a client that does not
// read: the socket is dropped with close code 1008.
func (c *conn) enqueue(m outMsg) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if c.others >= c.h.cfg.SendQueue {
		c.closed = true
		c.queue = nil
		c.mu.Unlock()
		c.h.m.slow.Inc()
		c.h.log.Info("hub: dropping slow consumer", "remote", c.remote(), "reason", "send queue full")
		c.kill(websocket.ClosePolicyViolation, "slow consumer")
		return
	}
	c.others++
	c.queue = append(c.queue, m)
	c.startWriterLocked()
	c.mu.Unlock()
}

// queueState asks for w's unseen versions to be written. A watch waits in
// the queue at most once, however many changes come, so state events never
// overflow the queue; the events are built from the ticket's newest view
// when they are written. It reports whether the caller took the writer
// role: it must then call writeNow once it holds no ticketState.mu.
func (c *conn) queueState(w *watch) (write bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || w.queued {
		return false
	}
	w.queued = true
	c.queue = append(c.queue, outMsg{kind: msgState, w: w})
	if c.writing {
		return false
	}
	c.writing = true
	return true
}

func (c *conn) startWriterLocked() {
	if c.writing {
		return
	}
	if c.h.goTask(c.writeLoop) {
		c.writing = true
	}
}

// kill closes the socket without waiting behind its queue: a close frame if
// it can be written within killWait, then the TCP connection, which also
// unblocks a writer stuck on the socket. Its caller may hold ticketState.mu,
// so the socket is ended on a goroutine of its own.
func (c *conn) kill(code int, reason string) {
	if !c.h.goTask(func() {
		_ = c.sock.WriteClose(code, reason, time.Now().Add(killWait))
		c.abort()
	}) {
		// Shutdown is waiting already, so this socket has its close frame
		// queued: unreachable in practice, and the Hub is done anyway.
		c.mu.Lock()
		c.dead = true
		c.mu.Unlock()
		_ = c.sock.Close()
	}
}

// closeWith queues a close frame after the frames already queued; nothing
// is queued after it.
func (c *conn) closeWith(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.queue = append(c.queue, outMsg{kind: msgClose, code: uint16(code), data: []byte(reason)})
	c.startWriterLocked()
	if !c.writing {
		c.dead = true
		_ = c.sock.Close()
	}
}

// abort closes the TCP connection at once (after a close frame written by
// the caller, if any). The socket's reader then ends it; when no goroutine
// reads it (a polled socket between reads) the caller takes the reader role
// and ends it here.
func (c *conn) abort() {
	c.mu.Lock()
	c.closed = true
	c.queue = nil
	c.dead = true
	took := c.takeReaderLocked()
	c.mu.Unlock()
	if took {
		c.unregister() // before the descriptor is closed
	}
	_ = c.sock.Close()
	if took {
		c.cleanup()
		c.h.log.Debug("hub: socket closed", "remote", c.remote(), "err", net.ErrClosed)
	}
}

// writeNow writes the queue in the calling goroutine (the one that made
// the change, or a watch's handler) as far as the socket takes it without
// waiting: an event does not wait for a writer goroutine to be scheduled,
// which on a busy node takes long. A writer goroutine takes over
// whatever is left, and anything but state events. The caller holds the
// writer role (queueState). With asyncRelease (the broker's delivery
// goroutine, see Hub.finish) ended watches are released on a goroutine.
func (c *conn) writeNow(asyncRelease bool) {
	c.h.inlineMu.RLock()
	defer c.h.inlineMu.RUnlock()
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) == 0 {
			c.writing = false
			c.mu.Unlock()
			return
		}
		if !onlyStates(batch) {
			c.mu.Unlock()
			break
		}
		c.takeQueueLocked()
		c.mu.Unlock()
		f := c.frames(batch)
		sent, err := c.sock.TryWrite(f.buf)
		c.h.putFrameBuf(f.buf)
		if err == nil {
			c.h.m.events.Add(float64(f.events))
		}
		if len(f.ended) > 0 && (!asyncRelease || !c.h.goTask(func() { c.releaseAll(f.ended) })) {
			c.releaseAll(f.ended)
		}
		if err != nil {
			c.mu.Lock()
			c.closed = true
			c.queue = nil
			c.writing = false
			c.mu.Unlock()
			c.h.log.Debug("hub: write failed", "err", err)
			// abort may wait for this socket's handler, which may be the
			// caller.
			if !c.h.goTask(c.abort) {
				_ = c.sock.Close()
			}
			return
		}
		if !sent {
			break
		}
	}
	if !c.h.goTask(c.writeLoop) {
		c.shutWithoutWriter()
	}
}

// shutWithoutWriter ends a socket whose writer goroutine Shutdown refused
// (it had already closed the task set when this writeNow got to hand
// over; inlineMu makes that rare): what is queued, most likely the close
// frame, goes out as far as the socket takes it at once, then the TCP
// connection is closed.
func (c *conn) shutWithoutWriter() {
	c.mu.Lock()
	batch := c.takeQueueLocked()
	c.writing = false
	c.closed = true
	c.dead = true
	c.mu.Unlock()
	f := c.frames(batch)
	if f.closing {
		// Closed right after: nothing can follow it.
		f.buf = c.sock.AppendFrame(f.buf, ws.OpClose, websocket.FormatCloseMessage(f.closeCode, f.closeReason))
	}
	_, _ = c.sock.TryWrite(f.buf)
	c.h.putFrameBuf(f.buf)
	c.releaseAll(f.ended)
	_ = c.sock.Close()
}

// takeQueueLocked empties the queue and returns what it held; a watch in
// it can be queued again by the next change.
func (c *conn) takeQueueLocked() []outMsg {
	batch := c.queue
	c.queue = nil
	for _, m := range batch {
		if m.kind == msgState {
			m.w.queued = false
		}
	}
	return batch
}

func onlyStates(batch []outMsg) bool {
	for _, m := range batch {
		if m.kind != msgState {
			return false
		}
	}
	return true
}

// writeLoop writes what writeNow left pending, then the queue, a batch at
// a time in one write each, until the queue is empty; then it exits.
func (c *conn) writeLoop() {
	for {
		c.mu.Lock()
		batch := c.takeQueueLocked()
		c.mu.Unlock()
		f := c.frames(batch)
		deadline := time.Now().Add(c.h.writeWait)
		err := c.sock.Write(f.buf, deadline)
		if err == nil && f.closing {
			err = c.sock.WriteClose(f.closeCode, f.closeReason, deadline)
		}
		c.h.putFrameBuf(f.buf)
		if err == nil {
			c.h.m.events.Add(float64(f.events))
		}
		c.releaseAll(f.ended)
		c.mu.Lock()
		c.others -= f.others
		if err == nil && !f.closing {
			if len(c.queue) == 0 {
				c.writing = false
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
			continue
		}
		c.closed = true
		c.queue = nil
		c.writing = false
		took := false
		if err == nil {
			// Give the peer a moment to answer the close frame; then the
			// reader ends and closes the connection.
			c.closeSent = true
			_ = c.sock.NetConn().SetReadDeadline(time.Now().Add(closeGrace))
			took = c.takeReaderLocked()
		}
		c.mu.Unlock()
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				c.h.m.slow.Inc()
				c.h.log.Info("hub: dropping slow consumer", "remote", c.remote(), "reason", "write timeout")
			} else {
				c.h.log.Debug("hub: write failed", "err", err)
			}
			c.abort() // ends the reader too
			return
		}
		if took {
			// A polled socket that no goroutine reads: this one waits for
			// the answer.
			c.unregister()
			c.readLoop()
		}
		return
	}
}

// batchFrames is a batch of queued items as bytes to write.
type batchFrames struct {
	buf    []byte
	events int            // state and error events in buf
	others int            // items other than state ones
	ended  []*ticketState // watches that ended: release once written

	// closing: a close frame follows buf (ws.Conn.WriteClose).
	closing     bool
	closeCode   int
	closeReason string
}

// frames builds the frames of batch, clearing it. A close frame is always
// the last item queued.
func (c *conn) frames(batch []outMsg) batchFrames {
	f := batchFrames{buf: c.h.frameBuf()}
	for i := range batch {
		m := batch[i]
		batch[i] = outMsg{}
		switch m.kind {
		case msgState:
			c.appendState(&f, m.w)
			continue
		case msgPing:
			f.buf = c.sock.AppendFrame(f.buf, ws.OpPing, nil)
		case msgPong:
			f.buf = c.sock.AppendFrame(f.buf, ws.OpPong, m.data)
		case msgClose:
			f.closing, f.closeCode, f.closeReason = true, int(m.code), string(m.data)
		default:
			f.buf = c.sock.AppendFrame(f.buf, ws.OpText, m.data)
			f.events++
		}
		f.others++
	}
	return f
}

// appendState adds the events of every version of w's ticket in
// (lastSent, newest], in order, and ends the watch after a terminal state.
func (c *conn) appendState(f *batchFrames, w *watch) {
	ts := w.ts
	ts.mu.Lock()
	if w.gone || w.pending {
		ts.mu.Unlock()
		return
	}
	v := ts.latest
	from := w.lastSent
	w.lastSent = max(w.lastSent, v.Version)
	done := v.State.Terminal() && w.lastSent >= v.Version && ts.removeWatcherLocked(w)
	ts.mu.Unlock()
	if done {
		c.removeWatch(w) // before the client can see the terminal state and watch again
		f.ended = append(f.ended, ts)
	}
	for n := from + 1; n <= v.Version; n++ {
		if v.StateAt(n) == "" && n != v.Version {
			continue // not in the trail: nothing truthful to say
		}
		var scratch [512]byte // an event is ~200 bytes: no allocation
		f.buf = c.sock.AppendFrame(f.buf, ws.OpText, appendStateEvent(scratch[:0], v, n))
		f.events++
	}
}

// remote is the client's TCP address, for logs.
func (c *conn) remote() string { return c.sock.NetConn().RemoteAddr().String() }

func (c *conn) releaseAll(tss []*ticketState) {
	for _, ts := range tss {
		c.h.release(ts)
	}
}
