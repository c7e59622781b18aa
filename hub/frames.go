package hub

import (
	"encoding/binary"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// The hub reads client frames itself (RFC 6455 section 5) instead of with
// gorilla's reader, so that an idle socket needs neither a goroutine blocked
// in a read nor a read buffer: see readFrames. gorilla does the handshake
// only; framewrite.go writes the frames.

// Frame opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

const (
	maxFrameHeader    = 2 + 8 + 4 // first two bytes, 64-bit length, masking key
	maxControlPayload = 125
	// frameBufSize holds any frame the hub accepts: a data frame carries
	// at most readLimit bytes, a control frame at most 125.
	frameBufSize = maxFrameHeader + readLimit
)

// frameBufs lends read buffers to sockets while they read: an idle socket
// holds none.
var frameBufs = sync.Pool{New: func() any { return new([frameBufSize]byte) }}

// closeError ends a socket with a close frame: a protocol violation by the
// client, or the client's own close frame (peer), which is answered with its
// code.
type closeError struct {
	code   int
	reason string // sent with the code; short
	peer   bool
}

func (e *closeError) Error() string {
	if e.peer {
		return fmt.Sprintf("websocket: the client closed the connection (%d)", e.code)
	}
	return fmt.Sprintf("websocket: %s (close %d)", e.reason, e.code)
}

func protocolError(reason string) error {
	return &closeError{code: websocket.CloseProtocolError, reason: reason}
}

var (
	errTooBig      = &closeError{code: websocket.CloseMessageTooBig, reason: "message too big"}
	errInvalidUTF8 = &closeError{code: websocket.CloseInvalidFramePayloadData, reason: "invalid UTF-8"}
)

// fragment is a fragmented message being received: its opcode and the
// payload of the frames so far.
type fragment struct {
	op   byte
	data []byte
}

// frameHandler receives what readFrames finds.
type frameHandler interface {
	// onMessage gets a whole data message; data is only valid during the
	// call.
	onMessage(text bool, data []byte)
	// onPing gets a ping's payload, only valid during the call.
	onPing(payload []byte)
}

// frameHeader is a parsed frame header.
type frameHeader struct {
	fin    bool
	op     byte
	length int // payload length
	key    [4]byte
}

// parseHeader parses the frame header at the start of b and returns its
// size, or 0 when b does not hold all of it yet. It reports violations as
// soon as the bytes that show them are there: reserved bits (no extension is
// negotiated), unknown opcodes, unmasked frames, fragmented or long control
// frames, and data frames longer than readLimit.
func parseHeader(b []byte) (h frameHeader, n int, err error) {
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
	case opContinuation, opText, opBinary:
	case opClose, opPing, opPong:
		if !h.fin {
			return h, 0, protocolError("fragmented control frame")
		}
		if b1&0x7f > maxControlPayload {
			return h, 0, protocolError("control frame too long")
		}
	default:
		return h, 0, protocolError("unknown opcode")
	}
	if b1&0x80 == 0 {
		return h, 0, protocolError("client frames must be masked")
	}
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
		if u > readLimit {
			return h, 0, errTooBig
		}
		h.length = int(u)
		n = 10
	default:
		h.length = int(l)
	}
	if h.length > readLimit {
		return h, 0, errTooBig
	}
	if len(b) < n+4 {
		return h, 0, nil
	}
	copy(h.key[:], b[n:n+4])
	return h, n + 4, nil
}

// readFrames handles the complete client frames at the start of b and
// returns the bytes they took (a frame not yet complete is left for the
// next call, with the bytes that follow it) and how many frames it handled.
// It unmasks payloads in place. *frag carries a fragmented message from one
// call to the next; control frames may come between its fragments.
//
// Errors are *closeError: a protocol violation (1002), a message over
// readLimit bytes (1009), text that is not UTF-8 (1007), or the client's
// close frame; bytes after a close frame are not looked at.
func readFrames(b []byte, frag **fragment, fh frameHandler) (used, frames int, err error) {
	for {
		h, n, err := parseHeader(b[used:])
		if err != nil || n == 0 {
			return used, frames, err
		}
		if h.op < opClose {
			f := *frag
			switch {
			case h.op == opContinuation && f == nil:
				return used, frames, protocolError("continuation frame without a message")
			case h.op != opContinuation && f != nil:
				return used, frames, protocolError("message inside a fragmented message")
			case f != nil && len(f.data)+h.length > readLimit:
				return used, frames, errTooBig
			}
		}
		end := used + n + h.length
		if end > len(b) {
			return used, frames, nil
		}
		p := b[used+n : end]
		unmask(p, h.key)
		used = end
		frames++
		switch h.op {
		case opText, opBinary:
			if h.fin {
				err = finishMessage(h.op, p, fh)
			} else {
				*frag = &fragment{op: h.op, data: append(make([]byte, 0, len(p)), p...)}
			}
		case opContinuation:
			f := *frag
			f.data = append(f.data, p...)
			if h.fin {
				*frag = nil
				err = finishMessage(f.op, f.data, fh)
			}
		case opPing:
			fh.onPing(p)
		case opPong:
			// Only a sign of life (frames counts it).
		case opClose:
			err = peerClose(p)
		}
		if err != nil {
			return used, frames, err
		}
	}
}

func finishMessage(op byte, data []byte, fh frameHandler) error {
	text := op == opText
	if text && !utf8.Valid(data) {
		return errInvalidUTF8
	}
	fh.onMessage(text, data)
	return nil
}

// peerClose checks the payload of the client's close frame (RFC 6455
// section 7.4) and returns the error that ends the socket: a *closeError
// with peer set, carrying the code to echo.
func peerClose(p []byte) error {
	switch {
	case len(p) == 0:
		return &closeError{code: websocket.CloseNoStatusReceived, peer: true}
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
	return &closeError{code: code, peer: true}
}

// validCloseCode reports whether a client may send code in a close frame.
func validCloseCode(code int) bool {
	switch code {
	case websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseProtocolError,
		websocket.CloseUnsupportedData, websocket.CloseInvalidFramePayloadData,
		websocket.ClosePolicyViolation, websocket.CloseMessageTooBig, websocket.CloseMandatoryExtension,
		websocket.CloseInternalServerErr, websocket.CloseServiceRestart, websocket.CloseTryAgainLater:
		return true
	}
	return code >= 3000 && code <= 4999
}

func unmask(p []byte, key [4]byte) {
	for i := range p {
		p[i] ^= key[i&3]
	}
}
