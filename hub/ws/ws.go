// Package ws is the WebSocket transport (RFC 6455) after the handshake:
// the frames of either end (a server reads masked frames and writes
// unmasked ones, a client the other way round), a connection's writes that
// never wait (TryWrite) or wait until a deadline (Write), and, on Linux, an
// epoll Poller that tells when an idle connection has something to read,
// so that it needs no goroutine meanwhile. It negotiates no extension.
//
// A Conn does not read the socket itself: its reader reads bytes into a
// buffer of its own and hands them to ReadFrame, which checks the rules a
// server enforces on its peer (masking, reserved bits and opcodes, control
// frames, fragmentation, UTF-8 text, close codes, a size limit) and ends
// with a *CloseError whose Code the reader sends back in its close frame.
package ws

import (
	"fmt"
)

// Frame opcodes (RFC 6455 section 5.2).
const (
	OpContinuation = 0x0
	OpText         = 0x1
	OpBinary       = 0x2
	OpClose        = 0x8
	OpPing         = 0x9
	OpPong         = 0xA
)

// MaxHeader is the longest frame header: two bytes, a 64-bit length and a
// masking key. A buffer of MaxHeader plus a Conn's limit holds any frame
// the Conn accepts.
const MaxHeader = 2 + 8 + 4

// Close codes (RFC 6455 section 7.4.1) this package sends or checks.
const (
	closeNormal       = 1000
	closeProtocol     = 1002
	closeNoStatus     = 1005
	closeInvalidData  = 1007
	closeTooBig       = 1009
	maxControlPayload = 125
)

// CloseError ends a connection: a violation of the protocol by the peer,
// or the peer's own close frame (Peer). Either way the reader answers with
// a close frame carrying Code (Conn.WriteClose), unless its own went out
// first.
type CloseError struct {
	Code   int
	Reason string // why, for a violation; short enough for a close frame
	Peer   bool   // the peer's close frame, with its code (1005: none)
}

func (e *CloseError) Error() string {
	if e.Peer {
		return fmt.Sprintf("websocket: the peer closed the connection (%d)", e.Code)
	}
	return fmt.Sprintf("websocket: %s (close %d)", e.Reason, e.Code)
}

func protocolError(reason string) error {
	return &CloseError{Code: closeProtocol, Reason: reason}
}

var (
	errTooBig      = &CloseError{Code: closeTooBig, Reason: "message too big"}
	errInvalidUTF8 = &CloseError{Code: closeInvalidData, Reason: "invalid UTF-8"}
)
