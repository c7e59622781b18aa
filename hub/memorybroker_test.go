package hub_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub"
	"github.com/loginhub/loginhub/hub/brokertest"
)

func TestMemoryBroker(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
		b := hub.NewMemoryBroker()
		return b, b.Publish
	})
}

func TestMemoryBrokerZeroValue(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
		var b hub.MemoryBroker
		return &b, b.Publish
	})
}

// TestMemoryBrokerTickets runs the conformance suite with the memory
// store's announcements, which carry the record.
func TestMemoryBrokerTickets(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (hub.Broker, func(string, uint64)) {
		b := hub.NewMemoryBroker()
		return b, func(id string, v uint64) { b.PublishTicket(authcore.TicketRecord{ID: id, Version: v}) }
	})
}

// handlerLog records what a broker hands over, in order.
type handlerLog struct {
	mu   sync.Mutex
	got  []string
	more chan struct{} // signalled on every call
}

func (h *handlerLog) add(s string) {
	h.mu.Lock()
	h.got = append(h.got, s)
	h.mu.Unlock()
	select {
	case h.more <- struct{}{}:
	default:
	}
}

func (h *handlerLog) Nudge(id string, v uint64) { h.add(fmt.Sprintf("nudge %s v%d", id, v)) }
func (h *handlerLog) Changed(rec authcore.TicketRecord) {
	h.add(fmt.Sprintf("changed %s v%d %s", rec.ID, rec.Version, rec.State))
}
func (h *handlerLog) Resync() { h.add("resync") }

// TestMemoryBrokerPrefersRecords checks that a pending record is not
// replaced by a bare version nudge of the same or a lower version (the hub
// would read the ticket again for nothing), and that a higher version wins
// whatever it carries.
func TestMemoryBrokerPrefersRecords(t *testing.T) {
	b := hub.NewMemoryBroker()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, id := range []string{"a", "b"} {
		if err := b.Subscribe(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// Queued before Run starts, so they are merged.
	b.PublishTicket(authcore.TicketRecord{ID: "a", Version: 2, State: authcore.StateScanned})
	b.Publish("a", 2)
	b.Publish("a", 1)
	b.Publish("b", 2)
	b.PublishTicket(authcore.TicketRecord{ID: "b", Version: 2, State: authcore.StateScanned})
	b.PublishTicket(authcore.TicketRecord{ID: "b", Version: 3, State: authcore.StateConfirmed})
	b.Publish("b", 4)

	h := &handlerLog{more: make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, h) }()
	want := []string{"changed a v2 scanned", "nudge b v4"}
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		n := len(h.got)
		h.mu.Unlock()
		if n >= len(want) {
			break
		}
		select {
		case <-h.more:
		case <-deadline:
			t.Fatalf("delivered %q, want %q", h.got, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(h.got, want) {
		t.Errorf("delivered %q, want %q", h.got, want)
	}
}

// countingHandler counts deliveries without allocating.
type countingHandler struct{ changed atomic.Int64 }

func (h *countingHandler) Nudge(string, uint64)          {}
func (h *countingHandler) Changed(authcore.TicketRecord) { h.changed.Add(1) }
func (h *countingHandler) Resync()                       {}

// TestMemoryBrokerDeliversWithoutAllocating checks the usual path of every
// transition on one node: with nothing queued, PublishTicket hands the
// record to the handler in place, without copying it to the heap.
func TestMemoryBrokerDeliversWithoutAllocating(t *testing.T) {
	b := hub.NewMemoryBroker()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.Subscribe(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	h := &countingHandler{}
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, h) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	rec := authcore.TicketRecord{ID: "a", Version: 2, State: authcore.StateScanned,
		Trail: []authcore.State{authcore.StatePending, authcore.StateScanned}}
	// Until Run has found its queue empty, publishes are queued (and
	// copied); from then on the caller delivers. Measure until a whole
	// round took the direct path, a bounded number of times.
	var allocs float64
	for range 50 {
		before := h.changed.Load()
		allocs = testing.AllocsPerRun(100, func() { b.PublishTicket(rec) })
		if allocs == 0 && h.changed.Load() > before {
			return
		}
		runtime.Gosched()
	}
	t.Errorf("PublishTicket allocates %v times per delivery (or never delivers: %d)", allocs, h.changed.Load())
}
