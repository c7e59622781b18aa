package ws

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestAppendFrame(t *testing.T) {
	cases := []struct {
		n      int
		header []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	}
	server := NewConn(nil, Server, readLimit)
	client := NewConn(nil, Client, 1<<20)
	for _, c := range cases {
		data := bytes.Repeat([]byte{'x'}, c.n)
		got := server.AppendFrame(nil, OpText, data)
		if !bytes.Equal(got[:len(c.header)], c.header) || !bytes.Equal(got[len(c.header):], data) {
			t.Errorf("%d-byte frame: header % x, want % x", c.n, got[:min(len(got), 10)], c.header)
		}

		// A client's frame: the same with the mask bit, a key, and the
		// payload masked with it.
		got = client.AppendFrame(nil, OpText, data)
		want := bytes.Clone(c.header)
		want[1] |= 0x80
		if !bytes.Equal(got[:len(want)], want) || len(got) != len(want)+4+c.n {
			t.Fatalf("%d-byte client frame: header % x (%d bytes), want % x and %d bytes", c.n, got[:min(len(got), 10)], len(got), want, len(want)+4+c.n)
		}
		key := [4]byte(got[len(want) : len(want)+4])
		p := got[len(want)+4:]
		mask(p, key)
		if !bytes.Equal(p, data) {
			t.Errorf("%d-byte client frame: the payload does not unmask to the data", c.n)
		}
	}
	if got := server.AppendFrame(nil, OpPing, nil); !bytes.Equal(got, []byte{0x89, 0}) {
		t.Errorf("ping frame % x", got)
	}
}

// TestConnStopsAfterClose checks that nothing is written after a close
// frame, nor after a failed write, and that a close frame stays within the
// 125 bytes of a control frame.
func TestConnStopsAfterClose(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := NewConn(server, Server, readLimit)
	got := make(chan []byte, 1)
	read := func() {
		b := make([]byte, 256)
		n, _ := client.Read(b)
		got <- b[:n]
	}
	go read()
	deadline := time.Now().Add(5 * time.Second)
	if err := c.WriteClose(1001, "", deadline); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, []byte{0x88, 2, 0x03, 0xE9}) {
		t.Fatalf("close frame % x", b)
	}
	if err := c.Write(c.AppendFrame(nil, OpText, []byte("late")), deadline); !errors.Is(err, errCloseSent) {
		t.Errorf("a write after the close frame: %v, want errCloseSent", err)
	}
	if sent, err := c.TryWrite(c.AppendFrame(nil, OpText, []byte("late"))); sent || !errors.Is(err, errCloseSent) {
		t.Errorf("a TryWrite after the close frame: sent %v, err %v; want errCloseSent", sent, err)
	}

	// A long reason is cut to fit a control frame; code 1005 sends none.
	for _, tc := range []struct {
		code   int
		reason string
		want   []byte
	}{
		{1000, strings.Repeat("r", 200), append([]byte{0x88, 125, 0x03, 0xE8}, strings.Repeat("r", 123)...)},
		{1005, "ignored", []byte{0x88, 0}},
	} {
		go read()
		if err := NewConn(server, Server, readLimit).WriteClose(tc.code, tc.reason, deadline); err != nil {
			t.Fatal(err)
		}
		if b := <-got; !bytes.Equal(b, tc.want) {
			t.Errorf("close %d with a %d-byte reason: % x, want % x", tc.code, len(tc.reason), b, tc.want)
		}
	}

	broken := NewConn(server, Server, readLimit)
	server.Close()
	if err := broken.Write(broken.AppendFrame(nil, OpText, []byte("a")), deadline); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
	if err := broken.Write(broken.AppendFrame(nil, OpPing, nil), deadline); err == nil {
		t.Error("a write after a failed one succeeded")
	}
	if err := broken.WriteClose(1000, "", deadline); err == nil {
		t.Error("a close frame after a failed write succeeded")
	}
}

// tcpPair is both ends of a real TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// TestTryWriteKeepsOrder fills a real socket with TryWrite until it would
// block, then checks that what it kept pending goes out before the next
// frame, and that nothing is lost or reordered.
func TestTryWriteKeepsOrder(t *testing.T) {
	client, server := tcpPair(t)
	c := NewConn(server, Server, readLimit)
	if c.raw == nil {
		t.Fatal("a TCP connection has no raw conn")
	}

	// A write deadline left by a blocking write, once it has passed, must
	// not fail a later TryWrite. The blocking write's deadline is moved
	// into the past on the connection itself, as time would.
	var want []byte
	first := c.AppendFrame(nil, OpText, []byte("first"))
	if err := c.Write(first, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	want = append(want, first...)
	if err := server.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}

	chunk := bytes.Repeat([]byte{'x'}, 60<<10)
	blocked := false
	for i := 0; i < 1000 && !blocked; i++ {
		chunk[0] = byte(i)
		f := c.AppendFrame(nil, OpText, chunk)
		sent, err := c.TryWrite(f)
		if err != nil {
			t.Fatalf("TryWrite %d: %v", i, err)
		}
		want = append(want, f...)
		blocked = !sent
	}
	if !blocked {
		t.Fatal("the socket took 60 MB without blocking")
	}
	// A frame after the blocked one queues behind it, unwritten.
	next := c.AppendFrame(nil, OpText, []byte("next"))
	if sent, err := c.TryWrite(next); sent || err != nil {
		t.Fatalf("TryWrite behind a pending frame: sent %v, err %v", sent, err)
	}
	want = append(want, next...)

	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	if err := c.Write(nil, time.Now().Add(10*time.Second)); err != nil { // only what is pending
		t.Fatal(err)
	}
	server.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the client read %d bytes, want %d in order", len(b), len(want))
	}
}

// TestTryWriteWithoutASocket: over a connection that is not a plain socket
// (here a pipe), TryWrite sends nothing at once and the next Write sends it.
func TestTryWriteWithoutASocket(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := NewConn(server, Server, readLimit)
	f := c.AppendFrame(nil, OpText, []byte("held"))
	if sent, err := c.TryWrite(f); sent || err != nil {
		t.Fatalf("TryWrite on a pipe: sent %v, err %v; want pending", sent, err)
	}
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := io.ReadAtLeast(client, b, len(f))
		got <- b[:n]
	}()
	if err := c.Write(nil, time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, f) {
		t.Errorf("read % x, want % x", b, f)
	}
}
