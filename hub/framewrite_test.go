package hub

import (
	"bytes"
	"errors"
	"io"
	"net"
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
	for _, c := range cases {
		data := bytes.Repeat([]byte{'x'}, c.n)
		got := appendFrame(nil, opText, data)
		if !bytes.Equal(got[:len(c.header)], c.header) || !bytes.Equal(got[len(c.header):], data) {
			t.Errorf("%d-byte frame: header % x, want % x", c.n, got[:min(len(got), 10)], c.header)
		}
	}
	if got := appendFrame(nil, opPing, nil); !bytes.Equal(got, []byte{0x89, 0}) {
		t.Errorf("ping frame % x", got)
	}
}

// TestWSConnStopsAfterClose checks that nothing is written after a close
// frame, nor after a failed write.
func TestWSConnStopsAfterClose(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	c := newWSConn(server)
	got := make(chan []byte, 1)
	go func() {
		b := make([]byte, 64)
		n, _ := client.Read(b)
		got <- b[:n]
	}()
	deadline := time.Now().Add(5 * time.Second)
	if err := c.WriteControl(opClose, []byte{0x03, 0xE9}, deadline); err != nil {
		t.Fatal(err)
	}
	if b := <-got; !bytes.Equal(b, []byte{0x88, 2, 0x03, 0xE9}) {
		t.Fatalf("close frame % x", b)
	}
	if err := c.writeFrames(appendFrame(nil, opText, []byte("late")), deadline, false); !errors.Is(err, errCloseSent) {
		t.Errorf("a write after the close frame: %v, want errCloseSent", err)
	}

	broken := newWSConn(server)
	server.Close()
	if err := broken.writeFrames(appendFrame(nil, opText, []byte("a")), deadline, false); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
	if err := broken.WriteControl(opPing, nil, deadline); err == nil {
		t.Error("a write after a failed one succeeded")
	}
	if err := broken.WriteControl(opPing, make([]byte, 126), deadline); err == nil {
		t.Error("a 126-byte control frame was accepted")
	}
}

// TestTryWriteKeepsOrder fills a real socket with tryWrite until it would
// block, then checks that what it kept pending goes out before the next
// frame, and that nothing is lost or reordered.
func TestTryWriteKeepsOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	c := newWSConn(server)
	if c.raw == nil {
		t.Fatal("a TCP connection has no raw conn")
	}

	// A write deadline left by a blocking write, once it has passed, must
	// not fail a later tryWrite. The blocking write's deadline is moved
	// into the past on the connection itself, as time would.
	var want []byte
	first := appendFrame(nil, opText, []byte("first"))
	if err := c.writeFrames(first, time.Now().Add(time.Minute), false); err != nil {
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
		f := appendFrame(nil, opText, chunk)
		sent, err := c.tryWrite(f)
		if err != nil {
			t.Fatalf("tryWrite %d: %v", i, err)
		}
		want = append(want, f...)
		blocked = !sent
	}
	if !blocked {
		t.Fatal("the socket took 60 MB without blocking")
	}
	// A frame after the blocked one queues behind it, unwritten.
	next := appendFrame(nil, opText, []byte("next"))
	if sent, err := c.tryWrite(next); sent || err != nil {
		t.Fatalf("tryWrite behind a pending frame: sent %v, err %v", sent, err)
	}
	want = append(want, next...)

	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	if err := c.writeFrames(nil, time.Now().Add(10*time.Second), false); err != nil { // only what is pending
		t.Fatal(err)
	}
	server.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("the client read %d bytes, want %d in order", len(b), len(want))
	}
}
