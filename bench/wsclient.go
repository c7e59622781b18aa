package bench

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The tool's own WebSocket client (RFC 6455), the desktop's end: the
// handshake, masked frames out, and the hub's frames in. gorilla's Dialer
// built an http.Request, parsed the answer with net/http and kept a Conn
// with its own buffers per desktop; with the tool sharing two cores with
// the hub, every microsecond it spends per login is taken from the hub.

// wsTarget is how one node's WebSocket endpoint is dialled.
type wsTarget struct {
	addr   string      // host:port
	tls    *tls.Config // nil for ws://
	prefix string      // the handshake request up to its per-socket headers
}

func newWSTarget(rawURL string) (wsTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return wsTarget{}, err
	}
	t := wsTarget{}
	t.addr, t.tls = dialAddr(u)
	t.prefix = fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nUser-Agent: loginhub-bench\r\n", u.RequestURI(), u.Host)
	return t, nil
}

// wsHandshakeError is a handshake the hub answered with another status
// than 101 (0: not an HTTP answer, or a wrong Sec-WebSocket-Accept).
type wsHandshakeError struct{ status int }

func (e *wsHandshakeError) Error() string {
	return fmt.Sprintf("websocket: handshake answered %d", e.status)
}

// wsCloseError is a close frame from the hub.
type wsCloseError struct{ code int }

func (e *wsCloseError) Error() string { return fmt.Sprintf("websocket: closed %d", e.code) }

const (
	wsOpText  = 1
	wsOpClose = 8
	wsOpPing  = 9
	wsOpPong  = 10

	wsMaxMessage = 1 << 20
	wsGUID       = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// wsConn is one client WebSocket. One goroutine reads; writes may come
// from others (a close while the reader answers a ping).
type wsConn struct {
	nc    net.Conn // TLS on top of under for wss://
	under net.Conn // the TCP connection, for receivedAt

	buf  []byte // read buffer: unread bytes are buf[r:w]
	r, w int

	wmu sync.Mutex
}

// dialWS opens a WebSocket to t from dial's connection, with origin as its
// Origin header, by ctx's deadline.
func dialWS(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), t wsTarget, origin string) (*wsConn, error) {
	under, err := dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &wsConn{nc: under, under: under, buf: make([]byte, 512)}
	if err := c.handshake(ctx, t, origin); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

func (c *wsConn) handshake(ctx context.Context, t wsTarget, origin string) error {
	under := c.under // TLS's deadlines are its connection's
	if d, ok := ctx.Deadline(); ok {
		_ = under.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = under.SetDeadline(time.Now()) })
	defer stop()
	if t.tls != nil {
		tc := tls.Client(c.nc, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		c.nc = tc
	}
	var nonce [16]byte
	binary.LittleEndian.PutUint64(nonce[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(nonce[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(nonce[:])
	req := make([]byte, 0, len(t.prefix)+len(origin)+64)
	req = append(req, t.prefix...)
	req = append(req, "Origin: "...)
	req = append(req, origin...)
	req = append(req, "\r\nSec-WebSocket-Key: "...)
	req = append(req, key...)
	req = append(req, "\r\n\r\n"...)
	if _, err := c.nc.Write(req); err != nil {
		return err
	}

	// The answer's head, then whatever came after it stays buffered.
	end := -1
	for end < 0 {
		if c.w == len(c.buf) {
			return &wsHandshakeError{0} // a head over 512 bytes: not the hub's
		}
		n, err := c.nc.Read(c.buf[c.w:])
		c.w += n
		if i := bytes.Index(c.buf[:c.w], []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
		} else if err != nil {
			return err
		}
	}
	head := c.buf[:end]
	c.r = end
	status, ok := responseStatus(head)
	if !ok || status != 101 {
		return &wsHandshakeError{status}
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if v, ok := headerValue(head, "Sec-WebSocket-Accept"); !ok || v != base64.StdEncoding.EncodeToString(sum[:]) {
		return &wsHandshakeError{0}
	}
	if !stop() {
		return ctx.Err() // ctx ended: the deadline was cut short
	}
	return under.SetDeadline(time.Time{})
}

// responseStatus is the status code of an HTTP/1.1 answer's head.
func responseStatus(head []byte) (int, bool) {
	line, _, _ := bytes.Cut(head, []byte("\r\n"))
	_, rest, ok := bytes.Cut(line, []byte(" "))
	if !ok || len(rest) < 3 {
		return 0, false
	}
	code, err := strconv.Atoi(string(rest[:3]))
	return code, err == nil
}

// headerValue is the value of header name (any case) in an answer's head.
func headerValue(head []byte, name string) (string, bool) {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return string(bytes.TrimSpace(v)), true
		}
	}
	return "", false
}

// writeFrame writes one final, masked frame by deadline.
func (c *wsConn) writeFrame(op byte, payload []byte, deadline time.Time) error {
	n := len(payload)
	b := make([]byte, 0, 14+n)
	b = append(b, 0x80|op)
	switch {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	for i, x := range payload {
		b = append(b, x^key[i&3])
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write(b)
	return err
}

// writeText sends one text message.
func (c *wsConn) writeText(data []byte, deadline time.Time) error {
	return c.writeFrame(wsOpText, data, deadline)
}

// closeNow sends a normal close frame (at most briefly waiting) and closes
// the connection without waiting for the answer.
func (c *wsConn) closeNow() {
	_ = c.writeFrame(wsOpClose, []byte{0x03, 0xE8}, time.Now().Add(100*time.Millisecond))
	c.nc.Close()
}

// Close closes the connection.
func (c *wsConn) Close() error { return c.nc.Close() }

// SetReadDeadline sets the deadline of the following reads.
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.nc.SetReadDeadline(t) }

// readMessage returns the next data message, valid until the next call.
// It answers pings, skips pongs, and returns a *wsCloseError for a close
// frame (answered with one).
func (c *wsConn) readMessage() ([]byte, error) {
	var msg []byte // a fragmented message being put together
	for {
		if err := c.fill(2); err != nil {
			return nil, err
		}
		h0, h1 := c.buf[c.r], c.buf[c.r+1]
		if h1&0x80 != 0 {
			return nil, errors.New("websocket: masked frame from the server")
		}
		hlen, n := 2, int64(h1&0x7F)
		switch n {
		case 126:
			hlen = 4
		case 127:
			hlen = 10
		}
		if err := c.fill(hlen); err != nil {
			return nil, err
		}
		switch hlen {
		case 4:
			n = int64(binary.BigEndian.Uint16(c.buf[c.r+2:]))
		case 10:
			n = int64(binary.BigEndian.Uint64(c.buf[c.r+2:]))
		}
		if n < 0 || n+int64(len(msg)) > wsMaxMessage {
			return nil, errors.New("websocket: message too big")
		}
		if err := c.fill(hlen + int(n)); err != nil {
			return nil, err
		}
		payload := c.buf[c.r+hlen : c.r+hlen+int(n)]
		c.r += hlen + int(n)
		fin, op := h0&0x80 != 0, h0&0x0F
		switch op {
		case wsOpPing:
			if err := c.writeFrame(wsOpPong, payload, time.Now().Add(5*time.Second)); err != nil {
				return nil, err
			}
			continue
		case wsOpPong:
			continue
		case wsOpClose:
			code := 1005
			if len(payload) >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			_ = c.writeFrame(wsOpClose, payload[:min(len(payload), 2)], time.Now().Add(100*time.Millisecond))
			return nil, &wsCloseError{code}
		}
		if !fin || msg != nil {
			msg = append(msg, payload...)
			if !fin {
				continue
			}
			return msg, nil
		}
		return payload, nil
	}
}

// fill reads until at least n bytes are buffered.
func (c *wsConn) fill(n int) error {
	for c.w-c.r < n {
		if len(c.buf)-c.r < n {
			if n > len(c.buf) {
				nb := make([]byte, max(n, 2*len(c.buf)))
				c.w = copy(nb, c.buf[c.r:c.w])
				c.buf = nb
			} else {
				c.w = copy(c.buf, c.buf[c.r:c.w])
			}
			c.r = 0
		}
		m, err := c.nc.Read(c.buf[c.w:])
		c.w += m
		if err != nil && c.w-c.r < n {
			return err
		}
	}
	return nil
}
