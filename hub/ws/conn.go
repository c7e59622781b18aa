package ws

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Role is the end of the connection a Conn is.
type Role uint8

const (
	// Server reads masked frames and writes unmasked ones.
	Server Role = iota
	// Client writes masked frames and reads unmasked ones.
	Client
)

// Conn is one end of a WebSocket after the handshake: its connection, the
// state of the message being read, and its writes.
//
// Writes are serialized. A failed write, or a written close frame, ends
// writing for good: a frame cut short leaves the stream unusable, and RFC
// 6455 allows nothing after a close frame.
//
// TryWrite never waits: what the socket does not take at once stays
// pending, and the next Write or WriteClose sends it first. That lets a
// frame be written by whichever goroutine made it, while a slow peer only
// ever blocks a goroutine that may wait.
type Conn struct {
	nc  net.Conn
	raw syscall.RawConn // nil: not a socket TryWrite can use

	frag  *fragment // the fragmented message being read; the reader's
	limit int32     // largest message read
	role  Role

	deadlineSet bool // a Write left a write deadline on nc; guarded by mu
	mu          sync.Mutex
	pending     []byte // accepted by TryWrite, not written yet
	err         error  // sticky: why no more frames can be written
}

var errCloseSent = errors.New("websocket: close frame sent")

// NewConn returns the Conn of nc, a connection whose handshake is done,
// for the role's end. It reads messages of at most limit bytes.
func NewConn(nc net.Conn, role Role, limit int) *Conn {
	c := &Conn{nc: nc, role: role, limit: int32(min(limit, 1<<30))}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
		}
	}
	return c
}

// NetConn returns the connection under c: read it for ReadFrame, set its
// read deadlines.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Close closes the connection at once, without a close frame.
func (c *Conn) Close() error { return c.nc.Close() }

// AppendFrame appends a final frame with opcode op and payload data to b,
// as c's role writes it: masked with a random key by a Client, unmasked
// by a Server. A control frame's payload is at most 125 bytes.
func (c *Conn) AppendFrame(b []byte, op byte, data []byte) []byte {
	var m byte
	if c.role == Client {
		m = 0x80
	}
	b = append(b, 0x80|op)
	switch n := len(data); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xFFFF:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if m == 0 {
		return append(b, data...)
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, data...)
	mask(b[start:], key)
	return b
}

// WriteClose writes a close frame with code and reason (a short reason; no
// payload for code 1005) by deadline, after anything pending. Nothing can
// be written after it.
func (c *Conn) WriteClose(code int, reason string, deadline time.Time) error {
	var payload [maxControlPayload]byte
	p := payload[:0]
	if code != closeNoStatus {
		p = binary.BigEndian.AppendUint16(p, uint16(code))
		p = append(p, reason[:min(len(reason), maxControlPayload-2)]...)
	}
	var frame [MaxHeader + maxControlPayload]byte
	return c.write(c.AppendFrame(frame[:0], OpClose, p), deadline, true)
}

// Write writes what TryWrite left pending, then b (whole frames from
// AppendFrame, no close frame; may be empty), by deadline.
func (c *Conn) Write(b []byte, deadline time.Time) error {
	return c.write(b, deadline, false)
}

func (c *Conn) write(b []byte, deadline time.Time, closing bool) error {
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

// TryWrite writes b (whole frames; no close frame, unless the caller
// closes the connection right after) as far as the socket takes it
// without waiting. It reports whether all of it went out; if
// not, the rest is pending and the caller must see that a Write (which
// sends it first, even with nothing new) or WriteClose follows. On a
// connection that is not a plain socket nothing goes out at once.
func (c *Conn) TryWrite(b []byte) (sent bool, err error) {
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
func (c *Conn) writeNow(b []byte) (int, error) {
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
