//go:build linux

package ws

import (
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

func newPoller(t *testing.T) *Poller {
	t.Helper()
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// waitIDs is one Wait, bounded: the test fails if it does not return in
// time.
func waitIDs(t *testing.T, p *Poller) []uint64 {
	t.Helper()
	type result struct {
		ids []uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		ids, err := p.Wait(nil)
		done <- result{ids, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Wait: %v", r.err)
		}
		return r.ids
	case <-time.After(10 * time.Second):
		p.Wake()
		<-done
		t.Fatal("Wait did not return")
		return nil
	}
}

// noEvent checks that nothing is reported: a Wake lets Wait return with
// whatever is ready, which must be nothing.
func noEvent(t *testing.T, p *Poller, when string) {
	t.Helper()
	p.Wake()
	if ids := waitIDs(t, p); len(ids) != 0 {
		t.Errorf("%s: Wait reported %v, want nothing", when, ids)
	}
}

func write(t *testing.T, nc net.Conn, s string) {
	t.Helper()
	if _, err := nc.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// TestPollerOneShot: a readable socket is reported once with its token,
// and again only after Rearm.
func TestPollerOneShot(t *testing.T) {
	p := newPoller(t)
	client, server := tcpPair(t)
	if err := p.Add(server, 7); err != nil {
		t.Fatal(err)
	}
	noEvent(t, p, "nothing sent")
	write(t, client, "a")
	if ids := waitIDs(t, p); !slices.Equal(ids, []uint64{7}) {
		t.Fatalf("Wait = %v, want [7]", ids)
	}
	write(t, client, "b")
	noEvent(t, p, "more sent before Rearm")
	if err := p.Rearm(server, 8); err != nil {
		t.Fatal(err)
	}
	// Still unread: reported at once, with the new token.
	if ids := waitIDs(t, p); !slices.Equal(ids, []uint64{8}) {
		t.Fatalf("Wait after Rearm = %v, want [8]", ids)
	}
}

// TestPollerRemove: a removed socket is not reported; removing twice, or
// a closed socket, is a no-op.
func TestPollerRemove(t *testing.T) {
	p := newPoller(t)
	client, server := tcpPair(t)
	if err := p.Add(server, 1); err != nil {
		t.Fatal(err)
	}
	p.Remove(server)
	write(t, client, "a")
	noEvent(t, p, "after Remove")
	p.Remove(server)
	server.Close()
	p.Remove(server)
	if err := p.Rearm(server, 1); err == nil {
		t.Error("Rearm of a closed socket succeeded")
	}
}

// TestPollerPeerClose: a socket whose peer closed is reported (its reader
// then reads EOF).
func TestPollerPeerClose(t *testing.T) {
	p := newPoller(t)
	client, server := tcpPair(t)
	if err := p.Add(server, 3); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if ids := waitIDs(t, p); !slices.Equal(ids, []uint64{3}) {
		t.Fatalf("Wait = %v, want [3]", ids)
	}
}

func TestPollable(t *testing.T) {
	p := newPoller(t)
	_, server := tcpPair(t)
	if !Pollable(server) {
		t.Error("a TCP connection is not Pollable")
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if Pollable(a) {
		t.Error("a net.Pipe is Pollable")
	}
	if err := p.Add(a, 1); err == nil {
		t.Error("Add of a net.Pipe succeeded")
	}
	if err := p.Add(server, 0); err == nil {
		t.Error("Add with token 0 succeeded")
	}
}

// TestPollerClose: Close ends a Wait in progress; then Wait and Add report
// net.ErrClosed, and Close may be called again.
func TestPollerClose(t *testing.T) {
	p, err := NewPoller()
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		var err error
		for err == nil {
			_, err = p.Wait(nil)
		}
		waiting <- err
	}()
	p.Close()
	select {
	case err := <-waiting:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Wait after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end Wait")
	}
	_, server := tcpPair(t)
	if err := p.Add(server, 1); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Add after Close: %v, want net.ErrClosed", err)
	}
	p.Close()
	p.Wake()
}
