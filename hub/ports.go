package hub

import (
	"context"
	"net/netip"

	"github.com/loginhub/loginhub/authcore"
)

// Tickets is what the hub needs from authcore (implemented by
// *authcore.Service). Its methods must be safe for concurrent use.
type Tickets interface {
	// AuthorizeWatch checks the watch secret and the IP binding and returns
	// the ticket's current view. Errors are *authcore.Error values
	// (KindNotFound, KindUnauthorized, KindForbidden, ...); their Message is
	// shown to the client, their cause is only logged.
	AuthorizeWatch(ctx context.Context, id, secret string, client netip.Addr) (authcore.View, error)
	// View re-reads a ticket (after a nudge without the ticket, a resync,
	// the passing of its expiry). A ticket past its expiry reads as
	// expired, one version later.
	View(ctx context.Context, id string) (authcore.View, error)
}

var _ Tickets = (*authcore.Service)(nil)

// Broker carries nudges between nodes: "ticket id reached version N", and
// where the medium carries it the ticket as the transition wrote it, which
// spares the hub a re-read. Nudges may be lost, duplicated or delivered out
// of order; the hub re-reads from Tickets whenever it has less than the
// ticket itself, and after a resync.
//
// Implementations: MemoryBroker (one process, versions only) and
// hub/redisbroker; every implementation must pass hub/brokertest. All
// methods are safe for concurrent use.
type Broker interface {
	// Subscribe returns once nudges for id will be delivered to the handler
	// (subscribe-before-read), even if Run has not connected yet.
	// Subscribing to an id twice is the same as subscribing once: the hub
	// counts its own watchers and calls Subscribe and Unsubscribe once per id.
	Subscribe(ctx context.Context, id string) error
	// Unsubscribe stops the delivery of nudges published for id after it
	// returns.
	Unsubscribe(ctx context.Context, id string) error
	// Run delivers nudges to h until ctx is done. After any reconnect it
	// calls h.Resync(). It must not hold locks while it calls h.
	Run(ctx context.Context, h BrokerHandler) error
	// Ping reports whether the broker is reachable (for /readyz).
	Ping(ctx context.Context) error
}

// BrokerHandler receives what a Broker delivers. Its methods must not block.
type BrokerHandler interface {
	// Nudge says that ticket id reached version (or later); 0 means a
	// change whose version is unknown (a message that could not be read):
	// re-read anyway.
	Nudge(id string, version uint64)
	// Changed says that a transition wrote rec (the whole record, at
	// rec.Version): it stands for a re-read of rec.ID at that version.
	Changed(rec authcore.TicketRecord)
	// Resync says that nudges may have been lost: re-read every watched
	// ticket.
	Resync()
}
