package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// fragment is a fragmented message being received: its opcode and the
// payload of the frames so far.
type fragment struct {
	op   byte
	data []byte
}

// header is a parsed frame header.
type header struct {
	fin    bool
	op     byte
	masked bool
	length int // payload length
	key    [4]byte
}

// parseHeader parses the frame header at the start of b and returns its
// size, or 0 when b does not hold all of it yet. It reports violations as
// soon as the bytes that show them are there: reserved bits (no extension
// is negotiated), unknown opcodes, frames masked the wrong way for c's
// role, fragmented or long control frames, and data frames over c's limit.
func (c *Conn) parseHeader(b []byte) (h header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	if b0&0x70 != 0 {
		return h, 0, protocolError("reserved bits set")
	}
	h.fin = b0&0x80 != 0
	h.op = b0 & 0x0f
	switch h.op {
	case OpContinuation, OpText, OpBinary:
	case OpClose, OpPing, OpPong:
		if !h.fin {
			return h, 0, protocolError("fragmented control frame")
		}
		if b1&0x7f > maxControlPayload {
			return h, 0, protocolError("control frame too long")
		}
	default:
		return h, 0, protocolError("unknown opcode")
	}
	h.masked = b1&0x80 != 0
	switch {
	case !h.masked && c.role == Server:
		return h, 0, protocolError("client frames must be masked")
	case h.masked && c.role == Client:
		return h, 0, protocolError("server frames must not be masked")
	}
	limit := int(c.limit)
	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length = int(binary.BigEndian.Uint16(b[2:]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return h, 0, protocolError("invalid frame length")
		}
		if u > uint64(limit) {
			return h, 0, errTooBig
		}
		h.length = int(u)
		n = 10
	default:
		h.length = int(l)
	}
	if h.length > limit {
		return h, 0, errTooBig
	}
	if !h.masked {
		return h, n, nil
	}
	if len(b) < n+4 {
		return h, 0, nil
	}
	copy(h.key[:], b[n:n+4])
	return h, n + 4, nil
}

// ReadFrame decodes the frame at the start of b, bytes read from the
// connection, and returns how many bytes it took: 0 when b does not hold
// the whole frame yet (read more, append, and call again with the same
// start), or when its header already breaks the rules; a whole frame even
// when err says what is wrong with its payload. It unmasks a server's payload in place. What the frame means is
// in op and data, which stay valid until b is overwritten:
//
//   - OpText or OpBinary: a whole message in data (fragments put together;
//     text is valid UTF-8);
//   - OpPing: the caller answers with a pong carrying data;
//   - OpPong, or OpContinuation: nothing to do (a pong, or a fragment of a
//     message not finished yet).
//
// Control frames may come between the fragments of a message. Errors are
// *CloseError: a protocol violation (1002), a message over the Conn's
// limit (1009), text that is not UTF-8 (1007), or the peer's close frame
// (Peer). Nothing after a close frame may be read. Only the connection's
// one reader calls it.
func (c *Conn) ReadFrame(b []byte) (n int, op byte, data []byte, err error) {
	h, hl, err := c.parseHeader(b)
	if err != nil || hl == 0 {
		return 0, 0, nil, err
	}
	if h.op < OpClose {
		f := c.frag
		switch {
		case h.op == OpContinuation && f == nil:
			return 0, 0, nil, protocolError("continuation frame without a message")
		case h.op != OpContinuation && f != nil:
			return 0, 0, nil, protocolError("message inside a fragmented message")
		case f != nil && len(f.data)+h.length > int(c.limit):
			return 0, 0, nil, errTooBig
		}
	}
	n = hl + h.length
	if n > len(b) {
		return 0, 0, nil, nil
	}
	p := b[hl:n]
	if h.masked {
		mask(p, h.key)
	}
	switch h.op {
	case OpText, OpBinary:
		if !h.fin {
			c.frag = &fragment{op: h.op, data: append(make([]byte, 0, len(p)), p...)}
			return n, OpContinuation, nil, nil
		}
		return n, h.op, p, checkText(h.op, p)
	case OpContinuation:
		f := c.frag
		f.data = append(f.data, p...)
		if !h.fin {
			return n, OpContinuation, nil, nil
		}
		c.frag = nil
		return n, f.op, f.data, checkText(f.op, f.data)
	case OpClose:
		return n, OpClose, nil, peerClose(p)
	}
	return n, h.op, p, nil // ping or pong
}

func checkText(op byte, data []byte) error {
	if op == OpText && !utf8.Valid(data) {
		return errInvalidUTF8
	}
	return nil
}

// peerClose checks the payload of the peer's close frame (RFC 6455
// section 7.4) and returns the error that ends the connection: a
// *CloseError with Peer set, carrying the code to echo.
func peerClose(p []byte) error {
	switch {
	case len(p) == 0:
		return &CloseError{Code: closeNoStatus, Peer: true}
	case len(p) == 1:
		return protocolError("invalid close frame")
	}
	code := int(binary.BigEndian.Uint16(p))
	if !validCloseCode(code) {
		return protocolError("invalid close code")
	}
	if !utf8.Valid(p[2:]) {
		return errInvalidUTF8
	}
	return &CloseError{Code: code, Peer: true}
}

// validCloseCode reports whether a peer may send code in a close frame:
// the codes RFC 6455 and IANA define for it (1000-1003, 1007-1013), and
// those left to libraries and applications (3000-4999).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1013:
		return true
	}
	return code >= 3000 && code <= 4999
}

// mask masks or unmasks p with key.
func mask(p []byte, key [4]byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}
