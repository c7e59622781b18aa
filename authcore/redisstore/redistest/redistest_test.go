package redistest

import (
	"context"
	"testing"
)

func TestServerRestartKeepsPersistentData(t *testing.T) {
	s := Start(t, Options{Persistent: true})
	ctx := context.Background()
	c := s.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("ping succeeded against a killed server")
	}
	s.Restart()
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("after restart: %q, %v; want v (AOF with fsync always)", got, err)
	}
}

func TestCluster(t *testing.T) {
	c := StartCluster(t)
	ctx := context.Background()
	cl := c.Client(t)
	for _, k := range []string{"a", "b", "c", "d", "e"} { // spread over slots and nodes
		if err := cl.Set(ctx, k, k, 0).Err(); err != nil {
			t.Fatalf("set %s: %v", k, err)
		}
	}
	if got, err := cl.Get(ctx, "e").Result(); err != nil || got != "e" {
		t.Fatalf("get: %q %v", got, err)
	}
}
