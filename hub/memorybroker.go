package hub

import (
	"context"
	"errors"
	"sync"

	"github.com/loginhub/loginhub/authcore"
)

// MemoryBroker is the Broker of a single process. Its zero value is ready to
// use. Publishing never blocks. While Run runs and nothing waits in its
// queue, a nudge for a subscribed id goes to the handler at once, in the
// publisher's goroutine (the handler must not block, so this is safe, and
// it spares a hand-off on the way to the desktop); otherwise it is queued
// (the highest version per id, in first-publish order) until Run hands it
// over. No lock is held while the handler runs. Nudges for ids nobody
// subscribed to are dropped. Safe for concurrent use.
//
// The memory store announces every transition with the record it wrote
// (PublishTicket), which the handler gets as Changed: the hub delivers it
// without reading the ticket again. Publish carries only a version (Nudge).
type MemoryBroker struct {
	mu      sync.Mutex
	subs    map[string]struct{}
	pending map[string]memoryNudge // id → the highest version not yet delivered
	order   []string               // ids of pending in first-publish order
	signal  chan struct{}          // capacity 1: "pending is not empty"
	running bool
	handler BrokerHandler // Run's, while it runs
}

// memoryNudge is an undelivered nudge: a version, and the record written at
// that version when the publisher had it.
type memoryNudge struct {
	version uint64
	rec     *authcore.TicketRecord
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns an empty MemoryBroker.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

func (b *MemoryBroker) signalLocked() chan struct{} {
	if b.signal == nil {
		b.signal = make(chan struct{}, 1)
	}
	return b.signal
}

// Publish announces that ticket id reached version.
func (b *MemoryBroker) Publish(id string, version uint64) {
	b.publish(id, version, nil)
}

// PublishTicket announces the record a transition wrote; the broker keeps
// it, so the caller must not change it afterwards. Its method value is the
// authcore.Notifier of the memory store.
func (b *MemoryBroker) PublishTicket(rec authcore.TicketRecord) {
	b.publish(rec.ID, rec.Version, &rec)
}

// publish delivers at once when it can, with rec (if any) read in place;
// only a nudge left pending keeps a copy of it, so the usual path does not
// move the record to the heap.
func (b *MemoryBroker) publish(id string, version uint64, rec *authcore.TicketRecord) {
	b.mu.Lock()
	if _, ok := b.subs[id]; !ok {
		b.mu.Unlock()
		return
	}
	if h := b.handler; h != nil && len(b.pending) == 0 {
		b.mu.Unlock()
		if rec != nil {
			h.Changed(*rec)
		} else {
			h.Nudge(id, version)
		}
		return
	}
	n := memoryNudge{version: version}
	if rec != nil {
		kept := *rec
		n.rec = &kept
	}
	if old, ok := b.pending[id]; ok {
		// The higher version wins; at the same version, the one that
		// carries the record.
		if n.version > old.version || (n.version == old.version && old.rec == nil) {
			b.pending[id] = n
		}
	} else {
		if b.pending == nil {
			b.pending = make(map[string]memoryNudge)
		}
		b.pending[id] = n
		b.order = append(b.order, id)
	}
	sig := b.signalLocked()
	b.mu.Unlock()
	select {
	case sig <- struct{}{}:
	default:
	}
}

// Subscribe makes later Publish calls for id reach the handler.
func (b *MemoryBroker) Subscribe(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = make(map[string]struct{})
	}
	b.subs[id] = struct{}{}
	return nil
}

// Unsubscribe drops id's undelivered nudges and stops delivering new ones.
func (b *MemoryBroker) Unsubscribe(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.subs, id)
	delete(b.pending, id)
	return nil
}

// Run hands nudges to h until ctx is done, then returns nil. Only one Run
// may be active at a time. A memory broker never reconnects, so it never
// calls h.Resync.
func (b *MemoryBroker) Run(ctx context.Context, h BrokerHandler) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return errors.New("hub: MemoryBroker.Run is already running")
	}
	b.running = true
	sig := b.signalLocked()
	b.mu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.handler = nil
		b.mu.Unlock()
	})
	defer func() {
		stop()
		b.mu.Lock()
		b.running, b.handler = false, nil
		b.mu.Unlock()
	}()

	for {
		b.mu.Lock()
		order, pending := b.order, b.pending
		b.order, b.pending = nil, nil
		if len(order) == 0 && ctx.Err() == nil {
			b.handler = h // the queue is empty: publishers deliver themselves
		}
		b.mu.Unlock()
		for _, id := range order {
			if ctx.Err() != nil {
				return nil
			}
			if n, ok := pending[id]; ok {
				delete(pending, id) // an id may be listed twice after re-subscribing
				deliver(h, id, n)
			}
		}
		if len(order) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sig:
		}
	}
}

func deliver(h BrokerHandler, id string, n memoryNudge) {
	if n.rec != nil {
		h.Changed(*n.rec)
	} else {
		h.Nudge(id, n.version)
	}
}

// Ping reports nil: memory is always reachable.
func (b *MemoryBroker) Ping(ctx context.Context) error { return nil }
