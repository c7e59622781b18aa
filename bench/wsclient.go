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
	"time"

	"github.com/loginhub/loginhub/hub/ws"
)

// The tool's own WebSocket client, the desktop's end: the handshake here,
// the frames from ws (the hub's own codec, in the client role). gorilla's
// Dialer built an http.Request, parsed the answer with net/http and kept a
// Conn with its own buffers per desktop; with the tool sharing two cores
// with the hub, every microsecond it spends per login is taken from the
// hub.

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

const (
	wsMaxMessage = 1 << 20
	wsGUID       = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

// wsConn is one client WebSocket: its frames are ws.Conn's (the client
// role); this adds the read buffer. One goroutine reads; writes may come
// from others (a close while the reader answers a ping).
type wsConn struct {
	sock  *ws.Conn // over the TCP connection, or TLS on top of it for wss://
	under net.Conn // the TCP connection, for receivedAt

	buf  []byte // read buffer: unread bytes are buf[r:w]
	r, w int
}

// dialWS opens a WebSocket to t from dial's connection, with origin as its
// Origin header, by ctx's deadline.
func dialWS(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), t wsTarget, origin string) (*wsConn, error) {
	under, err := dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	c := &wsConn{under: under, buf: make([]byte, 512)}
	nc, err := c.handshake(ctx, t, origin)
	if err != nil {
		under.Close()
		return nil, err
	}
	c.sock = ws.NewConn(nc, ws.Client, wsMaxMessage)
	return c, nil
}

// handshake opens the WebSocket over c.under and returns the connection
// its frames go over. What came after the answer's head stays buffered.
func (c *wsConn) handshake(ctx context.Context, t wsTarget, origin string) (net.Conn, error) {
	under := c.under // TLS's deadlines are its connection's
	if d, ok := ctx.Deadline(); ok {
		_ = under.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = under.SetDeadline(time.Now()) })
	defer stop()
	nc := under
	if t.tls != nil {
		tc := tls.Client(under, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, err
		}
		nc = tc
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
	if _, err := nc.Write(req); err != nil {
		return nil, err
	}

	end := -1
	for end < 0 {
		if c.w == len(c.buf) {
			return nil, &wsHandshakeError{0} // a head over 512 bytes: not the hub's
		}
		n, err := nc.Read(c.buf[c.w:])
		c.w += n
		if i := bytes.Index(c.buf[:c.w], []byte("\r\n\r\n")); i >= 0 {
			end = i + 4
		} else if err != nil {
			return nil, err
		}
	}
	head := c.buf[:end]
	c.r = end
	status, ok := responseStatus(head)
	if !ok || status != 101 {
		return nil, &wsHandshakeError{status}
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if v, ok := headerValue(head, "Sec-WebSocket-Accept"); !ok || v != base64.StdEncoding.EncodeToString(sum[:]) {
		return nil, &wsHandshakeError{0}
	}
	if !stop() {
		return nil, ctx.Err() // ctx ended: the deadline was cut short
	}
	return nc, under.SetDeadline(time.Time{})
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

// writeText sends one text message.
func (c *wsConn) writeText(data []byte, deadline time.Time) error {
	return c.sock.Write(c.sock.AppendFrame(nil, ws.OpText, data), deadline)
}

// closeNow sends a normal close frame (at most briefly waiting) and closes
// the connection without waiting for the answer.
func (c *wsConn) closeNow() {
	_ = c.sock.WriteClose(1000, "", time.Now().Add(100*time.Millisecond))
	c.sock.Close()
}

// Close closes the connection.
func (c *wsConn) Close() error { return c.sock.Close() }

// SetReadDeadline sets the deadline of the following reads.
func (c *wsConn) SetReadDeadline(t time.Time) error { return c.sock.NetConn().SetReadDeadline(t) }

// readMessage returns the next data message, valid until the next call.
// It answers pings, skips pongs, and returns a *ws.CloseError for the
// hub's close frame (Peer, answered with one) or a frame that breaks the
// protocol.
func (c *wsConn) readMessage() ([]byte, error) {
	for {
		n, op, data, err := c.sock.ReadFrame(c.buf[c.r:c.w])
		c.r += n
		if err != nil {
			if ce, ok := errors.AsType[*ws.CloseError](err); ok && ce.Peer {
				_ = c.sock.WriteClose(ce.Code, "", time.Now().Add(100*time.Millisecond))
			}
			return nil, err
		}
		if n == 0 {
			if err := c.fill(); err != nil {
				return nil, err
			}
			continue
		}
		switch op {
		case ws.OpPing:
			if err := c.sock.Write(c.sock.AppendFrame(nil, ws.OpPong, data), time.Now().Add(5*time.Second)); err != nil {
				return nil, err
			}
		case ws.OpText, ws.OpBinary:
			return data, nil
		}
	}
}

// fill reads more of the frame at buf[r:w], making room for it first: the
// read part is dropped, and a buffer full of one frame is doubled
// (ReadFrame refuses a frame over wsMaxMessage before it is all there).
func (c *wsConn) fill() error {
	if c.w == len(c.buf) {
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		} else {
			nb := make([]byte, 2*len(c.buf))
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
	}
	n, err := c.sock.NetConn().Read(c.buf[c.w:])
	c.w += n
	if n > 0 {
		return nil
	}
	return err
}
