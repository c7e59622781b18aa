package hub

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loginhub/loginhub/authcore"
)

// Tests of nudges that carry the ticket (BrokerHandler.Changed), as the
// Redis broker delivers them, and of nudges of unknown version.

// record returns a copy of ticket id as stored.
func (f *fakeTickets) record(id string) authcore.TicketRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := f.recs[id].rec
	rec.Trail = slices.Clone(rec.Trail)
	return rec
}

// handler is what the broker's Run was given.
func (e *env) handler() BrokerHandler {
	e.broker.mu.Lock()
	defer e.broker.mu.Unlock()
	return e.broker.handler
}

// moveQuietly advances ticket id without a version nudge and returns the
// new record, for the test to deliver.
func (e *env) moveQuietly(t *testing.T, id string, to authcore.State) authcore.TicketRecord {
	t.Helper()
	e.tickets.advance(t, id, to, true)
	return e.tickets.record(id)
}

// watching returns an env whose client watches ticket t1, seen at v1.
func watching(t *testing.T, opts ...func(*Config)) (*env, *client) {
	t.Helper()
	e := newEnv(t, opts...)
	e.tickets.add("t1")
	c := e.dial()
	c.watch("t1", 0)
	c.expectState("t1", 1, authcore.StatePending)
	// The watch that subscribes reads the ticket once more (a change
	// between its authorizing read and the subscription would be lost):
	// once the watch is handled, forget that read.
	c.barrier()
	for len(e.tickets.viewed) > 0 {
		<-e.tickets.viewed
	}
	return e, c
}

// noView fails if the hub re-read a ticket: a re-read happens before the
// delivery it leads to, so once the client has the event it would show.
func (e *env) noView(t *testing.T) {
	t.Helper()
	select {
	case id := <-e.tickets.viewed:
		t.Errorf("ticket %s was re-read; the nudge carried it", id)
	default:
	}
}

func TestChangedIsDeliveredWithoutReading(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e, c := watching(t, mode)

		e.handler().Changed(e.moveQuietly(t, "t1", authcore.StateScanned))
		if ev := c.expectState("t1", 2, authcore.StateScanned); ev.Scanner == nil || ev.Scanner.Nickname != "nick-t1" {
			t.Errorf("scanner = %+v, want nick-t1", ev.Scanner)
		}
		e.noView(t)
		if got := counter(t, e.hub.m.nudges); got != 1 {
			t.Errorf("nudges counted = %v, want 1", got)
		}
	})
}

// TestChangedOutOfOrder: tickets delivered late or twice never make a
// version go back, nor send one twice; one that skips versions sends each.
func TestChangedOutOfOrder(t *testing.T) {
	e, c := watching(t)

	v2 := e.moveQuietly(t, "t1", authcore.StateScanned)
	v3 := e.moveQuietly(t, "t1", authcore.StateConfirmed)
	e.handler().Changed(v3)
	c.expectState("t1", 2, authcore.StateScanned)
	c.expectState("t1", 3, authcore.StateConfirmed)
	e.handler().Changed(v2)
	e.handler().Changed(v3)
	e.handler().Nudge("t1", 2)
	e.handler().Changed(e.moveQuietly(t, "t1", authcore.StateRedeemed))
	c.expectState("t1", 4, authcore.StateRedeemed) // the very next event
	e.noView(t)
}

// TestChangedSeenAtTheHubsClock: a ticket delivered after its expiry (by
// this node's clock) reads as expired, one version later, as a re-read
// would make it.
func TestChangedSeenAtTheHubsClock(t *testing.T) {
	e, c := watching(t)

	scanned := e.moveQuietly(t, "t1", authcore.StateScanned)
	e.tickets.setNow(t0.Add(3 * time.Minute))
	e.handler().Changed(scanned)
	c.expectState("t1", 2, authcore.StateScanned)
	c.expectState("t1", 3, authcore.StateExpired)
	e.noView(t)
}

func TestChangedForAnUnwatchedTicketIsIgnored(t *testing.T) {
	e := newEnv(t)
	e.tickets.add("t1")
	e.handler().Changed(e.moveQuietly(t, "t1", authcore.StateScanned))
	if n := e.ticketsHeld(); n != 0 {
		t.Errorf("hub holds %d tickets, want 0", n)
	}
	e.noView(t)
}

// TestNudgeOfUnknownVersionRereads: a message the broker could not read
// (version 0) makes the hub re-read, even at a version it has seen.
func TestNudgeOfUnknownVersionRereads(t *testing.T) {
	e, c := watching(t)

	e.tickets.advance(t, "t1", authcore.StateScanned, true)
	e.handler().Nudge("t1", 0)
	c.expectState("t1", 2, authcore.StateScanned)
	e.waitViewed(t)
	e.handler().Nudge("t1", 0) // nothing new: re-read, nothing sent
	e.waitViewed(t)
	e.tickets.advance(t, "t1", authcore.StateConfirmed, false)
	c.expectState("t1", 3, authcore.StateConfirmed) // the very next event
}

// TestChangerNeverWaitsForASlowSocket: the goroutine that delivers a change
// writes the events itself, but only as far as the socket takes them at
// once. A client that stops reading costs it nothing; that client's writer
// goroutine waits for it and drops it, and other clients are unaffected.
func TestChangerNeverWaitsForASlowSocket(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		const writeWait = 2 * time.Second
		logs := make(chan slog.Record, 100)
		e := newEnvWith(t, func(h *Hub) { h.writeWait = writeWait }, mode,
			func(c *Config) { c.Logger = slog.New(logTap{logs}) })
		e.tickets.add("big")
		e.tickets.add("small")
		slow := e.dialWith(smallBufferDialer())
		slow.watch("big", 0)
		slow.expectState("big", 1, authcore.StatePending) // then it reads no more
		fast := e.dial()
		fast.watch("small", 0)
		fast.expectState("small", 1, authcore.StatePending)

		// 200 changes with a 32 KiB scanner profile each: 6.4 MB, far more
		// than the two sockets' buffers hold.
		start := time.Now()
		for range 200 {
			rec := e.moveQuietly(t, "big", authcore.StateScanned)
			rec.Scanner.Nickname = strings.Repeat("n", 32<<10)
			e.handler().Changed(rec)
		}
		if took := time.Since(start); took >= writeWait/2 {
			t.Errorf("delivering 200 changes to a socket that does not read took %v: the deliverer waited for it", took)
		}
		waitLog(t, logs, "hub: dropping slow consumer")

		e.handler().Changed(e.moveQuietly(t, "small", authcore.StateScanned))
		fast.expectState("small", 2, authcore.StateScanned)
	})
}
