package hub

import (
	"errors"
	"net"
	"sync"
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
type wsConn struct {
	nc net.Conn

	mu            sync.Mutex
	writeDeadline time.Time // of data frames (SetWriteDeadline)
	err           error     // sticky: why no more frames can be written
}

var errCloseSent = errors.New("websocket: close frame sent")

// frameWriteBufs lends buffers to build a frame in: one write per frame,
// and an idle socket holds none.
var frameWriteBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func newWSConn(nc net.Conn) *wsConn { return &wsConn{nc: nc} }

// UnderlyingConn returns the TCP connection.
func (c *wsConn) UnderlyingConn() net.Conn { return c.nc }

// RemoteAddr is the peer's address.
func (c *wsConn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// Close closes the TCP connection.
func (c *wsConn) Close() error { return c.nc.Close() }

// SetReadDeadline sets the TCP connection's read deadline.
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline of the following data frames.
func (c *wsConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return nil
}

// WriteMessage writes one unfragmented data frame (opText or opBinary).
func (c *wsConn) WriteMessage(op int, data []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeFrameLocked(op, data, c.writeDeadline)
}

// WriteControl writes one control frame (opClose, opPing, opPong) by
// deadline; its payload is at most 125 bytes.
func (c *wsConn) WriteControl(op int, data []byte, deadline time.Time) error {
	if len(data) > maxControlPayload {
		return errors.New("websocket: control frame payload over 125 bytes")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeFrameLocked(op, data, deadline)
}

func (c *wsConn) writeFrameLocked(op int, data []byte, deadline time.Time) error {
	if c.err != nil {
		return c.err
	}
	bp := frameWriteBufs.Get().(*[]byte)
	b := appendFrame((*bp)[:0], op, data)
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(b)
	if cap(b) <= 4<<10 { // keep the pool small
		*bp = b[:0]
		frameWriteBufs.Put(bp)
	}
	switch {
	case err != nil:
		c.err = err
	case op == opClose:
		c.err = errCloseSent
	}
	return err
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
