//go:build linux

package hub

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/loginhub/loginhub/authcore"
	"github.com/loginhub/loginhub/hub/ws"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestIdleSocketsHaveNoGoroutine: 2 000 desktops waiting on a watch cost
// the hub no goroutine each.
func TestIdleSocketsHaveNoGoroutine(t *testing.T) {
	const n = 2000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*n+256 {
		t.Skipf("needs %d file descriptors (both ends of every socket); the limit is %d (%v)", 2*n+256, lim.Cur, err)
	}
	e := newEnv(t)
	id := func(i int) string { return fmt.Sprintf("idle%04d", i) }
	for i := range n {
		e.tickets.add(id(i))
	}
	base := runtime.NumGoroutine()

	clients := make([]*client, n)
	for i := range clients {
		clients[i] = e.dial()
		clients[i].watch(id(i), 0)
	}
	for i, c := range clients {
		c.expectState(id(i), 1, authcore.StatePending)
	}
	// The handlers and writers that served the watches end by themselves.
	deadline := time.Now().Add(waitFor)
	for runtime.NumGoroutine() >= base+20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines with %d idle sockets, want fewer than %d (baseline %d + 20)",
				runtime.NumGoroutine(), n, base+20, base)
		}
		runtime.Gosched()
	}
	if got := e.hub.m.sockets; gaugeValue(t, got) != n {
		t.Errorf("open sockets = %v, want %d", gaugeValue(t, got), n)
	}

	// They are still served: changes reach them, and their messages are read.
	for _, i := range []int{0, n / 2, n - 1} {
		e.tickets.advance(t, id(i), authcore.StateScanned, false)
		clients[i].expectState(id(i), 2, authcore.StateScanned)
		clients[i].barrier()
	}
}

// TestReusedDescriptorGetsItsOwnMessages: the kernel gives a new socket the
// descriptor number of one just closed; the new one must be polled as
// itself.
func TestReusedDescriptorGetsItsOwnMessages(t *testing.T) {
	logs := make(chan slog.Record, 100)
	var mu sync.Mutex
	var warnings []string
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(teeTap{logTap{logs}, func(r slog.Record) {
			if r.Level >= slog.LevelWarn {
				mu.Lock()
				warnings = append(warnings, r.Message)
				mu.Unlock()
			}
		}})
	})
	old := e.dial()
	e.tickets.add("old")
	old.watch("old", 0)
	old.expectState("old", 1, authcore.StatePending)
	oldFD, _ := onlySocket(t, e.hub)

	for attempt := 0; ; attempt++ {
		old.ws.Close()
		waitLogFrom(t, logs, "hub: socket closed", old)

		id := fmt.Sprintf("new%d", attempt)
		e.tickets.add(id)
		c := e.dial()
		c.watch(id, 0)
		c.expectState(id, 1, authcore.StatePending)
		fd, sc := onlySocket(t, e.hub)
		if fd != oldFD {
			if attempt == 10 {
				t.Fatalf("no socket reused a closed descriptor in %d attempts", attempt+1)
			}
			old, oldFD = c, fd
			continue
		}
		t.Logf("descriptor %d reused after %d attempt(s)", fd, attempt+1)
		if !sc.polled {
			t.Fatal("the new socket is not polled")
		}
		// Its messages are read, and it gets its own ticket's changes, not
		// the closed socket's.
		e.tickets.advance(t, "old", authcore.StateScanned, false)
		e.tickets.advance(t, id, authcore.StateScanned, false)
		c.expectState(id, 2, authcore.StateScanned)
		c.send(map[string]any{"op": "unwatch", "id": id})
		c.barrier()
		break
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) > 0 {
		t.Errorf("warnings: %q", warnings)
	}
}

func TestShutdownClosesThePoller(t *testing.T) {
	e := newEnv(t)
	e.tickets.add("t1")
	c := e.dial()
	c.watch("t1", 0)
	c.expectState("t1", 1, authcore.StatePending)
	done := make(chan error, 1)
	go func() { done <- e.hub.Shutdown(t.Context()) }()
	c.expectClose(websocket.CloseGoingAway) // and answers it
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("Shutdown did not return")
	}
	if _, err := e.hub.poll.Wait(nil); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the poller's Wait after Shutdown: %v, want net.ErrClosed", err)
	}
}

// teeTap is a logTap that also hands every record to f.
type teeTap struct {
	logTap
	f func(slog.Record)
}

func (l teeTap) Handle(ctx context.Context, r slog.Record) error {
	l.f(r)
	return l.logTap.Handle(ctx, r)
}

func gaugeValue(t *testing.T, g prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

// onlySocket returns the hub's one socket and its descriptor.
func onlySocket(t *testing.T, h *Hub) (int, *conn) {
	t.Helper()
	conns := h.conns.values(nil)
	if len(conns) != 1 {
		t.Fatalf("hub has %d sockets, want 1", len(conns))
	}
	for _, c := range conns {
		sc, ok := c.sock.NetConn().(syscall.Conn)
		if !ok || !ws.Pollable(c.sock.NetConn()) {
			t.Fatal("not a pollable socket")
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		fd := -1
		if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
			t.Fatal(err)
		}
		return fd, c
	}
	panic("unreachable")
}
