package hub

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
)

// subscribingBroker records every Subscribe.
type subscribingBroker struct {
	*fakeBroker
	subs chan string
}

func (b subscribingBroker) Subscribe(ctx context.Context, id string) error {
	b.subs <- id
	return b.fakeBroker.Subscribe(ctx, id)
}

// TestSubscribeOnlyAuthorized: a watch makes the hub subscribe to the
// broker only once its id and secret check out, so a client cannot make
// the hub subscribe to channels of its choosing.
func TestSubscribeOnlyAuthorized(t *testing.T) {
	subs := make(chan string, 16)
	e := newEnv(t, func(c *Config) { c.Broker = subscribingBroker{c.Broker.(*fakeBroker), subs} })
	e.tickets.add("t1")
	c := e.dial()
	c.send(map[string]any{"op": "watch", "id": "__keyspace@0__:*", "secret": "x"})
	c.expectError("__keyspace@0__:*", "not_found")
	c.send(map[string]any{"op": "watch", "id": "t1", "secret": "wrong"})
	c.expectError("t1", "unauthorized")
	if len(subs) > 0 {
		t.Errorf("a refused watch subscribed to %q", <-subs)
	}
	c.watch("t1", 0)
	c.expectState("t1", 1, authcore.StatePending)
	select {
	case id := <-subs:
		if id != "t1" {
			t.Errorf("subscribed to %q, want t1", id)
		}
	default:
		t.Error("an authorized watch did not subscribe")
	}
}

// TestWatchersPerTicket: at most 4 watches and waits at once per ticket;
// a fifth watch gets rate_limited and is not subscribed, a fifth wait
// fails with KindRateLimited; one leaving makes room.
func TestWatchersPerTicket(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode)
		e.tickets.add("t1")
		var cs []*client
		for range 4 {
			c := e.dial()
			c.watch("t1", 0)
			c.expectState("t1", 1, authcore.StatePending)
			cs = append(cs, c)
		}
		fifth := e.dial()
		fifth.watch("t1", 0)
		if ev := fifth.expectError("t1", "rate_limited"); ev.Message == "" {
			t.Error("rate_limited event without a message")
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := e.hub.Wait(ctx, "t1", 1); authcore.KindOf(err) != authcore.KindRateLimited {
			t.Errorf("fifth Wait error = %v, want rate_limited", err)
		}

		// The refused one got nothing: the next change reaches the four.
		e.tickets.advance(t, "t1", authcore.StateScanned, false)
		for _, c := range cs {
			c.expectState("t1", 2, authcore.StateScanned)
		}
		fifth.barrier()

		cs[0].send(map[string]any{"op": "unwatch", "id": "t1"})
		cs[0].barrier()
		fifth.watch("t1", 1)
		fifth.expectState("t1", 2, authcore.StateScanned)
	})
}

// TestIdleSocketClosed: a socket without a live watch for IdleTimeout is
// closed with 1008, by the hub's clock, counted from its opening or from
// the end of its last watch; watches that fail do not keep it open.
func TestIdleSocketClosed(t *testing.T) {
	forModes(t, func(t *testing.T, mode func(*Config)) {
		e := newEnv(t, mode, func(c *Config) { c.IdleTimeout = 100 * time.Millisecond })
		e.tickets.add("t1")
		idle, failing, watching := e.dial(), e.dial(), e.dial()
		idle.barrier()
		watching.watch("t1", 0)
		watching.expectState("t1", 1, authcore.StatePending)

		e.tickets.setNow(t0.Add(time.Second)) // the sweeper (real time) sees it within a second
		failing.send(map[string]any{"op": "watch", "id": "t1", "secret": "wrong"})
		failing.expectError("t1", "unauthorized")
		expectClosed(t, idle, websocket.ClosePolicyViolation)
		expectClosed(t, failing, websocket.ClosePolicyViolation)
		watching.barrier() // still open

		e.tickets.advance(t, "t1", authcore.StateCancelled, false) // the watch ends
		watching.expectState("t1", 2, authcore.StateCancelled)
		e.tickets.setNow(t0.Add(2 * time.Second))
		expectClosed(t, watching, websocket.ClosePolicyViolation)
	})
}

// expectClosed reads from c until the hub closes it, and checks the code.
func expectClosed(t *testing.T, c *client, code int) {
	t.Helper()
	for {
		ev, err := c.read()
		if err == nil {
			if ev.Ev == "state" || ev.Ev == "error" {
				continue
			}
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Fatalf("got %v, want the socket closed with %d", err, code)
		}
		return
	}
}
