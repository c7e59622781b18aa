package hub

import (
	"bytes"
	"errors"
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
	if err := c.WriteMessage(opText, []byte("late")); !errors.Is(err, errCloseSent) {
		t.Errorf("a write after the close frame: %v, want errCloseSent", err)
	}

	broken := newWSConn(server)
	server.Close()
	if err := broken.WriteMessage(opText, []byte("a")); err == nil {
		t.Fatal("write on a closed connection succeeded")
	}
	if err := broken.WriteControl(opPing, nil, deadline); err == nil {
		t.Error("a write after a failed one succeeded")
	}
	if err := broken.WriteControl(opPing, make([]byte, 126), deadline); err == nil {
		t.Error("a 126-byte control frame was accepted")
	}
}
