package redisbroker

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/authcore/redisstore"
	"github.com/loginhub/loginhub/authcore/redisstore/redistest"
	"github.com/loginhub/loginhub/hub"
	"github.com/loginhub/loginhub/hub/brokertest"
)

// timeout bounds every wait in these tests.
const timeout = 15 * time.Second

func TestSlot(t *testing.T) {
	// The Redis Cluster specification: CRC16("123456789") = 0x31C3. The
	// cluster test compares more keys with CLUSTER KEYSLOT.
	for key, want := range map[string]uint16{
		"123456789":            0x31C3,
		"{user1000}.following": slot("user1000"),
		"{user1000}.followers": slot("user1000"),
		"lh:{t:abc}:v":         slot("t:abc"),
	} {
		if got := slot(key); got != want {
			t.Errorf("slot(%q) = %d, want %d", key, got, want)
		}
	}
}

// handler is a hub.BrokerHandler that remembers the highest version per id,
// every version delivered, the tickets delivered, and counts resyncs.
type handler struct {
	mu      sync.Mutex
	got     map[string]uint64
	all     map[string][]uint64 // versions of Nudge and Changed, in order
	recs    map[string][]authcore.TicketRecord
	resyncs int
	changed chan struct{} // capacity 1
}

func newHandler() *handler {
	return &handler{got: map[string]uint64{}, all: map[string][]uint64{}, recs: map[string][]authcore.TicketRecord{}, changed: make(chan struct{}, 1)}
}

func (h *handler) Nudge(id string, v uint64) {
	h.mu.Lock()
	h.got[id] = max(h.got[id], v)
	h.all[id] = append(h.all[id], v)
	h.mu.Unlock()
	h.signal()
}

func (h *handler) Changed(rec authcore.TicketRecord) {
	h.mu.Lock()
	h.recs[rec.ID] = append(h.recs[rec.ID], rec)
	h.mu.Unlock()
	h.Nudge(rec.ID, rec.Version)
}

func (h *handler) Resync() {
	h.mu.Lock()
	h.resyncs++
	h.mu.Unlock()
	h.signal()
}

func (h *handler) signal() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

// wait waits until cond (called with h.mu held) is true.
func (h *handler) wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		h.mu.Lock()
		ok := cond()
		h.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-h.changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

func (h *handler) waitVersion(t *testing.T, id string, v uint64) {
	t.Helper()
	h.wait(t, fmt.Sprintf("version %d of %s", v, id), func() bool { return h.got[id] >= v })
}

func (h *handler) waitResyncs(t *testing.T, n int) {
	t.Helper()
	h.wait(t, fmt.Sprintf("%d resyncs", n), func() bool { return h.resyncs >= n })
}

// start runs b until the test ends.
func start(t *testing.T, b *Broker) *handler {
	t.Helper()
	h := newHandler()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		case <-time.After(timeout):
			t.Error("Run did not return after its context ended")
		}
	})
	return h
}

// testLogger logs to t.Log (shown with -v or when the test fails).
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return ctx
}

func subscribe(t *testing.T, b *Broker, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := b.Subscribe(testCtx(t), id); err != nil {
			t.Fatalf("Subscribe(%s): %v", id, err)
		}
	}
}

// publisher publishes as the store does: PUBLISH on a server, SPUBLISH on a
// cluster, the ticket at version v on channel(prefix, id) (ticketAt).
func publisher(t *testing.T, c redis.UniversalClient, prefix string) func(id string, v uint64) {
	return func(id string, v uint64) {
		msg, err := redisstore.EncodeTicket(ticketAt(id, v))
		if err != nil {
			t.Fatal(err)
		}
		publishRaw(t, c, prefix, id, msg)
	}
}

func publishRaw(t *testing.T, c redis.UniversalClient, prefix, id, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var err error
	if _, ok := c.(*redis.ClusterClient); ok {
		err = c.SPublish(ctx, channel(prefix, id), msg).Err()
	} else {
		err = c.Publish(ctx, channel(prefix, id), msg).Err()
	}
	if err != nil {
		t.Errorf("publish %s %q: %v", id, msg, err)
	}
}

// names are the channel names and the message codec of a store with
// prefix (a store whose client is never dialled).
func names(prefix string) *redisstore.Store {
	return redisstore.New(redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"}), redisstore.Options{Prefix: prefix})
}

// channel is the channel of ticket id in a store with prefix.
func channel(prefix, id string) string { return names(prefix).TicketChannel(id) }

// ticketAt is a ticket at version v whose trail goes pending, scanned,
// confirmed, ... (the states repeat past v3; only the shape matters here).
func ticketAt(id string, v uint64) authcore.TicketRecord {
	cycle := []authcore.State{authcore.StatePending, authcore.StateScanned, authcore.StateConfirmed}
	trail := make([]authcore.State, v)
	for i := range trail {
		trail[i] = cycle[i%len(cycle)]
	}
	now := time.Now().Truncate(time.Millisecond).UTC()
	rec := authcore.TicketRecord{
		ID: id, Version: v, Trail: trail, ExpiresAt: now.Add(2 * time.Minute), CreatedAt: now,
		WatchSecretHash: [32]byte{1, 2, 3}, ClientIP: netip.MustParseAddr("203.0.113.7"),
		Requester: authcore.Requester{IP: "203.0.113.7", Device: "Chrome on Windows", UserAgent: "Mozilla/5.0", CreatedAt: now},
	}
	if v > 0 {
		rec.State = trail[v-1]
	}
	if v > 1 {
		rec.ScannerID, rec.Scanner = "u1", authcore.Profile{Nickname: "小明", AvatarURL: "https://a.example/1.png"}
	}
	return rec
}

// commandCalls is the number of calls of cmd in INFO commandstats.
func commandCalls(t *testing.T, c *redis.Client, cmd string) int {
	t.Helper()
	info, err := c.Info(testCtx(t), "commandstats").Result()
	if err != nil {
		t.Fatalf("INFO commandstats: %v", err)
	}
	for line := range strings.Lines(info) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":calls=")
		if ok {
			n, _, _ := strings.Cut(rest, ",")
			v, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("INFO commandstats: bad line %q", line)
			}
			return v
		}
	}
	return 0
}

func metricValue(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestStandalone(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()

	t.Run("Conformance", func(t *testing.T) {
		brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
			return New(c, Options{Channels: names("lh")}), publisher(t, c, "lh")
		})
	})

	// In RESP2 a PING on a subscribed connection is answered ["pong", payload]
	// instead of a plain reply: the confirmation must work with both.
	t.Run("ConformanceRESP2", func(t *testing.T) {
		c2 := redis.NewClient(&redis.Options{Addr: srv.Addr, Protocol: 2})
		t.Cleanup(func() { c2.Close() })
		brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
			return New(c2, Options{Channels: names("lh")}), publisher(t, c, "lh")
		})
	})

	t.Run("SubscribeBeforeRun", func(t *testing.T) {
		b := New(c, Options{Channels: names("early")})
		publish := publisher(t, c, "early")
		done := make(chan error, 1)
		go func() { done <- b.Subscribe(testCtx(t), "e1") }()
		h := start(t, b)
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
		case <-time.After(timeout):
			t.Fatal("Subscribe did not return after Run started")
		}
		publish("e1", 3)
		h.waitVersion(t, "e1", 3)
	})

	t.Run("SubscribeWithoutRunHonorsContext", func(t *testing.T) {
		b := New(c, Options{Channels: names("norun")})
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := b.Subscribe(ctx, "x"); err != context.Canceled {
			t.Errorf("Subscribe with a canceled context = %v, want context.Canceled", err)
		}
		ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		if err := b.Subscribe(ctx, "y"); err != context.DeadlineExceeded {
			t.Errorf("Subscribe without Run = %v, want context.DeadlineExceeded", err)
		}
		if b.subscribed("y") {
			t.Error("an id whose Subscribe failed is still subscribed")
		}
	})

	t.Run("Messages", func(t *testing.T) {
		b := New(c, Options{Channels: names("msg"), Logger: testLogger(t)})
		h := start(t, b)
		subscribe(t, b, "m1")
		want := ticketAt("m1", 3)
		msg, err := redisstore.EncodeTicket(want)
		if err != nil {
			t.Fatal(err)
		}
		publishRaw(t, c, "msg", "m1", msg)
		publisher(t, c, "msg")("m1", 4)
		h.waitVersion(t, "m1", 4)
		h.mu.Lock()
		defer h.mu.Unlock()
		if got := h.all["m1"]; len(got) != 2 || got[0] != 3 || got[1] != 4 {
			t.Errorf("delivered versions %v, want [3 4]", got)
		}
		if got := h.recs["m1"]; len(got) != 2 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("delivered tickets %+v, want %+v and then version 4", got, want)
		}
	})

	t.Run("JunkRereads", func(t *testing.T) {
		b := New(c, Options{Channels: names("junk"), Logger: testLogger(t)})
		h := start(t, b)
		subscribe(t, b, "j1")
		ctx := testCtx(t)
		junk := []string{"", "x", "-1", "1.5", "99999999999999999999", "1:2" /* a future ticket format */}
		for _, payload := range junk {
			if err := c.Publish(ctx, channel("junk", "j1"), payload).Err(); err != nil {
				t.Fatal(err)
			}
		}
		publisher(t, c, "junk")("j1", 4)
		h.waitVersion(t, "j1", 4)
		h.mu.Lock()
		defer h.mu.Unlock()
		want := append(make([]uint64, len(junk)), 4) // 0: unknown, re-read
		if got := h.all["j1"]; !slices.Equal(got, want) {
			t.Errorf("delivered %v, want %v", got, want)
		}
	})

	t.Run("UnsubscribeReachesServer", func(t *testing.T) {
		b := New(c, Options{Channels: names("unsub")})
		start(t, b)
		subscribe(t, b, "u1")
		ctx := testCtx(t)
		if got := c.PubSubNumSub(ctx, channel("unsub", "u1")).Val()[channel("unsub", "u1")]; got != 1 {
			t.Fatalf("subscribers of u1 after Subscribe = %d, want 1", got)
		}
		if err := b.Unsubscribe(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		// The UNSUBSCRIBE goes out no later than the batch of the next
		// Subscribe, on the same connection, so it was processed when that
		// returns.
		subscribe(t, b, "barrier")
		if got := c.PubSubNumSub(ctx, channel("unsub", "u1")).Val()[channel("unsub", "u1")]; got != 0 {
			t.Errorf("subscribers of u1 after Unsubscribe = %d, want 0", got)
		}
		if got := metricValue(t, b.m.subscriptions); got != 1 {
			t.Errorf("subscriptions gauge = %v, want 1", got)
		}
	})
}

// TestUnsubscribeAloneSendsNoPing: an UNSUBSCRIBE that nobody waits for
// goes out without the PING that confirms subscriptions.
func TestUnsubscribeAloneSendsNoPing(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	b := New(c, Options{Channels: names("lone")})
	start(t, b)
	subscribe(t, b, "u1")
	ctx := testCtx(t)
	pings := commandCalls(t, c, "ping")
	if err := b.Unsubscribe(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	// Ask until the server has processed the UNSUBSCRIBE.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for c.PubSubNumSub(ctx, channel("lone", "u1")).Val()[channel("lone", "u1")] != 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the UNSUBSCRIBE did not reach the server")
		}
	}
	if got := commandCalls(t, c, "ping") - pings; got != 0 {
		t.Errorf("%d PING commands with the UNSUBSCRIBE, want 0", got)
	}
}

// TestUnsubscribesWait: UNSUBSCRIBEs are on nobody's path, so they wait
// for the next batch that subscribes instead of costing a write (and a
// Redis command) each; and every one still reaches the server.
func TestUnsubscribesWait(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	b := New(c, Options{Channels: names("lazy")})
	start(t, b)
	ctx := testCtx(t)
	const n = 20
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "u" + strconv.Itoa(i)
	}
	subscribe(t, b, ids...)
	unsubs := commandCalls(t, c, "unsubscribe")
	for _, id := range ids {
		if err := b.Unsubscribe(ctx, id); err != nil {
			t.Fatal(err)
		}
		// Until the manager has taken it: one by one, each could have
		// been a batch of its own.
		for taken := false; !taken; {
			b.mu.Lock()
			taken = len(b.unsubs) == 0
			b.mu.Unlock()
			if !taken {
				select {
				case <-ctx.Done():
					t.Fatal("the manager did not take the Unsubscribe")
				case <-time.After(time.Millisecond):
				}
			}
		}
	}
	subscribe(t, b, "next") // its batch carries the UNSUBSCRIBEs
	for _, id := range ids {
		if got := c.PubSubNumSub(ctx, channel("lazy", id)).Val()[channel("lazy", id)]; got != 0 {
			t.Errorf("subscribers of %s after the next Subscribe = %d, want 0", id, got)
		}
	}
	// A health tick may pass while the loop unsubscribes (one more
	// command), not one per id.
	if got := commandCalls(t, c, "unsubscribe") - unsubs; got > 2 {
		t.Errorf("%d UNSUBSCRIBE commands for %d Unsubscribe calls, want them batched (at most 2)", got, n)
	}
}

func TestBatching(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	const n = 1000
	b := New(c, Options{Channels: names("batch")})
	h := start(t, b)
	subsBefore, pingsBefore := commandCalls(t, c, "subscribe"), commandCalls(t, c, "ping")

	ctx := testCtx(t)
	var wg, ready sync.WaitGroup
	start := make(chan struct{})
	// Every caller is running before any calls: the calls are concurrent,
	// not spread over the time a loaded machine takes to start 1 000
	// goroutines.
	ready.Add(n)
	for i := range n {
		wg.Go(func() {
			ready.Done()
			<-start
			if err := b.Subscribe(ctx, fmt.Sprint("b", i)); err != nil {
				t.Errorf("Subscribe: %v", err)
			}
		})
	}
	ready.Wait()
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	subs, pings := commandCalls(t, c, "subscribe")-subsBefore, commandCalls(t, c, "ping")-pingsBefore
	t.Logf("%d concurrent Subscribe calls: %d SUBSCRIBE and %d PING commands in %v", n, subs, pings, elapsed)
	if subs > 10 {
		t.Errorf("%d concurrent Subscribe calls sent %d SUBSCRIBE commands, want at most 10", n, subs)
	}
	if chans := c.PubSubChannels(ctx, "batch:*").Val(); len(chans) != n {
		t.Errorf("server has %d channels subscribed, want %d", len(chans), n)
	}
	publish := publisher(t, c, "batch")
	for i := 0; i < n; i += 97 {
		publish(fmt.Sprint("b", i), 1)
	}
	for i := 0; i < n; i += 97 {
		h.waitVersion(t, fmt.Sprint("b", i), 1)
	}
}

func TestReconnect(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	c := srv.Client()
	reg := prometheus.NewRegistry()
	b := New(c, Options{Channels: names("rc"), Registerer: reg, Logger: testLogger(t)})
	h := start(t, b)
	publish := publisher(t, c, "rc")

	subscribe(t, b, "r1")
	publish("r1", 1)
	h.waitVersion(t, "r1", 1)

	srv.Kill()
	// A Subscribe while Redis is down returns once it is back.
	during := make(chan error, 1)
	go func() { during <- b.Subscribe(testCtx(t), "r2") }()
	srv.Restart()

	h.waitResyncs(t, 1)
	select {
	case err := <-during:
		if err != nil {
			t.Fatalf("Subscribe during the outage: %v", err)
		}
	case <-time.After(timeout):
		t.Fatal("Subscribe during the outage did not return after Redis came back")
	}
	publish("r1", 2)
	publish("r2", 1)
	h.waitVersion(t, "r1", 2)
	h.waitVersion(t, "r2", 1)

	if got := metricValue(t, b.m.reconnects); got < 1 {
		t.Errorf("reconnects_total = %v, want >= 1", got)
	}
	if got := metricValue(t, b.m.resubscribes); got < 1 {
		t.Errorf("resubscribes_total = %v, want >= 1", got)
	}
	if got := metricValue(t, b.m.subscriptions); got != 2 {
		t.Errorf("subscriptions = %v, want 2", got)
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 3 {
		t.Errorf("registry has %d metric families (err %v), want 3", len(mfs), err)
	}
}

func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t)
	cc := cl.Client(t)

	t.Run("Conformance", func(t *testing.T) {
		brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
			return New(cc, Options{Channels: names("lh")}), publisher(t, cc, "lh")
		})
	})

	t.Run("Keyslot", func(t *testing.T) {
		ctx := testCtx(t)
		keys := []string{"123456789", "foo", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}", "{", "}{x}"}
		for i := range 50 {
			keys = append(keys, channel("lh", fmt.Sprint("slot", i)))
		}
		for _, ch := range keys {
			want, err := cc.ClusterKeySlot(ctx, ch).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := slot(ch); int64(got) != want {
				t.Errorf("slot(%q) = %d, CLUSTER KEYSLOT says %d", ch, got, want)
			}
		}
	})

	t.Run("AllMasters", func(t *testing.T) {
		b := New(cc, Options{Channels: names("all")})
		h := start(t, b)
		publish := publisher(t, cc, "all")
		byNode := idsByNode(t, cc, "all", 5)
		if len(byNode) != 3 {
			t.Fatalf("ids spread over %d masters, want 3", len(byNode))
		}
		var ids []string
		for _, some := range byNode {
			ids = append(ids, some...)
		}
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() { subscribe(t, b, id) })
		}
		wg.Wait()
		for _, id := range ids {
			publish(id, 2)
		}
		for _, id := range ids {
			h.waitVersion(t, id, 2)
		}
	})

	t.Run("SlotMoves", func(t *testing.T) {
		b := New(cc, Options{Channels: names("move"), Logger: testLogger(t)})
		h := start(t, b)
		publish := publisher(t, cc, "move")
		subscribe(t, b, "m1", "m2")
		publish("m1", 1)
		h.waitVersion(t, "m1", 1)

		moveSlot(t, cl, slot(channel("move", "m1")))

		h.waitResyncs(t, 1)
		publish("m1", 2)
		publish("m2", 2)
		h.waitVersion(t, "m1", 2)
		h.waitVersion(t, "m2", 2)
	})

	t.Run("NodeRestart", func(t *testing.T) { // last: it disturbs the cluster
		b := New(cc, Options{Channels: names("restart"), Logger: testLogger(t)})
		h := start(t, b)
		publish := publisher(t, cc, "restart")
		byNode := idsByNode(t, cc, "restart", 1)
		var victim *redistest.Server
		var victimID string
		for _, s := range cl.Servers {
			if ids := byNode[s.Addr]; len(ids) > 0 {
				victim, victimID = s, ids[0]
				break
			}
		}
		var ids []string
		for _, some := range byNode {
			ids = append(ids, some...)
		}
		subscribe(t, b, ids...)
		publish(victimID, 1)
		h.waitVersion(t, victimID, 1)

		victim.Kill()
		victim.Restart()
		h.waitResyncs(t, 1)
		for _, id := range ids {
			publish(id, 3)
		}
		for _, id := range ids {
			h.waitVersion(t, id, 3)
		}
	})
}

// idsByNode returns, for every master, n ids whose channels it owns.
func idsByNode(t *testing.T, cc *redis.ClusterClient, prefix string, n int) map[string][]string {
	t.Helper()
	ctx := testCtx(t)
	byNode := make(map[string][]string)
	for i := 0; i < 1000; i++ {
		id := fmt.Sprint("spread", i)
		node, err := cc.MasterForKey(ctx, channel(prefix, id))
		if err != nil {
			t.Fatal(err)
		}
		addr := node.Options().Addr
		if len(byNode[addr]) < n {
			byNode[addr] = append(byNode[addr], id)
		}
		if len(byNode) == 3 && len(byNode[addr]) == n {
			full := true
			for _, ids := range byNode {
				full = full && len(ids) == n
			}
			if full {
				break
			}
		}
	}
	return byNode
}

// moveSlot moves an empty hash slot to another master, as redis-cli
// --cluster reshard would (IMPORTING, MIGRATING, then NODE everywhere).
func moveSlot(t *testing.T, cl *redistest.Cluster, slot uint16) {
	t.Helper()
	ctx := testCtx(t)
	clients := make(map[string]*redis.Client)
	ids := make(map[string]string)
	for _, s := range cl.Servers {
		c := s.Client()
		clients[s.Addr] = c
		id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		ids[s.Addr] = id
	}
	var from, to string
	for _, s := range cl.Servers {
		n, err := clients[s.Addr].Do(ctx, "CLUSTER", "COUNTKEYSINSLOT", slot).Int()
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("slot %d has %d keys", slot, n)
		}
		shards, err := clients[s.Addr].ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, sh := range shards {
			if int(slot) >= sh.Start && int(slot) <= sh.End {
				from = sh.Nodes[0].Addr
			}
		}
		break
	}
	for _, s := range cl.Servers {
		if s.Addr != from {
			to = s.Addr
			break
		}
	}
	do := func(addr string, args ...any) {
		t.Helper()
		if err := clients[addr].Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%s %v: %v", addr, args, err)
		}
	}
	do(to, "CLUSTER", "SETSLOT", slot, "IMPORTING", ids[from])
	do(from, "CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])
	do(to, "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
	do(from, "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
	for _, s := range cl.Servers {
		if s.Addr != from && s.Addr != to {
			do(s.Addr, "CLUSTER", "SETSLOT", slot, "NODE", ids[to])
		}
	}
	t.Logf("moved slot %d from %s to %s", slot, from, to)
}
