package hub

import (
	"context"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/loginhub/loginhub/authcore"
)

// ticketState is one ticket watched (or waited on) on this node.
type ticketState struct {
	id   string
	refs int // watchers + waiters holding the subscription; guarded by its part of Hub.tickets

	subMu      sync.Mutex // serializes Subscribe and Unsubscribe for id
	subscribed bool       // guarded by subMu

	mu       sync.Mutex
	watchers []*watch
	waiters  []*waiter
	latest   authcore.View // newest view read; Version 0 before the first read
	stale    bool          // the last re-read failed: the sweeper retries it
	reading  bool          // a re-read is in flight
	again    bool          // re-read once more when it ends
}

// waiter is one Wait call.
type waiter struct {
	since uint64
	ch    chan authcore.View // buffered 1
}

// maxWatchers is how many watches and waits one ticket may have on a node
// at once: a desktop page needs one, a few tabs or a reconnect a few more;
// more is someone holding sockets open on one ticket.
const maxWatchers = 4

// acquire takes a reference on id's state, subscribing to the broker if it
// is the first; fresh says that this call subscribed. With limit > 0 it
// refuses (errCrowded) when limit references are held already. On error
// nothing is held.
func (h *Hub) acquire(ctx context.Context, id string, limit int) (ts *ticketState, fresh bool, err error) {
	p := h.tickets.part(id)
	p.mu.Lock()
	ts = p.m[id]
	if ts == nil {
		ts = &ticketState{id: id}
		h.tickets.putLocked(p, id, ts)
	} else if limit > 0 && ts.refs >= limit {
		p.mu.Unlock()
		return nil, false, errCrowded
	}
	ts.refs++
	p.mu.Unlock()

	ts.subMu.Lock()
	if !ts.subscribed {
		if err = h.cfg.Broker.Subscribe(ctx, id); err == nil {
			ts.subscribed, fresh = true, true
		}
	}
	ts.subMu.Unlock()
	if err != nil {
		h.release(ts)
		return nil, false, err
	}
	return ts, fresh, nil
}

// release drops a reference taken by acquire; the last one unsubscribes and
// forgets the ticket. The state stays in the map until Unsubscribe has
// returned, so that a new watcher subscribes only after it.
func (h *Hub) release(ts *ticketState) {
	p := h.tickets.part(ts.id)
	p.mu.Lock()
	ts.refs--
	last := ts.refs == 0
	p.mu.Unlock()
	if !last {
		return
	}
	ts.subMu.Lock()
	defer ts.subMu.Unlock()
	p.mu.Lock()
	idle := ts.refs == 0
	p.mu.Unlock()
	if !idle {
		return // taken again meanwhile
	}
	if ts.subscribed {
		ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
		if err := h.cfg.Broker.Unsubscribe(ctx, ts.id); err != nil {
			h.log.Warn("hub: broker unsubscribe failed", "err", err)
		}
		cancel()
		ts.subscribed = false
	}
	p.mu.Lock()
	if ts.refs == 0 && p.m[ts.id] == ts {
		h.tickets.deleteLocked(p, ts.id)
	}
	p.mu.Unlock()
}

// removeWatcher unregisters w and reports whether it was registered; the
// caller that gets true owns the release of w's reference.
func (ts *ticketState) removeWatcher(w *watch) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.removeWatcherLocked(w)
}

func (ts *ticketState) removeWatcherLocked(w *watch) bool {
	for i, x := range ts.watchers {
		if x == w {
			ts.watchers = deleteAt(ts.watchers, i)
			w.gone = true
			return true
		}
	}
	return false
}

func (ts *ticketState) removeWaiter(wt *waiter) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for i, x := range ts.waiters {
		if x == wt {
			ts.waiters = deleteAt(ts.waiters, i)
			return
		}
	}
}

// deleteAt removes s[i] without keeping order and lets a slice that becomes
// empty be collected.
func deleteAt[T any](s []*T, i int) []*T {
	last := len(s) - 1
	s[i] = s[last]
	s[last] = nil
	if last == 0 {
		return nil
	}
	return s[:last]
}

// deliverLocked takes in a fresh view of ts (one older than already seen
// changes nothing), queues a send for every authorized watcher that has not
// seen its version, wakes waiters, and unregisters the watchers that have
// nothing left to see after a terminal state. The caller passes what it
// returns to finish after unlocking ts.mu.
func (h *Hub) deliverLocked(ts *ticketState, v authcore.View) (d delivery) {
	if v.Version < ts.latest.Version {
		v = ts.latest
	} else {
		ts.latest = v
	}
	for _, w := range ts.watchers {
		switch {
		case w.pending:
		case w.lastSent < v.Version:
			// The writer ends the watch after a terminal state.
			if w.c.queueState(w) {
				d.writers = append(d.writers, w.c)
			}
		case v.State.Terminal():
			d.dropped = append(d.dropped, w)
		}
	}
	for _, w := range d.dropped {
		ts.removeWatcherLocked(w)
	}
	for i := 0; i < len(ts.waiters); {
		wt := ts.waiters[i]
		if v.Version > wt.since {
			wt.ch <- v // buffered, and each waiter is woken once
			ts.waiters = deleteAt(ts.waiters, i)
			continue
		}
		i++
	}
	return d
}

// delivery is what deliverLocked (or failLocked) leaves for its caller to
// do once it has released ticketState.mu: finish does it.
type delivery struct {
	writers []*conn  // their writer role was taken: write their queues now
	dropped []*watch // unregistered: end them
}

// finish writes the sockets' events and ends the dropped watches. The
// broker's delivery goroutine passes fromBroker: it must never wait, and a
// watch that ended may have to unsubscribe, which can wait for a Subscribe
// that waits for that very goroutine; so those releases go to a goroutine.
func (h *Hub) finish(ts *ticketState, d delivery, fromBroker bool) {
	for _, c := range d.writers {
		c.writeNow(fromBroker)
	}
	for _, w := range d.dropped {
		w.c.removeWatch(w)
		h.release(ts)
	}
}

// nudge handles "id reached version": re-read unless that version was seen
// (version 0, unknown, is re-read).
func (h *Hub) nudge(id string, version uint64) {
	h.m.nudges.Inc()
	ts := h.held(id)
	if ts == nil {
		return
	}
	ts.mu.Lock()
	if version == 0 || version > ts.latest.Version {
		h.refreshLocked(ts)
	}
	ts.mu.Unlock()
}

// changed handles "a transition wrote rec": unless that version was seen,
// the record is viewed at this node's clock (so a ticket past its expiry
// reads as expired, as a re-read would) and delivered like a re-read's
// view, through deliverLocked, which never lets a version go back.
func (h *Hub) changed(rec authcore.TicketRecord) {
	h.m.nudges.Inc()
	ts := h.held(rec.ID)
	if ts == nil {
		return
	}
	var d delivery
	ts.mu.Lock()
	if rec.Version > ts.latest.Version {
		d = h.deliverLocked(ts, rec.ViewAt(h.cfg.Now()))
	}
	ts.mu.Unlock()
	h.finish(ts, d, true)
}

// held returns the state of ticket id if it is watched or waited on here.
func (h *Hub) held(id string) *ticketState { return h.tickets.get(id) }

// resync re-reads every ticket watched on this node.
func (h *Hub) resync() {
	h.m.resyncs.Inc()
	for _, ts := range h.watched() {
		ts.mu.Lock()
		h.refreshLocked(ts)
		ts.mu.Unlock()
	}
}

func (h *Hub) watched() []*ticketState {
	return h.tickets.values(make([]*ticketState, 0, h.tickets.len()))
}

// refreshLocked starts a re-read of ts, or asks the one in flight to read
// again when it ends: at most one re-read per ticket at a time.
func (h *Hub) refreshLocked(ts *ticketState) {
	if ts.reading {
		ts.again = true
		return
	}
	ts.reading = true
	if !h.goTask(func() { h.refresh(ts) }) {
		ts.reading = false
	}
}

func (h *Hub) refresh(ts *ticketState) {
	for {
		ctx, cancel := context.WithTimeout(h.ctx, opTimeout)
		v, err := h.cfg.Tickets.View(ctx, ts.id)
		cancel()
		ts.mu.Lock()
		d := h.tookReadLocked(ts, v, err)
		again := ts.again
		ts.again = false
		ts.reading = again
		ts.mu.Unlock()
		h.finish(ts, d, false)
		if !again {
			return
		}
	}
}

// reread reads ts once, in the calling goroutine, and delivers what it
// read, like a re-read after a nudge.
func (h *Hub) reread(ctx context.Context, ts *ticketState) {
	v, err := h.cfg.Tickets.View(ctx, ts.id)
	ts.mu.Lock()
	d := h.tookReadLocked(ts, v, err)
	ts.mu.Unlock()
	h.finish(ts, d, false)
}

// tookReadLocked takes in the result of a read of ts: a view is
// delivered, a ticket that is gone ends its watches, and a failed read is
// retried by the sweeper.
func (h *Hub) tookReadLocked(ts *ticketState, v authcore.View, err error) (d delivery) {
	switch {
	case err == nil:
		d = h.deliverLocked(ts, v)
	case authcore.KindOf(err) == authcore.KindNotFound:
		d.dropped = failLocked(ts, err)
	default:
		h.log.Warn("hub: re-reading a ticket failed", "err", err)
		ts.stale = true
	}
	return d
}

// failLocked ends every authorized watch of a ticket that is gone.
func failLocked(ts *ticketState, err error) (dropped []*watch) {
	for _, w := range ts.watchers {
		if !w.pending {
			w.c.sendError(ts.id, err)
			dropped = append(dropped, w)
		}
	}
	for _, w := range dropped {
		ts.removeWatcherLocked(w)
	}
	return dropped
}

// sweep queues pings for the sockets due one at now, closes the sockets
// that have been silent for too long, and re-reads the tickets whose expiry
// has passed (or whose last re-read failed). The sweeper calls it; tests
// call it with their own clock.
//
// A socket is silent when the client sent nothing, not even a pong, for
// 2*PingInterval+5s by Config.Now and through at least two pings: a clock
// that jumps ahead does not drop sockets that simply have not been pinged.
// A socket without a live watch for Config.IdleTimeout is closed (1008).
func (h *Hub) sweep(now time.Time) {
	h.sweepSockets(now, 0, 1)
	h.sweepTickets(now, 0, 1)
}

// sweepSockets is the part of sweep that pings and drops sockets, for
// slice i of n of them (shardedMap.walkSlice).
func (h *Hub) sweepSockets(now time.Time, i, n int) {
	nowN := now.UnixNano()
	next := now.Add(h.cfg.PingInterval).UnixNano()
	silence := int64(h.readTimeout)
	idleFor := int64(h.cfg.IdleTimeout)
	var due, silent, idle []*conn
	h.conns.walkSlice(i, n, func(c *conn) {
		idleSince := c.idleSince.Load()
		switch {
		case c.dropped:
		case c.unanswered.Load() >= 2 && nowN-c.heard.Load() >= silence:
			c.dropped = true
			silent = append(silent, c)
		case idleSince != 0 && nowN-idleSince >= idleFor:
			c.dropped = true
			idle = append(idle, c)
		case c.nextPing <= nowN:
			c.nextPing = next
			due = append(due, c)
		}
	})
	for _, c := range due {
		c.unanswered.Add(1)
		c.enqueue(outMsg{kind: msgPing})
	}
	for _, c := range silent {
		h.log.Info("hub: dropping silent socket", "remote", c.remote())
		h.goTask(c.abort) // refused only once Shutdown ends every socket
	}
	for _, c := range idle {
		h.log.Debug("hub: closing a socket that watches nothing", "remote", c.remote())
		c.closeWith(websocket.ClosePolicyViolation, "no ticket watched")
	}
}

// sweepTickets is the part of sweep that re-reads the tickets whose expiry
// has passed (or whose last re-read failed), for slice i of n of them
// (shardedMap.walkSlice).
func (h *Hub) sweepTickets(now time.Time, i, n int) {
	var slice []*ticketState
	h.tickets.walkSlice(i, n, func(ts *ticketState) { slice = append(slice, ts) })
	for _, ts := range slice {
		ts.mu.Lock()
		// Until the store agrees that it expired (its clock may lag), an
		// expired ticket is re-read on every sweep.
		expired := ts.latest.Version > 0 && !ts.latest.State.Terminal() &&
			!now.Before(ts.latest.ExpiresAt)
		if expired || ts.stale {
			ts.stale = false
			h.refreshLocked(ts)
		}
		ts.mu.Unlock()
	}
}
