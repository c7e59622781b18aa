package hub

import (
	"context"
	"testing"

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
