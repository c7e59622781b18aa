// Package brokertest is the conformance suite every hub.Broker must pass
// (hub.MemoryBroker and hub/redisbroker).
//
// What it checks: a nudge published after Subscribe returns reaches the
// handler; nothing published after Unsubscribe returns does, nor anything for
// ids never subscribed; many ids at once; concurrent Subscribe, Unsubscribe
// and publish (run it under -race); Ping; Run returning when its context
// ends. Nudges may be coalesced (only the highest version delivered) or
// duplicated, and delivered as a version (Nudge) or as the ticket
// (Changed), but never invent a version that was not published (a Nudge
// with version 0, "unknown", counts as invented: publish only sends
// well-formed messages).
//
// The suite starts Run before it subscribes, but does not wait for Run to
// connect: Subscribe itself must return only once delivery is guaranteed.
// Ids are unique per test, so a broker on a shared server can be tested
// while other tests use it.
package brokertest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub"
)

// timeout bounds every wait for a delivery.
const timeout = 10 * time.Second

var idSeq atomic.Uint64

// Run runs the suite. newBroker returns a fresh broker and a function that
// publishes a nudge through the same medium as production publishers (for
// the memory broker its Publish or PublishTicket method; for Redis a
// PUBLISH from another connection of a ticket at that version). It is called
// once per subtest; clean up with t.Cleanup.
func Run(t *testing.T, newBroker func(t *testing.T) (b hub.Broker, publish func(id string, version uint64))) {
	t.Run("SubscribeThenPublishDelivers", func(t *testing.T) {
		b, publish := newBroker(t)
		rec := start(t, b)
		id := newID(t, "a")
		subscribe(t, b, id)
		publish(id, 1)
		rec.waitMax(t, id, 1)
		publish(id, 2)
		publish(id, 3)
		rec.waitMax(t, id, 3)
		rec.checkPublished(t, id, 1, 2, 3)
	})

	t.Run("UnsubscribeStopsDelivery", func(t *testing.T) {
		b, publish := newBroker(t)
		rec := start(t, b)
		id, barrier := newID(t, "gone"), newID(t, "barrier")
		subscribe(t, b, id)
		subscribe(t, b, barrier)
		publish(id, 1)
		rec.waitMax(t, id, 1)
		if err := b.Unsubscribe(ctx(t), id); err != nil {
			t.Fatalf("Unsubscribe: %v", err)
		}
		publish(id, 2)
		publish(barrier, 1)
		rec.waitMax(t, barrier, 1)
		if got := rec.maxOf(id); got != 1 {
			t.Errorf("after Unsubscribe: highest version delivered for %s = %d, want 1", id, got)
		}
	})

	t.Run("UnsubscribedIDsAreNotDelivered", func(t *testing.T) {
		b, publish := newBroker(t)
		rec := start(t, b)
		stranger, barrier := newID(t, "stranger"), newID(t, "barrier")
		subscribe(t, b, barrier)
		publish(stranger, 1)
		publish(barrier, 1)
		rec.waitMax(t, barrier, 1)
		if got := rec.maxOf(stranger); got != 0 {
			t.Errorf("never subscribed %s: got version %d delivered", stranger, got)
		}
	})

	t.Run("ResubscribeDeliversAgain", func(t *testing.T) {
		b, publish := newBroker(t)
		rec := start(t, b)
		id := newID(t, "again")
		subscribe(t, b, id)
		if err := b.Unsubscribe(ctx(t), id); err != nil {
			t.Fatalf("Unsubscribe: %v", err)
		}
		subscribe(t, b, id)
		publish(id, 7)
		rec.waitMax(t, id, 7)
	})

	t.Run("ManyIDs", func(t *testing.T) {
		b, publish := newBroker(t)
		rec := start(t, b)
		const n = 200
		ids := make([]string, n)
		for i := range ids {
			ids[i] = newID(t, fmt.Sprint("many", i))
			subscribe(t, b, ids[i])
		}
		for i, id := range ids {
			publish(id, uint64(i%5+1))
		}
		for i, id := range ids {
			rec.waitMax(t, id, uint64(i%5+1))
			rec.checkPublished(t, id, 1, 2, 3, 4, 5)
		}
	})

	t.Run("ConcurrentSubscribePublish", func(t *testing.T) {
		b, publish := newBroker(t)
		rec := start(t, b)
		const workers, perWorker, versions = 16, 10, 5
		c := ctx(t)
		noise := newID(t, "noise")
		stopNoise := make(chan struct{})
		var noiseWG sync.WaitGroup
		noiseWG.Go(func() { // publishes to ids nobody subscribes to, and churns subscriptions
			for i := 0; ; i++ {
				select {
				case <-stopNoise:
					return
				default:
				}
				publish(fmt.Sprint(noise, i%7), uint64(i))
				churn := fmt.Sprint(noise, "churn", i%3)
				if err := b.Subscribe(c, churn); err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				publish(churn, uint64(i))
				if err := b.Unsubscribe(c, churn); err != nil {
					t.Errorf("Unsubscribe: %v", err)
					return
				}
			}
		})
		var wg sync.WaitGroup
		ids := make([][]string, workers)
		for w := range workers {
			ids[w] = make([]string, perWorker)
			for i := range perWorker {
				ids[w][i] = newID(t, fmt.Sprint("c", w, "-", i))
			}
			wg.Go(func() {
				for _, id := range ids[w] {
					if err := b.Subscribe(c, id); err != nil {
						t.Errorf("Subscribe(%s): %v", id, err)
						return
					}
					for v := uint64(1); v <= versions; v++ {
						publish(id, v)
					}
				}
			})
		}
		wg.Wait()
		for w := range workers {
			for _, id := range ids[w] {
				rec.waitMax(t, id, versions)
				rec.checkPublished(t, id, 1, 2, 3, 4, 5)
			}
		}
		close(stopNoise)
		noiseWG.Wait()
		for i := range 7 {
			if got := rec.maxOf(fmt.Sprint(noise, i)); got != 0 {
				t.Errorf("never subscribed %s%d: got version %d delivered", noise, i, got)
			}
		}
	})

	t.Run("Ping", func(t *testing.T) {
		b, _ := newBroker(t)
		if err := b.Ping(ctx(t)); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})

	t.Run("RunReturnsWhenContextEnds", func(t *testing.T) {
		b, _ := newBroker(t)
		c, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.Run(c, &recorder{}) }()
		cancel()
		select {
		case err := <-done:
			if err != nil && err != context.Canceled {
				t.Errorf("Run after cancel = %v, want nil or context.Canceled", err)
			}
		case <-time.After(timeout):
			t.Fatal("Run did not return after its context ended")
		}
	})
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return c
}

func newID(t *testing.T, name string) string {
	base := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return fmt.Sprintf("brokertest-%s-%d-%d-%s", base, time.Now().UnixNano(), idSeq.Add(1), name)
}

func subscribe(t *testing.T, b hub.Broker, id string) {
	t.Helper()
	if err := b.Subscribe(ctx(t), id); err != nil {
		t.Fatalf("Subscribe(%s): %v", id, err)
	}
}

// start runs b.Run with a recorder until the test ends.
func start(t *testing.T, b hub.Broker) *recorder {
	t.Helper()
	rec := &recorder{}
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(c, rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(timeout):
			t.Error("Run did not return after its context ended")
		}
	})
	return rec
}

// recorder is a BrokerHandler that remembers what it got.
type recorder struct {
	mu      sync.Mutex
	got     map[string][]uint64
	resyncs int
	changed chan struct{} // capacity 1
}

func (r *recorder) Nudge(id string, version uint64) { r.record(id, version) }

func (r *recorder) Changed(rec authcore.TicketRecord) { r.record(rec.ID, rec.Version) }

func (r *recorder) record(id string, version uint64) {
	r.mu.Lock()
	if r.got == nil {
		r.got = make(map[string][]uint64)
	}
	r.got[id] = append(r.got[id], version)
	ch := r.changedLocked()
	r.mu.Unlock()
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (r *recorder) Resync() {
	r.mu.Lock()
	r.resyncs++
	r.mu.Unlock()
}

func (r *recorder) changedLocked() chan struct{} {
	if r.changed == nil {
		r.changed = make(chan struct{}, 1)
	}
	return r.changed
}

func (r *recorder) maxOf(id string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Max(append([]uint64{0}, r.got[id]...))
}

// waitMax waits until a nudge with version >= want was delivered for id.
func (r *recorder) waitMax(t *testing.T, id string, want uint64) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if r.maxOf(id) >= want {
			return
		}
		r.mu.Lock()
		ch := r.changedLocked()
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no nudge with version >= %d for %s within %v (got %v)", want, id, timeout, r.versions(id))
		}
	}
}

func (r *recorder) versions(id string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got[id])
}

// checkPublished fails if a version delivered for id is not among published.
func (r *recorder) checkPublished(t *testing.T, id string, published ...uint64) {
	t.Helper()
	for _, v := range r.versions(id) {
		if !slices.Contains(published, v) {
			t.Errorf("%s: delivered version %d, which was never published (published %v)", id, v, published)
		}
	}
}
