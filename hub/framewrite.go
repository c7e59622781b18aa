package hub

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// wsConn is a socket after the upgrade: its TCP connection and a frame
// writer. gorilla/websocket does the handshake and its Conn is dropped right
// after: the hub reads frames itself (frames.go), and writing the few frames
// it sends (small text events, pings, pongs, close) takes a header and one
// write. Keeping gorilla's Conn cost every waiting socket ~0.8 KiB of heap
// (the Conn, its handlers, its read buffer) for the GC to walk.
//
// Writes are serialized. A failed write, or a written close frame, ends
// writing for good: a frame cut short leaves the stream unusable, and RFC
// 6455 allows nothing after a close frame.
//
// tryWrite never waits: what the socket does not take at once stays
// pending, and the next blocking write (writeFrames, WriteControl)
// sends it first. That lets a change be written by the goroutine that made
// it, while a slow client still only ever blocks a writer goroutine.
type wsConn struct {
	nc  net.Conn
	raw syscall.RawConn // nil: not a socket tryWrite can use

	mu          sync.Mutex
	pending     []byte // accepted by tryWrite, not written yet
	deadlineSet bool   // a blocking write left a write deadline on nc
	err         error  // sticky: why no more frames can be written
}

var errCloseSent = errors.New("websocket: close frame sent")

func newWSConn(nc net.Conn) *wsConn {
	c := &wsConn{nc: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c
}

// UnderlyingConn returns the TCP connection.
func (c *wsConn) UnderlyingConn() net.Conn { return c.nc }

// RemoteAddr is the peer's address.
func (c *wsConn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Close closes the TCP connection.
func (c *wsConn) Close() error { return c.nc.Close() }

// SetReadDeadline sets the TCP connection's read deadline.
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// WriteControl writes one control frame (opClose, opPing, opPong) by
// deadline, after anything pending; its payload is at most 125 bytes.
func (c *wsConn) WriteControl(op int, data []byte, deadline time.Time) error {
	if len(data) > maxControlPayload {
		return errors.New("websocket: control frame payload over 125 bytes")
	}
	return c.writeFrames(appendFrame(nil, op, data), deadline, op == opClose)
}

// writeFrames writes what is pending, then b (whole frames), by deadline;
// closing says b ends with a close frame.
func (c *wsConn) writeFrames(b []byte, deadline time.Time, closing bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	if len(c.pending) > 0 {
		b = append(c.pending, b...)
		c.pending = nil
	}
	if len(b) == 0 {
		return nil
	}
	_ = c.nc.SetWriteDeadline(deadline)
	c.deadlineSet = true
	_, err := c.nc.Write(b)
	switch {
	case err != nil:
		c.err = err
	case closing:
		c.err = errCloseSent
	}
	return err
}

// tryWrite writes b (whole frames, no close frame) as far as the socket
// takes it without waiting. It reports whether all of it went out; if not,
// the rest is pending and the caller must see that a blocking write
// (writeFrames, which sends it first, even with nothing new) follows.
func (c *wsConn) tryWrite(b []byte) (sent bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false, c.err
	}
	if len(c.pending) > 0 || c.raw == nil {
		c.pending = append(c.pending, b...)
		return false, nil
	}
	if c.deadlineSet {
		// A deadline that has passed would fail this write at once.
		_ = c.nc.SetWriteDeadline(time.Time{})
		c.deadlineSet = false
	}
	n, err := c.writeNow(b)
	if err != nil {
		c.err = err
		return false, err
	}
	if n < len(b) {
		c.pending = append([]byte(nil), b[n:]...)
		return false, nil
	}
	return true, nil
}

// writeNow makes one non-blocking write(2) of b: how much the socket took.
func (c *wsConn) writeNow(b []byte) (int, error) {
	var n int
	var werr error
	err := c.raw.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), b)
			if werr != syscall.EINTR {
				return true // done, whether or not the socket took it all
			}
		}
	})
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN:
		return 0, nil
	case werr != nil:
		return 0, os.NewSyscallError("write", werr)
	}
	return n, nil
}

// appendFrame appends a final, unmasked server frame (RFC 6455 section
// 5.2) with opcode op and payload data to b.
func appendFrame(b []byte, op int, data []byte) []byte {
	b = append(b, 0x80|byte(op))
	switch n := len(data); {
	case n <= 125:
		b = append(b, byte(n))
	case n <= 0xFFFF:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, data...)
}
