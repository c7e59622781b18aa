// Package redisbroker is the hub.Broker of a scaled-out hub: ticket moves
// travel over Redis pub/sub between hub nodes that share a Redis server
// (SUBSCRIBE) or a Redis Cluster (sharded pub/sub, SSUBSCRIBE, so that a
// message only travels to the shard that owns the ticket's slot). Every
// move publishes the ticket it wrote on the ticket's channel; the store
// that publishes owns the channel names and the message format, which the
// broker uses through Options.Channels (*redisstore.Store). How the broker
// subscribes, batches and reconnects is described at runner.
package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub"
)

// Defaults of the timing knobs (tests shorten some of them).
const (
	defaultPingInterval = 5 * time.Second        // an idle session is pinged this often
	defaultPongTimeout  = 5 * time.Second        // a PING reply later than this ends the session
	defaultOpTimeout    = 5 * time.Second        // bounds each write (and dial) on a session
	defaultMinBackoff   = 50 * time.Millisecond  // first retry after a failure
	defaultMaxBackoff   = 5 * time.Second        // retries back off up to this
	tickEvery           = 500 * time.Millisecond // how often pings and timeouts are checked

	maxChannelsPerCommand = 1024 // channels in one SUBSCRIBE or UNSUBSCRIBE
	tokenPrefix           = "loginhub-broker:"
)

// Channels names the ticket channels and reads their messages, as the
// store that publishes on them writes them (*redisstore.Store).
type Channels interface {
	TicketChannel(id string) string
	TicketID(channel string) (id string, ok bool)
	DecodeTicket(id, payload string) (authcore.TicketRecord, error)
}

// Options tunes a Broker.
type Options struct {
	// Channels is required: the store whose moves the broker delivers.
	Channels Channels
	// Logger receives connection events (Warn) and ignored messages
	// (Debug); nil discards them.
	Logger *slog.Logger
	// Registerer receives the broker's metrics
	// (loginhub_broker_reconnects_total, loginhub_broker_resubscribes_total,
	// loginhub_broker_subscriptions); nil registers none.
	Registerer prometheus.Registerer
}

// Broker is a hub.Broker on Redis pub/sub (standalone) or sharded pub/sub
// (Redis Cluster). Create it with New, start it with Run. All methods are
// safe for concurrent use.
type Broker struct {
	client  redis.UniversalClient
	cluster *redis.ClusterClient // nil on a standalone server
	ch      Channels
	log     *slog.Logger
	m       *metrics

	// Timing knobs, set by New; tests shorten them before Run.
	pingInterval, pongTimeout, opTimeout time.Duration
	minBackoff, maxBackoff               time.Duration

	mu      sync.Mutex
	subs    map[string]struct{} // ids subscribed now: only their nudges are delivered
	reqs    []request           // Subscribe calls the manager has not taken yet
	unsubs  []string            // ids unsubscribed, not yet taken by the manager
	running bool
	kick    chan struct{} // capacity 1: reqs or unsubs changed
}

var _ hub.Broker = (*Broker)(nil)

// request is one Subscribe call waiting for its subscription to be active.
type request struct {
	id   string
	done chan error // buffered 1; nil is sent once the subscription is active
}

// New returns a Broker that uses c: a *redis.ClusterClient means sharded
// pub/sub on a Redis Cluster; a *redis.Client (also a Sentinel failover
// client) plain pub/sub on one server. A *redis.Ring is not supported.
// The caller keeps owning c (the broker never closes it). It panics
// without opts.Channels.
func New(c redis.UniversalClient, opts Options) *Broker {
	if opts.Channels == nil {
		panic("redisbroker: Options.Channels is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	b := &Broker{
		client:       c,
		ch:           opts.Channels,
		log:          opts.Logger,
		m:            newMetrics(opts.Registerer, opts.Logger),
		pingInterval: defaultPingInterval,
		pongTimeout:  defaultPongTimeout,
		opTimeout:    defaultOpTimeout,
		minBackoff:   defaultMinBackoff,
		maxBackoff:   defaultMaxBackoff,
		subs:         make(map[string]struct{}),
		kick:         make(chan struct{}, 1),
	}
	b.cluster, _ = c.(*redis.ClusterClient)
	return b
}

// Subscribe returns once nudges for id will be delivered: when the
// (S)SUBSCRIBE for id's channel has been processed by the Redis server that
// owns it, which Subscribe learns from the reply to a PING sent after it on
// the same connection. It needs Run: called before Run has connected (or
// while Redis is down) it waits for it, until ctx ends. It returns ctx's
// error then, and id is not subscribed (unless it already was).
func (b *Broker) Subscribe(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	b.mu.Lock()
	_, had := b.subs[id]
	b.subs[id] = struct{}{}
	b.reqs = append(b.reqs, request{id: id, done: done})
	b.m.subscriptions.Set(float64(len(b.subs)))
	b.mu.Unlock()
	b.wake()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		if !had {
			b.drop(id)
		}
		return ctx.Err()
	}
}

// Unsubscribe stops the delivery of id's nudges at once; the UNSUBSCRIBE
// command follows asynchronously. It never fails.
func (b *Broker) Unsubscribe(_ context.Context, id string) error {
	b.drop(id)
	return nil
}

func (b *Broker) drop(id string) {
	b.mu.Lock()
	if _, ok := b.subs[id]; ok {
		delete(b.subs, id)
		b.unsubs = append(b.unsubs, id)
		b.m.subscriptions.Set(float64(len(b.subs)))
	}
	b.mu.Unlock()
	b.wake()
}

func (b *Broker) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

func (b *Broker) subscribed(id string) bool {
	b.mu.Lock()
	_, ok := b.subs[id]
	b.mu.Unlock()
	return ok
}

// Ping reports whether Redis answers: on a cluster, every master.
func (b *Broker) Ping(ctx context.Context) error {
	if b.cluster != nil {
		return b.cluster.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			return c.Ping(ctx).Err()
		})
	}
	return b.client.Ping(ctx).Err()
}

// Run subscribes, delivers nudges to h and keeps the subscriptions alive
// across reconnects until ctx is done; then it closes its connections and
// returns nil. Redis being down is not an error: Run retries with capped
// backoff and calls h.Resync once every subscribed ticket is subscribed
// again. Only one Run may be active at a time. It never holds a lock while
// it calls h; Nudge and Changed may be called from several goroutines at
// once (one per cluster node).
func (b *Broker) Run(ctx context.Context, h hub.BrokerHandler) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return errors.New("redisbroker: Run is already running")
	}
	b.running = true
	r := &runner{
		b:        b,
		h:        h,
		ctx:      ctx,
		events:   make(chan event, 256),
		sessions: make(map[string]*session),
		placed:   make(map[string]*session),
		wanted:   make(map[string]struct{}),
		orphans:  make(map[string]struct{}),
		waiters:  make(map[string][]chan error),
		active:   make(map[string]struct{}),
		lost:     make(map[string]struct{}),
	}
	// Tickets subscribed before (by an earlier Run) must be subscribed
	// again, and were not watched by anyone in between: resync after.
	waiting := make(map[string]bool, len(b.reqs))
	for _, q := range b.reqs {
		waiting[q.id] = true
	}
	for id := range b.subs {
		r.wanted[id] = struct{}{}
		r.orphans[id] = struct{}{}
		if !waiting[id] {
			r.active[id] = struct{}{}
			r.lost[id] = struct{}{}
			r.resyncDue = true
		}
	}
	b.mu.Unlock()

	defer func() {
		r.shutdown()
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
	}()
	return r.loop()
}

// How a Run works. It owns all connections and goroutines: one manager
// goroutine that alone decides what is subscribed where, and one reader
// goroutine per pub/sub connection ("session"). A standalone Redis has one
// session; a cluster has one per master that owns the slot of at least one
// watched ticket (routed with ClusterClient.MasterForKey).
//
// Subscribe confirms with a PING on the same pub/sub connection: the manager
// writes (S)SUBSCRIBE for the channels, then PING with a unique payload, and
// releases the waiting Subscribe calls when the reader sees that payload come
// back. Redis answers the commands of one connection in order, so by then
// the subscription is active on the server (subscribe-before-read). One
// PING per batch works the same for plain and sharded pub/sub, for RESP2 and
// RESP3, and needs no counting of per-channel confirmations.
//
// Batching: a session has at most one batch in flight. Subscribe calls that
// arrive while a batch waits for its PING reply queue up and go out together
// in the next batch: one SUBSCRIBE with up to maxChannelsPerCommand channels
// on a standalone server; on a cluster one SSUBSCRIBE per hash slot (Redis
// refuses SSUBSCRIBE of channels in different slots with CROSSSLOT), all
// pipelined before the one PING.
//
// Unsubscribe is local and immediate: the readers deliver only nudges for
// ids that are subscribed now, so nothing published after Unsubscribe
// returns reaches the handler. The UNSUBSCRIBE itself is on nobody's path,
// so it waits: it goes out with the next batch that subscribes (on a busy
// node within milliseconds), or on the next health tick (tickEvery), or as
// soon as maxChannelsPerCommand of them are pending; alone, without a
// PING.
//
// Reconnects: go-redis's PubSub reconnects and resubscribes by itself, but
// it does so silently, and on a cluster it would resubscribe every shard channel in one
// SSUBSCRIBE (CROSSSLOT). So the broker does not rely on it: any error on a
// session (a failed write, a read error, a PING reply that does not come
// back within pongTimeout, an error reply such as MOVED or CLUSTERDOWN) ends
// the session. Its tickets are routed again (on a cluster after a refresh
// of the slot map) and subscribed on a new session, retried with capped
// exponential backoff while Redis is down. A ticket channel that the server
// drops by itself (Redis 7 unsubscribes shard channels of a slot that moves
// to another node) is handled the same way. Once every ticket that had been
// subscribed is subscribed again, the broker calls the handler's Resync:
// nudges published in between were lost. Idle sessions are pinged every
// pingInterval, so a silently dead connection is noticed too.
//
// runner is the state of one Run. Only the manager goroutine (the one that
// runs loop) touches its fields, except ctx, events, wg, b and h.
type runner struct {
	b      *Broker
	h      hub.BrokerHandler
	ctx    context.Context
	events chan event // readers → manager
	wg     sync.WaitGroup

	sessions  map[string]*session     // by node address ("" on a standalone server)
	placed    map[string]*session     // id → session it is (being) subscribed on
	wanted    map[string]struct{}     // mirror of Broker.subs for the ids taken so far
	orphans   map[string]struct{}     // wanted ids on no session: route and subscribe them
	waiters   map[string][]chan error // Subscribe calls not yet in a batch
	active    map[string]struct{}     // ids whose Subscribe has returned
	lost      map[string]struct{}     // active ids whose subscription was lost, not yet back
	seq       uint64                  // PING payloads
	backoff   time.Duration           // current retry backoff; 0 after a success
	retryAt   time.Time               // orphans are not routed before this
	retry     *time.Timer             // fires at retryAt
	retryC    <-chan time.Time        // retry.C while armed
	resyncDue bool                    // a subscription was lost since the last Resync
	unsubDue  bool                    // a health tick passed: UNSUBSCRIBEs go out even alone
}

// session is one pub/sub connection, to the one server or to one cluster
// master.
type session struct {
	addr    string
	ps      *redis.PubSub
	dead    bool
	reading bool // the reader goroutine runs

	pendingSub   map[string]struct{} // placed here, (S)SUBSCRIBE not sent yet
	pendingUnsub map[string]struct{} // to (S)UNSUBSCRIBE
	needPing     bool                // a waiter or the health check wants a PING
	inflight     *batch              // the batch whose PING reply is awaited
	lastSent     time.Time
	unsubSent    map[string]int // our own UNSUBSCRIBEs whose confirmation is due
	confirmed    int            // batches confirmed on this session
}

// batch is what one PING reply confirms.
type batch struct {
	token   string
	sent    time.Time
	ids     []string // subscribed by this batch
	waiters []waiter // released by its reply
}

type waiter struct {
	id string
	ch chan error
}

type eventKind int

const (
	evPong  eventKind = iota // a PING reply: arg is the payload
	evUnsub                  // the server confirmed or imposed an unsubscribe: arg is the id
	evDead                   // the session failed: err says why
)

type event struct {
	s    *session
	kind eventKind
	arg  string
	err  error
}

func (r *runner) loop() error {
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	r.retry = time.NewTimer(time.Hour)
	r.retry.Stop()
	defer r.retry.Stop()
	for {
		r.flush()
		if r.resyncDue && len(r.lost) == 0 {
			r.resyncDue = false
			r.b.log.Info("redisbroker: subscriptions restored; resyncing")
			r.h.Resync()
		}
		select {
		case <-r.ctx.Done():
			return nil
		case <-r.b.kick:
		case ev := <-r.events:
			r.handle(ev)
		case <-r.retryC:
			r.retryC = nil
		case now := <-tick.C:
			r.health(now)
			r.unsubDue = true
		}
	}
}

// flush takes the queued Subscribe and Unsubscribe calls, routes orphaned
// ids to sessions and sends a batch on every idle session that has work:
// subscriptions or a PING at once, UNSUBSCRIBEs alone only once a health
// tick has passed or enough of them wait (they are on nobody's path; each
// batch is a write for the hub and a command for Redis).
func (r *runner) flush() {
	r.drain()
	r.place()
	unsubDue := r.unsubDue
	r.unsubDue = false
	for _, s := range r.sessions {
		if s.dead || s.inflight != nil {
			continue
		}
		if len(s.pendingSub) > 0 || s.needPing || len(s.pendingUnsub) >= maxChannelsPerCommand || (unsubDue && len(s.pendingUnsub) > 0) {
			r.send(s)
		}
	}
}

func (r *runner) drain() {
	b := r.b
	b.mu.Lock()
	reqs, unsubs := b.reqs, b.unsubs
	b.reqs, b.unsubs = nil, nil
	touched := make(map[string]bool, len(reqs)+len(unsubs))
	for _, q := range reqs {
		_, ok := b.subs[q.id]
		touched[q.id] = ok
	}
	for _, id := range unsubs {
		_, ok := b.subs[id]
		touched[id] = ok
	}
	b.mu.Unlock()

	for id, want := range touched {
		if want {
			r.wanted[id] = struct{}{}
			continue
		}
		// Unsubscribed: forget it, release anyone still waiting for it
		// (a Subscribe that gave up), unsubscribe it from its session.
		delete(r.wanted, id)
		delete(r.orphans, id)
		delete(r.active, id)
		delete(r.lost, id)
		for _, ch := range r.waiters[id] {
			ch <- nil
		}
		delete(r.waiters, id)
		if s := r.placed[id]; s != nil {
			r.unplace(id)
			s.pendingUnsub[id] = struct{}{}
		}
	}
	for _, q := range reqs {
		if _, ok := r.wanted[q.id]; !ok {
			q.done <- nil // unsubscribed meanwhile: nobody waits any more
			continue
		}
		r.waiters[q.id] = append(r.waiters[q.id], q.done)
		if s := r.placed[q.id]; s != nil {
			s.needPing = true // subscribed already: one PING confirms it
		} else {
			r.orphans[q.id] = struct{}{}
		}
	}
}

// place routes orphaned ids to sessions, creating sessions as needed, unless
// a retry is pending.
func (r *runner) place() {
	if len(r.orphans) == 0 || time.Now().Before(r.retryAt) {
		return
	}
	for id := range r.orphans {
		addr, open, err := r.route(id)
		if err != nil {
			r.b.log.Warn("redisbroker: routing failed", "err", err)
			r.fail()
			return
		}
		s := r.sessions[addr]
		if s == nil {
			s = &session{
				addr:         addr,
				ps:           open(),
				pendingSub:   make(map[string]struct{}),
				pendingUnsub: make(map[string]struct{}),
				unsubSent:    make(map[string]int),
			}
			r.sessions[addr] = s
		}
		r.placed[id] = s
		s.pendingSub[id] = struct{}{}
		delete(r.orphans, id)
	}
}

// route returns the address of the server that owns id's channel and a
// function that opens a PubSub on it (the PubSub connects lazily).
func (r *runner) route(id string) (string, func() *redis.PubSub, error) {
	b := r.b
	if b.cluster == nil {
		return "", func() *redis.PubSub { return b.client.Subscribe(r.ctx) }, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, b.opTimeout)
	defer cancel()
	node, err := b.cluster.MasterForKey(ctx, b.ch.TicketChannel(id))
	if err != nil {
		return "", nil, err
	}
	return node.Options().Addr, func() *redis.PubSub { return node.SSubscribe(r.ctx) }, nil
}

func (r *runner) unplace(id string) {
	if s := r.placed[id]; s != nil {
		delete(s.pendingSub, id)
		delete(r.placed, id)
	}
}

// send writes one batch on s: the UNSUBSCRIBEs, the SUBSCRIBEs, then a PING
// whose reply confirms them all.
func (r *runner) send(s *session) {
	b := r.b
	ctx, cancel := context.WithTimeout(r.ctx, b.opTimeout)
	defer cancel()

	var unsub, sub, subIDs []string
	for id := range s.pendingUnsub {
		if r.placed[id] != s { // not subscribed here again meanwhile
			unsub = append(unsub, b.ch.TicketChannel(id))
		}
	}
	for id := range s.pendingSub {
		sub = append(sub, b.ch.TicketChannel(id))
		subIDs = append(subIDs, id)
	}
	clear(s.pendingUnsub)
	clear(s.pendingSub)
	ping := s.needPing || len(sub) > 0 || r.waitsOn(s)
	s.needPing = false

	err := r.write(ctx, s, unsub, false)
	if err == nil {
		for _, ch := range unsub {
			id, _ := b.ch.TicketID(ch)
			s.unsubSent[id]++
		}
		err = r.write(ctx, s, sub, true)
	}
	if err == nil && !ping {
		// UNSUBSCRIBEs alone: nobody waits for them (Unsubscribe is
		// local), so no PING; a dead connection is still noticed by the
		// reader or by the idle pings.
		return
	}
	r.seq++
	token := tokenPrefix + strconv.FormatUint(r.seq, 10)
	if err == nil {
		err = s.ps.Ping(ctx, token)
	}
	bt := &batch{token: token, sent: time.Now(), ids: subIDs}
	s.inflight = bt // even on error, so that kill re-queues the ids
	s.lastSent = bt.sent
	if err != nil {
		r.kill(s, err)
		return
	}
	for id, chs := range r.waiters {
		if r.placed[id] == s {
			for _, ch := range chs {
				bt.waiters = append(bt.waiters, waiter{id: id, ch: ch})
			}
			delete(r.waiters, id)
		}
	}
	if !s.reading {
		s.reading = true
		r.wg.Go(func() { r.read(s) })
	}
}

// waitsOn reports whether a Subscribe call waits for an id placed on s.
func (r *runner) waitsOn(s *session) bool {
	for id := range r.waiters {
		if r.placed[id] == s {
			return true
		}
	}
	return false
}

// write sends (S)SUBSCRIBE or (S)UNSUBSCRIBE for chans: in chunks on a
// standalone server, one command per hash slot on a cluster.
func (r *runner) write(ctx context.Context, s *session, chans []string, subscribe bool) error {
	if len(chans) == 0 {
		return nil
	}
	if r.b.cluster == nil {
		for chunk := range chunks(chans, maxChannelsPerCommand) {
			var err error
			if subscribe {
				err = s.ps.Subscribe(ctx, chunk...)
			} else {
				err = s.ps.Unsubscribe(ctx, chunk...)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	bySlot := make(map[uint16][]string)
	for _, ch := range chans {
		k := slot(ch)
		bySlot[k] = append(bySlot[k], ch)
	}
	for _, group := range bySlot {
		for chunk := range chunks(group, maxChannelsPerCommand) {
			var err error
			if subscribe {
				err = s.ps.SSubscribe(ctx, chunk...)
			} else {
				err = s.ps.SUnsubscribe(ctx, chunk...)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func chunks(s []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k]) {
				return
			}
			s = s[k:]
		}
	}
}

func (r *runner) handle(ev event) {
	s := ev.s
	if s.dead {
		return // a late event of a session already ended
	}
	switch ev.kind {
	case evPong:
		if s.inflight != nil && ev.arg == s.inflight.token {
			r.confirm(s)
		}
	case evUnsub:
		id := ev.arg
		if n := s.unsubSent[id]; n > 0 {
			if n == 1 {
				delete(s.unsubSent, id)
			} else {
				s.unsubSent[id] = n - 1
			}
			return // the confirmation of our own UNSUBSCRIBE
		}
		if r.placed[id] != s {
			return
		}
		// The server dropped the subscription by itself (its slot moved).
		r.b.log.Warn("redisbroker: server dropped a subscription; resubscribing", "node", s.addr, "channel", r.b.ch.TicketChannel(id))
		r.orphan(id)
		r.refreshRoutes()
	case evDead:
		r.kill(s, ev.err)
	}
}

// confirm handles the PING reply of s's inflight batch: its subscriptions
// are active now.
func (r *runner) confirm(s *session) {
	bt := s.inflight
	s.inflight = nil
	s.confirmed++
	r.backoff = 0
	for _, w := range bt.waiters {
		_, want := r.wanted[w.id]
		switch {
		case !want:
			w.ch <- nil
		case r.placed[w.id] == s:
			r.active[w.id] = struct{}{}
			w.ch <- nil
		default: // dropped by the server meanwhile: wait for the next placement
			r.waiters[w.id] = append(r.waiters[w.id], w.ch)
		}
	}
	restored := 0
	for _, id := range bt.ids {
		if _, ok := r.lost[id]; ok && r.placed[id] == s {
			delete(r.lost, id)
			restored++
		}
	}
	if restored > 0 {
		r.b.m.resubscribes.Add(float64(restored))
		if s.confirmed == 1 {
			r.b.m.reconnects.Inc()
			r.b.log.Info("redisbroker: reconnected", "node", s.addr, "resubscribed", restored)
		}
	}
}

// orphan takes id off its session; it is routed and subscribed again.
func (r *runner) orphan(id string) {
	r.unplace(id)
	if _, ok := r.wanted[id]; !ok {
		return
	}
	r.orphans[id] = struct{}{}
	if _, ok := r.active[id]; ok {
		r.lost[id] = struct{}{}
		r.resyncDue = true
	}
}

// kill ends session s after an error: its ids are routed and subscribed
// again after a backoff.
func (r *runner) kill(s *session, err error) {
	if s.dead {
		return
	}
	s.dead = true
	if r.sessions[s.addr] == s {
		delete(r.sessions, s.addr)
	}
	switch {
	case r.ctx.Err() != nil:
	case s.reading:
		r.b.log.Warn("redisbroker: pub/sub connection lost", "node", s.addr, "err", err)
	default:
		r.b.log.Warn("redisbroker: pub/sub connection failed", "node", s.addr, "err", err, "retry_in", min(max(2*r.backoff, r.b.minBackoff), r.b.maxBackoff))
	}
	if bt := s.inflight; bt != nil {
		for _, w := range bt.waiters {
			r.waiters[w.id] = append(r.waiters[w.id], w.ch)
		}
		s.inflight = nil
	}
	for id, p := range r.placed {
		if p == s {
			r.orphan(id)
		}
	}
	r.closeSession(s)
	r.refreshRoutes()
	r.fail()
}

func (r *runner) closeSession(s *session) {
	s.dead = true
	ps := s.ps
	// Close may wait for an internal reconnect of go-redis (a dial): keep
	// the manager free.
	r.wg.Go(func() { _ = ps.Close() })
}

func (r *runner) refreshRoutes() {
	if r.b.cluster != nil {
		r.b.cluster.ReloadState(r.ctx)
	}
}

// fail arms the retry timer with the next backoff.
func (r *runner) fail() {
	r.backoff = min(max(2*r.backoff, r.b.minBackoff), r.b.maxBackoff)
	r.retryAt = time.Now().Add(r.backoff)
	r.retry.Reset(r.backoff)
	r.retryC = r.retry.C
}

// health ends sessions whose PING reply is overdue and pings idle ones.
func (r *runner) health(now time.Time) {
	for _, s := range r.sessions {
		switch {
		case s.inflight != nil && now.Sub(s.inflight.sent) > r.b.pongTimeout:
			r.kill(s, fmt.Errorf("no PING reply within %v", r.b.pongTimeout))
		case s.inflight == nil && now.Sub(s.lastSent) >= r.b.pingInterval:
			s.needPing = true
		}
	}
}

// read is the reader goroutine of s: it delivers nudges and reports PING
// replies, unsubscribes and the first error to the manager.
func (r *runner) read(s *session) {
	for {
		msg, err := s.ps.Receive(r.ctx)
		if err != nil {
			r.report(event{s: s, kind: evDead, err: err})
			return
		}
		switch m := msg.(type) {
		case *redis.Message:
			r.deliver(m)
		case *redis.Pong:
			if strings.HasPrefix(m.Payload, tokenPrefix) {
				r.report(event{s: s, kind: evPong, arg: m.Payload})
			}
		case *redis.Subscription:
			if m.Kind == "unsubscribe" || m.Kind == "sunsubscribe" {
				if id, ok := r.b.ch.TicketID(m.Channel); ok {
					r.report(event{s: s, kind: evUnsub, arg: id})
				}
			}
		}
	}
}

func (r *runner) report(ev event) {
	select {
	case r.events <- ev:
	case <-r.ctx.Done():
	}
}

// deliver hands a ticket message to the handler: the ticket as Changed,
// and a message it cannot read (from a newer release, or not from a store
// at all) as a Nudge of unknown version, which re-reads.
func (r *runner) deliver(m *redis.Message) {
	id, ok := r.b.ch.TicketID(m.Channel)
	if !ok {
		r.b.log.Debug("redisbroker: message on an unknown channel ignored", "channel", m.Channel)
		return
	}
	if !r.b.subscribed(id) {
		return
	}
	rec, err := r.b.ch.DecodeTicket(id, m.Payload)
	if err != nil {
		// Not the payload: a ticket holds its watch secret's hash.
		r.b.log.Debug("redisbroker: unreadable message; the ticket will be re-read", "channel", m.Channel, "err", err)
		r.h.Nudge(id, 0)
		return
	}
	r.h.Changed(rec)
}

// shutdown closes every session, waits for the readers, and hands Subscribe
// calls still waiting back to the Broker for the next Run.
func (r *runner) shutdown() {
	var back []request
	for id, chs := range r.waiters {
		for _, ch := range chs {
			back = append(back, request{id: id, done: ch})
		}
	}
	for _, s := range r.sessions {
		if bt := s.inflight; bt != nil {
			for _, w := range bt.waiters {
				back = append(back, request{id: w.id, done: w.ch})
			}
		}
		r.closeSession(s)
	}
	r.wg.Wait()
	b := r.b
	b.mu.Lock()
	b.reqs = append(back, b.reqs...)
	b.mu.Unlock()
}

// slot is the Redis Cluster hash slot of key (CRC16/XMODEM of its hash tag,
// mod 16384).
func slot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

// metrics are the broker's Prometheus collectors; they always exist and are
// registered only when Options.Registerer is set.
type metrics struct {
	reconnects    prometheus.Counter
	resubscribes  prometheus.Counter
	subscriptions prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "loginhub", Subsystem: "broker", Name: name, Help: help}
	}
	m := &metrics{
		reconnects:    prometheus.NewCounter(prometheus.CounterOpts(opts("reconnects_total", "Pub/sub connections re-established with lost subscriptions on them."))),
		resubscribes:  prometheus.NewCounter(prometheus.CounterOpts(opts("resubscribes_total", "Ticket channels subscribed again after their subscription was lost."))),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts(opts("subscriptions", "Ticket channels this node is subscribed to."))),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.reconnects, m.resubscribes, m.subscriptions} {
			if err := reg.Register(c); err != nil {
				log.Warn("redisbroker: registering a metric failed", "err", err)
			}
		}
	}
	return m
}
