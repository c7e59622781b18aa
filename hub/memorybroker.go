package hub

import (
	"context"
	"errors"
	"sync"

	"github.com/loginhub/loginhub/authcore"
)

// MemoryBroker is the Broker of a single process. Its zero value is ready to
// use. Publishing never blocks: nudges for subscribed ids are kept (the
// highest version per id, in first-publish order) until Run hands them to
// its handler, without holding any lock while it does. Nudges for ids
// nobody subscribed to are dropped. Safe for concurrent use.
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
	b.publish(id, memoryNudge{version: version})
}

// PublishTicket announces the record a transition wrote; the broker keeps
// it, so the caller must not change it afterwards. Its method value is the
// authcore.Notifier of the memory store.
func (b *MemoryBroker) PublishTicket(rec authcore.TicketRecord) {
	b.publish(rec.ID, memoryNudge{version: rec.Version, rec: &rec})
}

func (b *MemoryBroker) publish(id string, n memoryNudge) {
	b.mu.Lock()
	if _, ok := b.subs[id]; !ok {
		b.mu.Unlock()
		return
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
	defer func() {
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
	}()

	for {
		b.mu.Lock()
		order, pending := b.order, b.pending
		b.order, b.pending = nil, nil
		b.mu.Unlock()
		for _, id := range order {
			if ctx.Err() != nil {
				return nil
			}
			if n, ok := pending[id]; ok {
				delete(pending, id) // an id may be listed twice after re-subscribing
				if n.rec != nil {
					h.Changed(*n.rec)
				} else {
					h.Nudge(id, n.version)
				}
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

// Ping reports nil: memory is always reachable.
func (b *MemoryBroker) Ping(ctx context.Context) error { return nil }
