package bench

import (
	"net"
	"testing"
	"time"
)

// TestStampedConn checks that a stamped socket reads what was sent and
// reports a kernel receive time between the send and the read.
func TestStampedConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := stamped(c, c.(*net.TCPConn))
	defer s.Close()
	if _, ok := s.(*stampedConn); !ok {
		t.Fatal("SO_TIMESTAMPNS refused on a TCP socket")
	}
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if !receivedAt(s).IsZero() {
		t.Error("a receive time before anything was read")
	}
	// The kernel turns receive timestamps on for the whole system when a
	// first socket asks, from a work queue: bytes may come without one for
	// a few milliseconds (97 round trips were seen). Send until one comes,
	// for 5 s at most.
	giveUp := time.Now().Add(5 * time.Second)
	s.SetReadDeadline(giveUp.Add(5 * time.Second))
	b := make([]byte, 16)
	var sent, read, at time.Time
	for at.IsZero() && time.Now().Before(giveUp) {
		sent = time.Now()
		if _, err := peer.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		n, err := s.Read(b)
		read = time.Now()
		if err != nil || string(b[:n]) != "hello" {
			t.Fatalf("read %q, %v", b[:n], err)
		}
		at = receivedAt(s)
	}
	// The kernel's clock is the wall clock; allow for its granularity.
	if at.Before(sent.Add(-time.Millisecond)) || at.After(read.Add(time.Millisecond)) {
		t.Errorf("received at %v, want between the send (%v) and the read (%v)", at, sent, read)
	}
	peer.Close()
	if _, err := s.Read(b); err == nil {
		t.Error("no error at the peer's close")
	}
}
